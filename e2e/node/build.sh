#!/usr/bin/env bash
# Builds (or finds cached) everything the node runs that Debian does not package: Kubernetes
# (cluster/build-k8s.sh), CoreDNS, kube-network-policies and the images (images.sh).
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

# kube-network-policies: the NetworkPolicy engine (nftables + nfqueue). The checksum database has no
# entry for this release, so this one module is taken from the proxy unverified by it.
if [ ! -x "$KNP_BIN/kube-network-policies" ]; then
  echo "node-build: building kube-network-policies $KNP_VERSION" >&2
  t0=$SECONDS
  mkdir -p "$work/knp"
  (cd "$work/knp" && CGO_ENABLED=0 GOBIN="$work/knp" GONOSUMDB=sigs.k8s.io/kube-network-policies \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kube-network-policies/cmd@$KNP_VERSION")
  mkdir -p "$KNP_BIN" && mv "$work/knp/cmd" "$KNP_BIN/kube-network-policies.partial" && mv "$KNP_BIN/kube-network-policies.partial" "$KNP_BIN/kube-network-policies"
  echo "node-build: built kube-network-policies in $((SECONDS - t0)) s" >&2
fi

bash "$NODE_DIR/images.sh" >/dev/null
