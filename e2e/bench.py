"""Benchmark: the tracking server as the default synth configures it (PostgreSQL + MinIO, proxied
artifacts, reached through the NodePort of the real node, e2e/node) beside `mlflow server` with its own
defaults (sqlite file, local ./mlartifacts, 127.0.0.1:5000), on the same machine in the same run.

    sudo bash e2e/bench.sh            (= setup + node + this, which synthesizes the a-default scenario)

Measures, with one client process (e2e/bench_client.py) against each server in turn:
  * metric logging: log_batch requests of 1000 metrics each, requests/s (median of RUNS runs)
  * artifact upload and download of a 50 MB file, MB/s (median of ARTIFACT_RUNS runs)
Then authenticated against anonymous logging, paired (e2e/bench_auth.py). BENCH_PARTS=auth or
BENCH_PARTS=baseline runs one part only.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

E2E = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, E2E)

from bench_auth import auth_vs_anonymous  # noqa: E402
from matrix import config_file, env_file, synth  # noqa: E402
from node.stack import Stack, client_env  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BATCHES = int(os.environ.get("BENCH_BATCHES", "10"))
ARTIFACT_MB = int(os.environ.get("BENCH_ARTIFACT_MB", "50"))
ARTIFACT_RUNS = int(os.environ.get("BENCH_ARTIFACT_RUNS", "3"))
# The client is a user's: only MLFLOW_TRACKING_URI (BENCH_CLIENT_ENV="K=V ..." adds settings).
CLIENT_EXTRA = dict(w.partition("=")[::2] for w in os.environ.get("BENCH_CLIENT_ENV", "").split())


def measure(uri: str) -> dict:
    home = tempfile.mkdtemp(prefix="bench-client-")
    env = dict(client_env(uri, home), **CLIENT_EXTRA)
    try:
        out = subprocess.run([os.path.join(os.environ["E2E_VENV"], "bin", "python"), os.path.join(E2E, "bench_client.py"),
                              str(RUNS), str(BATCHES), str(ARTIFACT_MB), str(ARTIFACT_RUNS)],
                             env=env, cwd=home, capture_output=True, text=True, timeout=1800)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if out.returncode != 0:
        raise SystemExit(f"bench client against {uri} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"baseline mlflow server exited with {proc.returncode}")
        try:
            with opener.open(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("baseline mlflow server did not answer /health")


def baseline() -> dict:
    work = tempfile.mkdtemp(prefix="bench-baseline-")
    port = 5000 if free(5000) else 5055
    argv = [os.path.join(os.environ["E2E_VENV"], "bin", "mlflow"), "server"] + ([] if port == 5000 else ["--port", str(port)])
    env = {"PATH": f"{os.environ['E2E_VENV']}/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"}
    log = open(os.path.join(work, "server.log"), "wb")
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_health(f"http://127.0.0.1:{port}", proc)
        result = measure(f"http://127.0.0.1:{port}")
        result["argv"] = " ".join(["mlflow"] + argv[1:])
        return result
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parts = os.environ.get("BENCH_PARTS", "baseline,auth").split(",")
    if "baseline" in parts:
        stack_vs_baseline()
    if "auth" in parts:
        auth_vs_anonymous()


def stack_vs_baseline() -> None:
    # The default app (E2E_ENV_FILE names another .env).
    dist = synth(config_file("a-default"), os.environ.get("E2E_ENV_FILE") or env_file("a-default"), tempfile.mkdtemp(prefix="cdk8s-mlflow-bench-dist-"))
    stack = Stack(dist)
    stack.apply()
    try:
        stack.wait_ready()
        workers = next(a for a in zip(stack.deployment["spec"]["template"]["spec"]["containers"][0]["args"],
                                      stack.deployment["spec"]["template"]["spec"]["containers"][0]["args"][1:]) if a[0] == "--workers")[1]
        replicas = stack.deployment["spec"].get("replicas", 1)
        stacked = measure(stack.tracking_uri)
    finally:
        stack.delete()
        shutil.rmtree(dist, ignore_errors=True)
    base = baseline()

    rows = [
        ("log_batch (1000 metrics) req/s", "log_batch_rps_median", "log_batch_rps"),
        (f"upload {ARTIFACT_MB} MB, MB/s", "upload_mbps_median", "upload_mbps"),
        (f"download {ARTIFACT_MB} MB, MB/s", "download_mbps_median", "download_mbps"),
    ]
    print()
    print(f"stack:    {replicas} replicas x {workers} uvicorn workers, PostgreSQL + MinIO, proxied artifacts, via NodePort {stack.tracking_uri}")
    print(f"baseline: `{base['argv']}` (sqlite + ./mlartifacts, 4 workers by default), direct on 127.0.0.1")
    print(f"runs: metrics {RUNS} x {BATCHES} requests, artifacts {ARTIFACT_RUNS}; medians (all runs in brackets)")
    print()
    print(f"| {'measure':34} | {'stack (default synth)':>22} | {'mlflow server defaults':>22} | {'ratio':>6} |")
    print(f"|{'-' * 36}|{'-' * 24}|{'-' * 24}|{'-' * 8}|")
    for label, key, runs_key in rows:
        a, b = stacked[key], base[key]
        print(f"| {label:34} | {a:22.1f} | {b:22.1f} | {a / b:6.2f} |")
    print()
    for label, key, runs_key in rows:
        print(f"{label}: stack {[round(x, 1) for x in stacked[runs_key]]}, baseline {[round(x, 1) for x in base[runs_key]]}")


if __name__ == "__main__":
    main()
