"""The MLflow stack on the real node (node.sh): `kubectl apply -f dist` as a user does, waits for the
rollout, and the checks a user runs (kubectl exec psql, mc, the NodePort). A stack lives in its
manifests' namespace (`default` unless the synth's `namespace` says otherwise); stacks in distinct
namespaces with distinct node ports run side by side. Its manifests come from e2e/matrix.py's synth."""
from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Mapping, Optional

import yaml

from matrix import secret_file, synth_scenario

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.dirname(HERE)
REPO = os.path.dirname(E2E)
NODE_IP = "10.213.64.1"
NODE_RUN = "/tmp/cdk8s-mlflow-node"  # node.sh's state directory (the kubelet's root is kubelet/ in it)
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COMPONENT = "app.kubernetes.io/component"


class RolloutFailed(AssertionError):
    """A workload did not become ready (or a Job did not complete) in time; the message says why."""


def kubectl(*args: str, input: Optional[bytes] = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([os.environ["NODE_KUBECTL"], *args], input=input, capture_output=True, timeout=timeout,
                            env=dict(os.environ, KUBECONFIG=os.environ["NODE_KUBECONFIG"]))
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.decode()}")
    return result


def kget(*args: str, namespace: Optional[str] = None) -> Any:
    return json.loads(kubectl("get", "-o", "json", *args, *(["-n", namespace] if namespace else [])).stdout)


def read_manifests(dist: str) -> List[Dict[str, Any]]:
    files = [os.path.join(dist, f) for f in sorted(os.listdir(dist))] if os.path.isdir(dist) else [dist]
    docs: List[Dict[str, Any]] = []
    for f in files:
        if f.endswith((".yaml", ".yml")):
            with open(f, encoding="utf-8") as handle:
                docs += [d for d in yaml.safe_load_all(handle) if d]
    return docs


class Pod:
    """A pod of the node, by name: its address, logs and `kubectl exec`."""

    def __init__(self, name: str, namespace: str = "default"):
        self.name, self.namespace = name, namespace

    def get(self) -> Dict[str, Any]:
        return kget("pod", self.name, "-n", self.namespace)

    @property
    def ip(self) -> str:
        return self.get()["status"]["podIP"]

    def log(self, container: str, previous: bool = False) -> str:
        args = ["logs", self.name, "-n", self.namespace, "-c", container] + (["--previous"] if previous else [])
        result = kubectl(*args, check=False)
        return result.stdout.decode(errors="replace") + (result.stderr.decode(errors="replace") if result.returncode else "")

    def exec(self, container: str, argv: List[str], input: Optional[bytes] = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return kubectl("exec", "-i" if input is not None else "-q", self.name, "-n", self.namespace, "-c", container, "--", *argv,
                       input=input, check=False, timeout=timeout)

    def delete(self) -> None:
        kubectl("delete", "pod", self.name, "-n", self.namespace, "--wait=true", timeout=180)

    def __repr__(self) -> str:
        return f"Pod({self.name})"


def wait_until(what: str, check, timeout: float, interval: float = 1.0, why=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RolloutFailed(f"{what}: not after {timeout:.0f}s. {why()}")
        time.sleep(interval)


def pods_report(selector: str = "", namespace: str = "default") -> str:
    """Why pods are not ready: each pod's phase and every container's state, as the kubelet reports them."""
    lines = []
    for p in kget("pods", *(["-l", selector] if selector else []), namespace=namespace).get("items", []):
        states = []
        for s in (p["status"].get("initContainerStatuses") or []) + (p["status"].get("containerStatuses") or []):
            state = next(iter(s.get("state") or {"?": {}}))
            detail = (s.get("state") or {}).get(state) or {}
            states.append(f"{s['name']}={state}({detail.get('reason', '')} exit={detail.get('exitCode', '')}) ready={s.get('ready')} restarts={s.get('restartCount')}")
        lines.append(f"{p['metadata']['name']}: {p['status'].get('phase')} " + ", ".join(states))
    events = kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout.decode().splitlines()[-15:]
    return "\n".join(lines + ["events:"] + events)


class Stack:
    """One synthesized stack applied to the node. `delete()` removes it with its claims, as a user would
    to start over (`kubectl delete -f dist` keeps the claims; the test deletes them too). Its namespace is
    its Deployment's (`default` when the manifests name none)."""

    def __init__(self, dist: str, namespace: Optional[str] = None):
        self.dist = dist
        self.objects = read_manifests(dist)
        self.namespace = namespace or next((o["metadata"].get("namespace") for o in self.objects if o["kind"] == "Deployment"), None) or "default"
        self.node_port_ips = [NODE_IP, "127.0.0.1"]
        self.mc_config = tempfile.mkdtemp(prefix="cdk8s-mlflow-mc-")

    # --- the manifests ---
    def one(self, kind: str, component: Optional[str] = None) -> Dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind
                 and (component is None or (o["metadata"].get("labels") or {}).get(COMPONENT) == component)]
        assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
        return found[0]

    @property
    def postgres(self) -> Dict[str, Any]:
        return self.one("StatefulSet", "backend-store")

    @property
    def minio(self) -> Dict[str, Any]:
        return self.one("StatefulSet", "artifact-store")

    @property
    def job(self) -> Dict[str, Any]:
        return self.one("Job")

    @property
    def deployment(self) -> Dict[str, Any]:
        return self.one("Deployment")

    def cronjob(self, component: str) -> Dict[str, Any]:
        return self.one("CronJob", component)

    @property
    def node_port(self) -> int:
        service = next(s for s in self.objects if s["kind"] == "Service" and s["spec"].get("type") == "NodePort")
        return int(service["spec"]["ports"][0]["nodePort"])

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.node_port_ips[0]}:{self.node_port}"

    @staticmethod
    def selector(workload: Dict[str, Any]) -> str:
        return ",".join(f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items())

    # --- apply, wait, delete ---
    def apply(self, dist: Optional[str] = None) -> None:
        """`kubectl apply -f dist` (a new synth replaces the stack's manifests)."""
        if dist:
            self.dist, self.objects = dist, read_manifests(dist)
        kubectl("apply", "-f", self.dist)

    def wait_ready(self, timeout: float = 600) -> None:
        """`kubectl rollout status` of every StatefulSet and Deployment, then the Job's completion."""
        for w in [o for o in self.objects if o["kind"] in ("StatefulSet", "Deployment")]:
            self.wait_rollout(w, timeout)
        self.wait_job(self.job["metadata"]["name"], timeout)

    def wait_rollout(self, workload: Dict[str, Any], timeout: float = 600) -> None:
        kind, name = workload["kind"].lower(), workload["metadata"]["name"]
        result = kubectl("rollout", "status", f"{kind}/{name}", "-n", self.namespace, f"--timeout={int(timeout)}s", check=False, timeout=timeout + 30)
        if result.returncode != 0:
            raise RolloutFailed(f"{kind}/{name} did not roll out: {result.stderr.decode().strip()}\n{pods_report(self.selector(workload), self.namespace)}")

    def wait_job(self, name: str, timeout: float = 600) -> Dict[str, Any]:
        """Waits until the Job is Complete or Failed; returns it."""
        def done():
            job = kget("job", name, namespace=self.namespace)
            conditions = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions") or []}
            return job if conditions.get("Complete") == "True" or conditions.get("Failed") == "True" else None
        return wait_until(f"job/{name}", done, timeout, why=lambda: pods_report(f"job-name={name}", self.namespace))

    def job_result(self, name: str, container: str, timeout: float = 600):
        """(exit code of `container` in the Job's last pod, that pod) once the Job has finished."""
        self.wait_job(name, timeout)
        pods = sorted(kget("pods", "-l", f"job-name={name}", namespace=self.namespace)["items"], key=lambda p: p["metadata"]["creationTimestamp"])
        assert pods, f"job/{name} has no pod"
        pod = pods[-1]
        status = next(s for s in (pod["status"].get("initContainerStatuses") or []) + (pod["status"].get("containerStatuses") or [])
                      if s["name"] == container)
        terminated = (status.get("state") or {}).get("terminated") or {}
        return terminated.get("exitCode"), Pod(pod["metadata"]["name"], self.namespace)

    def delete(self) -> None:
        kubectl("delete", "-f", self.dist, "--ignore-not-found", "--wait=true", timeout=300)
        # The Jobs `kubectl create job --from=cronjob/...` made are not in dist/ (the node holds one stack).
        kubectl("delete", "jobs", "--all", "-n", self.namespace, "--wait=true", timeout=300)
        wait_until("the stack's pods are gone", lambda: not kget("pods", "-l", f"app.kubernetes.io/instance={self.instance}", namespace=self.namespace)["items"], 180)
        kubectl("delete", "pvc", "-l", f"app.kubernetes.io/instance={self.instance}", "-n", self.namespace, "--ignore-not-found", "--wait=true", timeout=180)
        shutil.rmtree(self.mc_config, ignore_errors=True)

    @property
    def instance(self) -> str:
        return self.deployment["metadata"]["labels"]["app.kubernetes.io/instance"]

    # --- pods ---
    def pods(self, workload: Dict[str, Any]) -> List[Pod]:
        """The workload's running pods (not terminating), oldest first."""
        items = [p for p in kget("pods", "-l", self.selector(workload), namespace=self.namespace)["items"] if not p["metadata"].get("deletionTimestamp")]
        items.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        return [Pod(p["metadata"]["name"], self.namespace) for p in items]

    def server_pods(self) -> List[Pod]:
        return self.pods(self.deployment)

    def postgres_pod(self) -> Pod:
        return Pod(f"{self.postgres['metadata']['name']}-0", self.namespace)

    def minio_pod(self) -> Pod:
        return Pod(f"{self.minio['metadata']['name']}-0", self.namespace)

    def restart_pod(self, pod: Pod) -> None:
        """`kubectl delete pod`: its controller makes a new one; waits until the workload is ready again."""
        owner = pod.get()["metadata"]["ownerReferences"][0]["kind"]
        pod.delete()
        self.wait_rollout(self.deployment if owner == "ReplicaSet" else next(
            w for w in (self.postgres, self.minio) if pod.name.startswith(w["metadata"]["name"] + "-")))

    def scale_servers(self, replicas: int) -> None:
        """`kubectl scale deployment/<name> --replicas=N`, then waits for it."""
        name = self.deployment["metadata"]["name"]
        kubectl("scale", f"deployment/{name}", "-n", self.namespace, f"--replicas={replicas}")
        if replicas == 0:
            wait_until("the servers are gone", lambda: not kget("pods", "-l", self.selector(self.deployment), namespace=self.namespace)["items"], 120)
        else:
            self.wait_rollout(self.deployment)

    def run_cronjob(self, component: str, container: str, timeout: float = 600):
        """`kubectl create job --from=cronjob/<name>`: the schedule firing now. Returns (exit code, pod)."""
        cron = self.cronjob(component)["metadata"]["name"]
        name = f"{cron}-e2e-{int(time.time() * 1000) % 10**8}"
        kubectl("create", "job", name, "-n", self.namespace, f"--from=cronjob/{cron}")
        return self.job_result(name, container, timeout)

    # --- what a user checks ---
    def secret(self) -> Dict[str, str]:
        s = next(o for o in self.objects if o["kind"] == "Secret")
        live = kget("secret", s["metadata"]["name"], "-n", s["metadata"].get("namespace", "default"))
        return {k: base64.b64decode(v).decode() for k, v in (live.get("data") or {}).items()}

    def psql(self, sql: str) -> str:
        """`kubectl exec mlflow-postgres-0 -- psql ...` (local socket, as the image's user)."""
        s = self.secret()
        result = self.postgres_pod().exec("postgres", ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-U", s["POSTGRES_USER"], "-d", s["POSTGRES_DB"], "-c", sql])
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.decode()}")
        return result.stdout.decode().strip()

    def mc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The mc client on the node, pointed at the MinIO pod (alias `e2e`) with the Secret's credentials.
        The node's root user is not subject to NetworkPolicies (kube-network-policies lets it through)."""
        env = dict(os.environ, MC_CONFIG_DIR=self.mc_config)
        s = self.secret()
        # alias set, not MC_HOST_<alias>: a URL cannot carry every secret (mc does not unescape it).
        subprocess.run([os.environ["E2E_MC"], "alias", "set", "e2e", f"http://{self.minio_pod().ip}:9000", s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"]],
                       env=env, check=True, capture_output=True, timeout=60)
        result = subprocess.run([os.environ["E2E_MC"], "--json", *args], env=env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"mc {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def mc_json(self, *args: str) -> List[Dict[str, Any]]:
        return [json.loads(line) for line in self.mc(*args).stdout.splitlines() if line.strip()]

    def artifact_root(self):
        root = self.secret()["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):]
        bucket, _, prefix = root.partition("/")
        return bucket, prefix.strip("/")

    def request(self, method: str, path: str, body: Any = None, auth: Optional[tuple] = None, host_ip: Optional[str] = None,
                headers: Optional[Mapping[str, str]] = None, data: Optional[bytes] = None, timeout: float = 30, base: Optional[str] = None):
        """One HTTP request through the NodePort (or to `base`); returns (status, lower-case headers, text) for every status."""
        url = f"{base or f'http://{host_ip or self.node_port_ips[0]}:{self.node_port}'}{path}"
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if auth is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with NO_PROXY.open(req, timeout=timeout) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()

    def http_get(self, path: str, host_ip: Optional[str] = None, timeout: float = 10):
        status, _, text = self.request("GET", path, host_ip=host_ip, timeout=timeout)
        return status, text


def client_env(tracking_uri: str, home: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """What a user's shell gives the MLflow client: only the tracking URI (no S3 or DB credentials), plus
    `extra` (MLFLOW_TRACKING_USERNAME/PASSWORD under basic auth)."""
    env = {"PATH": f"{os.path.join(os.environ['E2E_VENV'], 'bin')}:/usr/bin:/bin", "HOME": home,
           "MLFLOW_TRACKING_URI": tracking_uri, "LANG": "C.UTF-8", "NO_PROXY": "*",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
    # Diagnosis only: E2E_CLIENT_ENV="K=V K2=V2" adds client settings (a user would have to set them).
    for word in os.environ.get("E2E_CLIENT_ENV", "").split():
        key, _, value = word.partition("=")
        env[key] = value
    env.update(extra or {})
    return env


def run_client(tracking_uri: str, *args: str, timeout: float = 600, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    home = tempfile.mkdtemp(prefix="mlflow-client-")
    try:
        result = subprocess.run([os.path.join(os.environ["E2E_VENV"], "bin", "python"), os.path.join(E2E, "client_workflow.py"), *args],
                                env=client_env(tracking_uri, home, env), cwd=home, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if result.returncode != 0:
        raise AssertionError(f"client failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- connections, and what the NetworkPolicies say of them ------------------------------------------

CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
           "except ConnectionRefusedError:\n    sys.exit(3)\n"
           "except OSError:\n    sys.exit(4)\n")
OUTCOME = {0: "connected", 3: "refused", 4: "timed out"}


def connect_from_pod(pod: Pod, container: str, ip: str, port: int, timeout: float = 3) -> str:
    """'connected', 'refused' (a reset: nothing listens) or 'timed out' (dropped on the way)."""
    result = pod.exec(container, ["python", "-c", CONNECT, ip, str(port), str(timeout)], timeout=60)
    return OUTCOME.get(result.returncode, f"exit {result.returncode}: {result.stderr.decode()[-500:]}")


def connect_from_node(ip: str, port: int, timeout: float = 3) -> str:
    result = subprocess.run(["python3", "-c", CONNECT, ip, str(port), str(timeout)], capture_output=True, timeout=60)
    return OUTCOME.get(result.returncode, f"exit {result.returncode}: {result.stderr.decode()[-500:]}")


def policy_allows(source: Optional[Pod], destination: Pod, port: int, source_ip: str = NODE_IP) -> bool:
    """np-guard's netpol-analyzer on the live node's pods and NetworkPolicies: does a TCP connection from
    `source` (or from `source_ip`, an address outside the pod network) to `destination`:`port` pass both
    the source's egress and the destination's ingress policies?"""
    tool, config = os.environ["NODE_NETPOL"], os.environ["NODE_KUBECONFIG"]
    if source is not None:
        args = [tool, "eval", "-q", "-k", config, "-s", source.name, "-n", source.namespace,
                "-d", destination.name, "--destination-namespace", destination.namespace, "-p", str(port)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        verdict = result.stdout.strip().rsplit(":", 1)[-1].strip()
        if result.returncode != 0 or verdict not in ("true", "false"):
            raise RuntimeError(f"k8snetpolicy eval failed ({result.returncode}): {result.stdout}{result.stderr}")
        return verdict == "true"
    # `eval --source-ip` rejects every pod destination in v1.2.0 ("only one of source or destination can be
    # defined as external IP"), so an outside source is read from the analyzer's list of allowed connections.
    result = subprocess.run([tool, "list", "-q", "-k", config, "-o", "json"], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"k8snetpolicy list failed ({result.returncode}): {result.stdout}{result.stderr}")
    owner = (destination.get()["metadata"].get("ownerReferences") or [{"kind": "Pod", "name": destination.name}])[0]
    workload = f"{destination.namespace}/{owner['name']}[{owner['kind']}]"
    address = ipaddress.ip_address(source_ip)
    for conn in json.loads(result.stdout or "[]"):
        if conn["dst"] != workload or "/" in conn["src"] and "[" in conn["src"]:
            continue
        low, _, high = conn["src"].partition("-")
        if not ipaddress.ip_address(low) <= address <= ipaddress.ip_address(high or low):
            continue
        proto = ""
        for part in conn["conn"].split(","):  # "TCP 53,UDP 53", "TCP 5432,9000", "TCP 1-65535", "All Connections"
            part = part.strip()
            if part == "All Connections":
                return True
            if not part[:1].isdigit():
                proto, _, part = part.partition(" ")
            first, _, last = part.partition("-")
            if proto == "TCP" and int(first) <= port <= int(last or first):
                return True
    return False


def policy_allows_to_ip(source: Pod, ip: str, port: int) -> bool:
    """netpol-analyzer on the live node: does a TCP connection from `source` to `ip`:`port`, an address
    outside the pod network, pass the source's egress policies?"""
    args = [os.environ["NODE_NETPOL"], "eval", "-q", "-k", os.environ["NODE_KUBECONFIG"], "-s", source.name, "-n", source.namespace,
            "--destination-ip", ip, "-p", str(port)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    verdict = result.stdout.strip().rsplit(":", 1)[-1].strip()
    if result.returncode != 0 or verdict not in ("true", "false"):
        raise RuntimeError(f"k8snetpolicy eval failed ({result.returncode}): {result.stdout}{result.stderr}")
    return verdict == "true"


def probe_pod(name: str, labels: Mapping[str, str], image: str, namespace: str = "default") -> Pod:
    """A pod with a workload's pod labels (so the same NetworkPolicies select it) that only sleeps, to
    open connections from. Not for labels a controller selects (a ReplicaSet would adopt it)."""
    manifest = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest).encode())
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace, "--timeout=120s", timeout=150)
    return Pod(name, namespace)


# --- what the tests read of a stack and its programs ----------------------------------------------

def workflow(stack: Stack, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The user's whole client workflow through the NodePort (proxied artifacts), then everything read back."""
    out = run_client(stack.tracking_uri, "write", env=env)
    assert out["predicted"] == out["expected"]
    assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]
    run_client(stack.tracking_uri, "verify", json.dumps(out), env=env)
    return out


def client_fails(tracking_uri: str, *args: str, env: Optional[Mapping[str, str]] = None) -> str:
    """The client's failure message; an AssertionError if it succeeds."""
    try:
        run_client(tracking_uri, *args, env=env, timeout=300)
    except AssertionError as failure:
        return str(failure)
    raise AssertionError(f"the client succeeded: {args}")


def alembic_head(module: str = "mlflow.store.db_migrations") -> str:
    """The alembic head revision of MLflow's (or its auth app's: mlflow.server.auth.db.migrations) migrations in
    the locked package set (the image's, e2e/locks/), read on the node: an import of mlflow inside a server
    container would take memory from its limit."""
    code = (f"import os, {module} as m\n"
            "from alembic.config import Config\nfrom alembic.script import ScriptDirectory\n"
            "c = Config(); c.set_main_option('script_location', os.path.dirname(m.__file__))\n"
            "print(ScriptDirectory.from_config(c).get_current_head())")
    return subprocess.run([os.path.join(os.environ["E2E_VENV"], "bin", "python"), "-W", "ignore", "-c", code],
                          check=True, capture_output=True, text=True).stdout.strip()


def proc_view(pod: Pod, container: str):
    """argv, environment and uid of the container's main process, as its /proc shows them."""
    def read(path):
        result = pod.exec(container, ["cat", path])
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout
    argv = [a.decode() for a in read("/proc/1/cmdline").split(b"\0")[:-1]]
    env = dict(e.decode().split("=", 1) for e in read("/proc/1/environ").split(b"\0") if b"=" in e)
    uid = next(int(line.split()[1]) for line in read("/proc/1/status").decode().splitlines() if line.startswith("Uid:"))
    return argv, env, uid


def basic(user: str, password: str) -> str:
    """An Authorization header's value for basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def seconds(stamp: str) -> float:
    """A Kubernetes time stamp (2026-01-02T03:04:05Z) in seconds since the epoch."""
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def wait_terminated(pod: Pod, container: str, timeout: float) -> Dict[str, Any]:
    """The `terminated` state of the pod's (init) container, now or on its last run, once there is one."""
    def terminated():
        status = pod.get()["status"]
        c = next((s for s in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []) if s["name"] == container), {})
        return (c.get("state") or {}).get("terminated") or (c.get("lastState") or {}).get("terminated")
    return wait_until(f"{pod.name}/{container} to end", terminated, timeout, interval=0.5, why=lambda: json.dumps(pod.get()["status"])[-2000:])


def rollout_restart(stack: Stack) -> float:
    """`kubectl rollout restart` of the servers, `kubectl rollout status`, then until the old pods are gone (a
    terminating pod can still take a connection); returns the seconds the rollout took."""
    started = time.monotonic()
    kubectl("rollout", "restart", f"deployment/{stack.deployment['metadata']['name']}", "-n", stack.namespace)
    stack.wait_rollout(stack.deployment)
    took = time.monotonic() - started
    selector = stack.selector(stack.deployment)
    wait_until("the old server pods are gone", lambda: not [
        p for p in kget("pods", "-l", selector, namespace=stack.namespace)["items"] if p["metadata"].get("deletionTimestamp")], 120)
    return took


def seaweedfs_mc(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """mc on the node against the SeaweedFS pod's S3 port (alias `sw`), with the Secret's credentials."""
    env = dict(os.environ, MC_CONFIG_DIR=stack.mc_config)
    s = stack.secret()
    subprocess.run([os.environ["E2E_MC"], "alias", "set", "sw", f"http://{stack.minio_pod().ip}:8333", s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"]],
                   env=env, check=True, capture_output=True, timeout=60)
    result = subprocess.run([os.environ["E2E_MC"], "--json", *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def first_start(stack: Stack) -> Dict[str, str]:
    """Each server pod's `migrate` log, read as the stack comes up (later restarts replace the pods)."""
    return {p.name: p.log("migrate") for p in stack.server_pods()}


def scenario_dist(name: str, outdir: str, replicas: Optional[int] = 1, config: Optional[Dict[str, Any]] = None,
                  env: Optional[Dict[str, str]] = None) -> str:
    """A scenario of the matrix synthesized into `outdir` (with `config` and `env` merged into its files), plus the
    Secret its user applies beside it (secret.yaml). `replicas` servers, as `kubectl scale` would make it, where
    their number does not matter (each start is 15 s of CPU here); None keeps the synth's."""
    os.makedirs(outdir, exist_ok=True)
    synth_scenario(name, outdir, config, env)
    secret = secret_file(name)
    if secret:
        shutil.copyfile(secret, os.path.join(outdir, "secret.yaml"))
    if replicas is not None:
        path = os.path.join(outdir, "mlflow.k8s.yaml")
        docs = read_manifests(path)
        for doc in docs:
            if doc["kind"] == "Deployment":
                doc["spec"]["replicas"] = replicas
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(docs, handle, sort_keys=False)
    return outdir


def pod_template(workload: dict) -> dict:
    return (workload["spec"].get("jobTemplate") or workload)["spec"]["template"]


@contextlib.contextmanager
def deployed(dist: str, *users_own):
    """The order a cluster reaches: the users' own workloads already running, then `kubectl apply -f dist`
    and its rollout (stores, the bucket Job, the servers). Afterwards all of it is deleted with its claims."""
    stack = Stack(dist)
    own = os.path.join(os.path.dirname(dist), "users-own.yaml")
    try:
        if users_own:
            with open(own, "w", encoding="utf-8") as handle:
                yaml.safe_dump_all(list(users_own), handle)
            kubectl("apply", "-f", own)
            for w in users_own:
                if w["kind"] == "StatefulSet":
                    name = w["metadata"]["name"]
                    result = kubectl("rollout", "status", f"statefulset/{name}", "--timeout=300s", check=False, timeout=330)
                    assert result.returncode == 0, result.stderr.decode() + pods_report(f"app={name}")
        stack.apply()
        stack.wait_ready()
        yield stack
    finally:
        stack.delete()
        if users_own:
            kubectl("delete", "-f", own, "--ignore-not-found", "--wait=true", timeout=300)
            kubectl("delete", "pvc", "-l", "app=postgres", "--ignore-not-found", "--wait=true", timeout=180)
