"""What users already run outside the stack, for the scenarios (test_scenarios.py): a PostgreSQL of their own
in the cluster, and an address of the machine outside every pod network (10.213.20.1, on a bridge of its
own) with an S3 endpoint (MinIO) and MariaDB; plus the checks of what reaches them, and of what the
artifact proxy serves."""
import json
import os
import pwd
import shutil
import subprocess
import time
import urllib.parse
import http.client

from node.stack import NO_PROXY, NODE_IP, Pod, Stack, kubectl, pod_template, policy_allows_to_ip, probe_pod

OUTSIDE_BRIDGE = "mle2so"


OUTSIDE_IP = "10.213.20.1"


OUTSIDE_RUN = "/tmp/cdk8s-mlflow-outside"  # fixed, so that a killed run's processes and files are found


S3_PORT = 9100


MARIADB_PORT = 3306


S3_ENDPOINT = f"http://{OUTSIDE_IP}:{S3_PORT}"


PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


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
