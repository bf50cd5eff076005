# Sourced by build.sh and node.sh: the node's pinned programs (besides cluster/versions.sh) and their caches.
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"   # github.com/coredns/coredns on the Go module proxy
NETPOL_VERSION="${NETPOL_VERSION:-v1.2.0}"      # github.com/np-guard/netpol-analyzer on the Go module proxy
NODE_CACHE="$CDK8S_MLFLOW_CACHE/node"
COREDNS_BIN="$NODE_CACHE/bin/coredns-$COREDNS_VERSION"
NETPOL_BIN="$NODE_CACHE/bin/netpol-analyzer-$NETPOL_VERSION"
export COREDNS_VERSION NETPOL_VERSION NODE_CACHE COREDNS_BIN NETPOL_BIN
