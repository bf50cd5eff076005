"""The fixtures of the e2e suite on the real node: the programs it needs, and the stacks the tests share.

Every stack is a scenario of the matrix (e2e/scenarios/, synthesized by matrix.synth as a user does),
applied with `kubectl apply -f`, rolled out, and deleted with its claims when its class (or module) is done;
the node runs one stack at a time in `default`. What several tests read is made here, once: a stack's
first start (its migrate logs), a run written by its client, a backup, a token. A test that changes a
stack changes it after such a fixture has put the stack back to its own manifests and rolled it out, so
no test needs another to have run first, or not to have run."""
import contextlib
import os
import shlex
import subprocess
import time
import types

import pytest

from matrix import config_file, credentials, env_file, synth, synth_scenario
from node.backup import counts, dumps
from node.idp import ALICE, SCENARIO as SSO_SCENARIO, Provider
from node.outside import Outside
from node.rollout import ServerLogs, allow_test_provider
from node.stack import Stack, first_start, run_client

E2E = os.path.dirname(os.path.abspath(__file__))


# --- programs ---------------------------------------------------------------------------------------------

def _export(script: str, timeout: float = 600) -> None:
    """The paths a setup script installed (`bash <script> --print-env`), into this process's environment."""
    result = subprocess.run(["bash", os.path.join(E2E, script), "--print-env"], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-5000:]
    for word in shlex.split(result.stdout.strip().removeprefix("export ")):
        key, _, value = word.partition("=")
        os.environ[key] = value


@pytest.fixture(scope="session")
def setup_env():
    """The node and the paths e2e/setup.sh installed (run.sh exports them; a bare `pytest e2e` asks setup.sh)."""
    if os.geteuid() != 0:
        pytest.skip("the e2e suite needs root (it runs a node)")
    if not all(os.environ.get(k) for k in ("E2E_MINIO", "E2E_MC", "E2E_VENV", "E2E_CACHE")):
        _export("setup.sh")
    if not os.environ.get("NODE_KUBECONFIG"):
        pytest.skip("no node: run the suite with `npm run test:e2e` (e2e/run.sh starts one)")
    return dict(os.environ)


@pytest.fixture(scope="session")
def mlflow3_env(setup_env):
    """The paths e2e/setup-mlflow3.sh installed (run.sh exports them; otherwise it is asked here)."""
    keys = ("E2E_WEED", "E2E_OTLP_VENV")
    if not all(os.environ.get(k) for k in keys):
        _export("setup-mlflow3.sh")
    return {k: os.environ[k] for k in keys}


@pytest.fixture(scope="session")
def sso_programs(setup_env):
    """dex and oauth2-proxy from e2e/setup-sso.sh (built on first use, then cached)."""
    if not (os.environ.get("E2E_DEX") and os.environ.get("E2E_OAUTH2_PROXY")):
        _export("setup-sso.sh", timeout=3600)
    return os.environ["E2E_DEX"], os.environ["E2E_OAUTH2_PROXY"]


@pytest.fixture(scope="module")
def outside(setup_env):
    """The address outside every pod network with the S3 endpoint (and MariaDB on demand), whose keys are the
    scenarios' (b-existing-postgres-external-s3's)."""
    c = credentials("b-existing-postgres-external-s3")
    o = Outside(c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"])
    try:
        yield o
    finally:
        o.close()


# --- stacks -----------------------------------------------------------------------------------------------

class Deployed:
    """A stack applied from `dist` and rolled out (`ready_after_s`), its first start kept (`first_start`: each
    server pod's migrate log); deleted with its claims on close. `reset()` applies its own manifests again
    and waits for the rollout, for a test that is about to change the stack."""

    def __init__(self, dist: str):
        self.stack = Stack(dist)
        self.dist = dist
        started = time.monotonic()
        self.stack.apply()
        try:
            self.stack.wait_ready()
        except BaseException:
            self.stack.delete()
            raise
        self.stack.ready_after_s = time.monotonic() - started
        self.stack.first_start = first_start(self.stack)

    def reset(self) -> Stack:
        self.stack.apply(self.dist)
        self.stack.wait_ready()
        return self.stack

    def close(self) -> None:
        self.stack.delete()


@contextlib.contextmanager
def deployed(dist: str):
    d = Deployed(dist)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture(scope="class")
def default_stack(setup_env, tmp_path_factory):
    """The default app (scenario a-default, or its settings with the .env E2E_ENV_FILE names), for tests that
    only read it. A developer's own .env is not used: it may name an external S3 and hold real passwords."""
    dist = synth(config_file("a-default"), os.environ.get("E2E_ENV_FILE") or env_file("a-default"), str(tmp_path_factory.mktemp("default") / "dist"))
    with deployed(dist) as d:
        yield d.stack


@pytest.fixture(scope="class")
def default_run(default_stack):
    """The user's whole client workflow on the default app through the NodePort, written once: its result."""
    return run_client(default_stack.tracking_uri, "write")


@pytest.fixture(scope="class")
def _special(setup_env, tmp_path_factory):
    with deployed(synth_scenario("special-characters", str(tmp_path_factory.mktemp("special") / "dist"))) as d:
        yield d


@pytest.fixture
def special_stack(_special):
    """The default app with every URI-special character in its passwords (scenario special-characters), as its
    own manifests say and rolled out, for a test that may change it."""
    return _special.reset()


@pytest.fixture(scope="class")
def _auth(setup_env, tmp_path_factory):
    with deployed(synth_scenario("auth-gc", str(tmp_path_factory.mktemp("auth") / "dist"))) as d:
        yield d


@pytest.fixture
def auth_stack(_auth):
    """Basic auth and gc with a 30 s olderThan (scenario auth-gc), as its own manifests say and rolled out."""
    return _auth.reset()


@pytest.fixture(scope="class")
def admin_run(_auth):
    """A run with every kind of data and a registered model, written by the auth stack's admin."""
    c = credentials("auth-gc")
    env = {"MLFLOW_TRACKING_USERNAME": c["MLFLOW_TRACKING_USERNAME"], "MLFLOW_TRACKING_PASSWORD": c["MLFLOW_TRACKING_PASSWORD"]}
    return run_client(_auth.stack.tracking_uri, "write", env=env)


# One server replica for the backups (the default app has two; two starting together are tested elsewhere):
# backups are about the database, and each server start is 15 s of CPU on a small machine.
BACKUP_SERVERS = 1


@pytest.fixture(scope="class")
def _backup(setup_env, tmp_path_factory):
    dist = synth(config_file("a-default"), env_file("a-default"), str(tmp_path_factory.mktemp("backup") / "dist"))
    with deployed(dist) as d:
        yield d


@pytest.fixture(scope="class")
def backup(_backup):
    """The default app with one server, two runs written (a full one and a light one), then its backup CronJob
    fired once: the Job's outcome, the dump it wrote and the row counts at that moment."""
    stack = _backup.stack
    stack.scale_servers(BACKUP_SERVERS)
    full = run_client(stack.tracking_uri, "write")
    light = run_client(stack.tracking_uri, "write", "--light")
    before, rows = dumps(stack), counts(stack)
    code, pod = stack.run_cronjob("backup", "upload")
    new = sorted(set(dumps(stack)) - set(before))
    return types.SimpleNamespace(stack=stack, full=full, light=light, counts=rows, dumps_before=before, code=code, pod=pod,
                                 dump_log=pod.log("dump"), upload_log=pod.log("upload"), new=new, key=new[-1] if new else None,
                                 servers=BACKUP_SERVERS)


@pytest.fixture
def backup_stack(_backup, backup):
    """The backup fixture's stack with its one server rolled out, for a test that may change it."""
    _backup.stack.scale_servers(BACKUP_SERVERS)
    return _backup.stack


# --- MLflow 3 ---------------------------------------------------------------------------------------------

OLD_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.2-full"


def _gateway_dist(directory: str, config=None, env=None) -> str:
    """The upgrade-gateway scenario (with `config`/`env` merged in), the server told to accept the test's provider."""
    dist = synth_scenario("upgrade-gateway", directory, config, env)
    allow_test_provider(dist)
    return dist


@pytest.fixture(scope="class")
def upgrade(mlflow3_env, tmp_path_factory):
    """MLflow 3.17.2 (the upgrade-gateway scenario with the old image), rolled out, its servers' logs followed;
    `new` is the scenario as written (3.18.0)."""
    work = str(tmp_path_factory.mktemp("mlflow3-upgrade"))
    old = _gateway_dist(os.path.join(work, "v3172"), {"server": {"image": OLD_IMAGE}})
    new = _gateway_dist(os.path.join(work, "v3180"))
    stack = Stack(old)
    logs = ServerLogs(stack.selector(stack.deployment), work)
    try:
        stack.apply()
        stack.wait_ready()
        yield types.SimpleNamespace(stack=stack, logs=logs, new=new, work=work)
    finally:
        logs.close()
        stack.delete()


@pytest.fixture(scope="class")
def gateway(mlflow3_env, tmp_path_factory):
    """MLflow 3.18.0 with the AI gateway (the upgrade-gateway scenario), rolled out, its servers' logs followed.
    `synth(directory, config, env)` makes a variant of it."""
    work = str(tmp_path_factory.mktemp("mlflow3-gateway"))
    stack = Stack(_gateway_dist(os.path.join(work, "dist")))
    logs = ServerLogs(stack.selector(stack.deployment), work)
    try:
        stack.apply()
        stack.wait_ready()
        yield types.SimpleNamespace(stack=stack, logs=logs, work=work, synth=_gateway_dist)
    finally:
        logs.close()
        stack.delete()


@pytest.fixture(scope="class")
def seaweed(mlflow3_env, tmp_path_factory):
    """SeaweedFS, basic auth and workspaces, one replica (scenario seaweedfs-auth-workspaces)."""
    with deployed(synth_scenario("seaweedfs-auth-workspaces", str(tmp_path_factory.mktemp("seaweedfs") / "dist"))) as d:
        yield d.stack


# --- single sign-on ---------------------------------------------------------------------------------------

@pytest.fixture(scope="class")
def sso(sso_programs, tmp_path_factory):
    """The provider, then the sso-dex scenario's stack applied and rolled out, and its bucket Job done; a token
    of alice's issued once the stack was up (`first_token`, for the expiry test)."""
    provider = Provider(sso_programs[0])
    d = None
    try:
        d = Deployed(synth_scenario(SSO_SCENARIO, str(tmp_path_factory.mktemp("sso") / "dist")))
        stack = d.stack
        code, pod = stack.job_result(stack.job["metadata"]["name"], "mc")
        assert code == 0, pod.log("mc")
        stack.first_token = provider.token(ALICE)["id_token"]
        yield stack, provider
    finally:
        if d is not None:
            d.close()
        provider.close()


@pytest.fixture(scope="class")
def sso_run(sso):
    """A run alice wrote through the proxy with a provider token."""
    stack, provider = sso
    return run_client(stack.tracking_uri, "write", "--light", env={"MLFLOW_TRACKING_TOKEN": provider.token(ALICE)["id_token"]})
