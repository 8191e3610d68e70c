#!/usr/bin/env bash
# Builds the helm CLI from the Go module helm.sh/helm/v4 and caches it outside the repository,
# the same way scripts/control-plane/build.sh caches the test control plane:
#   $MESON_K8S_CACHE/helm-<version>-r<recipe>/bin/helm
# A second run with the same version only checks the stamp file (seconds). GOMODCACHE and GOCACHE
# are shared with the control-plane build under $MESON_K8S_CACHE/go, so the k8s.io modules both
# need are downloaded once. helm's go.mod has no replace directives, so `go install mod@version` works.
# Prints the bin directory as the LAST line of stdout (callers read it).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}" # go.mod says `go 1.26.0`
CACHE="${MESON_K8S_CACHE:-${HOME:-/root}/.cache/meson-k8s}"

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
# sum.golang.org is not reachable here; the module proxy is the only source of modules.
export GOSUMDB="${GOSUMDB:-off}" GOFLAGS="-mod=mod -buildvcs=false -trimpath"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

log() { echo "helm build: $*" >&2; }
command -v go >/dev/null || { log "go is not installed (need Go >= 1.26)"; exit 1; }

# RECIPE changes whenever this script builds differently (flags, stamps), forcing a rebuild.
RECIPE=1
out="$CACHE/helm-$HELM_VERSION-r$RECIPE"
bin="$out/bin"
if [ -f "$out/.complete" ] && [ -x "$bin/helm" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
started=$(date +%s)
log "building helm $HELM_VERSION (cold: minutes)"
# internal/version.version is what `helm version` prints (helm's Makefile sets it the same way).
GOBIN="$bin" go install \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
[ -x "$bin/helm" ] || { log "missing $bin/helm"; exit 1; }
"$bin/helm" version >&2
cat >"$out/version.json" <<JSON
{"helm":"$HELM_VERSION","builtSeconds":$(( $(date +%s) - started ))}
JSON
touch "$out/.complete"
log "built in $(( $(date +%s) - started )) s: $bin"
echo "$bin"
