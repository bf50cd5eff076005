#!/usr/bin/env bash
# `npm run test:e2e`: installs the programs (cached), synthesizes the default app into a temp dir,
# and runs the process-level suite (real PostgreSQL, MinIO, mc and MLflow; see e2e/README.md).
# Needs root (network and mount namespaces). Extra arguments go to pytest (e.g. -k test_3).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$E2E_DIR")"
[ "$(id -u)" = 0 ] || { echo "e2e: needs root (it creates network and mount namespaces)" >&2; exit 1; }

t0=$(date +%s%N)
eval "$(bash "$E2E_DIR/setup.sh" --print-env)"
eval "$(bash "$E2E_DIR/setup-mlflow3.sh" --print-env)"
echo "e2e: setup took $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2

# One suite at a time on a machine: the bridge and namespace names are fixed.
exec 9>"$E2E_CACHE/e2e.lock"
flock -w 3600 9

tmp="$(mktemp -d /tmp/cdk8s-mlflow-e2e-dist.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# The default app as `npm run synth` builds it, from .env.example (a developer's own .env may name an
# external S3 or hold real passwords; E2E_ENV_FILE picks another file).
(cd "$REPO" && CDK8S_CHECK_UPGRADE=false CDK8S_OUTDIR="$tmp/dist" MLFLOW_ENV_FILE="${E2E_ENV_FILE:-$REPO/.env.example}" node scripts/synth.js >&2)
export E2E_DIST="$tmp/dist"

cd "$E2E_DIR"
"$E2E_HARNESS_PY" -m pytest -p no:cacheprovider -v "$@"
