"""Users' deployments, each synthesized from configuration only: e2e/scenarios/<letter>-<name>/ holds the
settings (`mlflow.yaml`, absent for the default), the credentials (`credentials.env`, the user's .env) and,
for an existing Secret, the Secret the user creates (`secret.yaml`). `node scripts/synth.js` turns them into
manifests exactly as for a user; each is applied to the real node with `kubectl apply -f` and ends with the
MLflow client's whole workflow (log, artifacts, register, load model), through the NodePort, with only the
tracking URI.

What the users already run is there before they install MLflow:
- in the cluster, a PostgreSQL StatefulSet and Service `postgres` in `default` (their own manifests);
- outside the cluster, on an address of the machine that no pod has (10.213.20.1, on a bridge of its own):
  MinIO on port 9100 as the S3 endpoint, and Debian's MariaDB on port 3306. Pods reach it through their
  default route, the node's bridge.
The scenarios run one after another (they share namespace `default` and node port 30003); (e1) runs two
installations at once, in namespaces team-a and team-b. The servers run 1 replica, except in (c), where
two start together on an empty database. NetworkPolicies are not enforced on this node: the connections
are made for real and netpol-analyzer says what the policies make of them (e2e/README.md)."""
import concurrent.futures
import contextlib
import http.client
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import yaml

from node.stack import (E2E, NO_PROXY, NODE_IP, REPO, Pod, Stack, kubectl, pods_report, policy_allows, policy_allows_to_ip, probe_pod,
                        read_manifests, run_client)

pytestmark = pytest.mark.stack

SCENARIOS = os.path.join(E2E, "scenarios")
OUTSIDE_BRIDGE = "mle2so"
OUTSIDE_IP = "10.213.20.1"
OUTSIDE_RUN = "/tmp/cdk8s-mlflow-outside"  # fixed, so that a killed run's processes and files are found
S3_PORT = 9100
MARIADB_PORT = 3306
S3_ENDPOINT = f"http://{OUTSIDE_IP}:{S3_PORT}"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


# --- the scenario files ---------------------------------------------------------------------------------

def scenario_dir(name: str) -> str:
    return os.path.join(SCENARIOS, name)


def read_env(path: str) -> dict:
    """The KEY=value and KEY='value' lines of a scenario's credentials.env."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            values[key] = value
    return values


def credentials(name: str) -> dict:
    return read_env(os.path.join(scenario_dir(name), "credentials.env"))


def settings(name: str) -> dict:
    path = os.path.join(scenario_dir(name), "mlflow.yaml")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def synth_scenario(outdir: str, scenario: str, config_file=None) -> subprocess.CompletedProcess:
    """`npm run synth` as the scenario's user runs it: MLFLOW_CONFIG_FILE and MLFLOW_ENV_FILE name its files. The
    working directory is empty, so no mlflow.yaml or .env of the developer's checkout is read."""
    d = scenario_dir(scenario)
    config_file = config_file or os.path.join(d, "mlflow.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_CONFIG_FILE", "MLFLOW_ENV_FILE")}
    env.update(CDK8S_OUTDIR=outdir, CDK8S_CHECK_UPGRADE="false")
    if os.path.exists(config_file):
        env["MLFLOW_CONFIG_FILE"] = config_file
    if os.path.exists(os.path.join(d, "credentials.env")):
        env["MLFLOW_ENV_FILE"] = os.path.join(d, "credentials.env")
    cwd = tempfile.mkdtemp(prefix="cdk8s-mlflow-synth-cwd-")
    try:
        return subprocess.run(["node", os.path.join(REPO, "scripts", "synth.js")], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def scenario_dist(tmp_path, scenario: str, replicas=1) -> str:
    """The scenario's synth plus the Secret its user applies beside it (secret.yaml). `replicas` servers,
    as `kubectl scale` would make it, where their number does not matter (each start is 15 s of CPU here);
    None keeps the synth's."""
    out = str(tmp_path / "dist")
    os.makedirs(out, exist_ok=True)
    result = synth_scenario(out, scenario)
    assert result.returncode == 0, result.stdout + result.stderr
    secret = os.path.join(scenario_dir(scenario), "secret.yaml")
    if os.path.exists(secret):
        shutil.copyfile(secret, os.path.join(out, "secret.yaml"))
    if replicas is not None:
        path = os.path.join(out, "mlflow.k8s.yaml")
        docs = read_manifests(path)
        for doc in docs:
            if doc["kind"] == "Deployment":
                doc["spec"]["replicas"] = replicas
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(docs, handle, sort_keys=False)
    return out


def pod_template(workload: dict) -> dict:
    return (workload["spec"].get("jobTemplate") or workload)["spec"]["template"]


# --- what the users already run ---------------------------------------------------------------------------

def existing_postgres(user: str, password: str, database: str):
    """A team's own PostgreSQL in the cluster: StatefulSet and Service `postgres` in `default`."""
    labels = {"app": "postgres"}
    pod = {
        "securityContext": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999, "runAsNonRoot": True},
        "containers": [{
            "name": "postgres", "image": "docker.io/library/postgres:17.7-bookworm", "imagePullPolicy": "IfNotPresent",
            "env": [{"name": "POSTGRES_USER", "value": user}, {"name": "POSTGRES_PASSWORD", "value": password},
                    {"name": "POSTGRES_DB", "value": database}, {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
            "ports": [{"containerPort": 5432, "name": "postgres"}],
            "readinessProbe": {"exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", user, "-d", database]},
                               "periodSeconds": 2, "failureThreshold": 60},
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
        }],
    }
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "postgres", "namespace": "default"},
         "spec": {"selector": labels, "ports": [{"port": 5432, "targetPort": 5432}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "postgres", "namespace": "default"},
         "spec": {"serviceName": "postgres", "replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod},
                  "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                      "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}},
    ]


USERS_POSTGRES = Pod("postgres-0")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr}")
    return result


class Outside:
    """An address of the machine outside every pod network, on a bridge of its own, with the S3 endpoint
    (MinIO) and, on demand, MariaDB. A killed run's bridge and processes (recorded with their executable
    in OUTSIDE_RUN/pids) are removed before a new one starts."""

    def __init__(self, s3_user: str, s3_password: str):
        self.dir = OUTSIDE_RUN
        self.remove()
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)  # MariaDB runs as the mysql user
        sh("ip", "link", "add", OUTSIDE_BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", OUTSIDE_BRIDGE)
        sh("ip", "link", "set", OUTSIDE_BRIDGE, "up")
        self.procs = []
        self.s3_user, self.s3_password = s3_user, s3_password
        data = os.path.join(self.dir, "s3-data")
        os.makedirs(data)
        self._start("minio", [os.environ["E2E_MINIO"], "server", "--quiet", "--address", f"{OUTSIDE_IP}:{S3_PORT}",
                              "--console-address", f"{OUTSIDE_IP}:{S3_PORT + 1}", data],
                    {"MINIO_ROOT_USER": s3_user, "MINIO_ROOT_PASSWORD": s3_password, "MINIO_BROWSER": "off", "HOME": self.dir})
        self._wait("S3 endpoint", lambda: NO_PROXY.open(f"{S3_ENDPOINT}/minio/health/ready", timeout=2).status == 200)
        self.mc("alias", "set", "outside", S3_ENDPOINT, s3_user, s3_password)
        self.mariadb_socket = None

    def _start(self, name, argv, env):
        with open(os.path.join(self.dir, f"{name}.log"), "ab") as log:
            proc = subprocess.Popen(argv, env={"PATH": PATH, **env}, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        with open(os.path.join(self.dir, "pids"), "a", encoding="utf-8") as pids:
            pids.write(f"{proc.pid} {os.path.realpath(shutil.which(argv[0], path=PATH))}\n")

    def log(self, name: str) -> str:
        with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as handle:
            return handle.read()[-3000:]

    def _wait(self, what, ready, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} at {OUTSIDE_IP} did not come up:\n" + "\n".join(self.log(n[:-4]) for n in os.listdir(self.dir) if n.endswith(".log")))
            time.sleep(0.5)

    def mc(self, *args, check=True) -> subprocess.CompletedProcess:
        env = dict(os.environ, MC_CONFIG_DIR=os.path.join(self.dir, "mc"))
        result = subprocess.run([os.environ["E2E_MC"], *args], env=env, capture_output=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"mc {' '.join(args)}: {result.stdout.decode()}{result.stderr.decode()}")
        return result

    def keys(self, bucket: str):
        out = self.mc("--json", "ls", "--recursive", f"outside/{bucket}/", check=False).stdout.decode()
        return sorted(json.loads(line)["key"] for line in out.splitlines() if line.strip() and json.loads(line).get("key"))

    # MariaDB, as a DBA would have it: its own server, a database and a user for MLflow.
    def start_mariadb(self, database: str, user: str, password: str) -> None:
        if self.mariadb_socket:
            return
        base = os.path.join(self.dir, "mariadb")
        os.makedirs(base)
        mysql = pwd.getpwnam("mysql")
        os.chown(base, mysql.pw_uid, mysql.pw_gid)
        data, sock = os.path.join(base, "data"), os.path.join(base, "mysqld.sock")
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={data}", "--skip-test-db",
                        "--auth-root-authentication-method=socket"], check=True, capture_output=True, timeout=300)
        self._start("mariadbd", ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={data}", f"--socket={sock}",
                                 f"--bind-address={OUTSIDE_IP}", f"--port={MARIADB_PORT}", f"--pid-file={base}/mariadbd.pid",
                                 "--skip-name-resolve", "--innodb-buffer-pool-size=64M"], {})
        self.mariadb_socket = sock
        self._wait("MariaDB", lambda: self.sql("SELECT 1") == "1", timeout=120)
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        self.sql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4; CREATE USER '{user}'@'%' IDENTIFIED BY '{quoted}'; "
                 f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%';")

    def sql(self, statement: str, database: str = "") -> str:
        result = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.mariadb_socket}", "-u", "root", "-N", "-B", "-e", statement,
                                 *([database] if database else [])], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb: {result.stderr}")
        return result.stdout.strip()

    def close(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=30)
        if os.environ.get("E2E_KEEP") != "1":
            self.remove()
        else:
            sh("ip", "link", "del", OUTSIDE_BRIDGE, check=False)

    @staticmethod
    def remove() -> None:
        """Ends the recorded processes still running their executable, removes the bridge and the files."""
        try:
            with open(os.path.join(OUTSIDE_RUN, "pids"), encoding="utf-8") as handle:
                recorded = [line.split(" ", 1) for line in handle.read().splitlines() if line]
        except FileNotFoundError:
            recorded = []
        for pid, exe in recorded:
            try:
                if os.readlink(f"/proc/{pid}/exe") == exe:
                    os.kill(int(pid), 9)
            except (FileNotFoundError, ProcessLookupError):
                pass
        if sh("ip", "link", "show", OUTSIDE_BRIDGE, check=False).returncode == 0:
            sh("ip", "link", "del", OUTSIDE_BRIDGE)
        shutil.rmtree(OUTSIDE_RUN, ignore_errors=True)


@pytest.fixture(scope="module")
def outside(setup_env):
    c = credentials("b-existing-postgres-external-s3")
    o = Outside(c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"])
    try:
        yield o
    finally:
        o.close()


# --- running a scenario -------------------------------------------------------------------------------------

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


def workflow(stack: Stack, env=None) -> dict:
    """The user's whole client workflow through the NodePort, then everything read back."""
    out = run_client(stack.tracking_uri, "write", env=env)
    assert out["predicted"] == out["expected"]
    assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]
    run_client(stack.tracking_uri, "verify", json.dumps(out), env=env)
    return out


def psql(pod: Pod, user: str, database: str, sql: str) -> str:
    result = pod.exec("postgres", ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-U", user, "-d", database, "-c", sql])
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def outside_verdicts(stack: Stack, component: str, *ports: int) -> dict:
    """netpol-analyzer: on which of `ports` do the live NetworkPolicies let `component`'s pods reach the
    outside address? Asked of a server pod, or of a pod that carries the Job's pod labels."""
    if component == "tracking-server":
        return {port: policy_allows_to_ip(stack.server_pods()[0], OUTSIDE_IP, port) for port in ports}
    template = pod_template(next(o for o in stack.objects if o["kind"] in ("Job", "CronJob")
                                 and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == component))
    name = f"e2e-probe-{component}"
    probe = probe_pod(name, template["metadata"]["labels"], template["spec"]["containers"][0]["image"], stack.namespace)
    try:
        return {port: policy_allows_to_ip(probe, OUTSIDE_IP, port) for port in ports}
    finally:
        kubectl("delete", "pod", name, "-n", stack.namespace, "--wait=false", check=False)


def raw_get(stack: Stack, path: str, host: str = None):
    """GET with the path sent exactly as written (no client-side normalisation of `..` or `%2e`)."""
    conn = http.client.HTTPConnection(NODE_IP, stack.node_port, timeout=60)
    try:
        conn.request("GET", path, headers={"Host": host or f"{NODE_IP}:{stack.node_port}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def backups_through_the_proxy(stack: Stack, dump_keys, artifact_prefix: str):
    """What a client can get of the dumps through the artifact proxy: listings that name a dump and downloads
    that return one, for the plain and the traversing paths a curious client would try."""
    up = "../" * (artifact_prefix.count("/") + 1 if artifact_prefix else 1)
    found = []
    listings = ["", "backups"] + [p for key in dump_keys for p in (f"{up}{os.path.dirname(key)}", f"../{os.path.dirname(key)}")]
    for path in listings:
        for query in (urllib.parse.quote(path, safe=""), path.replace("../", "..%2F"), urllib.parse.quote(urllib.parse.quote(path, safe=""), safe="")):
            status, body = raw_get(stack, f"/api/2.0/mlflow-artifacts/artifacts?path={query}")
            if status == 200 and b".dump" in body:
                found.append(f"list {query}: {body[:300]!r}")
            if path == "" and status == 200:
                names = [f["path"] for f in json.loads(body).get("files", [])]
                assert names and all(n.isdigit() for n in names), names  # experiment folders only
    for key in dump_keys:
        for path in (f"{up}{key}", f"../{key}", f"{up.replace('../', '..%2F')}{key}", f"{up.replace('../', '%2e%2e/')}{key}",
                     urllib.parse.quote(f"{up}{key}", safe=""), key):
            status, body = raw_get(stack, f"/api/2.0/mlflow-artifacts/artifacts/{path}")
            if status == 200 and body[:5] == b"PGDMP":
                found.append(f"download {path}")
    return found


def dump_experiments(cat, key: str) -> str:
    """The experiments table of a dump, as SQL text (pg_restore on the machine reads pg_dump's custom format)."""
    dump = cat(key)
    assert dump[:5] == b"PGDMP", dump[:16]
    result = subprocess.run([os.path.join(os.environ["E2E_PG_BIN"], "pg_restore"), "-f", "-", "--data-only", "-t", "experiments"],
                            input=dump, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


# --- (a) the default ----------------------------------------------------------------------------------------

def test_a_the_default_app(setup_env, tmp_path):
    assert not os.path.exists(os.path.join(scenario_dir("a-default"), "mlflow.yaml"))
    with deployed(scenario_dist(tmp_path, "a-default")) as stack:
        assert {stack.postgres["metadata"]["name"], stack.minio["metadata"]["name"]} == {"mlflow-postgres", "mlflow-minio"}
        out = workflow(stack)
        bucket, prefix = stack.artifact_root()
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/{out['experiment_id']}/{out['run_id']}/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys
        assert stack.psql(f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"


# --- (b) an existing PostgreSQL Service, an S3 endpoint outside the cluster, a public host ---------------------

def test_b_existing_postgres_service_external_s3_and_a_public_host(outside, tmp_path):
    name = "b-existing-postgres-external-s3"
    cred, conf = credentials(name), settings(name)
    assert conf["backendStore"]["external"]["host"] == "postgres" and cred["POSTGRES_DB"] == "mlops"
    assert conf["artifactStore"]["s3"]["endpoint"] == S3_ENDPOINT
    dist = scenario_dist(tmp_path, name)
    synthesized = read_manifests(dist)
    # No PostgreSQL and no MinIO of the stack's own.
    assert not [o for o in synthesized if o["kind"] == "StatefulSet"]
    assert not [o for o in synthesized if o["kind"] == "CronJob"]  # backups of an external database are its owner's
    with deployed(dist, *existing_postgres(cred["POSTGRES_USER"], cred["POSTGRES_PASSWORD"], cred["POSTGRES_DB"])) as stack:
        # The bucket Job made its bucket at the endpoint (a pod reached the outside address for real).
        bucket, _, prefix = cred["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):].partition("/")
        assert outside.mc("stat", f"outside/{bucket}", check=False).returncode == 0, outside.log("minio")
        # The policies admit the endpoint, and not a port there that nothing of this configuration needs.
        assert outside_verdicts(stack, "tracking-server", S3_PORT, MARIADB_PORT) == {S3_PORT: True, MARIADB_PORT: False}
        assert outside_verdicts(stack, "bucket-job", S3_PORT, 5432) == {S3_PORT: True, 5432: False}
        # The team's PostgreSQL, reached through its Service: the policy's rule for an external host is an ipBlock.
        assert policy_allows(stack.server_pods()[0], USERS_POSTGRES, 5432)
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        public = conf["server"]["publicHosts"][0]
        port = stack.node_port
        assert raw_get(stack, search, host=f"{public}:{port}")[0] == 200
        for unlisted in (f"54.180.12.35:{port}", f"ec2-54-180-12-34.ap-northeast-2.compute.amazonaws.com:{port}"):
            status, body = raw_get(stack, search, host=unlisted)
            assert (status, b"Invalid Host header" in body) == (403, True), (unlisted, status, body[:200])
        out = workflow(stack)
        assert psql(USERS_POSTGRES, cred["POSTGRES_USER"], "mlops", f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        keys = outside.keys(bucket)
        assert any(k.startswith(f"{prefix}/{out['experiment_id']}/{out['run_id']}/") and k.endswith("notes/hello.txt") for k in keys), keys


# --- (c) an existing MariaDB, the in-cluster MinIO, basic auth -------------------------------------------------

def test_c_existing_mariadb_in_cluster_minio_and_basic_auth(outside, tmp_path):
    from test_production import head_of
    name = "c-mariadb-minio-auth"
    cred, conf = credentials(name), settings(name)
    external = conf["backendStore"]["external"]
    assert (external["engine"], external["host"], external["port"]) == ("mysql", OUTSIDE_IP, MARIADB_PORT)
    outside.start_mariadb(cred["POSTGRES_DB"], cred["POSTGRES_USER"], cred["POSTGRES_PASSWORD"])
    assert "MariaDB" in outside.sql("SELECT VERSION()") or "mariadb" in outside.sql("SELECT @@version_comment").lower()
    # Both replicas of the synth start together on the empty database: the migrate steps take turns under GET_LOCK.
    with deployed(scenario_dist(tmp_path, name, replicas=None)) as stack:
        uri = stack.secret()["MLFLOW_BACKEND_STORE_URI"]
        assert uri == (f"mysql+pymysql://{cred['POSTGRES_USER']}:{urllib.parse.quote(cred['POSTGRES_PASSWORD'], safe='')}"
                       f"@{OUTSIDE_IP}:{MARIADB_PORT}/{cred['POSTGRES_DB']}"), uri
        assert outside_verdicts(stack, "tracking-server", MARIADB_PORT, S3_PORT) == {MARIADB_PORT: True, S3_PORT: False}
        pods = stack.server_pods()
        assert len(pods) == 2, pods
        restarts = {p.name: [(c["name"], c["restartCount"]) for c in p.get()["status"].get("initContainerStatuses", []) + p.get()["status"]["containerStatuses"]
                             if c["restartCount"]] for p in pods}
        assert not any(restarts.values()), restarts
        logs = [p.log("migrate") for p in pods]
        assert sum("creating the mlflow schema" in log.lower() for log in logs) == 1, logs
        assert all(f"schema at {OUTSIDE_IP}:{MARIADB_PORT}/{cred['POSTGRES_DB']} is current" in log for log in logs), logs
        db = cred["POSTGRES_DB"]
        assert outside.sql("SELECT version_num FROM alembic_version", db) == head_of("mlflow.store.db_migrations")
        assert outside.sql("SELECT version_num FROM alembic_version_auth", db) == head_of("mlflow.server.auth.db.migrations")
        admin = (cred["MLFLOW_TRACKING_USERNAME"], cred["MLFLOW_TRACKING_PASSWORD"])
        assert outside.sql("SELECT CONCAT(username, ' ', is_admin) FROM users", db) == f"{admin[0]} 1"
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        assert stack.request("GET", search)[0] == 401
        assert stack.request("GET", search, auth=admin)[0] == 200
        out = workflow(stack, env={"MLFLOW_TRACKING_USERNAME": admin[0], "MLFLOW_TRACKING_PASSWORD": admin[1]})
        assert outside.sql(f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'", db) == "FINISHED"
        assert outside.sql(f"SELECT CONCAT(version, ' ', status) FROM model_versions WHERE name = '{out['model_name']}'", db) == "1 READY"
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/mlflow/artifacts/{out['experiment_id']}/{out['run_id']}/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys


# --- (d) an existing Secret with exactly the documented keys, external stores --------------------------------------

def documented_secret_keys() -> set:
    """The keys the README's existing-Secret table lists for this configuration: those needed "always", and
    MLFLOW_S3_ENDPOINT_URL ("with any store but AWS S3"); not the in-cluster PostgreSQL's or basic auth's."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    table = re.search(r"\*\*Existing Secret \(GitOps\)\.\*\*.*?\n\n(\| key \| needed when \|\n.*?)\n\n", readme, re.S)
    assert table, "the README's existing-Secret table"
    keys = set()
    for row in table.group(1).splitlines()[2:]:
        names, when = row.strip("|").split("|", 1)
        if when.strip().startswith("always") or when.strip().startswith("with any store but AWS S3"):
            keys |= set(re.findall(r"`([A-Z0-9_]+)`", names))
    assert {"MLFLOW_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID", "MLFLOW_S3_ENDPOINT_URL"} <= keys, keys
    return keys


def test_d_existing_secret_with_the_documented_keys_and_external_stores(outside, tmp_path):
    name = "d-existing-secret"
    d = scenario_dir(name)
    assert not os.path.exists(os.path.join(d, "credentials.env"))  # the Secret replaces the .env
    with open(os.path.join(d, "secret.yaml"), encoding="utf-8") as handle:
        secret = yaml.safe_load(handle)
    values = secret["stringData"]
    assert set(values) == documented_secret_keys(), sorted(set(values) ^ documented_secret_keys())
    assert settings(name)["credentials"]["existingSecret"] == secret["metadata"]["name"]
    assert values["MLFLOW_S3_ENDPOINT_URL"] == settings(name)["artifactStore"]["s3"]["endpoint"]
    db = urllib.parse.urlsplit(values["MLFLOW_BACKEND_STORE_URI"])
    user, password, database = urllib.parse.unquote(db.username), urllib.parse.unquote(db.password), db.path.lstrip("/")
    dist = scenario_dist(tmp_path, name)
    synthesized = read_manifests(os.path.join(dist, "mlflow.k8s.yaml"))
    assert not [o for o in synthesized if o["kind"] == "Secret"], "no credential in dist/"
    refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"], bool(e["valueFrom"]["secretKeyRef"].get("optional")))
            for w in synthesized if w["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
            for c in pod_template(w)["spec"].get("containers", []) + pod_template(w)["spec"].get("initContainers", [])
            for e in c.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}
    assert {r[0] for r in refs} == {secret["metadata"]["name"]}, refs
    # Exactly: every key the pods need is in the Secret, and every key of the Secret is read.
    assert {key for _, key, optional in refs if not optional} == set(values), sorted(refs)
    with deployed(dist, *existing_postgres(user, password, database)) as stack:
        out = workflow(stack)
        assert psql(USERS_POSTGRES, user, database, f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        bucket, _, prefix = values["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):].partition("/")
        assert any(k.startswith(f"{prefix}/{out['experiment_id']}/{out['run_id']}/") for k in outside.keys(bucket))


# --- (e) installations sharing a bucket, and an artifact root at a bucket's root -----------------------------------

TEAMS = {"team-a": "e-shared-bucket-team-a", "team-b": "e-shared-bucket-team-b"}


def test_e1_two_installations_sharing_a_bucket_never_collide_and_never_serve_a_backup(outside, tmp_path):
    roots = {team: credentials(scenario)["MLFLOW_S3_ARTIFACT_ROOT"] for team, scenario in TEAMS.items()}
    buckets = {r[len("s3://"):].split("/")[0] for r in roots.values()}
    assert len(buckets) == 1 and len(set(roots.values())) == 2, roots
    bucket = buckets.pop()
    stacks = {}
    try:
        for team, scenario in TEAMS.items():
            assert settings(scenario)["namespace"] == team
            kubectl("create", "namespace", team)  # the README: a namespace of its own is created once, outside the stack
            stacks[team] = Stack(scenario_dist(tmp_path / team, scenario))
            assert stacks[team].namespace == team
            stacks[team].apply()
        for stack in stacks.values():
            stack.wait_ready()
        assert len({s.node_port for s in stacks.values()}) == 2
        for team, stack in stacks.items():
            assert outside_verdicts(stack, "backup", S3_PORT, MARIADB_PORT) == {S3_PORT: True, MARIADB_PORT: False}, team
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = dict(zip(stacks, pool.map(workflow, stacks.values())))
            # Both schedules fire at the same moment.
            jobs = dict(zip(stacks, pool.map(lambda s: s.run_cronjob("backup", "upload"), stacks.values())))
        dumps = {}
        for team, (code, pod) in jobs.items():
            log = pod.log("upload")
            assert code == 0, pod.log("dump") + log
            written = re.search(rf"^backup: wrote s3://{bucket}/(backups/{team}/mlflow/mlflow-\d{{8}}T\d{{6}}Z\.dump)$", log, re.M)
            assert written, log
            dumps[team] = written.group(1)
        keys = outside.keys(bucket)
        assert sorted(k for k in keys if k.startswith("backups/")) == sorted(dumps.values()), keys  # no .partial left, nothing overwritten
        for team, run in runs.items():
            prefix = roots[team][len(f"s3://{bucket}/"):]
            mine = [k for k in keys if k.startswith(prefix + "/")]
            assert any(f"/{run['run_id']}/" in k for k in mine), mine
            others = [r["run_id"] for t, r in runs.items() if t != team]
            assert not [k for k in mine if any(o in k for o in others) or k.endswith(".dump")], mine
        # Each dump is its own installation's database.
        cat = lambda key: outside.mc("cat", f"outside/{bucket}/{key}").stdout  # noqa: E731
        for team, key in dumps.items():
            experiments = dump_experiments(cat, key)
            assert f"e2e-{runs[team]['tag']}" in experiments
            assert all(f"e2e-{r['tag']}" not in experiments for t, r in runs.items() if t != team)
        # No client of either installation lists or downloads a dump (its own or the other's) through the proxy.
        for team, stack in stacks.items():
            prefix = roots[team][len(f"s3://{bucket}/"):]
            assert backups_through_the_proxy(stack, list(dumps.values()), prefix) == []
    finally:
        for stack in stacks.values():
            stack.delete()
        kubectl("delete", "namespace", *TEAMS, "--ignore-not-found", "--wait=false", check=False)


def test_e2_an_artifact_root_at_the_bucket_root_keeps_backups_in_their_own_bucket(setup_env, tmp_path):
    name = "e-bucket-root"
    root = credentials(name)["MLFLOW_S3_ARTIFACT_ROOT"]
    assert re.fullmatch(r"s3://[a-z0-9.-]+", root), root
    backup_bucket = settings(name)["backup"]["bucket"]
    with deployed(scenario_dist(tmp_path, name)) as stack:
        out = workflow(stack)
        code, pod = stack.run_cronjob("backup", "upload")
        log = pod.log("upload")
        assert code == 0, pod.log("dump") + log
        written = re.search(rf"^backup: wrote s3://{backup_bucket}/(backups/default/mlflow/mlflow-\d{{8}}T\d{{6}}Z\.dump)$", log, re.M)
        assert written, log
        bucket = root[len("s3://"):]
        artifacts = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/")]
        assert any(f"/{out['run_id']}/" in k for k in artifacts) and not [k for k in artifacts if k.endswith(".dump") or k.startswith("backups")], artifacts
        assert [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{backup_bucket}/")] == [written.group(1)]
        cat = lambda key: subprocess.run([os.environ["E2E_MC"], "cat", f"e2e/{backup_bucket}/{key}"], capture_output=True, timeout=60,  # noqa: E731
                                         env=dict(os.environ, MC_CONFIG_DIR=stack.mc_config)).stdout
        assert f"e2e-{out['tag']}" in dump_experiments(cat, written.group(1))
        # Through the proxy the dump's own bucket is out of reach (`..` past the bucket root included).
        assert backups_through_the_proxy(stack, [f"../{backup_bucket}/{written.group(1)}", written.group(1)], "") == []


def test_e3_an_artifact_root_at_the_bucket_root_without_a_backup_bucket_is_refused(tmp_path):
    conf = settings("e-bucket-root")
    del conf["backup"]["bucket"]
    if not conf["backup"]:
        del conf["backup"]
    config = tmp_path / "mlflow.yaml"
    config.write_text(yaml.safe_dump(conf))
    out = tmp_path / "dist"
    result = synth_scenario(str(out), "e-bucket-root", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    root = credentials("e-bucket-root")["MLFLOW_S3_ARTIFACT_ROOT"]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and f"inside the artifact root {root}" in error and "backup.bucket" in error, result.stderr
    assert not out.exists() or not list(out.glob("*.k8s.yaml")), "nothing written"
