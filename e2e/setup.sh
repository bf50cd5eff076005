#!/usr/bin/env bash
# Installs the programs the e2e suite's images (node/images.sh) and its client side use.
# Idempotent: everything is cached outside the repo under ${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow
# and rebuilt only when missing or when a pinned version below changes.
#
#   PostgreSQL 15   Debian package postgresql-15 (/usr/lib/postgresql/15/bin)
#   MariaDB         Debian package mariadb-server: the users' existing MySQL-family database of a scenario
#   MinIO, mc       built from source through the Go module proxy, at the commits of the image tags
#   MLflow          PyPI, in a virtualenv, the version of lib/kit/images.ts, pinned by e2e/locks/
#
# Prints `export` lines for the suite on stdout when called with --print-env.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow"

# --- pins ---------------------------------------------------------------------------------------
# Image quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z = github.com/minio/minio at the tag's commit.
# The module proxy refuses the tag name and the bare hash; it serves the canonical pseudo-version.
MINIO_TAG=RELEASE.2025-09-07T16-13-09Z
MINIO_COMMIT=07c3a429bfed433e49018cb0f78a52145d4bedeb
MINIO_MODVER=v0.0.0-20250907161309-07c3a429bfed
# Image quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z = github.com/minio/mc at the tag's commit.
MC_TAG=RELEASE.2025-08-13T08-35-41Z
MC_COMMIT=7394ce0dd2a80935aded936b09fa12cbb3cb8096
MC_MODVER=v0.0.0-20250813083541-7394ce0dd2a8
# Image ghcr.io/mlflow/mlflow:vX.Y.Z-full = mlflow X.Y.Z (+ psycopg2, boto3); read from lib/kit/images.ts below.
PG_MAJOR=15
PYTHON="${E2E_PYTHON:-python3.11}"

log() { echo "setup: $*" >&2; }

mkdir -p "$CACHE/bin"
# Keep Go's downloads and build cache with ours, so a cold setup is really cold and the repo stays clean.
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOTOOLCHAIN=local GOFLAGS=-modcacherw
export GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOPATH="$CACHE/go/path"

# --- PostgreSQL ---------------------------------------------------------------------------------
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
if [ ! -x "$PG_BIN/postgres" ] || [ ! -x "$PG_BIN/initdb" ]; then
  log "installing postgresql-$PG_MAJOR from Debian"
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
  # The package's own cluster is not used; policy-rc.d keeps it from starting where there is no init.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_MAJOR" >/dev/null
fi
id postgres >/dev/null 2>&1 || { log "the postgres system user is missing"; exit 1; }

# --- MariaDB (not in any image of the stack: the external database of a scenario) -----------------
if [ ! -x /usr/sbin/mariadbd ] || [ ! -x /usr/bin/mariadb-install-db ]; then
  log "installing mariadb-server from Debian"
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
fi

# --- MinIO and mc -------------------------------------------------------------------------------
build_go() { # name module modver tag commit ldprefix [nosumdb]
  local name=$1 module=$2 modver=$3 tag=$4 commit=$5 ldprefix=$6 nosumdb=${7:-}
  local out="$CACHE/bin/$name-$tag"
  if [ -x "$out/$name" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$module@$modver" ]; then return; fi
  log "building $name $tag ($module@$modver) from the Go module proxy"
  rm -rf "$out" && mkdir -p "$out"
  local version="${tag#RELEASE.}" # 2025-09-07T16-13-09Z -> 2025-09-07T16:13:09Z
  version="${version:0:13}:${version:14:2}:${version:17}"
  local ld="-s -w -X $ldprefix.Version=$version -X $ldprefix.CopyrightYear=${version:0:4} -X $ldprefix.ReleaseTag=$tag"
  ld="$ld -X $ldprefix.CommitID=$commit -X $ldprefix.ShortCommitID=${commit:0:12}"
  # Neither go.mod has replace directives, so `go install module@version` works.
  CGO_ENABLED=0 GOBIN="$out" GONOSUMDB="$nosumdb" go install -trimpath -tags kqueue -ldflags "$ld" "$module@$modver"
  echo "$module@$modver" > "$out/.stamp"
}
build_go minio github.com/minio/minio "$MINIO_MODVER" "$MINIO_TAG" "$MINIO_COMMIT" github.com/minio/minio/cmd
# The checksum database answers 404 for this mc pseudo-version (it holds no entry for it), so this
# one module is taken from the proxy unverified by it; its dependencies are still verified.
build_go mc github.com/minio/mc "$MC_MODVER" "$MC_TAG" "$MC_COMMIT" github.com/minio/mc/cmd github.com/minio/mc

# --- MLflow -------------------------------------------------------------------------------------
# The version the manifests pin (ghcr.io/mlflow/mlflow:vX.Y.Z-full in lib/kit/images.ts), with every
# package pinned by e2e/locks/mlflow-X.Y.Z.txt. A line `#no-deps PKG==V` installs PKG without its
# dependencies after the rest (for a release whose sibling packages the registry lacks; see the lock).
REPO="$(dirname "$E2E_DIR")"
MLFLOW_VERSION="${E2E_MLFLOW_VERSION:-$(sed -n 's|.*ghcr\.io/mlflow/mlflow:v\([0-9][0-9.]*\)-full.*|\1|p' "$REPO/lib/kit/images.ts" 2>/dev/null | head -1)}"
[ -n "$MLFLOW_VERSION" ] || { log "no ghcr.io/mlflow/mlflow:vX.Y.Z-full in lib/kit/images.ts; set E2E_MLFLOW_VERSION"; exit 1; }
LOCK="$E2E_DIR/locks/mlflow-$MLFLOW_VERSION.txt"
[ -f "$LOCK" ] || { log "no $LOCK: run MLFLOW_VERSION=$MLFLOW_VERSION bash e2e/lock.sh"; exit 1; }
LOCK_HASH="$( { cat "$LOCK"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)"
VENV="$CACHE/venvs/mlflow-$LOCK_HASH"
if [ ! -x "$VENV/bin/mlflow" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$LOCK_HASH" ]; then
  log "creating the MLflow $MLFLOW_VERSION virtualenv ($VENV)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-input -r "$LOCK"
  sed -n 's/^#no-deps[[:space:]]\+//p' "$LOCK" | while read -r pkg; do
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-input --no-deps "$pkg"
  done
  got="$("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)')"
  [ "$got" = "$MLFLOW_VERSION" ] || { log "the virtualenv has mlflow $got, not $MLFLOW_VERSION"; exit 1; }
  echo "$LOCK_HASH" > "$VENV/.stamp"
fi
# Checkouts with other pins (branches) share the cache, so another pin's virtualenv is dropped only when
# no setup has used it for two days; the cache still does not grow without bound.
touch "$VENV/.stamp"
find "$CACHE/venvs" -mindepth 2 -maxdepth 2 -name .stamp -mtime +2 -printf '%h\n' | while read -r old; do rm -rf "$old"; done

# --- the suite's own Python (pytest + PyYAML) -----------------------------------------------------
HARNESS_PY="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)"
if ! "$HARNESS_PY" -c 'import pytest, yaml' 2>/dev/null; then
  HARNESS_PY="$CACHE/harness-venv/bin/python"
  if ! "$HARNESS_PY" -c 'import pytest, yaml' 2>/dev/null; then
    log "creating the suite's virtualenv (pytest, PyYAML)"
    rm -rf "$CACHE/harness-venv"
    "$PYTHON" -m venv "$CACHE/harness-venv"
    "$CACHE/harness-venv/bin/pip" install -q --disable-pip-version-check pytest==9.2.0 PyYAML==6.0.3
  fi
fi

MINIO_BIN="$CACHE/bin/minio-$MINIO_TAG/minio"
MC_BIN="$CACHE/bin/mc-$MC_TAG/mc"
if [ "${1:-}" = "--print-env" ]; then
  echo "export E2E_PG_BIN='$PG_BIN' E2E_MINIO='$MINIO_BIN' E2E_MC='$MC_BIN' E2E_VENV='$VENV' E2E_CACHE='$CACHE' E2E_HARNESS_PY='$HARNESS_PY'"
else
  log "postgres: $("$PG_BIN/postgres" --version)"
  log "minio:    $("$MINIO_BIN" --version | head -1)"
  log "mc:       $("$MC_BIN" --version | head -1)"
  log "mlflow:   $("$VENV/bin/mlflow" --version)"
fi
