"""MLflow 3.x as production runs it, with real processes: the writer-fenced upgrade from 3.17.2, a
configuration-only roll, the AI gateway's key encryption across replicas and its rotation, background
jobs off, OTLP trace ingestion, workspaces, and SeaweedFS as the artifact store.

Each configuration is an mlflow.yaml + .env synthesized by the app (scripts/synth.js). The stand-in
runs ghcr.io/mlflow/mlflow:v3.17.2-full from the MLflow 3.17.2 virtualenv and
docker.io/chrislusf/seaweedfs from the `weed` binary of e2e/setup-mlflow3.sh.

The harness starts and stops pods when told; for the rolling updates this file adds what the
kubelet and the Deployment controller do meanwhile: readiness probing of running pods (a fenced
server leaves the Service's endpoints after failureThreshold failed probes), and a rolling update
with maxSurge 1 / maxUnavailable 0 (a new pod runs its init container and server until ready, then
an old pod leaves the endpoints, runs its preStop hook and gets its stop signal).

Tests in a class share one stack and run in file order."""
from __future__ import annotations

import base64
import http.server
import itertools
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request

import pytest
import yaml

from harness import kube
from harness.cluster import _NO_PROXY
from harness.stack import E2E, REPO, Stack, client_env, run_client

pytestmark = pytest.mark.stack

OLD_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.2-full"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEK_WARNING = "MLFLOW_CRYPTO_KEK_PASSPHRASE not set"
FENCE_ASKED = "stopping every running MLflow first"
FENCE_HELD = "no MLflow is running (fence held after"
MIGRATE_DONE = "is current"
# Not the default 30003: a kube-proxy on the same machine rejects every local connection to a node port it serves.
NODE_PORT = 30413
ADMIN = ("admin", "e2e-admin-password-3x")
ADMIN_ENV = {"MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1]}
# uvicorn's access log names the path with its query string: the writer's sequence number shows which pod answered.
ACCESS = re.compile(r'"POST /api/2\.0/mlflow/runs/log-metric\?e2e_seq=(\d+) HTTP/1\.1" (\d+)')


@pytest.fixture(scope="session")
def mlflow3_env(setup_env):
    """The paths e2e/setup-mlflow3.sh installed (run.sh exports them; otherwise it is asked here)."""
    keys = ("E2E_VENV_3172", "E2E_WEED", "E2E_OTLP_VENV")
    if not all(os.environ.get(k) for k in keys):
        out = subprocess.run(["bash", os.path.join(E2E, "setup-mlflow3.sh"), "--print-env"], check=True, capture_output=True, text=True).stdout
        for word in shlex.split(out.strip().removeprefix("export ")):
            key, _, value = word.partition("=")
            os.environ[key] = value
    return {k: os.environ[k] for k in keys}


# --- configurations -------------------------------------------------------------------------------

def env_text(**extra: str) -> str:
    lines = ["POSTGRES_USER=mlflow", "POSTGRES_PASSWORD='e2e-pg-password'", "POSTGRES_DB=mlflow", "AWS_ACCESS_KEY_ID=mlflow",
             "AWS_SECRET_ACCESS_KEY='e2e-s3-secret-key'", "MLFLOW_S3_ARTIFACT_ROOT=s3://mlflow/artifacts"]
    return "\n".join(lines + [f"{key}='{value}'" for key, value in extra.items()]) + "\n"


def synth_app(work: str, name: str, config: dict, env: str) -> str:
    """`npm run synth` with an mlflow.yaml and a .env: MLFLOW_CONFIG_FILE=... MLFLOW_ENV_FILE=... node scripts/synth.js."""
    config_file, env_file, dist = (os.path.join(work, f"{name}{ext}") for ext in (".yaml", ".env", ""))
    with open(config_file, "w") as handle:
        yaml.safe_dump(config, handle)
    with open(env_file, "w") as handle:
        handle.write(env)
    result = subprocess.run(["node", os.path.join(REPO, "scripts", "synth.js")], cwd=REPO, capture_output=True, text=True,
                            env=dict(os.environ, MLFLOW_CONFIG_FILE=config_file, MLFLOW_ENV_FILE=env_file, CDK8S_OUTDIR=dist,
                                     CDK8S_CHECK_UPGRADE="false"))
    assert result.returncode == 0, f"synth failed:\n{result.stdout}\n{result.stderr}"
    return dist


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


def use_image_stand_ins(stack: Stack) -> None:
    """The two images this file adds to the harness's: MLflow 3.17.2 (by tag: the 3.18.0 image has the same
    repository) and SeaweedFS (its image runs /usr/bin/weed)."""
    old_bin = os.path.join(os.environ["E2E_VENV_3172"], "bin")
    old = kube.Image(entrypoint=[], cmd=[], path=[old_bin], env={"PATH": f"{old_bin}:{BASE_PATH}", "LANG": "C.UTF-8"})
    stack.cluster.images["docker.io/chrislusf/seaweedfs"] = kube.Image(
        entrypoint=["/entrypoint.sh"], cmd=["mini", "-dir=/data"], path=[], env={"PATH": BASE_PATH},
        programs={"/usr/bin/weed": os.environ["E2E_WEED"]})
    by_repository = stack.cluster.image_for
    stack.cluster.image_for = lambda ref: old if ref == OLD_IMAGE else by_repository(ref)


def head_of(python: str, module: str = "mlflow.store.db_migrations") -> str:
    code = (f"import os, {module} as m\nfrom alembic.config import Config\nfrom alembic.script import ScriptDirectory\n"
            "c = Config(); c.set_main_option('script_location', os.path.dirname(m.__file__))\n"
            "print(ScriptDirectory.from_config(c).get_current_head())")
    return subprocess.run([python, "-W", "ignore", "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def template(dist: str) -> dict:
    return kube.Manifests.from_path(dist).one("Deployment")["spec"]["template"]


def env_changes(a: dict, b: dict) -> list:
    """(container, name, old value, new value) of every env value that differs between two pod templates."""
    changes = []
    for key in ("initContainers", "containers"):
        for ca, cb in zip(a["spec"].get(key) or [], b["spec"].get(key) or []):
            ea, eb = {e["name"]: e for e in ca.get("env") or []}, {e["name"]: e for e in cb.get("env") or []}
            changes += [(ca["name"], n, ea.get(n, {}).get("value"), eb.get(n, {}).get("value")) for n in sorted(set(ea) | set(eb)) if ea.get(n) != eb.get(n)]
    return changes


# --- what the kubelet and the Deployment controller do meanwhile ----------------------------------

class ReadinessProber:
    """The kubelet's readiness probe of a started pod: every periodSeconds; unready after failureThreshold
    failures in a row, ready again after a success."""

    def __init__(self):
        self._stops = {}

    def watch(self, pod) -> None:
        container = next(c for c in pod.containers.values() if not c.spec.init and c.spec.raw.get("readinessProbe"))
        probe = container.spec.raw["readinessProbe"]
        stop = self._stops[pod.name] = threading.Event()

        def loop():
            failures = 0
            while not stop.wait(probe.get("periodSeconds", 10)):
                ok = pod.probe(container, probe)
                failures = 0 if ok else failures + 1
                if stop.is_set():
                    return
                if ok:
                    pod.ready = True
                elif failures >= probe.get("failureThreshold", 3):
                    pod.ready = False

        threading.Thread(target=loop, daemon=True).start()

    def unwatch(self, pod) -> None:
        stop = self._stops.pop(pod.name, None)
        if stop:
            stop.set()

    def close(self) -> None:
        for stop in self._stops.values():
            stop.set()


class Deployment:
    """The server Deployment's pods as the controller keeps them: all replicas at once on the first apply,
    a rolling update with maxSurge 1 / maxUnavailable 0 on a changed template, and pod deletion."""

    def __init__(self, stack: Stack, prober: ReadinessProber):
        self.stack, self.prober = stack, prober
        self.pods, self.gone, self.ready_at = [], [], {}
        spec = stack.deployment["spec"]
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, spec["strategy"]

    def scale_up(self) -> list:
        self.pods = self.stack.start_servers()
        for pod in self.pods:
            self.prober.watch(pod)
        return self.pods

    def delete(self, pod) -> None:
        """The pod leaves the Service's endpoints at once; meanwhile the kubelet runs the preStop hook, then
        sends the stop signal with what is left of the grace period."""
        self.prober.unwatch(pod)
        pod.ready = False
        grace = float(pod.spec.get("terminationGracePeriodSeconds", 30))
        server = next(c for c in pod.containers.values() if not c.spec.init)
        hook = ((server.spec.raw.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command")
        started = time.monotonic()
        if hook:
            pod.exec(server.name, hook, timeout=grace)
        pod.stop(grace=max(1.0, grace - (time.monotonic() - started)))
        # Gone from the API: Service names no longer resolve to it.
        self.stack.cluster.pods.pop(pod.name, None)
        self.gone.append(pod)

    def scale_to_zero(self) -> None:
        threads = [threading.Thread(target=self.delete, args=(pod,)) for pod in self.pods]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.pods = []

    def roll(self, dist: str, before_start=None) -> list:
        """`kubectl apply -f dist` with a changed pod template; returns once the rollout is complete.
        before_start(pod) is called before each new pod starts."""
        self.stack.swap_manifests(dist)
        old, new = list(self.pods), self.stack.server_pods()
        assert not {p.name for p in old} & {p.name for p in new}, "the pod template did not change"
        deleting = []
        self.pods = []
        for pod in new:
            if before_start:
                before_start(pod)
            self.stack.cluster.start_pod(pod)
            self.ready_at[pod.name] = time.time()
            self.prober.watch(pod)
            self.pods.append(pod)
            if old:  # one more new pod available: the old ReplicaSet goes down by one while the next new pod starts
                victim = old.pop(0)
                deleting.append(threading.Thread(target=self.delete, args=(victim,)))
                deleting[-1].start()
        for t in deleting:
            t.join()
        for victim in old:
            self.delete(victim)
        return new


# --- a client that writes all the time ------------------------------------------------------------

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


class LineWatch(threading.Thread):
    """Notes the time a line first appears in a log file (the harness's logs have no time stamps)."""

    def __init__(self, path: str, needles, on_seen=None):
        super().__init__(daemon=True)
        self.path, self.needles, self.on_seen = path, list(needles), on_seen or {}
        self.seen = {}
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.halt.wait(0.02) and len(self.seen) < len(self.needles):
            try:
                with open(self.path, errors="replace") as handle:
                    text = handle.read()
            except FileNotFoundError:
                continue
            for needle in self.needles:
                if needle not in self.seen and needle in text:
                    self.seen[needle] = time.time()
                    if needle in self.on_seen:
                        self.on_seen[needle]()


def served_by(pods) -> dict:
    """seq -> (pod name, HTTP status) from the servers' access logs."""
    out = {}
    for pod in pods:
        for seq, status in ACCESS.findall(pod.log("mlflow")):
            assert int(seq) not in out, f"request {seq} in two access logs"
            out[int(seq)] = (pod.name, int(status))
    return out


def _stat(pid: str):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[3]), fields[0]  # parent, session, state


def server_sessions(pod) -> set:
    """The sessions of the processes the server container's launcher started (MLflow runs in its own)."""
    stats = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stats[int(pid)] = _stat(pid)
        except (OSError, IndexError, ValueError):
            pass
    root = pod.containers["mlflow"].proc.pid
    sessions, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, sid, _) in stats.items():
            if ppid == parent:
                frontier.append(pid)
                sessions.add(sid)
    return sessions - {stats.get(root, (0, 0, ""))[1]}


def processes_in(sessions: set) -> list:
    """Command lines of the running processes in those sessions (orphans included, which a parent walk misses;
    zombies, which run nothing and only wait to be reaped, left out)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            _, sid, state = _stat(pid)
            if sid in sessions and state not in ("Z", "X"):
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    found.append(handle.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except (OSError, IndexError, ValueError):
            pass
    return found


def listening(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
        return True
    except OSError:
        return False


def pod_request(pod, method: str, path: str, body=None, timeout: float = 60):
    """One request straight to a pod (kubectl port-forward pod/...): (status, parsed JSON or text)."""
    req = urllib.request.Request(f"http://{pod.ip}:5000{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(req, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def mlflow_client(stack: Stack, code: str, *args: str, env=None, python=None):
    """A Python snippet run as the user's MLflow client (tracking URI through the NodePort); returns its last stdout line as JSON."""
    home = tempfile.mkdtemp(prefix="mlflow-client-")
    result = subprocess.run([python or os.path.join(os.environ["E2E_VENV"], "bin", "python"), "-W", "ignore", "-c", code, *args],
                            env=client_env(stack.tracking_uri, home, env), cwd=home, capture_output=True, text=True, timeout=300)
    subprocess.run(["rm", "-rf", home])
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- OTLP ------------------------------------------------------------------------------------------

EXPORT_SPAN = r"""
import json, sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
endpoint, headers, name = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
span = TracerProvider(resource=Resource.create({"service.name": "e2e-otlp"})).get_tracer("e2e").start_span(name)
span.set_attribute("e2e.path", name)
span.end()
result = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=30).export([span])
print(json.dumps({"result": result.name, "trace_id": format(span.get_span_context().trace_id, "032x")}))
"""

FIND_TRACES = r"""
import json, sys, mlflow
print(json.dumps(sorted(t.info.trace_id for t in mlflow.search_traces(locations=[sys.argv[1]], return_type="list"))))
"""


def otlp_python() -> str:
    return os.path.join(os.environ["E2E_OTLP_VENV"], "bin", "python")


def export_from_node(stack: Stack, headers: dict, name: str) -> dict:
    """A user's OpenTelemetry SDK outside the cluster, exporting to http://<node>:<nodePort>/v1/traces."""
    result = subprocess.run([otlp_python(), "-c", EXPORT_SPAN, f"{stack.tracking_uri}/v1/traces", json.dumps(headers), name],
                            env={"PATH": BASE_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", "NO_PROXY": "*"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_in_cluster(stack: Stack, pod, headers: dict, name: str) -> dict:
    """The same program in a pod of the cluster, to http://<service>.<namespace>.svc.cluster.local:5000/v1/traces
    (the name resolves through the pod's DNS; the stand-in's is its hosts file, refreshed to the live endpoints)."""
    pod._write_hosts()
    svc = stack.service["metadata"]
    url = f"http://{svc['name']}.{stack.manifests.ns(stack.service)}.svc.cluster.local:5000/v1/traces"
    result = pod.exec("mlflow", [otlp_python(), "-c", EXPORT_SPAN, url, json.dumps(headers), name], timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def check_otlp(stack: Stack, pod, auth=None) -> None:
    headers = {"Authorization": basic(*auth)} if auth else {}
    status, _, text = stack.request("POST", "/api/2.0/mlflow/experiments/create", {"name": f"otlp-{secrets.token_hex(4)}"}, auth=auth)
    assert status == 200, text
    experiment = json.loads(text)["experiment_id"]
    headers["x-mlflow-experiment-id"] = experiment
    via_node = export_from_node(stack, headers, "via-node-port")
    via_service = export_in_cluster(stack, pod, headers, "via-service-name")
    assert via_node["result"] == via_service["result"] == "SUCCESS", (via_node, via_service)
    if auth:
        refused = export_from_node(stack, {"x-mlflow-experiment-id": experiment}, "without-credentials")
        assert refused["result"] == "FAILURE", refused
    found = mlflow_client(stack, FIND_TRACES, experiment, env=ADMIN_ENV if auth else None)
    assert sorted(found) == sorted(f"tr-{r['trace_id']}" for r in (via_node, via_service)), found


# --- the upgrade stack: 3.17.2, then 3.18.0, 2 replicas, the AI gateway on -------------------------

class Upgrade(types.SimpleNamespace):
    def __repr__(self) -> str:  # pytest prints fixtures on failure; the namespace holds the passphrase
        return "Upgrade(...)"


@pytest.fixture(scope="class")
def upgrade(mlflow3_env, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("mlflow3-upgrade"))
    passphrase = secrets.token_urlsafe(32)
    env = env_text(MLFLOW_CRYPTO_KEK_PASSPHRASE=passphrase)
    dists = {"old": synth_app(work, "v3172", {"server": {"image": OLD_IMAGE, "replicas": 2, "nodePort": NODE_PORT}}, env),
             "new": synth_app(work, "v3180", {"server": {"replicas": 2, "nodePort": NODE_PORT}}, env),
             "env-only": synth_app(work, "v3180-env", {"server": {"replicas": 2, "nodePort": NODE_PORT, "databaseWaitTimeout": "4m"}}, env)}
    for dist in dists.values():
        allow_test_provider(dist)
    stack = Stack(dists["old"], tag="mle3u", subnet="10.213.40.0/24")
    prober = ReadinessProber()
    try:
        use_image_stand_ins(stack)
        stack.start_stores()
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        deployment = Deployment(stack, prober)
        deployment.scale_up()
        yield Upgrade(stack=stack, deployment=deployment, dists=dists, work=work, passphrase=passphrase, env=env)
    finally:
        prober.close()
        stack.close()


class TestUpgradeAndGateway:
    state = {}

    def test_1_the_upgrade_from_3_17_2_stops_every_old_server_before_migrating_and_loses_no_write(self, upgrade):
        stack, deployment = upgrade.stack, upgrade.deployment
        old_head, new_head = head_of(os.path.join(os.environ["E2E_VENV_3172"], "bin", "python")), head_of(os.path.join(os.environ["E2E_VENV"], "bin", "python"))
        assert old_head != new_head
        assert stack.psql("SELECT version_num FROM alembic_version") == old_head
        assert stack.request("GET", "/version")[2] == "3.17.2"
        status, _, text = stack.request("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "start_time": int(time.time() * 1000)})
        assert status == 200, text
        run_id = json.loads(text)["run"]["info"]["run_id"]
        TestUpgradeAndGateway.state["run_id"] = run_id
        old_pods = list(deployment.pods)
        old_sessions = {p.name: server_sessions(p) for p in old_pods}
        assert all(old_sessions.values()), old_sessions
        at_fence, watches = {}, []

        def fence_held():
            # The moment the migration may start: no process of an old server left, nothing on their port.
            at_fence["processes"] = {name: processes_in(sessions) for name, sessions in old_sessions.items()}
            at_fence["listening"] = {p.name: listening(p.ip, 5000) for p in old_pods}

        def before_start(pod):
            watches.append(LineWatch(os.path.join(pod.dir, "migrate.log"), [FENCE_ASKED, FENCE_HELD, MIGRATE_DONE], {FENCE_HELD: fence_held}))

        writer = Writer(stack, run_id)
        writer.start()
        time.sleep(3)
        applied = time.time()
        new_pods = deployment.roll(upgrade.dists["new"], before_start)
        rolled = time.time()
        time.sleep(3)
        writer.stop()
        for w in watches:
            w.halt.set()
        watch = watches[0]

        # The schema is MLflow 3.18.0's; both replicas run it.
        assert stack.psql("SELECT version_num FROM alembic_version") == new_head == "f4a9b2c7d1e6"
        assert stack.request("GET", "/version")[2] == "3.18.0"
        migrate = [p.log("migrate") for p in new_pods]
        assert f"schema migration pending (tracking {old_head} -> {new_head})" in migrate[0], migrate[0]
        assert FENCE_HELD in migrate[0], migrate[0]
        assert "the schema is current: no migration" in migrate[1] and FENCE_ASKED not in migrate[1], migrate[1]
        for pod in old_pods:
            assert "fence: a schema migration is waiting; stopping this MLflow" in pod.log("mlflow"), pod.log_tail("mlflow")

        # When the migration began, no 3.17.2 server existed, and none answered a request after it.
        began = watch.seen[FENCE_HELD]
        assert at_fence["processes"] == {p.name: [] for p in old_pods}, at_fence
        assert at_fence["listening"] == {p.name: False for p in old_pods}, at_fence
        served = served_by(old_pods + new_pods)
        old_names = {p.name for p in old_pods}
        acked = writer.acked()
        assert all(seq in served for seq in acked), [s for s in acked if s not in served][:10]
        late = [s for s in acked if served[s][0] in old_names and (writer.records[s][0] >= began or writer.records[s][1] > began)]
        assert late == [], [(s, served[s], writer.records[s], began) for s in late[:10]]
        assert any(served[s][0] in old_names for s in acked) and any(served[s][0] not in old_names for s in acked)

        # Every write the client saw acknowledged is there.
        status, _, text = stack.request("GET", f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=w&max_results=100000")
        assert status == 200, text
        stored = {int(m["value"]) for m in json.loads(text).get("metrics", [])}
        assert set(acked) <= stored, sorted(set(acked) - stored)[:20]

        gap, gap_from, gap_to = writer.longest_gap(applied, rolled)
        fence_wait = re.search(r"fence held after ([0-9.]+)s", migrate[0]).group(1)
        report = {
            "requests": len(writer.records), "acknowledged": len(acked), "failed": len(writer.failed()),
            "unavailable_s": round(gap, 2), "unavailable_from_apply_s": round(gap_from - applied, 2),
            "fence_asked_s": round(watch.seen[FENCE_ASKED] - applied, 2), "fence_wait_s": float(fence_wait),
            "migration_s": round(watch.seen.get(MIGRATE_DONE, began) - began, 2),
            "first_new_ready_s": round(deployment.ready_at[new_pods[0].name] - applied, 2), "rollout_s": round(rolled - applied, 2),
            "served_by_old_after_migration_began": len(late)}
        print(f"\nupgrade 3.17.2 -> 3.18.0: {json.dumps(report)}")
        TestUpgradeAndGateway.state["upgrade"] = report

    def test_2_an_apply_that_changes_only_an_env_value_rolls_with_zero_failed_requests(self, upgrade):
        stack, deployment = upgrade.stack, upgrade.deployment
        changes = env_changes(template(upgrade.dists["new"]), template(upgrade.dists["env-only"]))
        assert changes == [("migrate", "MLFLOW_DB_WAIT_SECONDS", "300", "240")], changes
        old_pods = list(deployment.pods)
        writer = Writer(stack, TestUpgradeAndGateway.state["run_id"])
        writer.start()
        time.sleep(3)
        applied = time.time()
        new_pods = deployment.roll(upgrade.dists["env-only"])
        rolled = time.time()
        time.sleep(3)
        writer.stop()
        for pod in new_pods:
            assert "the schema is current: no migration" in pod.log("migrate") and FENCE_ASKED not in pod.log("migrate"), pod.log("migrate")
        for pod in old_pods:
            assert "fence:" not in pod.log("mlflow"), pod.log_tail("mlflow")
        failed = writer.failed()
        assert failed == [], [(s, writer.records[s]) for s in failed[:10]]
        served = served_by(old_pods + new_pods)
        assert {served[s][0] for s in writer.acked(applied)} == {p.name for p in old_pods + new_pods}
        status, _, text = stack.request("GET", f"/api/2.0/mlflow/metrics/get-history?run_id={TestUpgradeAndGateway.state['run_id']}&metric_key=w&max_results=100000")
        stored = {int(m["value"]) for m in json.loads(text).get("metrics", [])}
        assert set(writer.acked()) <= stored
        gap = writer.longest_gap(applied, rolled)[0]
        print(f"\nenv-only roll: {json.dumps({'requests': len(writer.records), 'failed': len(failed), 'longest_gap_s': round(gap, 2), 'rollout_s': round(rolled - applied, 2)})}")

    def test_3_jobs_are_off_and_the_api_says_how_to_turn_them_on(self, upgrade):
        status, _, text = upgrade.stack.request("POST", "/ajax-api/3.0/jobs/", {"job_name": "invoke_scorer", "params": {}})
        assert status == 500, text
        assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION" in json.loads(text)["detail"], text

    def test_4_otlp_spans_arrive_through_the_node_port_and_the_service_name_without_auth(self, upgrade):
        check_otlp(upgrade.stack, upgrade.deployment.pods[0])

    def test_5_a_provider_key_stored_through_one_replica_is_used_by_the_other_and_survives_kek_rotation(self, upgrade):
        stack, deployment = upgrade.stack, upgrade.deployment
        key = f"sk-e2e-{secrets.token_hex(12)}"
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

        provider = http.server.ThreadingHTTPServer((stack.node_ip, 0), Provider)
        threading.Thread(target=provider.serve_forever, daemon=True).start()
        try:
            a, b = deployment.pods
            status, out = pod_request(a, "POST", "/api/3.0/mlflow/gateway/secrets/create", {
                "secret_name": "e2e-provider", "secret_value": {"api_key": key}, "provider": "openai",
                "auth_config": {"api_base": f"http://{stack.node_ip}:{provider.server_port}/v1"}})
            assert status == 200, out
            secret_id = out["secret"]["secret_id"]
            status, out = pod_request(b, "GET", f"/api/3.0/mlflow/gateway/secrets/get?secret_id={secret_id}")
            assert status == 200 and key not in json.dumps(out), out
            status, out = pod_request(a, "POST", "/api/3.0/mlflow/gateway/model-definitions/create",
                                      {"name": "e2e-model", "secret_id": secret_id, "provider": "openai", "model_name": "e2e-model"})
            assert status == 200, out
            status, out = pod_request(a, "POST", "/api/3.0/mlflow/gateway/endpoints/create", {
                "name": "e2e-chat", "model_configs": [{"model_definition_id": out["model_definition"]["model_definition_id"], "linkage_type": "PRIMARY"}]})
            assert status == 200, out

            def invoke(pod):
                status, out = pod_request(pod, "POST", "/gateway/e2e-chat/mlflow/invocations", {"messages": [{"role": "user", "content": "ping"}]})
                assert status == 200 and "pong" in json.dumps(out), (pod.name, status, out)

            invoke(b)
            assert seen == [f"Bearer {key}"]
            assert stack.psql("SELECT kek_version FROM secrets") == "1"
            assert stack.psql(f"SELECT count(*) FROM secrets WHERE position(convert_to('{key}', 'UTF8') IN encrypted_value) > 0") == "0"

            # Rotation: every server stopped, `mlflow crypto rotate-kek` with the old passphrase in its env, then both
            # Secret keys changed (.env), synth, apply, servers back.
            deployment.scale_to_zero()
            new_passphrase = secrets.token_urlsafe(32)
            one_off = deployment.gone[-1]  # kubectl run with the server's image and env (the Secret as it was)
            rotated = one_off.exec("mlflow", ["mlflow", "crypto", "rotate-kek", "--new-passphrase", new_passphrase, "--yes"], timeout=300)
            assert rotated.returncode == 0, (rotated.stdout.decode()[-2000:], rotated.stderr.decode()[-3000:])
            assert stack.psql("SELECT kek_version FROM secrets") == "2"
            env = upgrade.env.replace(upgrade.passphrase, new_passphrase) + "MLFLOW_CRYPTO_KEK_VERSION=2\n"
            dist = synth_app(upgrade.work, "v3180-rotated", {"server": {"replicas": 2, "nodePort": NODE_PORT, "databaseWaitTimeout": "4m"}}, env)
            allow_test_provider(dist)
            stack.swap_manifests(dist)
            assert stack.secret()["MLFLOW_CRYPTO_KEK_PASSPHRASE"] == new_passphrase and stack.secret()["MLFLOW_CRYPTO_KEK_VERSION"] == "2"
            for pod in deployment.scale_up():
                invoke(pod)
            assert seen == [f"Bearer {key}"] * 3
        finally:
            provider.shutdown()
            provider.server_close()
        # No server ever fell back to MLflow's shared development passphrase.
        for pod in deployment.gone + deployment.pods:
            assert KEK_WARNING not in pod.log("mlflow"), (pod.name, pod.log_tail("mlflow"))


# --- SeaweedFS, basic auth and workspaces ---------------------------------------------------------

@pytest.fixture(scope="class")
def seaweed(mlflow3_env, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("mlflow3-seaweedfs"))
    config = {"server": {"replicas": 1, "nodePort": NODE_PORT, "workspaces": {"enabled": True}}, "artifactStore": {"seaweedfs": {}}}
    dist = synth_app(work, "seaweedfs", config, env_text(MLFLOW_TRACKING_USERNAME=ADMIN[0], MLFLOW_TRACKING_PASSWORD=ADMIN[1]))
    stack = Stack(dist, tag="mle3s", subnet="10.213.41.0/24")
    try:
        use_image_stand_ins(stack)
        stack.start_stores()
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        stack.start_servers()
        yield stack
    finally:
        stack.close()


def s3(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """mc on the node against the SeaweedFS pod's S3 port, with the Secret's credentials."""
    config = os.path.join(stack.cluster.run_dir, "mc-seaweedfs")
    env = dict(os.environ, MC_CONFIG_DIR=config)
    if not os.path.exists(os.path.join(config, "config.json")):
        s, pod = stack.secret(), stack.cluster.plan(stack.minio)[0]
        subprocess.run([os.environ["E2E_MC"], "alias", "set", "sw", f"http://{pod.ip}:8333", s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"]],
                       env=env, check=True, capture_output=True, timeout=60)
    result = subprocess.run([os.environ["E2E_MC"], "--json", *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


WORKSPACES = r"""
import json, mlflow
from mlflow import MlflowClient
ids, seen = {}, {}
for ws in ("team-a", "team-b"):
    mlflow.create_workspace(ws, description=f"{ws} experiments")
    mlflow.set_workspace(ws)
    ids[ws] = mlflow.create_experiment("shared-name")
    with mlflow.start_run(experiment_id=ids[ws]):
        mlflow.log_param("team", ws)
for ws in ("team-a", "team-b", "default"):
    mlflow.set_workspace(ws)
    seen[ws] = sorted([e.experiment_id, e.name] for e in MlflowClient().search_experiments())
mlflow.set_workspace("team-b")
try:
    MlflowClient().get_experiment(ids["team-a"])
    cross = "readable"
except mlflow.exceptions.MlflowException as error:
    cross = error.error_code
print(json.dumps({"workspaces": sorted(w.name for w in mlflow.list_workspaces()), "ids": ids, "seen": seen, "cross": cross}))
"""


class TestSeaweedfsAuthWorkspaces:
    def test_1_the_client_workflow_stores_its_artifacts_in_seaweedfs(self, seaweed):
        stack = seaweed
        weed = stack.cluster.plan(stack.minio)[0]
        assert weed.containers["seaweedfs"].spec.argv[0] == os.environ["E2E_WEED"]
        out = run_client(stack.tracking_uri, "write", env=ADMIN_ENV)
        assert out["predicted"] == out["expected"] and out["artifact_uri"].startswith("mlflow-artifacts:"), out
        run_client(stack.tracking_uri, "verify", json.dumps(out), env=ADMIN_ENV)
        bucket, prefix = stack.artifact_root()
        keys = [json.loads(line)["key"] for line in s3(stack, "ls", "--recursive", f"sw/{bucket}/{prefix}/").stdout.splitlines() if line.strip()]
        note = next(k for k in keys if f"{out['experiment_id']}/{out['run_id']}/artifacts/notes/hello.txt" in k)
        assert any(k.endswith("MLmodel") for k in keys), keys
        assert "hello from the e2e client" in s3(stack, "cat", f"sw/{bucket}/{prefix}/{note}").stdout
        # The objects are on the claim, and a restarted SeaweedFS serves them again.
        data = stack.cluster.claim_dir(f"data-{stack.minio['metadata']['name']}-0", None, None)
        assert any(name.endswith(".dat") for _, _, files in os.walk(data) for name in files), os.listdir(data)
        stack.restart_pod(weed)
        run_client(stack.tracking_uri, "verify", json.dumps(out), env=ADMIN_ENV)

    def test_2_otlp_spans_arrive_through_the_node_port_and_the_service_name_with_auth(self, seaweed):
        check_otlp(seaweed, seaweed.server_pods()[0], auth=ADMIN)

    def test_3_two_workspaces_keep_their_experiments_apart(self, seaweed):
        out = mlflow_client(seaweed, WORKSPACES, env=ADMIN_ENV)
        ids = out["ids"]
        assert {"team-a", "team-b", "default"} <= set(out["workspaces"]), out
        assert ids["team-a"] != ids["team-b"]
        assert out["seen"]["team-a"] == [[ids["team-a"], "shared-name"]], out
        assert out["seen"]["team-b"] == [[ids["team-b"], "shared-name"]], out
        assert "shared-name" not in {name for _, name in out["seen"]["default"]}, out
        assert out["cross"] == "RESOURCE_DOES_NOT_EXIST", out
