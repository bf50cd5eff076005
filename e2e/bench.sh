#!/usr/bin/env bash
# Benchmark of the default synth's tracking server on the real node against `mlflow server` defaults (see e2e/bench.py).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$E2E_DIR")"
[ "$(id -u)" = 0 ] || { echo "bench: needs root (it runs a Kubernetes node)" >&2; exit 1; }
eval "$(bash "$E2E_DIR/setup.sh" --print-env)"
bash "$E2E_DIR/node/build.sh"
exec 9>"$E2E_CACHE/e2e.lock"
flock -w 3600 9
trap 'bash "$E2E_DIR/node/node.sh" stop' EXIT
bash "$E2E_DIR/node/node.sh" start
# shellcheck source=../cluster/versions.sh
source "$REPO/cluster/versions.sh"
# shellcheck source=node/versions.sh
source "$E2E_DIR/node/versions.sh"
NODE_KUBECONFIG=/tmp/cdk8s-mlflow-node/admin.kubeconfig NODE_KUBECTL="$K8S_BIN/kubectl" "$E2E_HARNESS_PY" "$E2E_DIR/bench.py"
