#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl, the node's kubelet, kube-scheduler and
# kube-proxy (e2e/node), and etcd from source through the Go module proxy, into
# ${XDG_CACHE_HOME:-$HOME/.cache}/cdk8s-mlflow/{k8s,etcd}-<version>/bin/.
# Nothing is built when the binaries for the pinned versions (cluster/versions.sh) are already there.
# No Kubernetes source enters the repository: a throwaway wrapper module in a temp dir pins the
# k8s.io/* staging modules with replace lines and `go build`s the command packages.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"

command -v go >/dev/null || { echo "build-k8s: go is not on PATH" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build_k8s() {
  local v="$K8S_VERSION" staging="v0.${K8S_VERSION#v1.}"
  local out="$K8S_BIN"
  local cmds=(kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy) c missing=""
  for c in "${cmds[@]}"; do [[ -x "$out/$c" ]] || missing+=" $c"; done
  if [[ -z "$missing" ]]; then
    echo "build-k8s: Kubernetes $v cached in $out"
    return
  fi
  echo "build-k8s: building Kubernetes $v (${cmds[*]}); the first build takes several minutes"
  local start=$SECONDS mod="$work/k8s"
  mkdir -p "$mod"
  # The staging modules k8s.io/kubernetes replaces with ./staging/src/... are read from its own go.mod.
  local gomod
  gomod="$(cd "$work" && GO111MODULE=on go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')"
  [[ -f "$gomod" ]] || { echo "build-k8s: cannot download k8s.io/kubernetes@$v" >&2; exit 1; }
  {
    echo "module cdk8s-mlflow.local/k8sbuild"
    echo
    grep -E '^go [0-9.]+$' "$gomod"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*$#\t\1 => \1 '"$staging"'#p' "$gomod"
    echo ")"
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  (cd "$mod" && go mod tidy)
  local pkg="k8s.io/component-base/version" cpkg="k8s.io/client-go/pkg/version" minor major
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for p in "$pkg" "$cpkg"; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  mkdir -p "$mod/bin"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o bin/ "${cmds[@]/#/k8s.io/kubernetes/cmd/}")
  # Install all at once: a half-finished install must not look cached.
  mkdir -p "$(dirname "$out")"
  rm -rf "$out.partial" && mv "$mod/bin" "$out.partial" && rm -rf "$out" && mv "$out.partial" "$out"
  echo "build-k8s: built Kubernetes $v in $((SECONDS - start)) s -> $out"
}

build_etcd() {
  local v="$ETCD_VERSION" out="$ETCD_BIN"
  if [[ -x "$out/etcd" ]]; then
    echo "build-k8s: etcd $v cached in $out"
    return
  fi
  echo "build-k8s: building etcd $v"
  local start=$SECONDS mod="$work/etcd"
  mkdir -p "$mod"
  cat >"$mod/go.mod" <<GOMOD
module cdk8s-mlflow.local/etcdbuild

go 1.26

require go.etcd.io/etcd/server/v3 $v
GOMOD
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$mod" && go mod tidy)
  mkdir -p "$mod/bin"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/etcd go.etcd.io/etcd/server/v3)
  mkdir -p "$out"
  mv "$mod/bin/etcd" "$out/etcd.partial" && mv "$out/etcd.partial" "$out/etcd"
  echo "build-k8s: built etcd $v in $((SECONDS - start)) s -> $out"
}

build_etcd
build_k8s
echo "build-k8s: $("$K8S_BIN/kube-apiserver" --version), kubectl $("$K8S_BIN/kubectl" version --client | sed -n 's/^Client Version: //p'), etcd $("$ETCD_BIN/etcd" --version | sed -n 's/^etcd Version: //p')"
