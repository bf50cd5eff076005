#!/usr/bin/env bash
# Builds (or finds cached) everything the node runs that Debian does not package: Kubernetes
# (cluster/build-k8s.sh), CoreDNS, the images (images.sh), and the policy analyzer the suite uses.
# Go programs come from the Go module proxy through throwaway wrapper modules; binaries are cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow/node/bin/<name>-<version>/.
set -euo pipefail
NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$NODE_DIR/../.." && pwd)"
# shellcheck source=../../cluster/versions.sh
source "$REPO/cluster/versions.sh"
# shellcheck source=versions.sh
source "$NODE_DIR/versions.sh"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

bash "$REPO/cluster/build-k8s.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# CoreDNS with the plugins the node needs (bind, errors, kubernetes): nothing is forwarded off the machine.
if [ ! -x "$COREDNS_BIN/coredns" ]; then
  echo "node-build: building CoreDNS $COREDNS_VERSION" >&2
  t0=$SECONDS
  mkdir -p "$work/coredns"
  cat >"$work/coredns/go.mod" <<GOMOD
module cdk8s-mlflow.local/corednsbuild

go 1.26

require github.com/coredns/coredns $COREDNS_VERSION
GOMOD
  cat >"$work/coredns/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
)

func init() { dnsserver.Directives = []string{"bind", "errors", "kubernetes"} }

func main() { coremain.Run() }
GO
  (cd "$work/coredns" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o coredns .)
  mkdir -p "$COREDNS_BIN" && mv "$work/coredns/coredns" "$COREDNS_BIN/coredns.partial" && mv "$COREDNS_BIN/coredns.partial" "$COREDNS_BIN/coredns"
  echo "node-build: built CoreDNS in $((SECONDS - t0)) s" >&2
fi

# np-guard's netpol-analyzer (k8snetpolicy): evaluates the NetworkPolicies of the live node's pods, as no
# policy engine can run on this kernel (e2e/README.md). The checksum database has no entry for this
# release, so this one module is taken from the proxy unverified by it; it is built as its own main
# module, in a copy of the release, so that its go.sum verifies its dependencies.
if [ ! -x "$NETPOL_BIN/k8snetpolicy" ]; then
  echo "node-build: building netpol-analyzer $NETPOL_VERSION" >&2
  t0=$SECONDS
  dir="$(cd "$work" && GONOSUMDB=github.com/np-guard/netpol-analyzer go mod download -json "github.com/np-guard/netpol-analyzer@$NETPOL_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')"
  [ -d "$dir" ] || { echo "node-build: cannot download github.com/np-guard/netpol-analyzer@$NETPOL_VERSION" >&2; exit 1; }
  cp -r "$dir" "$work/netpol" && chmod -R u+w "$work/netpol"
  (cd "$work/netpol" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o k8snetpolicy ./cmd/netpolicy)
  mkdir -p "$NETPOL_BIN" && mv "$work/netpol/k8snetpolicy" "$NETPOL_BIN/k8snetpolicy.partial" && mv "$NETPOL_BIN/k8snetpolicy.partial" "$NETPOL_BIN/k8snetpolicy"
  echo "node-build: built netpol-analyzer in $((SECONDS - t0)) s" >&2
fi

bash "$NODE_DIR/images.sh" >/dev/null
