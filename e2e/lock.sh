#!/usr/bin/env bash
# Writes e2e/locks/mlflow-<version>.txt: resolves the top-level pins in a scratch virtualenv and
# freezes every package, so each setup of that version installs the same set.
#   MLFLOW_VERSION=3.18.0 bash e2e/lock.sh
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${MLFLOW_VERSION:?set MLFLOW_VERSION, e.g. 3.18.0}"
# mlflow[auth]: the -full image installs that extra (Flask-WTF), which `--app-name basic-auth` imports.
# psycopg2-binary and PyMySQL: the PostgreSQL and MySQL/MariaDB drivers the image carries (mlflow[db]).
TOP="mlflow[auth]==$VERSION psycopg2-binary PyMySQL boto3 scikit-learn"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"${E2E_PYTHON:-python3.11}" -m venv "$tmp/venv"
# shellcheck disable=SC2086
"$tmp/venv/bin/pip" install -q --disable-pip-version-check $TOP
mkdir -p "$E2E_DIR/locks"
{ echo "# Every package of the e2e MLflow virtualenv, pinned (pip freeze of: $TOP)."
  echo "# mlflow $VERSION = the image ghcr.io/mlflow/mlflow:v$VERSION-full. Regenerate with: MLFLOW_VERSION=$VERSION bash e2e/lock.sh"
  "$tmp/venv/bin/pip" freeze; } > "$E2E_DIR/locks/mlflow-$VERSION.txt"
echo "wrote $E2E_DIR/locks/mlflow-$VERSION.txt"
