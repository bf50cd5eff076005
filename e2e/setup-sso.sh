#!/usr/bin/env bash
# Installs the single sign-on programs of the e2e suite (test_sso.py), cached like setup.sh's:
#
#   oauth2-proxy   the server pod's sidecar image quay.io/oauth2-proxy/oauth2-proxy:vX = module v7 at that tag
#   dex            the test's OpenID Connect provider (not part of the stack), tag v2.45.1
#
# Both are built from source through the Go module proxy into
# ${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow/bin/<name>-<version>/, rebuilt only when missing or
# when a pin below changes. Prints `export` lines for the harness on stdout when called with --print-env.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$E2E_DIR")"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow"

# --- pins ---------------------------------------------------------------------------------------
# dex's go.mod says `module github.com/dexidp/dex` (no /v2), so the proxy serves no v2.x version of
# it; the tag's commit is served as a pseudo-version.
DEX_TAG=v2.45.1                                 # commit 11d2eeb52b42e1980e14cb91e69dd9e3faab2076
DEX_MODVER=v0.0.0-20260303133905-11d2eeb52b42
# The version of the image the library pins (lib/kit/images.ts), E2E_OAUTH2_PROXY_VERSION to override.
O2P_VERSION="${E2E_OAUTH2_PROXY_VERSION:-$(sed -n 's|.*quay\.io/oauth2-proxy/oauth2-proxy:\(v[0-9][0-9.]*\).*|\1|p' "$REPO/lib/kit/images.ts" 2>/dev/null | head -1)}"
O2P_VERSION="${O2P_VERSION:-v7.15.3}"

log() { echo "setup-sso: $*" >&2; }

mkdir -p "$CACHE/bin"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOTOOLCHAIN=local GOFLAGS=-modcacherw
export GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOPATH="$CACHE/go/path"

# Builds in a copy of the module's source: `go install module@version` cannot be used for either
# (dex's go.mod has a replace directive; for oauth2-proxy it asks the proxy's version list, which is refused).
WORK=""
trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT
build() { # name module@version label setup-command ldflags package
  local name=$1 modver=$2 label=$3 setup=$4 ldflags=$5 pkg=$6
  local out="$CACHE/bin/$name-$label"
  if [ -x "$out/$name" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$modver" ]; then return; fi
  log "building $name $label ($modver) from the Go module proxy"
  local t0=$SECONDS dir src
  dir="$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir" ] || { log "go mod download $modver gave no source directory"; exit 1; }
  WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cdk8s-mlflow-sso-src.XXXXXX")}"
  src="$WORK/$name"
  cp -r "$dir/." "$src"
  chmod -R u+w "$src"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$src" && eval "$setup" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$out/$name" "$pkg")
  echo "$modver" > "$out/.stamp"
  log "built $name in $((SECONDS - t0)) s"
}
# dex's go.mod replaces github.com/dexidp/dex/api/v2 with ./api/v2, a nested module that the module zip
# leaves out: without the replace, the required api/v2 version comes from the proxy.
build dex "github.com/dexidp/dex@$DEX_MODVER" "$DEX_TAG" \
  "go mod edit -dropreplace github.com/dexidp/dex/api/v2" \
  "-s -w -X main.version=$DEX_TAG" ./cmd/dex
build oauth2-proxy "github.com/oauth2-proxy/oauth2-proxy/v7@$O2P_VERSION" "$O2P_VERSION" true \
  "-s -w -X github.com/oauth2-proxy/oauth2-proxy/v7/pkg/version.VERSION=$O2P_VERSION" .

DEX_BIN="$CACHE/bin/dex-$DEX_TAG/dex"
O2P_BIN="$CACHE/bin/oauth2-proxy-$O2P_VERSION/oauth2-proxy"
if [ "${1:-}" = "--print-env" ]; then
  echo "export E2E_DEX='$DEX_BIN' E2E_OAUTH2_PROXY='$O2P_BIN'"
else
  log "dex:          $("$DEX_BIN" version | head -1)"
  log "oauth2-proxy: $("$O2P_BIN" --version)"
fi
