#!/usr/bin/env bash
# One real Kubernetes node on this machine, for the e2e suite:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler (cluster/build-k8s.sh),
#   containerd + runc + the CNI bridge plugins (Debian), kubelet, kube-proxy (iptables mode),
#   CoreDNS (cluster DNS on the node address) and a pool of local PersistentVolumes.
#   No NetworkPolicy engine runs here (e2e/README.md says why).
#
#   node.sh start   cleans a killed run's leftovers, starts everything, waits for the node to be Ready
#   node.sh stop    ends every process it started (by pid) and undoes every host change
#
# The run's state lives in the fixed directory $NODE_RUN so that a killed run can be cleaned up;
# containerd's image store stays in the cache between runs. Needs root.
#
# The same control plane alone, for the API-server suite (cluster/harness.ts); no root, no host change:
#
#   node.sh control-plane DIR ADDRESS ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT
#       etcd, kube-apiserver and kube-controller-manager on ADDRESS (127.0.0.1) with their state,
#       certificates, logs (DIR/logs), the admin kubeconfig (DIR/admin.kubeconfig) and the pids
#       (DIR/pids, and $CLUSTER_PIDS_FILE if set) in DIR; returns once the controller manager works.
#       A process that ends while it waits is reported as "<name> exited early".
#   node.sh control-plane-stop DIR    ends the processes DIR/pids records (etcd last)
set -euo pipefail
NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$NODE_DIR/../.." && pwd)"
# shellcheck source=../../cluster/versions.sh
source "$REPO/cluster/versions.sh"
# shellcheck source=versions.sh
source "$NODE_DIR/versions.sh"

NODE_RUN="${NODE_RUN:-/tmp/cdk8s-mlflow-node}"
NODE_NAME=cdk8s-mlflow-node
BRIDGE=mlfnode0
NODE_IP=10.213.64.1
POD_CIDR=10.213.64.0/24
SERVICE_CIDR=10.213.96.0/24
# Where the control plane listens (`control-plane` sets its own, and the Service range it had before).
CP_ADDRESS=$NODE_IP ETCD_CLIENT_PORT=2379 ETCD_PEER_PORT=2380 APISERVER_PORT=6443
WHOLE_NODE=1
CGROUP_ROOT=cdk8s-mlflow-node
CTR_ROOT="$NODE_CACHE/containerd"
PV_COUNT="${NODE_PV_COUNT:-48}"
# Host settings the node's programs change (kubelet: vm/kernel; kube-proxy: route_localnet, conntrack);
# their values are saved before the start and put back at the stop.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait
  net.netfilter.nf_conntrack_tcp_be_liberal net.netfilter.nf_conntrack_udp_timeout
  net.netfilter.nf_conntrack_udp_timeout_stream)

log() { echo "node: $*" >&2; }
KUBECTL="$K8S_BIN/kubectl"
kc() { "$KUBECTL" --kubeconfig "$NODE_RUN/admin.kubeconfig" "$@"; }

# --- stop -------------------------------------------------------------------------------------

# kill_recorded NAME...: ends the processes start recorded under these names (pid + executable).
kill_recorded() {
  [ -f "$NODE_RUN/pids" ] || return 0
  local name pid exe pids=()
  for name in "$@"; do
    while read -r n pid exe; do
      [ "$n" = "$name" ] || continue
      [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || continue
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done <"$NODE_RUN/pids"
  done
  local i
  for i in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

cgroup_dirs() { find /sys/fs/cgroup/*/"$CGROUP_ROOT" -depth -type d 2>/dev/null || true; }

stop() {
  local had=0
  [ -d "$NODE_RUN" ] && had=1
  kill_recorded coredns kube-proxy kubelet
  # Every container's processes are in the kubelet's cgroups; the shims serve our containerd's socket.
  local dir pid
  for dir in $(cgroup_dirs); do
    [ -f "$dir/cgroup.procs" ] || continue
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$dir/cgroup.procs"
  done
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/bin/containerd-shim-runc-v2 ] || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-address $NODE_RUN/containerd.sock " && kill -KILL "$pid" 2>/dev/null || true
  done
  kill_recorded containerd
  stop_control_plane
  if [ -x "$K8S_BIN/kube-proxy" ] && iptables-save 2>/dev/null | grep -q KUBE-; then
    "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  # The kubelet's and the CNI plugins' iptables chains.
  local save
  for save in iptables ip6tables; do
    if "$save-save" 2>/dev/null | grep -qE 'KUBE-|CNI-'; then
      "$save-save" | grep -vE '(^:|-j |-A |-N )(KUBE-|CNI-)|-j (KUBE-|CNI-)' | "$save-restore" || true
    fi
  done
  # Mounts (pod volumes, container root filesystems, network namespaces), deepest first.
  local m
  for m in $(awk '{print $2}' /proc/mounts | grep -E "^($NODE_RUN|$CTR_ROOT)/" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  rm -f /var/lib/cni/results/cdk8s-mlflow-node-*
  for dir in $(cgroup_dirs); do rmdir "$dir" 2>/dev/null || true; done
  if [ -f "$NODE_RUN/sysctl.saved" ]; then
    local kv
    while read -r kv; do sysctl -q -w "$kv" >/dev/null 2>&1 || true; done <"$NODE_RUN/sysctl.saved"
  fi
  if [ -d "$NODE_RUN" ]; then
    if [ -n "${NODE_KEEP_LOGS:-}" ] && [ -d "$NODE_RUN/logs" ]; then
      rm -rf "$NODE_KEEP_LOGS" && cp -r "$NODE_RUN/logs" "$NODE_KEEP_LOGS"
    fi
    rm -rf "$NODE_RUN"
  fi
  [ $had = 1 ] && log "stopped; host state restored"
  return 0
}

stop_control_plane() {
  kill_recorded kube-scheduler kube-controller-manager kube-apiserver
  kill_recorded etcd
}

# --- start ------------------------------------------------------------------------------------

# run NAME EXE ARGS...: starts a program in the background, its output in logs/NAME.log, its pid recorded.
run() {
  local name=$1 exe=$2; shift 2
  setsid "$exe" "$@" >"$NODE_RUN/logs/$name.log" 2>&1 </dev/null &
  echo "$name $! $exe" >>"$NODE_RUN/pids"
  if [ -n "${CLUSTER_PIDS_FILE:-}" ]; then echo "$!" >>"$CLUSTER_PIDS_FILE"; fi
}

# exited: the name of a recorded process that no longer runs its program, if any.
exited() {
  local n pid exe
  while read -r n pid exe; do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || { echo "$n"; return 0; }
  done <"$NODE_RUN/pids"
}

wait_for() { # WHAT SECONDS COMMAND...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) gone
  until "$@" >/dev/null 2>&1; do
    gone="$(exited)"
    if [ -n "$gone" ]; then log "$gone exited early (waiting for $what); logs in $NODE_RUN/logs"; return 1; fi
    if [ $SECONDS -ge $deadline ]; then log "$what did not come up in ${secs}s; logs in $NODE_RUN/logs"; return 1; fi
    sleep 0.2
  done
}

# The first address of a range: 10.96.0.0/16 -> 10.96.0.1
first_ip() { local a b c d; IFS=./ read -r a b c d _ <<<"$1"; echo "$a.$b.$c.$((d + 1))"; }

certs() {
  local d="$NODE_RUN/pki"
  mkdir -p "$d" && cd "$d"
  openssl genrsa -out ca.key 2048 2>/dev/null
  openssl req -x509 -new -key ca.key -subj /CN=cdk8s-mlflow-node-ca -days 2 -out ca.crt
  local ips="IP:127.0.0.1,IP:$(first_ip "$SERVICE_CIDR")"
  [ "$CP_ADDRESS" = 127.0.0.1 ] || ips="IP:$CP_ADDRESS,$ips"
  printf 'subjectAltName=%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
    "$ips" >server.ext
  echo 'extendedKeyUsage=clientAuth' >client.ext
  local name subj ext
  while read -r name subj ext; do
    openssl genrsa -out "$name.key" 2048 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$ext" -out "$name.crt" 2>/dev/null
  done <<EOF
server /CN=kube-apiserver server.ext
admin /O=system:masters/CN=admin client.ext
EOF
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cd - >/dev/null
  cat >"$NODE_RUN/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: node
  cluster:
    server: https://$CP_ADDRESS:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$d/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$d/admin.crt")
    client-key-data: $(base64 -w0 <"$d/admin.key")
contexts:
- name: node
  context: { cluster: node, user: admin }
current-context: node
EOF
  chmod 600 "$NODE_RUN/admin.kubeconfig"
}

host_setup() {
  : >"$NODE_RUN/sysctl.saved"
  local k v
  for k in "${SYSCTLS[@]}"; do
    v="$(sysctl -n "$k" 2>/dev/null)" && echo "$k=$v" >>"$NODE_RUN/sysctl.saved"
  done
  sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 >/dev/null
  # The node's address is the pods' bridge (this kernel has no dummy interfaces).
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$CGROUP_ROOT"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

control_plane() {
  local p="$NODE_RUN/pki" a=$CP_ADDRESS node_flags=() api_flags=()
  # A loopback address cannot be the kubernetes Service's endpoint: no endpoint reconciler there.
  [ "$a" != 127.0.0.1 ] || api_flags+=(--endpoint-reconciler-type=none)
  [ $WHOLE_NODE = 0 ] || node_flags+=(--cluster-cidr="$POD_CIDR")
  run etcd "$ETCD_BIN/etcd" --name=node --data-dir="$NODE_RUN/etcd" \
    --listen-client-urls="http://$a:$ETCD_CLIENT_PORT" --advertise-client-urls="http://$a:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://$a:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://$a:$ETCD_PEER_PORT" \
    --initial-cluster="node=http://$a:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
  run kube-apiserver "$K8S_BIN/kube-apiserver" --etcd-servers="http://$a:$ETCD_CLIENT_PORT" \
    --bind-address="$a" --advertise-address="$a" --secure-port="$APISERVER_PORT" "${api_flags[@]}" \
    --tls-cert-file="$p/server.crt" --tls-private-key-file="$p/server.key" --client-ca-file="$p/ca.crt" \
    --kubelet-client-certificate="$p/admin.crt" --kubelet-client-key="$p/admin.key" \
    --authorization-mode=Node,RBAC --allow-privileged=true --enable-admission-plugins=PodSecurity \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range=30000-32767 \
    --kubelet-preferred-address-types=InternalIP --v=1
  wait_for kube-apiserver 90 kc get --raw /readyz
  run kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig="$NODE_RUN/admin.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --controllers='*' \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
    --use-service-account-credentials=true "${node_flags[@]}" --service-cluster-ip-range="$SERVICE_CIDR" \
    --concurrent-gc-syncs=5 --v=1
  if [ $WHOLE_NODE = 1 ]; then
    run kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$NODE_RUN/admin.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --v=1
  fi
  # The serviceaccount controller makes `default` in every namespace: the controller manager works.
  wait_for kube-controller-manager 90 kc get serviceaccount default -n default -o name
}

runtime() {
  mkdir -p "$NODE_RUN/cni/net.d" "$CTR_ROOT"
  cat >"$NODE_RUN/cni/net.d/10-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "cdk8s-mlflow-node",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$NODE_RUN/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$NODE_RUN/containerd.toml" <<EOF
version = 2
root = "$CTR_ROOT"
state = "$NODE_RUN/containerd"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$NODE_RUN/containerd.sock"
[ttrpc]
  address = "$NODE_RUN/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/cdk8s-mlflow/pause:1"
  # This machine lacks CAP_SYS_RESOURCE: a negative oom_score_adj for the sandbox would fail every pod.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_RUN/cni/net.d"
EOF
  run containerd "$(command -v containerd)" --config "$NODE_RUN/containerd.toml"
  wait_for containerd 30 ctr --address "$NODE_RUN/containerd.sock" version
  local ctr=(ctr --address "$NODE_RUN/containerd.sock" -n k8s.io)
  # A killed run's containers and sandboxes (their processes are gone).
  local c
  for c in $("${ctr[@]}" containers ls -q); do "${ctr[@]}" containers rm "$c" >/dev/null 2>&1 || true; done
  # The images images.sh selected last (build.sh runs it under the same lock), imported when new or changed.
  local tar name stamp
  [ -s "$NODE_CACHE/images/selected.list" ] || { log "no images: run e2e/node/build.sh first"; return 1; }
  for tar in $(cat "$NODE_CACHE/images/selected.list"); do
    name="$(basename "$tar" .tar)"; name="${name%-*}"
    stamp="$CTR_ROOT/imported-$name"
    [ "$(cat "$stamp" 2>/dev/null)" = "$(basename "$tar")" ] && continue
    log "importing $(basename "$tar")"
    "${ctr[@]}" images import --no-unpack=false "$tar" >/dev/null
    basename "$tar" >"$stamp"
  done
}

kubelet() {
  mkdir -p "$NODE_RUN/kubelet"
  : >"$NODE_RUN/resolv.conf"
  cat >"$NODE_RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$NODE_RUN/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $NODE_RUN/pki/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $NODE_RUN/resolv.conf
failSwapOn: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
podLogsDir: $NODE_RUN/pod-logs
EOF
  run kubelet "$K8S_BIN/kubelet" --config="$NODE_RUN/kubelet.yaml" --kubeconfig="$NODE_RUN/admin.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$NODE_RUN/kubelet" \
    --cert-dir="$NODE_RUN/kubelet/pki" --v=1
  wait_for "node $NODE_NAME Ready" 90 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  kc patch node "$NODE_NAME" --type=merge -p "{\"spec\":{\"podCIDR\":\"$POD_CIDR\",\"podCIDRs\":[\"$POD_CIDR\"]}}" >/dev/null
}

node_services() {
  cat >"$NODE_RUN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $NODE_RUN/admin.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
nodePortAddresses: ["$NODE_IP/32", "127.0.0.1/32"]
healthzBindAddress: ""
metricsBindAddress: 127.0.0.1:10249
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  run kube-proxy "$K8S_BIN/kube-proxy" --config="$NODE_RUN/kube-proxy.yaml" --v=1
  cat >"$NODE_RUN/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $NODE_RUN/admin.kubeconfig node
    }
}
EOF
  run coredns "$COREDNS_BIN/coredns" -conf "$NODE_RUN/Corefile"
  wait_for "cluster DNS" 30 getent_dns
}

getent_dns() { # CoreDNS answers for the kubernetes Service
  python3 - "$NODE_IP" <<'PY'
import socket, struct, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"".join(bytes([len(p)]) + p.encode() for p in "kubernetes.default.svc.cluster.local".split(".")) + b"\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(q, (sys.argv[1], 53)); r = s.recv(512)
sys.exit(0 if struct.unpack(">H", r[6:8])[0] >= 1 else 1)
PY
}

volumes() {
  # Local PersistentVolumes (the kubelet applies fsGroup to them, as to a cloud disk); a claim binds one
  # and keeps it until the claim is deleted (Retain: a released volume is not handed out again).
  mkdir -p "$NODE_RUN/volumes"
  local i
  {
    for i in $(seq -w 1 "$PV_COUNT"); do
      mkdir -p "$NODE_RUN/volumes/pv$i"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-pv$i, labels: {cdk8s-mlflow-node/pool: "true"}}
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  volumeMode: Filesystem
  local: {path: $NODE_RUN/volumes/pv$i}
  nodeAffinity:
    required:
      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]}]
EOF
    done
  } | kc apply -f - >/dev/null
}

start() {
  [ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
  for b in "$K8S_BIN/kubelet" "$COREDNS_BIN/coredns"; do
    [ -x "$b" ] || { log "$b is missing: run bash e2e/node/build.sh"; exit 1; }
  done
  for c in containerd containerd-shim-runc-v2 runc iptables ip6tables conntrack openssl /usr/lib/cni/bridge; do
    command -v "$c" >/dev/null || { log "$c is missing (Debian: containerd runc containernetworking-plugins iptables conntrack)"; exit 1; }
  done
  stop
  local t0=$SECONDS
  mkdir -p "$NODE_RUN/logs"
  : >"$NODE_RUN/pids"
  host_setup
  certs
  control_plane
  runtime
  kubelet
  node_services
  volumes
  log "node $NODE_NAME Ready in $((SECONDS - t0)) s (KUBECONFIG=$NODE_RUN/admin.kubeconfig)"
}

# The control plane alone, for the API-server suite: nothing on the host but its processes.
start_control_plane() {
  mkdir -p "$NODE_RUN/logs"
  : >"$NODE_RUN/pids"
  certs
  control_plane
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  control-plane)
    [ $# = 6 ] || { echo "usage: node.sh control-plane DIR ADDRESS ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT" >&2; exit 2; }
    NODE_RUN=$2 CP_ADDRESS=$3 ETCD_CLIENT_PORT=$4 ETCD_PEER_PORT=$5 APISERVER_PORT=$6 SERVICE_CIDR=10.96.0.0/16 WHOLE_NODE=0
    start_control_plane ;;
  control-plane-stop)
    [ $# = 2 ] || { echo "usage: node.sh control-plane-stop DIR" >&2; exit 2; }
    NODE_RUN=$2
    stop_control_plane ;;
  *) echo "usage: node.sh start|stop|control-plane DIR ADDRESS ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT|control-plane-stop DIR" >&2; exit 2 ;;
esac
