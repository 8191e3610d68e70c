#!/usr/bin/env bash
# Builds the test control plane from Go modules and caches the binaries outside the repository:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes)
#   and kwok (sigs.k8s.io/kwok).
# Output: $MESON_K8S_CACHE/control-plane/<key>/bin/ where <key> names every version, so a change
# of version builds afresh while a second run with the same versions only checks the stamp file.
# GOMODCACHE and GOCACHE live under $MESON_K8S_CACHE/go so warm rebuilds are incremental.
# Prints the bin directory as the LAST line of stdout (callers read it).
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}" # go.mod says `go 1.26.0`
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"               # go.mod says `go 1.26.0` (main needs 1.27)
CACHE="${MESON_K8S_CACHE:-${HOME:-/root}/.cache/meson-k8s}"

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
# sum.golang.org is not reachable here; the module proxy is the only source of modules.
export GOSUMDB="${GOSUMDB:-off}" GOFLAGS="-mod=mod -buildvcs=false -trimpath"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

log() { echo "control-plane build: $*" >&2; }
command -v go >/dev/null || { log "go is not installed (need Go >= 1.26)"; exit 1; }

minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBERNETES_VERSION#v1.}"

# Read the release's own go.mod: its staging replace block and the etcd version it requires.
k8s_gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -f "$k8s_gomod" ] || { log "could not download k8s.io/kubernetes@$KUBERNETES_VERSION go.mod"; exit 1; }
ETCD_VERSION="$(sed -n 's/^[[:space:]]*go\.etcd\.io\/etcd\/server\/v3 \(v[^ ]*\).*/\1/p' "$k8s_gomod" | head -1)"
[ -n "$ETCD_VERSION" ] || { log "no go.etcd.io/etcd/server/v3 requirement in $k8s_gomod"; exit 1; }

# RECIPE changes whenever this script builds differently (flags, stamps), forcing a rebuild.
RECIPE=2
key="k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-r$RECIPE"
out="$CACHE/control-plane/$key"
bin="$out/bin"
if [ -f "$out/.complete" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi
mkdir -p "$bin" "$out/src"
started=$(date +%s)

# --- kubernetes: a consumer module with one replace per staging module, generated from go.mod ---
kube="$out/src/kubernetes"
mkdir -p "$kube"
cat >"$kube/go.mod" <<MOD
module meson.dev/control-plane/kubernetes

go 1.26

require k8s.io/kubernetes $KUBERNETES_VERSION
MOD
staging=$(sed -n 's/^[[:space:]]*\(k8s\.io\/[^ ]*\) => \.\/staging\/src\/.*/\1/p' "$k8s_gomod")
[ -n "$staging" ] || { log "no staging replace lines found in $k8s_gomod"; exit 1; }
for m in $staging; do
  (cd "$kube" && go mod edit -replace="$m=$m@$staging_version")
done
log "kubernetes $KUBERNETES_VERSION: $(echo "$staging" | wc -w) staging replaces at $staging_version"
(cd "$kube" && go get "k8s.io/kubernetes@$KUBERNETES_VERSION" >&2)

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
log "building kube-apiserver kube-controller-manager kube-scheduler kubectl (cold: tens of minutes)"
(cd "$kube" && go build -ldflags "$ld" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl >&2)

# --- etcd: server/v3's go.mod has replace directives, so `go install` refuses it; wrap etcdmain ---
etcd="$out/src/etcd"
mkdir -p "$etcd"
cat >"$etcd/go.mod" <<MOD
module meson.dev/control-plane/etcd

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
cat >"$etcd/main.go" <<'GO'
// etcd built from go.etcd.io/etcd/server/v3 at the version kube-apiserver's go.mod names.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
log "building etcd $ETCD_VERSION"
(cd "$etcd" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2 &&
  go build -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$bin/etcd" . >&2)

# --- kwok: no replace directives, so a plain module-aware install at the tag works ---
log "building kwok $KWOK_VERSION"
GOBIN="$bin" go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [ -x "$bin/$b" ] || { log "missing $bin/$b"; exit 1; }
done
cat >"$out/versions.json" <<JSON
{"kubernetes":"$KUBERNETES_VERSION","etcd":"$ETCD_VERSION","kwok":"$KWOK_VERSION","builtSeconds":$(( $(date +%s) - started ))}
JSON
touch "$out/.complete"
log "built in $(( $(date +%s) - started )) s: $bin"
echo "$bin"
