#!/usr/bin/env bash
# `npm run test:e2e`: builds or reuses the node's programs and images (e2e/node/build.sh), starts one
# real node (e2e/node/node.sh) and runs pytest on e2e/ (its fixtures synthesize the scenarios they
# deploy, e2e/matrix.py); the node is stopped and the host restored when this script ends, however it ends.
# Needs root. Extra arguments go to pytest (e.g. -k test_3).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$E2E_DIR")"
[ "$(id -u)" = 0 ] || { echo "e2e: needs root (it runs a Kubernetes node)" >&2; exit 1; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

t0=$(date +%s%N)
eval "$(bash "$E2E_DIR/setup.sh" --print-env)"
eval "$(bash "$E2E_DIR/setup-mlflow3.sh" --print-env)"
# One node at a time on a machine: its addresses, ports and state directory are fixed (and the image
# archives and containerd's store are shared by checkouts).
exec 9>"$E2E_CACHE/e2e.lock"
flock -w 3600 9
bash "$E2E_DIR/node/build.sh"
echo "e2e: setup and build took $(ms "$t0") ms" >&2
# `run.sh --build-only`: the builds alone (.ci/run starts them early, beside the unit tests).
[ "${1:-}" != "--build-only" ] || exit 0

finish() {
  local t=$(date +%s%N)
  bash "$E2E_DIR/node/node.sh" stop || true
  echo "e2e: node teardown took $(ms "$t") ms" >&2
}
trap finish EXIT
trap 'exit 130' INT TERM

t=$(date +%s%N)
bash "$E2E_DIR/node/node.sh" start
echo "e2e: node start took $(ms "$t") ms" >&2
# shellcheck source=../cluster/versions.sh
source "$REPO/cluster/versions.sh"
# shellcheck source=node/versions.sh
source "$E2E_DIR/node/versions.sh"
export NODE_KUBECONFIG=/tmp/cdk8s-mlflow-node/admin.kubeconfig NODE_KUBECTL="$K8S_BIN/kubectl" NODE_NETPOL="$NETPOL_BIN/k8snetpolicy"

cd "$E2E_DIR"
t=$(date +%s%N)
status=0
"$E2E_HARNESS_PY" -m pytest -p no:cacheprovider -v --durations=12 "$@" || status=$?
echo "e2e: suite took $(ms "$t") ms" >&2
exit "$status"
