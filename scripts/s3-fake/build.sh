#!/usr/bin/env bash
# Builds the S3-compatible fake that test/executor/copy-s3.test.ts copies to and from: gofakes3's
# own command (github.com/johannesboyne/gofakes3/cmd/gofakes3) from the Go module proxy, cached
# outside the repository the way scripts/control-plane/build.sh caches the control plane:
#   $MESON_K8S_CACHE/s3-fake-<version>-r<recipe>/bin/gofakes3
# A second run with the same version only checks the stamp file. GOMODCACHE and GOCACHE are shared
# with the other Go builds under $MESON_K8S_CACHE/go. The tests run it as
# `gofakes3 -backend memory -host 127.0.0.1:PORT -quiet` (in-memory, loopback only).
# Prints the bin directory as the LAST line of stdout (callers read it).
set -euo pipefail

GOFAKES3_VERSION="${GOFAKES3_VERSION:-v1.2.0}" # go.mod says `go 1.24`
CACHE="${MESON_K8S_CACHE:-${HOME:-/root}/.cache/meson-k8s}"

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
# sum.golang.org is not reachable here; the module proxy is the only source of modules.
export GOSUMDB="${GOSUMDB:-off}" GOFLAGS="-mod=mod -buildvcs=false -trimpath"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

log() { echo "s3-fake build: $*" >&2; }
command -v go >/dev/null || { log "go is not installed (need Go >= 1.24)"; exit 1; }

# RECIPE changes whenever this script builds differently (flags, stamps), forcing a rebuild.
RECIPE=1
out="$CACHE/s3-fake-$GOFAKES3_VERSION-r$RECIPE"
bin="$out/bin"
if [ -f "$out/.complete" ] && [ -x "$bin/gofakes3" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
started=$(date +%s)
log "building gofakes3 $GOFAKES3_VERSION (cold: a minute or two)"
GOBIN="$bin" go install -ldflags "-s -w" "github.com/johannesboyne/gofakes3/cmd/gofakes3@$GOFAKES3_VERSION" >&2
[ -x "$bin/gofakes3" ] || { log "missing $bin/gofakes3"; exit 1; }
cat >"$out/version.json" <<JSON
{"gofakes3":"$GOFAKES3_VERSION","builtSeconds":$(( $(date +%s) - started ))}
JSON
touch "$out/.complete"
log "built in $(( $(date +%s) - started )) s: $bin"
echo "$bin"
