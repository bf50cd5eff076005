# Sourced by build-k8s.sh and run.sh: the pinned versions and where their binaries are cached.
# Changing a version here makes build-k8s.sh build the new one into its own cache directory.
K8S_VERSION="${K8S_VERSION:-v1.36.3}"     # k8s.io/kubernetes on the Go module proxy
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"   # go.etcd.io/etcd/server/v3 on the Go module proxy
CDK8S_MLFLOW_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow"
K8S_BIN="$CDK8S_MLFLOW_CACHE/k8s-$K8S_VERSION/bin"
ETCD_BIN="$CDK8S_MLFLOW_CACHE/etcd-$ETCD_VERSION/bin"
export K8S_VERSION ETCD_VERSION CDK8S_MLFLOW_CACHE K8S_BIN ETCD_BIN
