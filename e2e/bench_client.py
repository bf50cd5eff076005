"""Client side of e2e/bench.py (run with the e2e virtualenv's Python, MLFLOW_TRACKING_URI set).

    python bench_client.py RUNS BATCHES_PER_RUN ARTIFACT_MB ARTIFACT_RUNS
    python bench_client.py --rounds      (e2e/bench_auth.py)

Prints one JSON line: per-run log_batch requests/s (1000 metrics each) and artifact MB/s. With
--rounds it keeps one client (and its connections) and answers each stdin line `log_metric N` or
`log_batch N` with one JSON line: requests/s of N such requests (a training loop's calls).
"""
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric


def main():
    runs, batches, size_mb, artifact_runs = (int(a) for a in sys.argv[1:5])
    client = MlflowClient()
    exp = client.create_experiment(f"bench-{os.getpid()}-{time.time_ns()}")
    run_id = client.create_run(exp).info.run_id
    # Warm-up: connections, first-request costs, DB caches.
    client.log_batch(run_id, metrics=[Metric("warm", 0.0, 0, i) for i in range(1000)])

    batch_rates = []
    step = 0
    for r in range(runs):
        t0 = time.perf_counter()
        for _ in range(batches):
            ts = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(f"m{i % 10}", float(i), ts, step * 1000 + i) for i in range(1000)])
            step += 1
        batch_rates.append(batches / (time.perf_counter() - t0))

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "blob.bin")
        with open(src, "wb") as handle:
            handle.write(os.urandom(size_mb * 1024 * 1024))
        with open(src, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        up, down = [], []
        for r in range(artifact_runs):
            t0 = time.perf_counter()
            client.log_artifact(run_id, src, artifact_path=f"bench{r}")
            up.append(size_mb / (time.perf_counter() - t0))
            dst = os.path.join(tmp, f"dl{r}")
            os.makedirs(dst)
            t0 = time.perf_counter()
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"bench{r}/blob.bin", dst_path=dst)
            down.append(size_mb / (time.perf_counter() - t0))
            with open(path, "rb") as handle:
                if hashlib.sha256(handle.read()).hexdigest() != digest:
                    raise SystemExit("downloaded artifact differs from the uploaded one")
            os.remove(path)
    print(json.dumps({
        "log_batch_rps": batch_rates, "log_batch_rps_median": statistics.median(batch_rates),
        "upload_mbps": up, "upload_mbps_median": statistics.median(up),
        "download_mbps": down, "download_mbps_median": statistics.median(down),
    }))


def rounds():
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment(f"bench-{os.getpid()}-{time.time_ns()}")).info.run_id
    client.log_metric(run_id, "warm", 0.0)
    step = 0
    for line in sys.stdin:
        kind, n = line.split()
        t0 = time.perf_counter()
        for _ in range(int(n)):
            if kind == "log_metric":
                client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            else:
                ts = int(time.time() * 1000)
                client.log_batch(run_id, metrics=[Metric(f"m{i % 10}", float(i), ts, step * 100 + i) for i in range(100)])
            step += 1
        print(json.dumps({"rps": int(n) / (time.perf_counter() - t0)}), flush=True)


if __name__ == "__main__":
    rounds() if sys.argv[1:] == ["--rounds"] else main()
