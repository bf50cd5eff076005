"""Users' deployments, each synthesized from configuration only: e2e/scenarios/<letter>-<name>/ holds the
settings (`mlflow.yaml`, absent for the default), the credentials (`credentials.env`, the user's .env) and,
for an existing Secret, the Secret the user creates (`secret.yaml`). `node scripts/synth.js` turns them into
manifests exactly as for a user; every scenario then runs for real and ends with the MLflow client's whole
workflow (log, artifacts, register, load model), through the NodePort, with only the tracking URI.

What the users already run is started beside the stack:
- in the cluster, a PostgreSQL StatefulSet and Service `postgres` in `default` (their own manifests);
- outside the cluster, on an address of the node that no pod has (10.213.20.1, on a bridge of its own):
  MinIO on port 9100 as the S3 endpoint, and Debian's MariaDB on port 3306.
Each scenario is its own stand-in cluster (its own subnet); (e) runs two installations at once."""
import concurrent.futures
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

from harness import kube, netpol
from harness.cluster import Network, _NO_PROXY
from harness.stack import E2E, REPO, Stack, by_component, run_client

pytestmark = pytest.mark.stack

SCENARIOS = os.path.join(E2E, "scenarios")
OUTSIDE_SUBNET = "10.213.20.0/24"
OUTSIDE_IP = "10.213.20.1"
S3_PORT = 9100
MARIADB_PORT = 3306
S3_ENDPOINT = f"http://{OUTSIDE_IP}:{S3_PORT}"
VENV_PY = lambda: os.path.join(os.environ["E2E_VENV"], "bin", "python")  # noqa: E731


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


def cluster_dir(tmp_path, scenario: str, *extra_objects) -> str:
    """The scenario's synth plus what its user applies beside it (secret.yaml, their own workloads)."""
    out = str(tmp_path / "cluster")
    os.makedirs(out, exist_ok=True)
    result = synth_scenario(out, scenario)
    assert result.returncode == 0, result.stdout + result.stderr
    secret = os.path.join(scenario_dir(scenario), "secret.yaml")
    if os.path.exists(secret):
        shutil.copyfile(secret, os.path.join(out, "secret.yaml"))
    if extra_objects:
        with open(os.path.join(out, "users-own.yaml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump_all(list(extra_objects), handle)
    return out


# --- what the users already run ---------------------------------------------------------------------------

def existing_postgres(user: str, password: str, database: str):
    """A team's own PostgreSQL in the cluster: StatefulSet and Service `postgres` in `default`."""
    labels = {"app": "postgres"}
    pod = {
        "securityContext": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999, "runAsNonRoot": True},
        "containers": [{
            "name": "postgres", "image": "docker.io/library/postgres:17.7-bookworm",
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


class Outside:
    """The node's address outside every pod network, with the S3 endpoint (MinIO) and, on demand, MariaDB."""

    def __init__(self, s3_user: str, s3_password: str):
        self.dir = tempfile.mkdtemp(prefix="cdk8s-mlflow-outside-")
        os.chmod(self.dir, 0o755)  # MariaDB runs as the mysql user
        self.network = Network("mle2so", OUTSIDE_SUBNET)
        self.network.up()
        self.procs = []
        self.s3_user, self.s3_password = s3_user, s3_password
        data = os.path.join(self.dir, "s3-data")
        os.makedirs(data)
        self._start("minio", [os.environ["E2E_MINIO"], "server", "--quiet", "--address", f"{OUTSIDE_IP}:{S3_PORT}",
                              "--console-address", f"{OUTSIDE_IP}:{S3_PORT + 1}", data],
                    {"MINIO_ROOT_USER": s3_user, "MINIO_ROOT_PASSWORD": s3_password, "MINIO_BROWSER": "off", "HOME": self.dir})
        self._wait("S3 endpoint", lambda: _NO_PROXY.open(f"{S3_ENDPOINT}/minio/health/ready", timeout=2).status == 200)
        self.mc("alias", "set", "outside", S3_ENDPOINT, s3_user, s3_password)
        self.mariadb_socket = None

    def _start(self, name, argv, env):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        self.procs.append(subprocess.Popen(argv, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        log.close()

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
                raise RuntimeError(f"{what} at {OUTSIDE_IP} did not come up:\n" + "\n".join(self.log(n) for n in os.listdir(self.dir) if n.endswith(".log")))
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
        self._start("mariadb", ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={data}", f"--socket={sock}",
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
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, 9)
        self.network.down()
        if os.environ.get("E2E_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def outside(setup_env):
    c = credentials("b-existing-postgres-external-s3")
    o = Outside(c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"])
    try:
        yield o
    finally:
        o.close()


# --- running a scenario -------------------------------------------------------------------------------------

def start(dist: str, tag: str, subnet: str, replicas: int = 1) -> Stack:
    """The order a cluster would reach: the users' own workloads, the stack's stores, the bucket Job, the servers."""
    stack = Stack(dist, tag=tag, subnet=subnet)
    try:
        own = [w for w in stack.manifests.workloads() if "app.kubernetes.io/part-of" not in (w["metadata"].get("labels") or {})]
        stores = [w for w in stack.manifests.of_kind("StatefulSet") if w not in own]
        for group in (own, stores):
            pods = [p for w in group for p in stack.cluster.plan(w)]
            errors = [e for e in stack.cluster.start_all(pods) if e]
            assert not errors, "\n".join(map(str, errors))
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        pods = stack.server_pods(replicas)
        errors = [e for e in stack.cluster.start_all(pods) if e]
        assert not errors, "\n".join(map(str, errors))
        stack.ensure_node_port()
        return stack
    except BaseException:
        stack.close()
        raise


def workflow(stack: Stack, env=None) -> dict:
    """The user's whole client workflow through the NodePort, then everything read back."""
    out = run_client(stack.tracking_uri, "write", env=env)
    assert out["predicted"] == out["expected"]
    assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]
    run_client(stack.tracking_uri, "verify", json.dumps(out), env=env)
    return out


def psql(pod, user: str, database: str, sql: str) -> str:
    result = pod.exec("postgres", ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-U", user, "-d", database, "-c", sql])
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def admits(manifests, component: str, dst, port: int):
    """The stack's NetworkPolicies on a connection its programs make (the stand-in has no packet filter)."""
    src = next(netpol.workload_endpoint(manifests, w) for w in manifests.workloads()
               if ((kube.pod_template(w).get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component") == component)
    return netpol.check(manifests, src, dst, port)


OUTSIDE_ENDPOINT = netpol.Endpoint({}, "", ip=OUTSIDE_IP)


def raw_get(stack: Stack, path: str, host: str = None):
    """GET with the path sent exactly as written (no client-side normalisation of `..` or `%2e`)."""
    conn = http.client.HTTPConnection(stack.node_ip, stack.node_port, timeout=60)
    try:
        conn.request("GET", path, headers={"Host": host or f"{stack.node_ip}:{stack.node_port}"})
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


def dump_experiments(outside_or_stack_cat, key: str) -> str:
    """The experiments table of a dump, as SQL text (pg_restore on the node reads pg_dump's custom format)."""
    dump = outside_or_stack_cat(key)
    assert dump[:5] == b"PGDMP", dump[:16]
    result = subprocess.run([os.path.join(os.environ["E2E_PG_BIN"], "pg_restore"), "-f", "-", "--data-only", "-t", "experiments"],
                            input=dump, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


# --- (a) the default ----------------------------------------------------------------------------------------

def test_a_the_default_app(setup_env, tmp_path):
    assert not os.path.exists(os.path.join(scenario_dir("a-default"), "mlflow.yaml"))
    dist = cluster_dir(tmp_path, "a-default")
    manifests = kube.Manifests.from_path(dist)
    assert {by_component(manifests, "StatefulSet", c)["metadata"]["name"] for c in ("backend-store", "artifact-store")} == {"mlflow-postgres", "mlflow-minio"}
    stack = start(dist, "mle2sa", "10.213.21.0/24")
    try:
        out = workflow(stack)
        bucket, prefix = stack.artifact_root()
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/{out['experiment_id']}/{out['run_id']}/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys
        assert stack.psql(f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
    finally:
        stack.close()


# --- (b) an existing PostgreSQL Service, an S3 endpoint outside the cluster, a public host ---------------------

def test_b_existing_postgres_service_external_s3_and_a_public_host(outside, tmp_path):
    name = "b-existing-postgres-external-s3"
    cred, conf = credentials(name), settings(name)
    assert conf["backendStore"]["external"]["host"] == "postgres" and cred["POSTGRES_DB"] == "mlops"
    assert conf["artifactStore"]["s3"]["endpoint"] == S3_ENDPOINT
    dist = cluster_dir(tmp_path, name, *existing_postgres(cred["POSTGRES_USER"], cred["POSTGRES_PASSWORD"], cred["POSTGRES_DB"]))
    manifests = kube.Manifests.from_path(dist)
    # No PostgreSQL and no MinIO of the stack's own: the only StatefulSet is the team's.
    assert [s["metadata"]["name"] for s in manifests.of_kind("StatefulSet")] == ["postgres"]
    assert not manifests.of_kind("CronJob")  # backups of an external database are its owner's
    for component, port in [("tracking-server", S3_PORT), ("bucket-job", S3_PORT)]:
        assert admits(manifests, component, OUTSIDE_ENDPOINT, port) is None, (component, port)
    stack = start(dist, "mle2sb", "10.213.22.0/24")
    try:
        pg = stack.cluster.plan(manifests.get("StatefulSet", "postgres"))[0]
        # The Service's pod, by its address (an ipBlock rule, which is all the policy has for an external host).
        users_pg = netpol.workload_endpoint(manifests, manifests.get("StatefulSet", "postgres"), ip=pg.ip)
        assert admits(manifests, "tracking-server", users_pg, 5432) is None
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        public = conf["server"]["publicHosts"][0]
        port = stack.node_port
        assert raw_get(stack, search, host=f"{public}:{port}")[0] == 200
        for unlisted in (f"54.180.12.35:{port}", f"ec2-54-180-12-34.ap-northeast-2.compute.amazonaws.com:{port}"):
            status, body = raw_get(stack, search, host=unlisted)
            assert (status, b"Invalid Host header" in body) == (403, True), (unlisted, status, body[:200])
        out = workflow(stack)
        assert psql(pg, cred["POSTGRES_USER"], "mlops", f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        bucket, _, prefix = cred["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):].partition("/")
        keys = outside.keys(bucket)
        assert any(k.startswith(f"{prefix}/{out['experiment_id']}/{out['run_id']}/") and k.endswith("notes/hello.txt") for k in keys), keys
    finally:
        stack.close()


# --- (c) an existing MariaDB, the in-cluster MinIO, basic auth -------------------------------------------------

def test_c_existing_mariadb_in_cluster_minio_and_basic_auth(outside, tmp_path):
    from test_production import head_of
    name = "c-mariadb-minio-auth"
    cred, conf = credentials(name), settings(name)
    external = conf["backendStore"]["external"]
    assert (external["engine"], external["host"], external["port"]) == ("mysql", OUTSIDE_IP, MARIADB_PORT)
    outside.start_mariadb(cred["POSTGRES_DB"], cred["POSTGRES_USER"], cred["POSTGRES_PASSWORD"])
    assert "MariaDB" in outside.sql("SELECT VERSION()") or "mariadb" in outside.sql("SELECT @@version_comment").lower()
    dist = cluster_dir(tmp_path, name)
    manifests = kube.Manifests.from_path(dist)
    assert admits(manifests, "tracking-server", OUTSIDE_ENDPOINT, MARIADB_PORT) is None
    stack = Stack(dist, tag="mle2sc", subnet="10.213.23.0/24")
    try:
        uri = stack.secret()["MLFLOW_BACKEND_STORE_URI"]
        assert uri == (f"mysql+pymysql://{cred['POSTGRES_USER']}:{urllib.parse.quote(cred['POSTGRES_PASSWORD'], safe='')}"
                       f"@{OUTSIDE_IP}:{MARIADB_PORT}/{cred['POSTGRES_DB']}"), uri
        errors = [e for e in stack.cluster.start_all(stack.cluster.plan(stack.minio)) if e]
        assert not errors, errors
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        # Both replicas start together on the empty database: the migrate steps take turns under GET_LOCK.
        pods = stack.server_pods(2)
        errors = stack.cluster.start_all(pods)
        assert errors == [None, None], "\n".join(str(e) for e in errors if e)
        stack.ensure_node_port()
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
    finally:
        stack.close()


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
    dist = cluster_dir(tmp_path, name, *existing_postgres(user, password, database))
    manifests = kube.Manifests.from_path(dist)
    synthesized = kube.Manifests.from_path(os.path.join(dist, "mlflow.k8s.yaml"))
    assert not synthesized.of_kind("Secret"), "no credential in dist/"
    refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"], bool(e["valueFrom"]["secretKeyRef"].get("optional")))
            for w in synthesized.workloads() for c in kube.pod_template(w)["spec"].get("containers", []) + kube.pod_template(w)["spec"].get("initContainers", [])
            for e in c.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}
    assert {r[0] for r in refs} == {secret["metadata"]["name"]}, refs
    # Exactly: every key the pods need is in the Secret, and every key of the Secret is read.
    assert {key for _, key, optional in refs if not optional} == set(values), sorted(refs)
    stack = start(dist, "mle2sd", "10.213.24.0/24")
    try:
        out = workflow(stack)
        pg = stack.cluster.plan(manifests.get("StatefulSet", "postgres"))[0]
        assert psql(pg, user, database, f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        bucket, _, prefix = values["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):].partition("/")
        assert any(k.startswith(f"{prefix}/{out['experiment_id']}/{out['run_id']}/") for k in outside.keys(bucket))
    finally:
        stack.close()


# --- (e) installations sharing a bucket, and an artifact root at a bucket's root -----------------------------------

TEAMS = {"team-a": ("e-shared-bucket-team-a", "mle2sea", "10.213.25.0/24"), "team-b": ("e-shared-bucket-team-b", "mle2seb", "10.213.26.0/24")}


def test_e1_two_installations_sharing_a_bucket_never_collide_and_never_serve_a_backup(outside, tmp_path):
    roots = {team: credentials(scenario)["MLFLOW_S3_ARTIFACT_ROOT"] for team, (scenario, _, _) in TEAMS.items()}
    buckets = {r[len("s3://"):].split("/")[0] for r in roots.values()}
    assert len(buckets) == 1 and len(set(roots.values())) == 2, roots
    bucket = buckets.pop()
    stacks = {}
    try:
        for team, (scenario, tag, subnet) in TEAMS.items():
            dist = cluster_dir(tmp_path / team, scenario)
            manifests = kube.Manifests.from_path(dist)
            assert admits(manifests, "backup", OUTSIDE_ENDPOINT, S3_PORT) is None
            stacks[team] = start(dist, tag, subnet)
        assert len({s.node_port for s in stacks.values()}) == 2
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = dict(zip(stacks, pool.map(workflow, stacks.values())))
            # Both schedules fire at the same moment: the dumps get the same time stamp.
            jobs = dict(zip(stacks, pool.map(lambda s: s.run_cronjob("backup"), stacks.values())))
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
            stack.close()


def test_e2_an_artifact_root_at_the_bucket_root_keeps_backups_in_their_own_bucket(setup_env, tmp_path):
    name = "e-bucket-root"
    root = credentials(name)["MLFLOW_S3_ARTIFACT_ROOT"]
    assert re.fullmatch(r"s3://[a-z0-9.-]+", root), root
    backup_bucket = settings(name)["backup"]["bucket"]
    stack = start(cluster_dir(tmp_path, name), "mle2ser", "10.213.27.0/24")
    try:
        out = workflow(stack)
        code, pod = stack.run_cronjob("backup")
        log = pod.log("upload")
        assert code == 0, pod.log("dump") + log
        written = re.search(rf"^backup: wrote s3://{backup_bucket}/(backups/default/mlflow/mlflow-\d{{8}}T\d{{6}}Z\.dump)$", log, re.M)
        assert written, log
        bucket = root[len("s3://"):]
        artifacts = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/")]
        assert any(f"/{out['run_id']}/" in k for k in artifacts) and not [k for k in artifacts if k.endswith(".dump") or k.startswith("backups")], artifacts
        assert [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{backup_bucket}/")] == [written.group(1)]
        cat = lambda key: subprocess.run([os.environ["E2E_MC"], "cat", f"e2e/{backup_bucket}/{key}"], capture_output=True, timeout=60,  # noqa: E731
                                         env=dict(os.environ, MC_CONFIG_DIR=os.path.join(stack.cluster.run_dir, "mc-client"))).stdout
        assert f"e2e-{out['tag']}" in dump_experiments(cat, written.group(1))
        # Through the proxy the dump's own bucket is out of reach (`..` past the bucket root included).
        assert backups_through_the_proxy(stack, [f"../{backup_bucket}/{written.group(1)}", written.group(1)], "") == []
    finally:
        stack.close()


def test_e3_an_artifact_root_at_the_bucket_root_without_a_backup_bucket_is_refused(setup_env, tmp_path):
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
