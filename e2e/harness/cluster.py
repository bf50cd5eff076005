"""A one-node stand-in for a Kubernetes cluster that runs the manifests' containers as host processes.

Each pod gets its own network namespace joined to a bridge (so every pod has its own address and
programs that bind 0.0.0.0 do not clash), its own /etc/hosts that maps Service DNS names to pod
addresses, and its own mount namespace with its volumes bind-mounted at their mountPaths. A NodePort
Service is a TCP forwarder on the node address(es) to the ready pods' target port, like kube-proxy.
Every process, namespace, interface and mount point the cluster creates is removed by close().
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import kube
from .kube import Image, Manifests, PodContext, ProcessSpec

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "podlaunch.py")


class PodFailed(Exception):
    def __init__(self, pod: "Pod", container: str, message: str):
        super().__init__(f"pod {pod.name} container {container}: {message}\n--- log of {container} (tail) ---\n{pod.log_tail(container)}")
        self.pod = pod
        self.container = container


# --- images: where each image's programs are on this host ------------------------------------------

def default_images(run_dir: str) -> Dict[str, Image]:
    """Images of the manifests -> programs installed by e2e/setup.sh (paths from its --print-env)."""
    pg_bin = os.environ["E2E_PG_BIN"]
    venv = os.environ["E2E_VENV"]
    # Not under the run directory: that is in /tmp, which the pods cover with their own /tmp volumes.
    image_bin = os.path.join(os.environ["E2E_CACHE"], "image-bin")
    pg_dir = os.path.join(image_bin, "postgres")
    minio_dir = os.path.join(image_bin, "minio")
    mc_dir = os.path.join(image_bin, "mc")
    for d in (pg_dir, minio_dir, mc_dir):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
    for name in os.listdir(pg_bin):
        _symlink(os.path.join(pg_bin, name), os.path.join(pg_dir, name))
    # A copy, not a link: the checkout may be under a path a pod's volume covers (/tmp).
    entrypoint = os.path.join(pg_dir, "docker-entrypoint.sh")
    if os.path.lexists(entrypoint):
        os.remove(entrypoint)
    shutil.copyfile(os.path.join(HERE, "postgres-entrypoint.sh"), entrypoint)
    os.chmod(entrypoint, 0o755)
    _symlink(os.environ["E2E_MINIO"], os.path.join(minio_dir, "minio"))
    _symlink(os.environ["E2E_MC"], os.path.join(mc_dir, "mc"))
    _symlink(os.environ["E2E_MC"], os.path.join(minio_dir, "mc"))  # the server image ships mc too
    base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    postgres_uid = pwd.getpwnam("postgres").pw_uid
    # The image runs postgres as uid 999 (its "postgres" user); initdb needs a passwd entry for its
    # uid, so uid 999 becomes this host's postgres user. Groups (fsGroup 999) are kept as written.
    locale = "en_US.utf8" if _has_locale("en_US.utf8") else "C.UTF-8"
    return {
        "docker.io/library/postgres": Image(
            entrypoint=["docker-entrypoint.sh"], cmd=["postgres"], path=[pg_dir],
            env={"PATH": f"{base_path}:{pg_dir}", "PGDATA": "/var/lib/postgresql/data", "LANG": locale},
            user=999, stop_signal="SIGINT", uid_map={999: postgres_uid}, home={999: "/var/lib/postgresql"}),
        "quay.io/minio/minio": Image(
            entrypoint=["minio"], cmd=["server", "/data"], path=[minio_dir],
            env={"PATH": f"{minio_dir}:{base_path}", "MINIO_ACCESS_KEY_FILE": "access_key",
                 "MINIO_SECRET_KEY_FILE": "secret_key", "MINIO_ROOT_USER_FILE": "access_key",
                 "MINIO_ROOT_PASSWORD_FILE": "secret_key", "MINIO_KMS_SECRET_KEY_FILE": "kms_master_key",
                 "MINIO_UPDATE_MINISIGN_PUBKEY": "RWTx5Zr1tiHQLwG9keckT0c45M3AGeHD6IvimQHpyRywVWGbP1aVSGav",
                 "MINIO_CONFIG_ENV_FILE": "config.env", "MC_CONFIG_DIR": "/tmp/.mc"}),
        "quay.io/minio/mc": Image(
            entrypoint=["mc"], cmd=[], path=[mc_dir], env={"PATH": f"{mc_dir}:{base_path}"}),
        "ghcr.io/mlflow/mlflow": Image(
            entrypoint=[], cmd=[], path=[os.path.join(venv, "bin")],
            env={"PATH": f"{os.path.join(venv, 'bin')}:{base_path}", "LANG": "C.UTF-8"}),
        # The community image some users pick: same programs, uid 1001.
        "docker.io/burakince/mlflow": Image(
            entrypoint=[], cmd=[], path=[os.path.join(venv, "bin")], user=1001,
            env={"PATH": f"{os.path.join(venv, 'bin')}:{base_path}"}),
        # The single sign-on sidecar (built by e2e/setup-sso.sh): distroless, /bin/oauth2-proxy as uid 65532.
        **({"quay.io/oauth2-proxy/oauth2-proxy": Image(
            entrypoint=["/bin/oauth2-proxy"], cmd=[], path=[], user=65532, home={65532: "/home/nonroot"},
            env={"PATH": base_path, "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
            programs={"/bin/oauth2-proxy": os.environ["E2E_OAUTH2_PROXY"]})} if os.environ.get("E2E_OAUTH2_PROXY") else {}),
    }


def _symlink(src: str, dst: str) -> None:
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(src, dst)


def _has_locale(name: str) -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    return name in out or name.replace("utf8", "UTF-8") in out


def hidden_parents(paths: Sequence[str], uid: int) -> Tuple[List[str], List[str]]:
    """Which of `paths` a non-root uid cannot reach, and the 0700-style directories that hide them."""
    if uid == 0:
        return [], []
    expose, over = [], set()
    for path in paths:
        parts = os.path.abspath(path).split("/")
        for i in range(2, len(parts)):
            parent = "/".join(parts[:i])
            st = os.stat(parent)
            if not (st.st_mode & 0o001):
                expose.append(path)
                over.add(parent)
                break
    return expose, sorted(over)


# --- network -------------------------------------------------------------------------------------------

def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


class Network:
    """A bridge on the host (the node) and one network namespace per pod, on a private /24."""

    def __init__(self, tag: str, subnet: str):
        self.tag = tag
        self.prefix = subnet.rsplit(".", 1)[0]            # e.g. 10.213.5
        self.node_ip = f"{self.prefix}.1"
        self.bridge = f"{tag}br"
        self.namespaces: Dict[str, str] = {}
        self._next = itertools.count(10)

    def up(self) -> None:
        self.down_leftovers()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.node_ip}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def add_pod(self, key: str) -> Tuple[str, str]:
        """A namespace with eth0 on the bridge; returns (netns path, pod IP)."""
        n = next(self._next)
        if n > 250:
            raise RuntimeError("out of pod addresses")
        ns = f"{self.tag}-{n}"
        ip = f"{self.prefix}.{n}"
        host_if, pod_if = f"{self.tag}h{n}", f"{self.tag}p{n}"
        sh("ip", "netns", "add", ns)
        self.namespaces[key] = ns
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", pod_if)
        sh("ip", "link", "set", pod_if, "netns", ns)
        sh("ip", "link", "set", host_if, "master", self.bridge, "up")
        sh("ip", "-n", ns, "link", "set", pod_if, "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", self.node_ip)
        return f"/run/netns/{ns}", ip

    def down(self) -> None:
        for ns in self.namespaces.values():
            sh("ip", "netns", "del", ns, check=False)   # takes its end of the veth pair with it
        self.namespaces.clear()
        sh("ip", "link", "del", self.bridge, check=False)

    def down_leftovers(self) -> None:
        """Removes what a killed earlier run with the same tag left behind."""
        for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(self.tag + "-"):
                for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                sh("ip", "netns", "del", name, check=False)
        if sh("ip", "link", "show", self.bridge, check=False).returncode == 0:
            sh("ip", "link", "del", self.bridge, check=False)


# --- NodePort -----------------------------------------------------------------------------------------

class NodePortProxy:
    """Forwards node-address:nodePort to the target port of the ready pods, round robin (kube-proxy)."""

    def __init__(self, listen: Sequence[Tuple[str, int]], backends, target_port: int):
        self.backends = backends                 # callable -> list of pod IPs that are ready
        self.target_port = target_port
        self._rr = itertools.count()
        self._stop = threading.Event()
        self._socks = []
        for addr in listen:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
            s.listen(128)
            s.settimeout(0.5)
            self._socks.append(s)
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        ips = self.backends()
        if not ips:
            client.close()
            return
        ip = ips[next(self._rr) % len(ips)]
        try:
            upstream = socket.create_connection((ip, self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(262144)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        t.start()
        pump(client, upstream)
        t.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        self._stop.set()
        for s in self._socks:
            s.close()


# --- pods -----------------------------------------------------------------------------------------------

class Container:
    def __init__(self, spec: ProcessSpec, spec_file: str, log_file: str):
        self.spec = spec
        self.spec_file = spec_file
        self.log_file = log_file
        self.proc: Optional[subprocess.Popen] = None
        self.started_at = 0.0

    @property
    def name(self) -> str:
        return self.spec.container


class Pod:
    def __init__(self, cluster: "Cluster", workload: Mapping[str, Any], name: str, ordinal: Optional[int]):
        self.cluster = cluster
        self.workload = workload
        self.name = name
        self.ordinal = ordinal
        template = kube.pod_template(workload)
        self.spec: Dict[str, Any] = template["spec"]
        self.labels: Dict[str, str] = dict((template.get("metadata") or {}).get("labels") or {})
        self.namespace = cluster.manifests.ns(workload)
        self.dir = os.path.join(cluster.run_dir, "pods", name)
        self.netns, self.ip = cluster.network.add_pod(name)
        self.containers: Dict[str, Container] = {}
        self.running = False
        self.ready = False
        self.phase = "Pending"
        os.makedirs(self.dir, exist_ok=True)

    # logs ------------------------------------------------------------------------------------------
    def log(self, container: str) -> str:
        c = self.containers.get(container)
        if not c or not os.path.exists(c.log_file):
            return ""
        with open(c.log_file, errors="replace") as handle:
            return handle.read()

    def log_tail(self, container: str, lines: int = 40) -> str:
        return "\n".join(self.log(container).splitlines()[-lines:])

    # start -----------------------------------------------------------------------------------------
    def _hostname(self) -> Tuple[str, str]:
        hostname = self.spec.get("hostname") or self.name
        subdomain = self.spec.get("subdomain")
        if self.workload["kind"] == "StatefulSet":
            subdomain = self.workload["spec"].get("serviceName")
        fqdn = f"{hostname}.{subdomain}.{self.namespace}.svc.{self.cluster.cluster_domain}" if subdomain else hostname
        return hostname, fqdn

    def _write_hosts(self) -> str:
        hostname, fqdn = self._hostname()
        lines = ["# Kubernetes-managed hosts file (e2e harness).", "127.0.0.1\tlocalhost",
                 "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "fe00::1\tip6-allnodes",
                 "fe00::2\tip6-allrouters", f"{self.ip}\t{fqdn}\t{hostname}" if fqdn != hostname else f"{self.ip}\t{hostname}"]
        lines += self.cluster.service_host_lines()
        path = os.path.join(self.dir, "hosts")
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(path, 0o644)
        return path

    def _volumes(self) -> Dict[str, str]:
        pod_sc = self.spec.get("securityContext") or {}
        fs_group = pod_sc.get("fsGroup")
        dirs: Dict[str, str] = {}
        for vol in self.spec.get("volumes") or []:
            name = vol["name"]
            path = os.path.join(self.dir, "volumes", name)
            if "emptyDir" in vol:
                _fresh_dir(path, 0o777)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
                    os.chmod(path, 0o2777)
            elif "secret" in vol or "configMap" in vol:
                is_secret = "secret" in vol
                src = vol["secret" if is_secret else "configMap"]
                ref = src.get("secretName" if is_secret else "name")
                try:
                    data = self.cluster.manifests.secret_data(ref, self.namespace) if is_secret else self.cluster.manifests.configmap_data(ref, self.namespace)
                except kube.ManifestError:
                    if src.get("optional"):
                        data = {}
                    else:
                        raise
                mode = src.get("defaultMode", 0o644)
                _fresh_dir(path, 0o755)
                items = src.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] not in data:
                        raise kube.ManifestError(f"volume {name}: key {item['key']} not in {ref}")
                    file = os.path.join(path, item["path"])
                    os.makedirs(os.path.dirname(file), exist_ok=True)
                    with open(file, "wb") as handle:
                        handle.write(data[item["key"]])
                    os.chmod(file, item.get("mode", mode))
                    if fs_group is not None:
                        os.chown(file, 0, fs_group)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
            elif "persistentVolumeClaim" in vol:
                path = self.cluster.claim_dir(vol["persistentVolumeClaim"]["claimName"], fs_group, pod_sc.get("fsGroupChangePolicy"))
            elif "hostPath" in vol:
                path = vol["hostPath"]["path"]
            else:
                raise kube.ManifestError(f"volume {name}: unsupported type {sorted(vol)}")
            dirs[name] = path
        if self.workload["kind"] == "StatefulSet":
            sts = self.workload["metadata"]["name"]
            for tmpl in self.workload["spec"].get("volumeClaimTemplates") or []:
                claim = f"{tmpl['metadata']['name']}-{sts}-{self.ordinal}"
                dirs[tmpl["metadata"]["name"]] = self.cluster.claim_dir(claim, fs_group, pod_sc.get("fsGroupChangePolicy"))
        return dirs

    def _context(self) -> PodContext:
        uid = hashlib.sha1(self.name.encode()).hexdigest()
        return PodContext(name=self.name, namespace=self.namespace, uid=f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
                          pod_ip=self.ip, host_ip=self.cluster.network.node_ip, labels=self.labels,
                          service_account=self.spec.get("serviceAccountName", "default"))

    def prepare(self) -> None:
        hosts = self._write_hosts()
        volumes = self._volumes()
        ctx = self._context()
        svc_env = self.cluster.service_env(self.namespace)
        for init, key in ((True, "initContainers"), (False, "containers")):
            for c in self.spec.get(key) or []:
                image = self.cluster.image_for(c["image"])
                spec = kube.build_process(c, self.spec, ctx, self.cluster.manifests, image, svc_env, volumes, init)
                self.cluster.ensure_mountpoints([m.container_path for m in spec.mounts])
                expose, over = hidden_parents(self.cluster.expose_paths, spec.uid)
                launch = {
                    "netns": self.netns, "hosts": hosts, "stash": os.path.join(self.dir, "stash", spec.container),
                    "expose": expose, "expose_over": over, "keep": self.cluster.expose_paths,
                    "mounts": [{"src": m.host_path, "dst": m.container_path, "ro": m.read_only} for m in spec.mounts],
                    "read_only_root": spec.read_only_root, "cwd": spec.cwd, "uid": spec.uid, "gid": spec.gid,
                    "groups": spec.groups, "no_new_privs": spec.no_new_privs, "argv": spec.argv, "env": spec.env,
                }
                spec_file = os.path.join(self.dir, f"{spec.container}.json")
                with open(spec_file, "w") as handle:
                    json.dump(launch, handle)
                os.chmod(spec_file, 0o600)
                self.containers[spec.container] = Container(spec, spec_file, os.path.join(self.dir, f"{spec.container}.log"))

    def _popen(self, container: Container, argv: Optional[List[str]] = None, **kwargs) -> subprocess.Popen:
        spec_file = container.spec_file
        if argv is not None:  # exec in the container (probes): same namespaces, identity and env
            with open(spec_file) as handle:
                launch = json.load(handle)
            launch["argv"] = argv
            spec_file = os.path.join(self.dir, f"{container.name}.exec.{threading.get_ident()}.json")
            with open(spec_file, "w") as handle:
                json.dump(launch, handle)
            os.chmod(spec_file, 0o600)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen([sys.executable, LAUNCHER, spec_file], start_new_session=True, cwd="/", **kwargs)

    def _start(self, container: Container) -> None:
        log = open(container.log_file, "ab")
        container.proc = self._popen(container, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        container.started_at = time.monotonic()

    def run_init_containers(self, timeout: float = 600) -> None:
        self.phase = "Init"
        for c in self.containers.values():
            if not c.spec.init:
                continue
            self._start(c)
            try:
                code = c.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill(c, 0)
                raise PodFailed(self, c.name, f"init container still running after {timeout}s")
            if code != 0:
                self.phase = "Failed"
                raise PodFailed(self, c.name, f"init container exited with code {code} after {time.monotonic() - c.started_at:.1f}s")

    def start_containers(self) -> None:
        for c in self.containers.values():
            if not c.spec.init:
                self._start(c)
        self.running = True
        self.phase = "Running"

    def exec(self, container: str, argv: List[str], timeout: float = 30, input: Optional[bytes] = None) -> subprocess.CompletedProcess:
        """`kubectl exec` (with `-i` when `input` is given: it becomes the program's stdin)."""
        stdin = {} if input is None else {"stdin": subprocess.PIPE}
        proc = self._popen(self.containers[container], argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **stdin)
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return subprocess.CompletedProcess(argv, -9, out, err)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    # probes ----------------------------------------------------------------------------------------
    def probe(self, container: Container, probe: Mapping[str, Any]) -> bool:
        timeout = probe.get("timeoutSeconds", 1)
        if "exec" in probe:
            # The kubelet expands exec probe commands against the container's env as written: a
            # `value` counts, a `valueFrom` is the empty string (ExpandContainerCommandOnlyStatic).
            static = {e["name"]: str(e.get("value", "")) for e in container.spec.raw.get("env") or []}
            argv = [kube.expand(word, static) for word in probe["exec"]["command"]]
            return self.exec(container.name, argv, timeout=timeout).returncode == 0
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = self._port(container, get["port"])
            url = f"{get.get('scheme', 'HTTP').lower()}://{get.get('host') or self.ip}:{port}{get.get('path', '/')}"
            request = urllib.request.Request(url, headers={h["name"]: h["value"] for h in get.get("httpHeaders") or []})
            try:
                with _NO_PROXY.open(request, timeout=timeout) as response:
                    return 200 <= response.status < 400
            except Exception:
                return False
        if "tcpSocket" in probe:
            try:
                socket.create_connection((self.ip, self._port(container, probe["tcpSocket"]["port"])), timeout=timeout).close()
                return True
            except OSError:
                return False
        raise kube.ManifestError(f"unsupported probe {sorted(probe)}")

    @staticmethod
    def _port(container: Container, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in container.spec.raw.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise kube.ManifestError(f"container {container.name}: probe names port {port!r}, which the container does not declare")

    def wait_ready(self, timeout: Optional[float] = None) -> float:
        """Startup probe, then readiness probe, for every container; returns the seconds it took."""
        start = time.monotonic()
        for c in self.containers.values():
            if c.spec.init:
                continue
            for kind in ("startupProbe", "readinessProbe"):
                probe = c.spec.raw.get(kind)
                if not probe:
                    continue
                budget = probe.get("initialDelaySeconds", 0) + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
                deadline = start + (timeout if timeout is not None else budget + 10)
                while True:
                    # Any container of the pod, not only this one: a sidecar that exits fails the pod's probes.
                    for other in self.containers.values():
                        if not other.spec.init and other.proc.poll() is not None:
                            raise PodFailed(self, other.name, f"exited with code {other.proc.returncode} before the pod was ready ({c.name}: {kind})")
                    if self.probe(c, probe):
                        break
                    if time.monotonic() > deadline:
                        raise PodFailed(self, c.name, f"{kind} did not pass within {deadline - start:.0f}s")
                    time.sleep(min(0.5, probe.get("periodSeconds", 10)))
        self.ready = True
        return time.monotonic() - start

    def wait_completed(self, timeout: float) -> int:
        """For Job pods, whose containers run side by side: 0 when every container exited 0, else the
        first non-zero exit code in container order."""
        deadline = time.monotonic() + timeout
        codes = []
        for c in self.containers.values():
            if c.spec.init:
                continue
            try:
                codes.append(c.proc.wait(timeout=max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                raise PodFailed(self, c.name, f"still running after {timeout}s")
        self.running = False
        code = next((code for code in codes if code != 0), 0)
        self.phase = "Succeeded" if code == 0 else "Failed"
        return code

    # stop ------------------------------------------------------------------------------------------
    def _kill(self, c: Container, grace: float) -> None:
        if not c.proc:
            return
        if c.proc.poll() is None:
            try:
                os.kill(c.proc.pid, getattr(signal, c.spec.stop_signal))
                c.proc.wait(timeout=grace)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(c.proc.pid, signal.SIGKILL)  # what is left of the container's processes
        except (ProcessLookupError, PermissionError):
            pass
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, grace: Optional[float] = None) -> None:
        grace = grace if grace is not None else min(float(self.spec.get("terminationGracePeriodSeconds", 30)), 60.0)
        self.ready = False
        self.running = False
        threads = [threading.Thread(target=self._kill, args=(c, grace)) for c in self.containers.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.phase = "Terminated"


def _fresh_dir(path: str, mode: int) -> None:
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    os.chmod(path, mode)


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- the cluster ------------------------------------------------------------------------------------------

class Cluster:
    def __init__(self, manifests: Manifests, run_dir: Optional[str] = None, tag: str = "mle2e",
                 subnet: str = "10.213.5.0/24", cluster_domain: str = "cluster.local",
                 images: Optional[Dict[str, Image]] = None, expose_paths: Sequence[str] = ()):
        self.manifests = manifests
        self.run_dir = run_dir or tempfile.mkdtemp(prefix="cdk8s-mlflow-e2e-")
        os.chmod(self.run_dir, 0o755)
        self.cluster_domain = cluster_domain
        self.network = Network(tag, subnet)
        self.images = images if images is not None else default_images(self.run_dir)
        self.expose_paths = list(expose_paths)
        self.pods: Dict[str, Pod] = {}
        self.proxies: List[NodePortProxy] = []
        self._created_mountpoints: List[str] = []
        self._claims: Dict[str, str] = {}
        self._lock = threading.Lock()
        self.network.up()

    # --- images, volumes, DNS ---
    def image_for(self, ref: str) -> Image:
        repo = kube.image_repository(ref)
        if repo not in self.images:
            raise kube.ManifestError(f"no local stand-in for image {ref}")
        return self.images[repo]

    def claim_dir(self, claim: str, fs_group: Optional[int], change_policy: Optional[str]) -> str:
        """A PersistentVolumeClaim: a fresh ext4-like volume (root-owned, with lost+found) that outlives pods."""
        with self._lock:
            path = self._claims.get(claim)
            if path is None:
                path = os.path.join(self.run_dir, "pvcs", claim)
                os.makedirs(path)
                os.chmod(path, 0o755)
                os.mkdir(os.path.join(path, "lost+found"), 0o700)
                self._claims[claim] = path
            if fs_group is not None:
                root = os.stat(path)
                if change_policy != "OnRootMismatch" or root.st_gid != fs_group or (root.st_mode & 0o2070) != 0o2070:
                    _set_volume_ownership(path, fs_group)
            return path

    def drop_claim(self, claim: str) -> None:
        path = self._claims.pop(claim, None)
        if path:
            shutil.rmtree(path, ignore_errors=True)

    def ensure_mountpoints(self, paths: Sequence[str]) -> None:
        # Under the lock: pods started together (start_all) may need the same new mount point.
        with self._lock:
            for path in sorted(paths, key=len):
                if any(path != other and path.startswith(other.rstrip("/") + "/") for other in paths):
                    continue  # created by the runtime inside another volume, in the pod's view only
                if not os.path.exists(path):
                    missing = path
                    while not os.path.exists(os.path.dirname(missing)):
                        missing = os.path.dirname(missing)
                    os.makedirs(path)
                    self._created_mountpoints.append(missing)

    def endpoints(self, service: Mapping[str, Any], ready_only: bool = False) -> List[Pod]:
        selector = (service.get("spec") or {}).get("selector") or {}
        ns = self.manifests.ns(service)
        return [p for p in self.pods.values() if p.namespace == ns and kube.selects(selector, p.labels) and (p.ready or not ready_only)]

    def service_host_lines(self) -> List[str]:
        lines = []
        for svc in self.manifests.of_kind("Service"):
            pods = self.endpoints(svc)
            if not pods:
                continue
            name, ns, domain = svc["metadata"]["name"], self.manifests.ns(svc), self.cluster_domain
            lines.append(f"{pods[0].ip}\t{name} {name}.{ns} {name}.{ns}.svc {name}.{ns}.svc.{domain}")
            if (svc.get("spec") or {}).get("clusterIP") == "None":
                for pod in pods:
                    lines.append(f"{pod.ip}\t{pod.name}.{name}.{ns}.svc.{domain} {pod.name}.{name}.{ns}.svc")
        return lines

    def service_env(self, namespace: str) -> Dict[str, str]:
        services = self.manifests.of_kind("Service", namespace)
        env = kube.service_env(services, lambda s: (self.endpoints(s) or [None])[0] and self.endpoints(s)[0].ip)
        env.update({"KUBERNETES_SERVICE_HOST": self.network.node_ip, "KUBERNETES_SERVICE_PORT": "443",
                    "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": f"tcp://{self.network.node_ip}:443",
                    "KUBERNETES_PORT_443_TCP": f"tcp://{self.network.node_ip}:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                    "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": self.network.node_ip})
        return env

    # --- pods of workloads ---
    def plan(self, workload: Mapping[str, Any], replicas: Optional[int] = None) -> List[Pod]:
        """Creates (not starts) the pods of a workload; names and addresses are stable across restarts."""
        kind, name = workload["kind"], workload["metadata"]["name"]
        count = replicas if replicas is not None else (workload["spec"].get("replicas", 1) if kind in ("StatefulSet", "Deployment") else 1)
        pods = []
        template_hash = hashlib.sha1(json.dumps(kube.pod_template(workload), sort_keys=True).encode()).hexdigest()[:9]
        for i in range(count):
            if kind == "StatefulSet":
                pod_name = f"{name}-{i}"
            elif kind == "Deployment":
                pod_name = f"{name}-{template_hash}-{hashlib.sha1(f'{name}{i}'.encode()).hexdigest()[:5]}"
            else:
                pod_name = f"{name}-{hashlib.sha1(name.encode()).hexdigest()[:5]}"
            if pod_name not in self.pods:
                self.pods[pod_name] = Pod(self, workload, pod_name, i if kind == "StatefulSet" else None)
            pods.append(self.pods[pod_name])
        return pods

    def start_pod(self, pod: Pod, wait_ready: bool = True, init_timeout: float = 600) -> Pod:
        pod.containers.clear()
        pod.prepare()
        pod.run_init_containers(timeout=init_timeout)
        pod.start_containers()
        if wait_ready:
            pod.wait_ready()
        return pod

    def start_all(self, pods: Sequence[Pod], wait_ready: bool = True) -> List[Optional[BaseException]]:
        """Starts pods at the same time (threads); returns each pod's error or None."""
        errors: List[Optional[BaseException]] = [None] * len(pods)

        def run(i: int, pod: Pod) -> None:
            try:
                self.start_pod(pod, wait_ready=wait_ready)
            except BaseException as error:  # noqa: BLE001 - reported to the caller
                errors[i] = error

        threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(pods)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def run_job(self, job: Mapping[str, Any], timeout: float = 300) -> Tuple[int, Pod]:
        """Runs a Job's pod to completion (as a fresh pod each time: a re-run of the same command)."""
        pod = self.plan(job)[0]
        pod.stop(grace=0)
        pod.containers.clear()
        pod.prepare()
        pod.run_init_containers(timeout=timeout)
        pod.start_containers()
        return pod.wait_completed(timeout), pod

    def node_port(self, service: Mapping[str, Any], listen_ips: Sequence[str]) -> List[Tuple[str, int]]:
        """Starts kube-proxy's job for a NodePort Service; returns the node addresses it listens on."""
        spec = service["spec"]
        port = spec["ports"][0]
        node_port = int(port["nodePort"])
        target = port.get("targetPort", port["port"])
        if not str(target).isdigit():
            pods = self.endpoints(service)
            target = Pod._port(next(c for c in pods[0].containers.values() if not c.spec.init), target)
        addresses = [(ip, node_port) for ip in listen_ips]
        self.proxies.append(NodePortProxy(addresses, lambda: [p.ip for p in self.endpoints(service, ready_only=True)], int(target)))
        return addresses

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        threads = [threading.Thread(target=p.stop) for p in self.pods.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.network.down()
        for path in sorted(self._created_mountpoints, key=len, reverse=True):
            shutil.rmtree(path, ignore_errors=True) if _only_dirs(path) else None
        # Volumes and logs go too (E2E_KEEP=1 keeps them for a look).
        if os.environ.get("E2E_KEEP") != "1":
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _only_dirs(path: str) -> bool:
    for _, _, files in os.walk(path):
        if files:
            return False
    return True


def _set_volume_ownership(path: str, gid: int) -> None:
    """The kubelet's fsGroup rule: group gid, group read/write (and search on directories), setgid directories."""
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, f) for f in files]:
            st = os.lstat(name)
            os.lchown(name, -1, gid)
            if os.path.islink(name):
                continue
            mode = st.st_mode & 0o7777 | 0o060
            if os.path.isdir(name):
                mode |= 0o010 | 0o2000
            os.chmod(name, mode)
