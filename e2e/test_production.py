"""The production features on the real node: basic auth, the gc CronJob and the backup CronJob with the
README's restore procedure. Each configuration is synthesized through the library's API
(e2e/synth.ts) or is the default app, applied with `kubectl apply -f`; a CronJob's schedule fires
as `kubectl create job --from=cronjob/...`.

Tests in a class share one stack and run in file order (pytest keeps definition order). In
TestAuthAndGarbageCollection the gc test needs a run deleted longer ago than `olderThan` and one
deleted more recently: the first is deleted in test_2 and the auth tests run in between. The
NetworkPolicy test opens every connection these programs make from pods that carry their labels and
asks np-guard's netpol-analyzer what the policies say of those and of connections none needs."""
import base64
import json
import os
import re
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from node.stack import (NO_PROXY as _NO_PROXY, REPO, Pod, Stack, connect_from_node, connect_from_pod, kubectl, policy_allows,
                        probe_pod, run_client, synth_variant)

pytestmark = pytest.mark.stack


# '%' goes through the URI's percent-encoding and the ini file's '%%'; ':' '@' '/' through URI and Basic auth.
ADMIN_USER = "admin"
ADMIN_PASSWORD = "e2e-Adm1n:p@ss/%41-long"
PG_PASSWORD = "pg:p@ss/%2F-word"
GC_OLDER_THAN_S = 30


def head_of(script_location_module: str) -> str:
    """The alembic head revision of MLflow's (or its auth app's) migrations in the locked package set (the image's)."""
    code = (f"import os, {script_location_module} as m\n"
            "from alembic.config import Config\nfrom alembic.script import ScriptDirectory\n"
            "c = Config(); c.set_main_option('script_location', os.path.dirname(m.__file__))\n"
            "print(ScriptDirectory.from_config(c).get_current_head())")
    return subprocess.run([os.path.join(os.environ["E2E_VENV"], "bin", "python"), "-W", "ignore", "-c", code],
                          check=True, capture_output=True, text=True).stdout.strip()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def proc_env(pod: Pod, container: str) -> dict:
    """The environment of the container's main process."""
    result = pod.exec(container, ["cat", "/proc/1/environ"])
    assert result.returncode == 0, result.stderr.decode()
    return dict(e.decode().split("=", 1) for e in result.stdout.split(b"\0") if b"=" in e)


def client_fails(tracking_uri: str, *args: str, env=None) -> str:
    with pytest.raises(AssertionError) as failure:
        run_client(tracking_uri, *args, env=env, timeout=300)
    return str(failure.value)


# --- basic auth + garbage collection ---------------------------------------------------------------

ADMIN_ENV = {"MLFLOW_TRACKING_USERNAME": ADMIN_USER, "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
READER = ("reader", "e2e-reader-password-1")
READER_ENV = {"MLFLOW_TRACKING_USERNAME": READER[0], "MLFLOW_TRACKING_PASSWORD": READER[1]}

def auth_env_text(admin_password: str) -> str:
    """The .env of the auth configuration: the seed keys plus the admin credentials."""
    return textwrap.dedent(f"""\
        POSTGRES_USER=mlflow
        POSTGRES_PASSWORD='{PG_PASSWORD}'
        POSTGRES_DB=mlflow
        AWS_ACCESS_KEY_ID=mlflow
        AWS_SECRET_ACCESS_KEY='change-me-minio'
        MLFLOW_S3_ARTIFACT_ROOT=s3://mlflow/artifacts
        MLFLOW_TRACKING_USERNAME={ADMIN_USER}
        MLFLOW_TRACKING_PASSWORD='{admin_password}'
        """)


@pytest.fixture(scope="class")
def auth_stack(setup_env, tmp_path_factory):
    """auth from the .env (admin credentials), garbageCollection with a short olderThan; backup stays on."""
    d = tmp_path_factory.mktemp("auth")
    env_file = d / ".env"
    env_file.write_text(auth_env_text(ADMIN_PASSWORD))
    s = Stack(synth_variant(str(env_file), str(d / "dist"), "--gc-older-than-seconds", str(GC_OLDER_THAN_S)))
    s.apply()
    try:
        s.wait_ready()
        yield s
    finally:
        s.delete()


class TestAuthAndGarbageCollection:
    state = {}

    def test_1_two_replicas_with_auth_start_together_on_a_fresh_database(self, auth_stack):
        stack = auth_stack
        dep = stack.deployment["spec"]["template"]["spec"]
        server = next(c for c in dep["containers"] if c["name"] == "mlflow")
        assert server["args"][-2:] == ["--app-name", "basic-auth"], server["args"]
        pods = stack.server_pods()
        assert len(pods) == 2
        # Both schemas at their heads, in the one database of POSTGRES_DB.
        assert stack.psql("SELECT version_num FROM alembic_version") == head_of("mlflow.store.db_migrations")
        assert stack.psql("SELECT version_num FROM alembic_version_auth") == head_of("mlflow.server.auth.db.migrations")
        tables = set(stack.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").split())
        assert {"users", "alembic_version_auth", "experiments", "runs", "alembic_version"} <= tables, tables
        assert stack.psql("SELECT current_database()") == stack.secret()["POSTGRES_DB"]
        assert stack.psql("SELECT username || ' ' || is_admin::text FROM users") == f"{ADMIN_USER} true"
        # Every pod ran the auth migration under the lock; one created the MLflow schema.
        logs = [p.log("migrate") for p in pods]
        assert all("auth schema" in log and "is current" in log for log in logs), logs
        assert sum("creating the mlflow schema" in log.lower() for log in logs) == 1, logs
        # The auth config file is the Secret's, mounted where MLFLOW_AUTH_CONFIG_PATH says; the Flask key is the Secret's in both pods.
        secret = stack.secret()
        for pod in pods:
            env = proc_env(pod, "mlflow")
            shown = pod.exec("mlflow", ["cat", env["MLFLOW_AUTH_CONFIG_PATH"]])
            assert shown.returncode == 0, shown.stderr
            assert shown.stdout.decode() == secret["basic_auth.ini"]
            assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == secret["MLFLOW_FLASK_SERVER_SECRET_KEY"] != ""
            assert "Traceback" not in pod.log("mlflow"), pod.log("mlflow")[-3000:]

    def test_2_gc_setup_a_run_deleted_now(self, auth_stack):
        """For test_7, which needs this run deleted longer than olderThan ago."""
        old = run_client(auth_stack.tracking_uri, "write", "--light", "--batch", "--delete", env=ADMIN_ENV)
        TestAuthAndGarbageCollection.state.update(gc_old=old, gc_old_deleted_at=time.time())

    def test_3_without_credentials_the_api_answers_401_and_health_200(self, auth_stack):
        stack = auth_stack
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        status, headers, _ = stack.request("GET", search)
        assert status == 401
        assert "basic" in headers.get("www-authenticate", "").lower(), headers
        assert stack.request("GET", search, auth=(ADMIN_USER, "wrong-password-123"))[0] == 401
        assert stack.request("POST", "/api/2.0/mlflow/experiments/create", body={"name": "anonymous"})[0] == 401
        assert stack.request("GET", search, auth=(ADMIN_USER, ADMIN_PASSWORD))[0] == 200
        # /health stays open: through the NodePort and on each pod, where the probes go.
        status, _, body = stack.request("GET", "/health")
        assert (status, body.strip()) == (200, "OK")
        for pod in stack.server_pods():
            with _NO_PROXY.open(f"http://{pod.ip}:5000/health", timeout=5) as r:
                assert r.status == 200
        # The client with only the tracking URI is refused.
        message = client_fails(stack.tracking_uri, "write", "--light")
        assert "401" in message, message[-2000:]

    def test_4_the_admin_runs_the_whole_client_workflow(self, auth_stack):
        out = run_client(auth_stack.tracking_uri, "write", env=ADMIN_ENV)
        assert out["predicted"] == out["expected"]
        assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]
        assert out["model_version"] == "1"  # read back in full by the second user in test_5
        TestAuthAndGarbageCollection.state["run"] = out

    def test_5_a_second_user_with_the_default_read_permission_reads_but_cannot_write(self, auth_stack):
        stack = auth_stack
        out = TestAuthAndGarbageCollection.state["run"]
        admin = (ADMIN_USER, ADMIN_PASSWORD)
        status, _, body = stack.request("POST", "/api/2.0/mlflow/users/create", body={"username": READER[0], "password": READER[1]}, auth=admin)
        assert status == 200, body
        assert json.loads(body)["user"]["username"] == READER[0]
        assert stack.psql(f"SELECT is_admin::text FROM users WHERE username = '{READER[0]}'") == "false"
        # READ: the whole run, its artifact and the registered model load for the reader.
        run_client(stack.tracking_uri, "verify", json.dumps(out), env=READER_ENV)
        # ... but no write to the admin's run, through the client and on the wire.
        outcome = run_client(stack.tracking_uri, "try-write", json.dumps(out), env=READER_ENV)
        assert outcome == {"log_param": "PERMISSION_DENIED", "log_metric": "PERMISSION_DENIED"}, outcome
        status, _, body = stack.request("POST", "/api/2.0/mlflow/runs/log-parameter",
                                        body={"run_id": out["run_id"], "key": "k", "value": "v"}, auth=READER)
        assert status == 403, (status, body)  # MLflow's auth app answers a plain "Permission denied"
        assert "permission" in body.lower(), body
        assert stack.psql(f"SELECT count(*) FROM params WHERE run_uuid = '{out['run_id']}' AND key IN ('written-by', 'k')") == "0"
        # A non-admin cannot create users; the admin still writes (the refusal is the permission, not a broken server).
        assert stack.request("POST", "/api/2.0/mlflow/users/create", body={"username": "x", "password": "x-password-1234"}, auth=READER)[0] == 403
        outcome = run_client(stack.tracking_uri, "try-write", json.dumps(out), env=ADMIN_ENV)
        assert outcome == {"log_param": "OK", "log_metric": "OK"}, outcome

    def test_6_every_replica_shares_the_flask_secret_key(self, auth_stack):
        """The sign-up form's CSRF token and session cookie from one pod are accepted by the other."""
        stack = auth_stack
        a, b = stack.server_pods()
        auth = basic(ADMIN_USER, ADMIN_PASSWORD)
        with _NO_PROXY.open(urllib.request.Request(f"http://{a.ip}:5000/signup", headers={"Authorization": auth}), timeout=10) as r:
            page = r.read().decode()
            cookie = "; ".join(c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or [])
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
        assert token and cookie, page[:2000]

        def sign_up(pod, username, csrf_token):
            form = urllib.parse.urlencode({"username": username, "password": "signed-up-password-1", "csrf_token": csrf_token}).encode()
            request = urllib.request.Request(f"http://{pod.ip}:5000/api/2.0/mlflow/users/create-ui", data=form, method="POST", headers={
                "Authorization": auth, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
            try:
                with _NO_PROXY.open(request, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as error:
                return error.code

        assert sign_up(b, "forged", "not-the-token") == 400  # the check is live
        assert sign_up(b, "signed-up", token.group(1)) == 200
        assert stack.psql("SELECT string_agg(username, ',') FROM users WHERE username IN ('signed-up', 'forged')") == "signed-up"

    def test_7_gc_removes_the_old_deleted_run_with_its_artifacts_and_nothing_else(self, auth_stack):
        stack = auth_stack
        st = TestAuthAndGarbageCollection.state
        live, old = st["run"], st["gc_old"]  # live: test_4's run, with a registered model
        bucket, prefix = stack.artifact_root()

        def keys(run):
            return [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/{run['experiment_id']}/{run['run_id']}/")]

        # "old" was deleted more than olderThan ago; "recent" is deleted just before the schedule fires.
        wait = st["gc_old_deleted_at"] + GC_OLDER_THAN_S + 1 - time.time()
        if wait > 0:
            time.sleep(wait)
        recent = run_client(stack.tracking_uri, "write", "--light", "--batch", "--delete", env=ADMIN_ENV)
        st.update(gc_recent=recent, gc_recent_deleted_at=time.time())
        for run in (live, old, recent):
            assert any(k.endswith("notes/hello.txt") for k in keys(run)), run
        model_keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")
                      if f"/{live['run_id']}/" not in o["key"] and o["key"].endswith("MLmodel")]
        assert model_keys, "the registered model's files (under models/) are in the bucket"
        cron = stack.cronjob("garbage-collection")
        container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert {e["name"]: e.get("value") for e in container["env"]}["MLFLOW_GC_OLDER_THAN"] == f"{GC_OLDER_THAN_S}s"
        code, pod = stack.run_cronjob("garbage-collection", "gc")
        log = pod.log("gc")
        assert code == 0, log
        assert f"Run with ID {old['run_id']} has been permanently deleted" in log, log
        assert live["run_id"] not in log and recent["run_id"] not in log, log
        # The old run's rows are gone from PostgreSQL, its artifacts from MinIO.
        for table in ("runs", "params", "metrics", "latest_metrics", "tags"):
            assert stack.psql(f"SELECT count(*) FROM {table} WHERE run_uuid = '{old['run_id']}'") == "0", table
        assert keys(old) == []
        # The live run, its model and the recently deleted run are untouched.
        assert stack.psql(f"SELECT lifecycle_stage FROM runs WHERE run_uuid = '{live['run_id']}'") == "active"
        assert stack.psql(f"SELECT lifecycle_stage FROM runs WHERE run_uuid = '{recent['run_id']}'") == "deleted"
        for run in (live, recent):
            assert stack.psql(f"SELECT count(*) FROM metrics WHERE run_uuid = '{run['run_id']}' AND key = 'loss'") == "10"
            assert any(k.endswith("notes/hello.txt") for k in keys(run)), run
        assert set(model_keys) <= {o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")}


    def test_8_a_new_admin_password_in_the_env_file_is_the_admin_password_after_apply_and_restart(self, auth_stack, tmp_path):
        """The README: the admin password is MLFLOW_TRACKING_PASSWORD; the gc job (and the ServiceMonitor) sign in with
        the Secret's value. After the user changes it in .env, re-synthesizes, applies and restarts the servers, the new
        password must sign in and the gc job must still delete proxied artifacts."""
        stack = auth_stack
        st = TestAuthAndGarbageCollection.state
        new_password = "e2e-rotated-admin-password-2"
        env_file = tmp_path / ".env"
        env_file.write_text(auth_env_text(new_password))
        stack.apply(synth_variant(str(env_file), str(tmp_path / "dist"), "--gc-older-than-seconds", str(GC_OLDER_THAN_S)))
        assert stack.secret()["MLFLOW_TRACKING_PASSWORD"] == new_password
        # kubectl apply -f dist; kubectl rollout restart deployment/mlflow (the README's steps).
        kubectl("rollout", "restart", f"deployment/{stack.deployment['metadata']['name']}")
        stack.wait_rollout(stack.deployment)
        search = f"{stack.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"

        def login(password):
            try:
                with _NO_PROXY.open(urllib.request.Request(search, headers={"Authorization": basic(ADMIN_USER, password)}), timeout=30) as r:
                    return r.status
            except urllib.error.HTTPError as error:
                return error.code

        new_login, old_login = login(new_password), login(ADMIN_PASSWORD)
        # The run test_7 deleted is old enough now; the gc job must remove it through the server, signed in from the Secret.
        wait = st["gc_recent_deleted_at"] + GC_OLDER_THAN_S + 1 - time.time()
        if wait > 0:
            time.sleep(wait)
        code, pod = stack.run_cronjob("garbage-collection", "gc")
        log = pod.log("gc")
        recent = st["gc_recent"]
        problems = []
        if new_login != 200:
            problems.append(f"the new admin password from the Secret gets {new_login} (the old one gets {old_login})")
        if code != 0 or f"Run with ID {recent['run_id']} has been permanently deleted" not in log:
            problems.append(f"the gc job exited {code}: " + " | ".join(line for line in log.splitlines() if "401" in line or "Error" in line)[-800:])
        assert not problems, "; ".join(problems)

    def test_9_network_policies_admit_every_connection_the_programs_make_and_deny_the_rest(self, auth_stack, tmp_path):
        """Each needed connection opened for real from a pod that carries the source's pod labels (the server's
        own pod for the server); what the policies say of each, needed or not, asked of np-guard's
        netpol-analyzer on the live pods (no NetworkPolicy engine runs on this kernel: e2e/README.md), with this
        stack's policies (proxied) and with the direct-serving synth's policies applied over them."""
        stack = auth_stack
        template = lambda obj: (obj["spec"].get("jobTemplate") or obj)["spec"]["template"]  # noqa: E731
        image = template(stack.deployment)["spec"]["containers"][0]["image"]
        workloads = {(o["metadata"].get("labels") or {}).get("app.kubernetes.io/component"): o
                     for o in stack.objects if o["kind"] in ("Job", "CronJob")}
        sources = {None: (None, None), "tracking-server": (stack.server_pods()[0], "mlflow")}
        for component in ("bucket-job", "backup", "garbage-collection"):
            sources[component] = (probe_pod(f"e2e-probe-{component}", template(workloads[component])["metadata"]["labels"], image), "probe")
        destinations = {"tracking-server": stack.server_pods()[0], "backend-store": stack.postgres_pod(), "artifact-store": stack.minio_pod()}
        problems = []
        try:
            (tmp_path / ".env").write_text(auth_env_text(ADMIN_PASSWORD))
            direct = synth_variant(str(tmp_path / ".env"), str(tmp_path / "direct"), "--gc-older-than-seconds", str(GC_OLDER_THAN_S), "--direct-artifacts")
            policies = tmp_path / "direct-policies.yaml"
            policies.write_text(yaml.safe_dump_all([o for o in Stack(direct).objects if o["kind"] == "NetworkPolicy"]))
            for serving in ("proxied", "direct"):
                if serving == "direct":
                    kubectl("apply", "-f", str(policies))
                for src, dst, port in FLOWS[serving]:
                    pod, container = sources[src]
                    ip = destinations[dst].ip
                    got = connect_from_pod(pod, container, ip, port) if pod else connect_from_node(ip, port)
                    if got != "connected":
                        problems.append(f"{serving}: {src or 'node'} -> {dst}:{port}: {got}")
                    if not policy_allows(pod, destinations[dst], port):
                        problems.append(f"{serving}: {src or 'node'} -> {dst}:{port}: the policies deny it")
                for src, dst, port in FORBIDDEN:
                    if policy_allows(sources[src][0], destinations[dst], port):
                        problems.append(f"{serving}: {src or 'node'} -> {dst}:{port}: the policies allow it; nothing needs it")
        finally:
            stack.apply()
            kubectl("delete", "pod", *(f"e2e-probe-{c}" for c in ("bucket-job", "backup", "garbage-collection")), "--wait=false", check=False)
        assert not problems, "\n".join(problems)


# --- backup and restore (the default app) ----------------------------------------------------------

def readme_restore_command() -> str:
    """The shell program the README's restore section runs in the PostgreSQL pod (`kubectl exec ... sh -c '...' < backup.dump`)."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    m = re.search(r"kubectl exec -i \S+ -- sh -c '([^']*pg_restore[^']*)' < backup\.dump", readme)
    assert m, "the README's restore procedure no longer has `kubectl exec -i <pod> -- sh -c '...pg_restore...' < backup.dump`"
    return m.group(1)


def readme_backup_folder() -> str:
    """Where the README's restore procedure fetches the default app's dump: `mc cp mlflow/<bucket>/<prefix>/mlflow-<time>.dump backup.dump`."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    m = re.search(r"mc cp mlflow/(\S+/)mlflow-<time>\.dump backup\.dump", readme)
    assert m, "the README's restore procedure no longer has `mc cp mlflow/<bucket>/<prefix>/mlflow-<time>.dump backup.dump`"
    return m.group(1)


COUNTS = {
    "runs": "SELECT count(*) FROM runs", "metrics": "SELECT count(*) FROM metrics", "params": "SELECT count(*) FROM params",
    "tags": "SELECT count(*) FROM tags", "experiments": "SELECT count(*) FROM experiments",
    "registered_models": "SELECT count(*) FROM registered_models", "model_versions": "SELECT count(*) FROM model_versions",
    "logged_models": "SELECT count(*) FROM logged_models",
}


# One server replica here (the default app has two; two starting together are tested in test_stack.py and above):
# backups are about the database, and each server start is 15 s of CPU on a small machine.
SERVERS = 1


@pytest.fixture(scope="class")
def backup_stack(default_dist):
    s = Stack(default_dist)
    s.apply()
    try:
        s.wait_ready()
        s.scale_servers(SERVERS)
        yield s
    finally:
        s.delete()


class TestBackupAndRestore:
    state = {}

    def dumps(self, stack):
        return {o["key"]: o for o in stack.mc_json("ls", "--recursive", f"e2e/{readme_backup_folder()}")}

    def restore(self, stack, dump_key):
        """The README's procedure: scale to 0, `mc cp` the dump, pg_restore in the PostgreSQL pod (scaling back is the caller's)."""
        folder = readme_backup_folder()
        stack.scale_servers(0)
        minio = stack.minio_pod()
        s = stack.secret()
        # `kubectl port-forward svc/mlflow-minio 9000` + `mc alias set mlflow http://127.0.0.1:9000 ...`: here the pod's address.
        stack.mc("alias", "set", "mlflow", f"http://{minio.ip}:9000", s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"])
        listed = [o["key"] for o in stack.mc_json("ls", f"mlflow/{folder}")]
        assert dump_key in listed, listed
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "backup.dump")
            stack.mc("cp", f"mlflow/{folder}{dump_key}", local)
            with open(local, "rb") as handle:
                dump = handle.read()
        result = stack.postgres_pod().exec("postgres", ["sh", "-c", readme_restore_command()], input=dump, timeout=300)
        assert result.returncode == 0, result.stderr.decode()
        assert b"error" not in result.stderr.lower(), result.stderr.decode()

    def test_1_the_backup_job_streams_a_dump_of_the_database_into_the_bucket(self, backup_stack):
        stack = backup_stack
        uri = stack.tracking_uri
        full = run_client(uri, "write")
        light = run_client(uri, "write", "--light")
        TestBackupAndRestore.state.update(full=full, light=light, counts={k: stack.psql(q) for k, q in COUNTS.items()})
        assert not self.dumps(stack)
        spec = stack.cronjob("backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert [c["name"] for c in spec["containers"]] == ["dump", "upload"] and not spec.get("initContainers"), spec
        code, pod = stack.run_cronjob("backup", "upload")
        dump_log, upload_log = pod.log("dump"), pod.log("upload")
        assert code == 0, dump_log + upload_log
        assert "backup: dumped database mlflow" in dump_log, dump_log
        folder = readme_backup_folder()
        assert folder == "mlflow/backups/default/mlflow/", folder  # the default prefix backups/<namespace>/<name>
        written = re.search(rf"backup: wrote s3://{re.escape(folder)}(mlflow-\d{{8}}T\d{{6}}Z\.dump)$", upload_log, re.M)
        assert written, upload_log
        dumps = self.dumps(stack)
        assert list(dumps) == [written.group(1)], dumps  # the .partial upload was renamed, not copied
        head = subprocess.run([os.environ["E2E_MC"], "cat", f"e2e/{folder}{written.group(1)}"],
                              env=dict(os.environ, MC_CONFIG_DIR=stack.mc_config), capture_output=True, timeout=60).stdout
        assert head[:5] == b"PGDMP", head[:16]  # pg_dump's custom format
        assert dumps[written.group(1)]["size"] > 10000, dumps
        # Nothing of the backups lies under the artifact root the server serves.
        bucket, prefix = stack.artifact_root()
        assert not folder.startswith(f"{bucket}/{prefix}/"), (folder, prefix)
        TestBackupAndRestore.state["first"] = written.group(1)

    def test_2_a_second_run_keeps_the_fresh_dumps_and_the_artifacts(self, backup_stack):
        stack = backup_stack
        bucket, prefix = stack.artifact_root()
        before = self.dumps(stack)
        artifacts = stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")
        time.sleep(1.1)  # the dump's name has a one-second stamp; a schedule never fires twice in a second
        code, pod = stack.run_cronjob("backup", "upload")
        assert code == 0, pod.log("dump") + pod.log("upload")
        assert "removed backups older than 14 days" in pod.log("upload"), pod.log("upload")
        after = self.dumps(stack)
        assert len(after) == 2, after
        first = TestBackupAndRestore.state["first"]
        assert after[first]["etag"] == before[first]["etag"], "the first dump must be kept unchanged"
        assert stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/") == artifacts
        TestBackupAndRestore.state["latest"] = max(after)

    def test_3_restore_over_the_live_database_rolls_it_back_to_the_dump(self, backup_stack):
        """`--clean --if-exists` over a database that has moved on: exactly the dump's content again."""
        stack = backup_stack
        st = TestBackupAndRestore.state
        later = run_client(stack.tracking_uri, "write", "--light")  # not in the dump
        self.restore(stack, st["latest"])
        assert stack.psql(f"SELECT count(*) FROM runs WHERE run_uuid = '{later['run_id']}'") == "0"
        assert {k: stack.psql(q) for k, q in COUNTS.items()} == st["counts"]
        # The servers stay scaled to 0 for test_4 (the client reads everything back there).

    def test_4_restore_after_the_database_volume_is_lost_brings_everything_back(self, backup_stack):
        stack = backup_stack
        st = TestBackupAndRestore.state
        stack.scale_servers(0)
        name = stack.postgres["metadata"]["name"]
        kubectl("scale", f"statefulset/{name}", "--replicas=0")
        kubectl("wait", "--for=delete", f"pod/{name}-0", "--timeout=120s", check=False, timeout=150)
        claim = f"data-{name}-0"
        old_volume = kubectl("get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}").stdout.decode()
        kubectl("delete", "pvc", claim, "--wait=true")  # the volume is lost: the StatefulSet makes a new, empty claim
        kubectl("scale", f"statefulset/{name}", "--replicas=1")
        stack.wait_rollout(stack.postgres)
        new_volume = kubectl("get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}").stdout.decode()
        assert new_volume and new_volume != old_volume, (old_volume, new_volume)
        pg = stack.postgres_pod()
        assert "entrypoint: initializing" in pg.log("postgres"), pg.log("postgres")[-3000:]
        assert stack.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == "0"
        self.restore(stack, st["latest"])
        assert {k: stack.psql(q) for k, q in COUNTS.items()} == st["counts"]
        out = st["full"]
        assert stack.psql(f"SELECT version || ' ' || status FROM model_versions WHERE name = '{out['model_name']}'") == "1 READY"
        stack.scale_servers(SERVERS)  # kubectl scale deployment/mlflow --replicas=2
        # Every run, metric, param, artifact and model version, read back by the client through the servers.
        run_client(stack.tracking_uri, "verify", json.dumps(out), json.dumps(st["light"]))
        # The restored experiment id sequence hands out a fresh id (a reset one would collide with a restored row).
        again = run_client(stack.tracking_uri, "write", "--light")
        assert int(again["experiment_id"]) > max(int(out["experiment_id"]), int(st["light"]["experiment_id"])), again


# --- network isolation: the connections the programs above make, and what the NetworkPolicies say ------

# (source component, destination component, port): what each program connects to.
FLOWS_COMMON = [
    ("tracking-server", "backend-store", 5432),      # migrate init container and the server
    ("tracking-server", "artifact-store", 9000),     # proxied artifacts, and the server's S3 client
    ("bucket-job", "artifact-store", 9000),
    ("backup", "backend-store", 5432),               # dump container: pg_dump
    ("backup", "artifact-store", 9000),              # upload container: mc pipe, mc mv, mc rm
    ("garbage-collection", "backend-store", 5432),   # mlflow gc reads and hard-deletes runs
    (None, "tracking-server", 5000),                 # NodePort traffic from a node address
]
FLOWS = {
    # test_7/test_8 above: proxied artifacts are deleted through the server (its 401 is in test_8's log).
    "proxied": FLOWS_COMMON + [("garbage-collection", "tracking-server", 5000)],
    # --no-serve-artifacts: runs' artifact URIs are s3://..., which `mlflow gc` deletes with its own S3 client
    # (the CronJob gets the S3 credentials and endpoint for this).
    "direct": FLOWS_COMMON + [("garbage-collection", "artifact-store", 9000)],
}
# What no program needs: the policies must deny it.
FORBIDDEN = [("bucket-job", "backend-store", 5432), (None, "backend-store", 5432), ("tracking-server", "backend-store", 5433)]
