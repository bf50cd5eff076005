# Sourced by build.sh and node.sh: the node's pinned programs (besides cluster/versions.sh) and their caches.
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"   # github.com/coredns/coredns on the Go module proxy
KNP_VERSION="${KNP_VERSION:-v0.7.0}"            # sigs.k8s.io/kube-network-policies on the Go module proxy
NODE_CACHE="$CDK8S_MLFLOW_CACHE/node"
COREDNS_BIN="$NODE_CACHE/bin/coredns-$COREDNS_VERSION"
KNP_BIN="$NODE_CACHE/bin/kube-network-policies-$KNP_VERSION"
export COREDNS_VERSION KNP_VERSION NODE_CACHE COREDNS_BIN KNP_BIN
