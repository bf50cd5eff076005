"""What a user does with the tracking server, using nothing but MLFLOW_TRACKING_URI.

    python client_workflow.py write [--light] [--batch] [--delete]
                                                -> prints one JSON line describing what it wrote
                                                   (--batch: the stepped metrics in one log_batch request;
                                                    --delete: then deletes the run, as the UI's trash does)
    python client_workflow.py verify JSON...    -> reads all of it back (each spec given); exits non-zero on a difference
    python client_workflow.py try-write JSON    -> tries to log a param and a metric to the run; prints each outcome
                                                   ("OK" or the MLflow error code, e.g. PERMISSION_DENIED)

Run with the e2e virtualenv's Python; the tests start it with a clean environment (no AWS_* or DB
variables), so artifacts can only have gone through the server (proxied artifact serving).
"""
import json
import os
import sys
import tempfile
import time
import uuid

import mlflow
import numpy as np
from mlflow import MlflowClient

TEXT = "hello from the e2e client: p@ss:w/rd #%?& ' \" ü\n"
STEPS = 10


def loss(step):
    return round(1.0 / (step + 1), 6)


def data():
    from sklearn.datasets import load_iris  # shipped inside scikit-learn, no download
    x, y = load_iris(return_X_y=True)
    return x, y


def write(light: bool, delete: bool = False, batch: bool = False):
    client = MlflowClient()
    tag = uuid.uuid4().hex[:8]
    experiment_id = client.create_experiment(f"e2e-{tag}")
    mlflow.set_experiment(experiment_id=experiment_id)
    out = {"experiment_id": experiment_id, "tag": tag}
    with mlflow.start_run() as run:
        mlflow.log_params({"alpha": "0.5", "tag": tag, "odd": "a/b?c#d"})
        if batch:
            from mlflow.entities import Metric
            now = int(time.time() * 1000)
            client.log_batch(run.info.run_id, metrics=[Metric("loss", loss(step), now, step) for step in range(STEPS)])
        else:
            for step in range(STEPS):
                mlflow.log_metric("loss", loss(step), step=step)
        mlflow.log_metric("accuracy", 0.97)
        mlflow.log_text(TEXT, "notes/hello.txt")
        out["run_id"] = run.info.run_id
        out["artifact_uri"] = run.info.artifact_uri
        if not light:
            from sklearn.linear_model import LogisticRegression
            x, y = data()
            model = LogisticRegression(max_iter=500).fit(x, y)
            name = f"e2e-model-{tag}"
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=x[:3])
            out["model_name"] = name
            out["model_version"] = str(info.registered_model_version)
            out["model_uri"] = info.model_uri
            out["model_id"] = getattr(info, "model_id", None)
            out["expected"] = model.predict(x[:10]).tolist()
    if not light:
        loaded = mlflow.pyfunc.load_model(f"models:/{out['model_name']}/{out['model_version']}")
        predicted = np.asarray(loaded.predict(data()[0][:10])).tolist()
        if predicted != out["expected"]:
            raise SystemExit(f"loaded model predicts {predicted}, trained one {out['expected']}")
        out["predicted"] = predicted
    if delete:
        client.delete_run(out["run_id"])
        out["deleted"] = True
    print(json.dumps(out))


def verify(spec):
    client = MlflowClient()
    run = client.get_run(spec["run_id"])
    problems = []
    if run.data.params.get("tag") != spec["tag"] or run.data.params.get("odd") != "a/b?c#d":
        problems.append(f"params: {run.data.params}")
    history = client.get_metric_history(spec["run_id"], "loss")
    got = sorted((m.step, m.value) for m in history)
    if got != [(s, loss(s)) for s in range(STEPS)]:
        problems.append(f"loss history: {got}")
    if run.data.metrics.get("accuracy") != 0.97:
        problems.append(f"metrics: {run.data.metrics}")
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=spec["run_id"], artifact_path="notes/hello.txt", dst_path=tmp)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    if text != TEXT:
        problems.append(f"artifact text: {text!r}")
    if "model_name" in spec:
        version = client.get_model_version(spec["model_name"], spec["model_version"])
        if version.status != "READY":
            problems.append(f"model version status {version.status}")
        from sklearn.datasets import load_iris
        loaded = mlflow.pyfunc.load_model(f"models:/{spec['model_name']}/{spec['model_version']}")
        predicted = np.asarray(loaded.predict(load_iris(return_X_y=True)[0][:10])).tolist()
        if predicted != spec["expected"]:
            problems.append(f"predictions {predicted} != {spec['expected']}")
    if problems:
        raise SystemExit("verify: " + "; ".join(problems))
    print(json.dumps({"verified": spec["run_id"]}))


def try_write(spec):
    from mlflow.exceptions import MlflowException
    client = MlflowClient()
    out = {}
    attempts = {
        "log_param": lambda: client.log_param(spec["run_id"], "written-by", os.environ.get("MLFLOW_TRACKING_USERNAME", "")),
        "log_metric": lambda: client.log_metric(spec["run_id"], "written-by-metric", 1.0),
    }
    for name, call in attempts.items():
        try:
            call()
            out[name] = "OK"
        except MlflowException as error:
            out[name] = error.error_code
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write("--light" in sys.argv[2:], "--delete" in sys.argv[2:], "--batch" in sys.argv[2:])
    elif sys.argv[1] == "verify":
        for spec in sys.argv[2:]:
            verify(json.loads(spec))
    elif sys.argv[1] == "try-write":
        try_write(json.loads(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
