#!/usr/bin/env bash
# Builds the images dist/ runs, from the programs the e2e suite installs (setup.sh), as image archives
# (one layer each, uncompressed) under the names lib/kit/images.ts pins, so `imagePullPolicy: IfNotPresent` runs them without a registry.
# Each is cached as $CACHE/node/images/<name>-<hash>.tar, rebuilt when one of its inputs changes.
# How each differs from the upstream image: e2e/README.md. Needs root (chroot).
set -euo pipefail
NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_DIR="$(dirname "$NODE_DIR")"
REPO="$(dirname "$E2E_DIR")"
eval "$(bash "$E2E_DIR/setup.sh" --print-env)"
eval "$(bash "$E2E_DIR/setup-mlflow3.sh" --print-env)"  # E2E_WEED
OUT="$E2E_CACHE/node/images"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$OUT"
log() { echo "images: $*" >&2; }
for tool in debootstrap gcc; do
  command -v "$tool" >/dev/null || { log "$tool is missing (apt-get install debootstrap gcc)"; exit 1; }
done

pinned() { sed -n "s|.*public static readonly $1 = '\([^']*\)'.*|\1|p" "$REPO/lib/kit/images.ts"; }
MLFLOW_REF="$(pinned MLFLOW)" POSTGRES_REF="$(pinned POSTGRES)" MINIO_REF="$(pinned MINIO)" MC_REF="$(pinned MINIO_CLIENT)"
SEAWEEDFS_REF="$(pinned SEAWEEDFS)"
PAUSE_REF=localhost/cdk8s-mlflow/pause:1
OLD_MLFLOW_REF=ghcr.io/mlflow/mlflow:v3.17.2-full  # test_mlflow3.py's upgrade starts there
for ref in "$MLFLOW_REF" "$POSTGRES_REF" "$MINIO_REF" "$MC_REF" "$SEAWEEDFS_REF"; do [ -n "$ref" ] || { log "an image name is missing from lib/kit/images.ts"; exit 1; }; done
LOCK="$E2E_DIR/locks/mlflow-$(echo "$MLFLOW_REF" | sed -n 's/.*:v\([0-9.]*\)-full$/\1/p').txt"

work="$(mktemp -d /tmp/cdk8s-mlflow-images.XXXXXX)"
cleanup() {
  { grep -o " $work/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# One Debian root filesystem (debootstrap, minbase) that the Debian-based images start from.
BASE="$OUT/base-$SUITE.tar"
if [ ! -s "$BASE" ]; then
  log "debootstrap $SUITE (minbase)"
  debootstrap --variant=minbase "$SUITE" "$work/base" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/base/var/cache/apt/archives"/*.deb "$work/base/var/lib/apt/lists"/*_Packages
  tar -C "$work/base" -cf "$BASE.partial" . && mv "$BASE.partial" "$BASE"
  rm -rf "$work/base"
fi

in_root() { chroot "$work/rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
apt_in_root() {
  cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d" && chmod +x "$work/rootfs/usr/sbin/policy-rc.d"
  mount -t proc proc "$work/rootfs/proc"
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  in_root apt-get clean
  umount "$work/rootfs/proc"
  rm -rf "$work/rootfs/var/lib/apt/lists"/* "$work/rootfs/usr/sbin/policy-rc.d"
  : >"$work/rootfs/etc/resolv.conf"
}

# build NAME REF HASH CUSTOMIZE CONFIG: a root filesystem made by CUSTOMIZE, as a one-layer image archive
# in the format `docker save` writes (which `ctr images import` reads), tagged REF. CONFIG is the image
# configuration's "config" object (Entrypoint, Cmd, Env, ...), as JSON.
build() {
  local name=$1 ref=$2 hash=$3 customize=$4 config=$5
  hash="$(printf '%s\n' "$hash" "$ref" "$config" | sha256sum | cut -c1-12)"
  local out="$OUT/$name-$hash.tar"
  echo "$out" >>"$OUT/selected.list.partial"
  if [ -s "$out" ]; then touch "$out"; echo "$out"; return; fi
  log "building $ref ($name-$hash)"
  local t0=$SECONDS a="$work/archive"
  rm -rf "$work/rootfs" "$a"
  mkdir -p "$work/rootfs" "$a"
  "$customize"
  tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$a/layer.tar" .
  local diff_id
  diff_id="$(sha256sum "$a/layer.tar" | cut -d' ' -f1)"
  python3 - "$a" "$ref" "$diff_id" "$config" <<'PY'
import hashlib, json, os, sys
a, ref, diff_id, config = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
image = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}, sort_keys=True).encode()
name = hashlib.sha256(image).hexdigest() + ".json"
with open(os.path.join(a, name), "wb") as f:
    f.write(image)
os.makedirs(os.path.join(a, diff_id))
os.rename(os.path.join(a, "layer.tar"), os.path.join(a, diff_id, "layer.tar"))
with open(os.path.join(a, "manifest.json"), "w") as f:
    json.dump([{"Config": name, "RepoTags": [ref], "Layers": [diff_id + "/layer.tar"]}], f)
PY
  # Other keys of this image (other checkouts share the cache) go when unused for two days.
  find "$OUT" -maxdepth 1 -name "$name-*.tar" -mtime +2 -delete
  tar -C "$a" -cf "$out.partial" . && mv "$out.partial" "$out"
  rm -rf "$work/rootfs" "$a"
  log "built $ref in $((SECONDS - t0)) s"
  echo "$out"
}

# An image's key: the build steps and its own recipe (not the rest of this file), and the inputs given.
hash_of() { local recipe=$1; shift; { declare -f build apt_in_root in_root "$recipe"; printf '%s\n' "$@"; } | sha256sum | cut -c1-12; }
PATH_DEFAULT=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

pause_root() {
  gcc -static -O2 -o "$work/rootfs/pause" "$NODE_DIR/pause.c"
  strip "$work/rootfs/pause"
}

postgres_root() {
  tar -C "$work/rootfs" -xf "$BASE"
  # The official image's postgres user is uid/gid 999; the package would pick another id.
  in_root groupadd -r -g 999 postgres
  in_root useradd -r -u 999 -g 999 -d /var/lib/postgresql -s /bin/bash postgres
  mkdir -p "$work/rootfs/etc/postgresql-common"
  echo 'create_main_cluster = false' >"$work/rootfs/etc/postgresql-common/createcluster.conf"
  apt_in_root postgresql-15
  install -m 0755 "$NODE_DIR/postgres-entrypoint.sh" "$work/rootfs/usr/local/bin/docker-entrypoint.sh"
  install -d -o 999 -g 999 -m 3777 "$work/rootfs/var/run/postgresql"
  install -d -o 999 -g 999 -m 0777 "$work/rootfs/var/lib/postgresql/data"
}

mlflow_root() {
  tar -C "$work/rootfs" -xf "$BASE"
  apt_in_root python3 python3-venv
  # The locked set, fetched by the host's pip (cached) and installed offline by the image's own Python.
  mkdir -p "$work/wheels"
  grep -v '^#' "$LOCK" >"$work/req.txt"
  sed -n 's/^#no-deps[[:space:]]\+//p' "$LOCK" >"$work/nodeps.txt"
  "$E2E_VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$work/wheels" -r "$work/req.txt" -r "$work/nodeps.txt"
  mkdir -p "$work/rootfs/tmp/build"
  cp -r "$work/wheels" "$work/req.txt" "$work/nodeps.txt" "$work/rootfs/tmp/build/"
  in_root python3 -m venv /opt/mlflow
  in_root /opt/mlflow/bin/pip install -q --disable-pip-version-check --no-index --find-links /tmp/build/wheels -r /tmp/build/req.txt
  if [ -s "$work/nodeps.txt" ]; then
    in_root /opt/mlflow/bin/pip install -q --disable-pip-version-check --no-index --find-links /tmp/build/wheels --no-deps -r /tmp/build/nodeps.txt
  fi
  rm -rf "$work/rootfs/tmp/build" "$work/rootfs/root/.cache"
  in_root /opt/mlflow/bin/python -c 'import mlflow, psycopg2, boto3; print(mlflow.__version__)' >"$work/mlflow-version"
  grep -qx "$(echo "$MLFLOW_REF" | sed -n 's/.*:v\([0-9.]*\)-full$/\1/p')" "$work/mlflow-version" || { log "mlflow $(cat "$work/mlflow-version") in the image"; exit 1; }
}

minio_root() { tar -C "$work/rootfs" -xf "$BASE"; install -m 0755 "$E2E_MINIO" "$work/rootfs/usr/bin/minio"; }
mc_root() { tar -C "$work/rootfs" -xf "$BASE"; install -m 0755 "$E2E_MC" "$work/rootfs/usr/bin/mc"; }
# The same recipe as the pinned MLflow, from the release's own lock.
old_mlflow_root() { local LOCK="$E2E_DIR/locks/mlflow-3.17.2.txt" MLFLOW_REF="$OLD_MLFLOW_REF"; mlflow_root; }
seaweedfs_root() { tar -C "$work/rootfs" -xf "$BASE"; install -m 0755 "$E2E_WEED" "$work/rootfs/usr/bin/weed"; }

# As upstream's distroless static root: the program, the nonroot user (65532), CA certificates, /tmp.
oauth2_proxy_root() {
  install -D -m 0755 "$E2E_OAUTH2_PROXY" "$work/rootfs/bin/oauth2-proxy"
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
  install -d -m 1777 "$work/rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$work/rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$work/rootfs/etc/group"
}

# The archives this run selects, for node.sh to import (the cache holds other checkouts' keys too).
rm -f "$OUT/selected.list.partial"
base_id="$(stat -c %s "$BASE")"
env_json() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
build pause "$PAUSE_REF" "$(hash_of pause_root "$(cat "$NODE_DIR/pause.c")")" pause_root \
  '{"Entrypoint": ["/pause"], "User": "65535:65535"}'
build postgres "$POSTGRES_REF" "$(hash_of postgres_root "$POSTGRES_REF" "$base_id" "$(cat "$NODE_DIR/postgres-entrypoint.sh")")" postgres_root \
  "{\"Entrypoint\": [\"docker-entrypoint.sh\"], \"Cmd\": [\"postgres\"], \"StopSignal\": \"SIGINT\",
    \"Env\": $(env_json "PATH=$PATH_DEFAULT:/usr/lib/postgresql/15/bin" PGDATA=/var/lib/postgresql/data LANG=C.UTF-8)}"
build mlflow "$MLFLOW_REF" "$(hash_of mlflow_root "$MLFLOW_REF" "$base_id" "$(cat "$LOCK")")" mlflow_root \
  "{\"Env\": $(env_json "PATH=/opt/mlflow/bin:$PATH_DEFAULT" LANG=C.UTF-8), \"WorkingDir\": \"/\"}"
build minio "$MINIO_REF" "$(hash_of minio_root "$MINIO_REF" "$base_id" "$(cat "$(dirname "$E2E_MINIO")/.stamp")")" minio_root \
  "{\"Entrypoint\": [\"minio\"], \"Env\": $(env_json "PATH=$PATH_DEFAULT")}"
build mc "$MC_REF" "$(hash_of mc_root "$MC_REF" "$base_id" "$(cat "$(dirname "$E2E_MC")/.stamp")")" mc_root \
  "{\"Entrypoint\": [\"mc\"], \"Env\": $(env_json "PATH=$PATH_DEFAULT")}"
build mlflow3172 "$OLD_MLFLOW_REF" "$(hash_of old_mlflow_root "$(declare -f mlflow_root)" "$OLD_MLFLOW_REF" "$base_id" "$(cat "$E2E_DIR/locks/mlflow-3.17.2.txt")")" \
  old_mlflow_root "{\"Env\": $(env_json "PATH=/opt/mlflow/bin:$PATH_DEFAULT" LANG=C.UTF-8), \"WorkingDir\": \"/\"}"
build seaweedfs "$SEAWEEDFS_REF" "$(hash_of seaweedfs_root "$SEAWEEDFS_REF" "$base_id" "$(cat "$(dirname "$E2E_WEED")/.stamp")")" seaweedfs_root \
  "{\"Entrypoint\": [\"weed\"], \"Env\": $(env_json "PATH=$PATH_DEFAULT")}"

# The single sign-on sidecar (test_sso.py), from the program e2e/setup-sso.sh builds.
eval "$(bash "$E2E_DIR/setup-sso.sh" --print-env)"
O2P_REF="$(pinned OAUTH2_PROXY)"
[ -n "$O2P_REF" ] || { log "OAUTH2_PROXY is missing from lib/kit/images.ts"; exit 1; }
build oauth2-proxy "$O2P_REF" "$(hash_of oauth2_proxy_root "$O2P_REF" "$(cat "$(dirname "$E2E_OAUTH2_PROXY")/.stamp")" "$(sha256sum </etc/ssl/certs/ca-certificates.crt)")" oauth2_proxy_root \
  '{"Entrypoint": ["/bin/oauth2-proxy"], "User": "65532:65532"}'
mv "$OUT/selected.list.partial" "$OUT/selected.list"
