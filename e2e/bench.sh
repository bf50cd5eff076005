#!/usr/bin/env bash
# Benchmark of the default synth's tracking server against `mlflow server` defaults (see e2e/bench.py).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$E2E_DIR")"
[ "$(id -u)" = 0 ] || { echo "bench: needs root (it creates network and mount namespaces)" >&2; exit 1; }
eval "$(bash "$E2E_DIR/setup.sh" --print-env)"
exec 9>"$E2E_CACHE/e2e.lock"
flock -w 3600 9
tmp="$(mktemp -d /tmp/cdk8s-mlflow-bench-dist.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
(cd "$REPO" && CDK8S_CHECK_UPGRADE=false CDK8S_OUTDIR="$tmp/dist" MLFLOW_ENV_FILE="${E2E_ENV_FILE:-$REPO/.env.example}" node scripts/synth.js >&2)
E2E_DIST="$tmp/dist" "$E2E_HARNESS_PY" "$E2E_DIR/bench.py"
