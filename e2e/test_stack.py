"""The synthesized stack, run for real: PostgreSQL, MinIO, the bucket Job's mc script and the MLflow
tracking server, each started with exactly the command, args and env its manifest gives it, and a
real MLflow client that knows nothing but the NodePort URL.

Tests in a class share one stack and run in file order (pytest keeps definition order)."""
import json
import os
import subprocess
import tempfile
import textwrap
import time
import urllib.request

import pytest

from harness.cluster import PodFailed
from harness.stack import Stack, run_client, synth

pytestmark = pytest.mark.stack

VENV_PY = lambda: os.path.join(os.environ["E2E_VENV"], "bin", "python")  # noqa: E731


def alembic_head() -> str:
    code = ("import os, mlflow.store.db_migrations as m\n"
            "from alembic.config import Config\nfrom alembic.script import ScriptDirectory\n"
            "c = Config(); c.set_main_option('script_location', os.path.dirname(m.__file__))\n"
            "print(ScriptDirectory.from_config(c).get_current_head())")
    return subprocess.run([VENV_PY(), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def proc_view(pid: int):
    """argv, environment and uid of a running process, as /proc shows them."""
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        argv = [a.decode() for a in handle.read().split(b"\0")[:-1]]
    with open(f"/proc/{pid}/environ", "rb") as handle:
        env = dict(e.decode().split("=", 1) for e in handle.read().split(b"\0") if b"=" in e)
    with open(f"/proc/{pid}/status") as handle:
        uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
    return argv, env, uid


@pytest.fixture(scope="class")
def stack(default_dist):
    s = Stack(default_dist, tag="mle2ea", subnet="10.213.5.0/24", node_port_ips=["10.213.5.1", "127.0.0.1"])
    try:
        s.start_stores()
        yield s
    finally:
        s.close()


class TestDefaultStack:
    state = {}

    def test_1_bucket_job_creates_the_bucket_and_a_rerun_changes_nothing(self, stack):
        bucket, _ = stack.artifact_root()
        assert not [b for b in stack.mc_json("ls", "e2e") if b.get("key", "").rstrip("/") == bucket]
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        assert "is ready" in pod.log("mc")
        before = stack.mc_json("ls", "e2e")
        assert [b["key"].rstrip("/") for b in before] == [bucket]
        stack.mc("cp", "--quiet", __file__, f"e2e/{bucket}/marker/test_stack.py")
        objects_before = stack.mc_json("ls", "--recursive", f"e2e/{bucket}")
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        assert stack.mc_json("ls", "e2e") == before
        assert stack.mc_json("ls", "--recursive", f"e2e/{bucket}") == objects_before
        stack.mc("rm", "--quiet", f"e2e/{bucket}/marker/test_stack.py")

    def test_5_two_replicas_started_together_on_a_fresh_database_migrate_once(self, stack):
        assert stack.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == "0"
        pods = stack.server_pods()
        assert len(pods) == 2, "the default synth has two replicas"
        t0 = time.monotonic()
        errors = stack.cluster.start_all(pods)
        assert errors == [None, None], "\n".join(str(e) for e in errors if e)
        stack.ensure_node_port()
        TestDefaultStack.state["startup_s"] = time.monotonic() - t0
        assert stack.psql("SELECT version_num FROM alembic_version") == alembic_head()
        tables = set(stack.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").split())
        assert {"experiments", "runs", "metrics", "params", "registered_models", "model_versions", "logged_models"} <= tables
        for pod in pods:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"http://{pod.ip}:5000/health", timeout=5) as r:
                assert r.status == 200
        # Both pods ran the migration step; it held the lock, so exactly one of them created the tables.
        logs = [p.log(next(c for c in p.containers if p.containers[c].spec.init)) for p in pods]
        assert sum("creating" in log.lower() for log in logs) == 1, logs

    def test_2_server_runs_the_deployment_command_and_answers_health(self, stack):
        status, body = stack.http_get("/health")
        assert (status, body.strip()) == (200, "OK")
        dep = stack.deployment
        container = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")
        pod = stack.server_pods()[0]
        argv, env, uid = proc_view(pod.containers["mlflow"].proc.pid)
        # `mlflow` is a Python script: the kernel runs it as [python, /path/to/mlflow, args...].
        assert os.path.basename(argv[0]).startswith("python")
        # The command is `python -c <launcher> mlflow server ...`: the process is python with those arguments.
        assert argv[1:] == container["command"][1:] + container["args"]
        secret = stack.secret()
        for var in container["env"]:
            if "value" in var:
                assert env[var["name"]] == var["value"]
            else:
                assert env[var["name"]] == secret[var["valueFrom"]["secretKeyRef"]["key"]]
        assert uid == container["securityContext"]["runAsUser"]
        # The program is the version the image pins.
        version = subprocess.run([VENV_PY(), "-W", "ignore", "-c", "import mlflow; print(mlflow.__version__)"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        assert f":v{version}" in container["image"], (version, container["image"])
        # The Host header a user's browser sends for the node address is accepted, and for 127.0.0.1 too.
        for ip in stack.node_port_ips:
            assert stack.http_get("/api/2.0/mlflow/experiments/search?max_results=1", host_ip=ip)[0] == 200

    def test_3_client_logs_params_metrics_artifacts_and_a_model_through_the_node_port(self, stack):
        out = run_client(stack.tracking_uri, "write")
        assert out["predicted"] == out["expected"]
        assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]  # proxied: no S3 on the client
        assert out["model_version"] == "1"
        TestDefaultStack.state["run"] = out
        run_client(stack.tracking_uri, "verify", json.dumps(out))

    def test_4_artifacts_are_minio_objects_and_runs_are_postgres_rows(self, stack):
        out = TestDefaultStack.state["run"]
        bucket, prefix = stack.artifact_root()
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")]
        run_keys = [k for k in keys if f"{out['experiment_id']}/{out['run_id']}/artifacts/" in k]
        assert any(k.endswith("notes/hello.txt") for k in run_keys), keys
        assert any(k.endswith("MLmodel") for k in keys), keys
        assert any(k.endswith(("model.skops", "model.pkl")) for k in keys), keys
        text = stack.mc("cat", f"e2e/{bucket}/{prefix}/" + next(k for k in run_keys if k.endswith("notes/hello.txt"))).stdout
        assert "hello from the e2e client" in text
        assert stack.psql(f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        assert stack.psql(f"SELECT count(*) FROM metrics WHERE run_uuid = '{out['run_id']}' AND key = 'loss'") == "10"
        assert stack.psql(f"SELECT value FROM params WHERE run_uuid = '{out['run_id']}' AND key = 'odd'") == "a/b?c#d"
        assert stack.psql(f"SELECT version FROM model_versions WHERE name = '{out['model_name']}'") == "1"
        location = stack.psql(f"SELECT artifact_location FROM experiments WHERE experiment_id = {out['experiment_id']}")
        assert location.startswith("mlflow-artifacts:"), location

    def test_6_server_and_postgres_restarts_lose_nothing(self, stack):
        out = TestDefaultStack.state["run"]
        for pod in stack.server_pods():
            stack.restart_pod(pod)
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        pg = stack.cluster.plan(stack.postgres)[0]
        stack.restart_pod(pg)
        assert "Skipping initialization" in pg.log("postgres")
        # The servers kept running across the database restart; their pools must reconnect.
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        minio = stack.cluster.plan(stack.minio)[0]
        stack.restart_pod(minio)
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        # New writes still work after all of it.
        again = run_client(stack.tracking_uri, "write", "--light")
        run_client(stack.tracking_uri, "verify", json.dumps(again))
        # The probes connect as the configured role (no 'FATAL: role "postgres" does not exist' noise).
        assert "does not exist" not in pg.log("postgres"), pg.log_tail("postgres")


SPECIAL = "P@ss:w/rd#1%2F?&'\"x"   # @ : / # % ? & and both quotes (and a %-escape look-alike)


@pytest.fixture(scope="class")
def special_stack(setup_env, tmp_path_factory):
    """The stack synthesized from a .env whose passwords hold every URI-special character and quotes."""
    d = tmp_path_factory.mktemp("special")
    env_file = d / ".env"
    # dotenv: backquotes take both quote kinds and '#' literally.
    env_file.write_text(textwrap.dedent(f"""\
        POSTGRES_USER=mlflow
        POSTGRES_PASSWORD=`{SPECIAL}`
        POSTGRES_DB=mlflow
        AWS_ACCESS_KEY_ID=mlflow-admin
        AWS_SECRET_ACCESS_KEY=`{SPECIAL}minio`
        MLFLOW_S3_ARTIFACT_ROOT=s3://special-bucket/some/prefix
        """))
    dist = synth(str(env_file), str(d / "dist"))
    s = Stack(dist, tag="mle2eb", subnet="10.213.6.0/24")
    try:
        yield s, d
    finally:
        s.close()


class TestSpecialCharactersAndWrongCredentials:
    def test_7_password_with_uri_special_characters_and_quotes_works_end_to_end(self, special_stack):
        stack, _ = special_stack
        secret = stack.secret()
        assert secret["POSTGRES_PASSWORD"] == SPECIAL
        assert secret["AWS_SECRET_ACCESS_KEY"] == SPECIAL + "minio"
        stack.start_stores()
        code, pod = stack.run_bucket_job()
        assert code == 0, pod.log("mc")
        stack.start_servers()
        out = run_client(stack.tracking_uri, "write", "--light")
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", "e2e/special-bucket/some/prefix/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys

    def test_8_wrong_database_password_fails_fast_with_a_clear_log_line(self, special_stack):
        stack, d = special_stack
        # The user changes POSTGRES_PASSWORD in .env and re-applies; the database keeps the old one.
        env_file = d / ".env"
        env_file.write_text(env_file.read_text().replace(f"POSTGRES_PASSWORD=`{SPECIAL}`", "POSTGRES_PASSWORD=`not-the-password`"))
        stack.swap_manifests(synth(str(env_file), str(d / "dist-wrong")))
        pod = stack.server_pods()[0]
        pod.stop()
        t0 = time.monotonic()
        with pytest.raises(PodFailed) as failure:
            stack.cluster.start_pod(pod, init_timeout=120)
        elapsed = time.monotonic() - t0
        log = "\n".join(pod.log(c) for c in pod.containers)
        assert elapsed < 30, f"took {elapsed:.0f}s to fail:\n{log}"
        assert "password authentication failed" in log, log
        assert "Traceback" not in log, "a clear line, not a stack trace:\n" + log
        assert failure.value.container in pod.containers
        print(f"\nfailed after {elapsed:.1f}s in {failure.value.container}: " + next(l for l in log.splitlines() if "password authentication failed" in l))
