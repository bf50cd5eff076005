"""Shared set-up of the e2e suite on the real node: program paths, the default synth."""
import os
import shlex
import signal
import subprocess
import sys
import tempfile

import pytest

E2E = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, E2E)


def _load_setup_env() -> None:
    """The paths e2e/setup.sh installed (run.sh exports them; a bare `pytest e2e` asks setup.sh)."""
    if all(os.environ.get(k) for k in ("E2E_MINIO", "E2E_MC", "E2E_VENV", "E2E_CACHE")):
        return
    out = subprocess.run(["bash", os.path.join(E2E, "setup.sh"), "--print-env"], check=True, capture_output=True, text=True).stdout
    for word in shlex.split(out.strip().removeprefix("export ")):
        key, _, value = word.partition("=")
        os.environ[key] = value


def pytest_configure(config):
    # A SIGTERM (a CI time-out, `kill`) becomes an exit that still runs the fixtures' teardown (the
    # stacks are deleted; run.sh stops the node).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config.addinivalue_line("markers", "stack: applies a stack to the real node (root)")


@pytest.fixture(scope="session")
def setup_env():
    if os.geteuid() != 0:
        pytest.skip("the e2e suite needs root (it runs a node)")
    _load_setup_env()
    if not os.environ.get("NODE_KUBECONFIG"):
        pytest.skip("no node: run the suite with `npm run test:e2e` (e2e/run.sh starts one)")
    return dict(os.environ)


@pytest.fixture(scope="session")
def default_dist(setup_env):
    """The default app's manifests: E2E_DIST from run.sh, else a synth of .env.example (or E2E_ENV_FILE)
    into a temp dir. A developer's own .env is not used: it may name an external S3 and hold real passwords."""
    if os.environ.get("E2E_DIST"):
        return os.environ["E2E_DIST"]
    from node.stack import synth
    out = tempfile.mkdtemp(prefix="cdk8s-mlflow-dist-")
    repo = os.path.dirname(E2E)
    env_file = os.environ.get("E2E_ENV_FILE") or os.path.join(repo, ".env.example")
    return synth(env_file, out)
