"""A rollout of the server watched from the node (test_mlflow3.py): a client that writes all the time and
whose every request names itself in the servers' access logs, every server container's log kept after
its pod is gone (`kubectl logs -f`), the first new pod's `migrate` log read from the kubelet's log file
every 20 ms, the processes of a container from the node's /proc; and requests straight to a pod.

The server pods' logs are followed with `kubectl logs -f` as the pods come (a deleted pod's log is gone
from the node); the first new pod's `migrate` log is read from the kubelet's log file on the node every
20 ms, whose lines carry the time the runtime wrote them."""
from __future__ import annotations

import contextlib
import glob
import http.server
import itertools
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import yaml

from node.stack import NO_PROXY, NODE_IP, NODE_RUN, Pod, Stack, client_env, kget, read_manifests, wait_until

FENCE_ASKED = "stopping every running MLflow first"
FENCE_HELD = "no MLflow is running (fence held after"
MIGRATE_DONE = "is current"
KEK_WARNING = "MLFLOW_CRYPTO_KEK_PASSPHRASE not set"
# uvicorn's access log names the path with its query string: the writer's sequence number shows which pod answered.
ACCESS = re.compile(r'"POST /api/2\.0/mlflow/runs/log-metric\?e2e_seq=(\d+) HTTP/1\.1" (\d+)')


def allow_test_provider(dist: str) -> None:
    """MLflow refuses a provider api_base that is plain http or a private address (its SSRF guard); the fake
    provider of the gateway test is both, so the server is told to accept it, as a user's patch for an
    in-cluster LLM proxy would."""
    path = os.path.join(dist, "mlflow.k8s.yaml")
    with open(path) as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    server = next(c for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")
    server["env"] += [{"name": "MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES", "value": "http,https"},
                      {"name": "MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS", "value": "true"}]
    with open(path, "w") as handle:
        yaml.safe_dump_all(docs, handle, sort_keys=False)


HEAD = ("import os, mlflow.store.db_migrations as m\nfrom alembic.config import Config\nfrom alembic.script import ScriptDirectory\n"
        "c = Config(); c.set_main_option('script_location', os.path.dirname(m.__file__))\n"
        "print(ScriptDirectory.from_config(c).get_current_head())")


def pod_alembic_head(pod: Pod) -> str:
    """The alembic head of the MLflow in the pod's image."""
    result = pod.exec("mlflow", ["python", "-W", "ignore", "-c", HEAD])
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result.stdout.decode().strip()


def template(dist: str) -> dict:
    return next(o for o in read_manifests(dist) if o["kind"] == "Deployment")["spec"]["template"]


def env_changes(a: dict, b: dict) -> list:
    """(container, name, old value, new value) of every env value that differs between two pod templates."""
    changes = []
    for key in ("initContainers", "containers"):
        for ca, cb in zip(a["spec"].get(key) or [], b["spec"].get(key) or []):
            ea, eb = {e["name"]: e for e in ca.get("env") or []}, {e["name"]: e for e in cb.get("env") or []}
            changes += [(ca["name"], n, ea.get(n, {}).get("value"), eb.get(n, {}).get("value")) for n in sorted(set(ea) | set(eb)) if ea.get(n) != eb.get(n)]
    return changes


SEQUENCE = itertools.count(1)  # shared by every writer: a number names one request in every pod's log


class Writer(threading.Thread):
    """Logs one metric value after another through the NodePort; each request carries a sequence number in
    its query string (the server's access log then tells which pod answered). records: seq -> (sent, done, status)."""

    def __init__(self, stack: Stack, run_id: str, pause: float = 0.05):
        super().__init__(daemon=True)
        self.stack, self.run_id, self.pause = stack, run_id, pause
        self.records = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            seq = next(SEQUENCE)
            body = {"run_id": self.run_id, "key": "w", "value": seq, "step": seq, "timestamp": int(time.time() * 1000)}
            sent = time.time()
            try:
                status = self.stack.request("POST", f"/api/2.0/mlflow/runs/log-metric?e2e_seq={seq}", body, timeout=10)[0]
            except Exception as error:  # noqa: BLE001 - a refused or reset connection is a failed write
                status = type(error).__name__
            self.records[seq] = (sent, time.time(), status)
            self.halt.wait(self.pause)

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def acked(self, since: float = 0.0) -> list:
        return sorted(s for s, (sent, _, status) in self.records.items() if status == 200 and sent >= since)

    def failed(self, since: float = 0.0) -> list:
        return sorted(s for s, (sent, _, status) in self.records.items() if status != 200 and sent >= since)

    def longest_gap(self, since: float, until: float):
        """The longest time between two consecutive acknowledged writes in [since, until]: (seconds, from, to)."""
        done = sorted(d for sent, d, status in self.records.values() if status == 200 and since <= d <= until)
        done = [since] + done + [until]
        return max((b - a, a, b) for a, b in zip(done, done[1:]))


def popen_kubectl(*args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([os.environ["NODE_KUBECTL"], *args], stdout=stdout, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, KUBECONFIG=os.environ["NODE_KUBECONFIG"]))


STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ")


def stamp_time(line: str):
    """The RFC 3339 time stamp a CRI log line (or `kubectl logs --timestamps`) starts with, in seconds since the epoch."""
    m = STAMP.match(line)
    if not m:
        return None
    return datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3))).timestamp() + float("0." + (m.group(2) or "0"))


class ServerLogs:
    """Every server container's log, kept after its pod is gone: `kubectl logs -f --timestamps` from when
    `kubectl get pods -w` shows the container until the container ends."""

    def __init__(self, selector: str, directory: str):
        self.dir, self.follows = directory, {}  # container id -> (pod name, kubectl process, file)
        self.watch = popen_kubectl("get", "pods", "-l", selector, "-w", "-o",
                                   'jsonpath={.metadata.name}{" "}{.status.containerStatuses[?(@.name=="mlflow")].containerID}{"\\n"}')
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for line in self.watch.stdout:
            name, _, container = line.decode().strip().partition(" ")
            if container and container not in self.follows:
                path = os.path.join(self.dir, f"{name}.{len(self.follows)}.log")
                with open(path, "wb") as out:
                    self.follows[container] = (name, popen_kubectl("logs", "-f", "--timestamps", name, "-c", "mlflow", stdout=out), path)

    def text(self, pod: str) -> str:
        parts = []
        for name, _, path in list(self.follows.values()):
            if name == pod:
                with open(path, errors="replace") as handle:
                    parts.append(handle.read())
        return "".join(parts)

    def pods(self) -> list:
        return sorted({name for name, _, _ in list(self.follows.values())})

    def finish(self, pods, timeout: float = 60) -> None:
        """Waits until the followers of these (deleted) pods have their containers' last lines."""
        for name, process, _ in list(self.follows.values()):
            if name in pods:
                process.wait(timeout)

    def close(self) -> None:
        for process in [self.watch] + [p for _, p, _ in self.follows.values()]:
            process.terminate()
            process.wait()


class MigrateWatch(threading.Thread):
    """The `migrate` log of the first server pod that is not in `old`, read every 20 ms from the kubelet's log
    file on the node (CRI format: each line carries the time the runtime wrote it). seen: needle -> that time;
    on_seen[needle]() runs as soon as the line is read."""

    def __init__(self, deployment: str, old, needles, on_seen=None):
        super().__init__(daemon=True)
        self.pattern = os.path.join(NODE_RUN, "pod-logs", f"default_{deployment}-*_*", "migrate", "0.log")
        self.old, self.needles, self.on_seen = set(old), list(needles), on_seen or {}
        self.seen, self.pod = {}, None
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        path = None
        while not self.halt.wait(0.02) and len(self.seen) < len(self.needles):
            if path is None:
                new = [p for p in glob.glob(self.pattern) if p.split(os.sep)[-3].split("_")[1] not in self.old]
                if not new:
                    continue
                path = new[0]
                self.pod = path.split(os.sep)[-3].split("_")[1]
            try:
                with open(path, errors="replace") as handle:
                    lines = handle.read().splitlines()
            except FileNotFoundError:
                continue
            for needle in self.needles:
                line = next((line for line in lines if needle not in self.seen and needle in line), None)
                if line:
                    self.seen[needle] = stamp_time(line)
                    if needle in self.on_seen:
                        self.on_seen[needle]()


def container_id(pod: Pod, container: str) -> str:
    status = next(s for s in pod.get()["status"]["containerStatuses"] if s["name"] == container)
    return status["containerID"].split("://")[-1]


def server_processes(container: str) -> list:
    """Command lines of the container's running processes besides its first (PID 1 in its namespace: the
    launcher, which idles once fenced), from the node's /proc. Orphans are included; zombies, which run
    nothing and only wait to be reaped, are not."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as handle:
                if container not in handle.read():
                    continue
            with open(f"/proc/{pid}/status") as handle:
                status = dict(line.split(":", 1) for line in handle.read().splitlines() if ":" in line)
            if status["NSpid"].split()[-1] == "1" or status["State"].split()[0] in ("Z", "X"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                found.append(handle.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except (OSError, KeyError, IndexError):
            pass
    return found


def served_by(logs: ServerLogs, pods) -> dict:
    """seq -> (pod name, HTTP status) from the servers' access logs."""
    out = {}
    for pod in pods:
        for seq, status in ACCESS.findall(logs.text(pod)):
            assert int(seq) not in out, f"request {seq} in two access logs"
            out[int(seq)] = (pod, int(status))
    return out


def listening(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
        return True
    except OSError:
        return False


def ready_since(pod: Pod) -> float:
    condition = next(c for c in pod.get()["status"]["conditions"] if c["type"] == "Ready")
    return datetime.fromisoformat(condition["lastTransitionTime"].replace("Z", "+00:00")).timestamp()


def roll(stack: Stack, logs: ServerLogs, dist: str) -> tuple:
    """`kubectl apply -f dist` with a changed pod template, then `kubectl rollout status` until the Deployment
    controller has replaced every pod; waits for the old pods' last log lines. Returns (old pods, new pods)."""
    old = [p.name for p in stack.server_pods()]
    stack.apply(dist)
    stack.wait_rollout(stack.deployment)
    new = [p.name for p in stack.server_pods()]
    assert not set(old) & set(new), "the pod template did not change"
    wait_until("the old pods are gone", lambda: not set(old) & {p["metadata"]["name"] for p in kget("pods")["items"]}, 120)
    logs.finish(old)
    return old, new


def pod_request(pod: Pod, method: str, path: str, body=None, timeout: float = 60):
    """One request straight to a pod's address: (status, parsed JSON or text)."""
    req = urllib.request.Request(f"http://{pod.ip}:5000{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with NO_PROXY.open(req, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def mlflow_client(stack: Stack, code: str, *args: str, env=None):
    """A Python snippet run as the user's MLflow client (tracking URI through the NodePort); returns its last stdout line as JSON."""
    home = tempfile.mkdtemp(prefix="mlflow-client-")
    result = subprocess.run([os.path.join(os.environ["E2E_VENV"], "bin", "python"), "-W", "ignore", "-c", code, *args],
                            env=client_env(stack.tracking_uri, home, env), cwd=home, capture_output=True, text=True, timeout=300)
    subprocess.run(["rm", "-rf", home])
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def fake_llm_provider():
    """An OpenAI-style chat provider on the node's address (the pods reach it through their bridge), answering
    "pong": yields (its base URL, the Authorization headers it was sent)."""
    seen = []

    class Provider(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"id": "e2e", "object": "chat.completion", "created": 0, "model": "e2e-model",
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer((NODE_IP, 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{NODE_IP}:{server.server_port}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
