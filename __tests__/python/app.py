"""The scenarios of the matrix (e2e/scenarios/<name>/) built through the cdk8s-mlflow wheel, as a Python
user writes them: each mlflow.yaml key as the package's keyword argument in snake_case, the stores
through their static factories, durations, sizes and CPU through cdk8s's Duration, Size and Cpu, the
enums by member; the credentials from the scenario's credentials.env, or its existing Secret.

Usage: python app.py OUT_ROOT SCENARIO_DIR...    writes OUT_ROOT/<scenario>/mlflow.k8s.yaml, or
OUT_ROOT/<scenario>/error.txt when the package refuses the scenario (each scenario is its own test).
"""
import os
import re
import sys
import traceback

from cdk8s import App, Chart, Duration, Size, Yaml
from cdk8s_plus_28 import Cpu
from cdk8s_mlflow import (ArtifactServing, ArtifactStore, BackendStore, Credentials, DatabaseEngine, MlflowStack, Permission,
                          ServiceExposure)

DURATIONS = {"databaseWaitTimeout", "waitTimeout", "credentialCacheTtl", "sessionLifetime", "interval", "olderThan", "retention"}
SIZES = {"storage", "maxBodySize"}
ENUMS = {"artifactServing": ArtifactServing, "exposure": ServiceExposure, "defaultPermission": Permission, "engine": DatabaseEngine}
STORES = {"backendStore": BackendStore, "artifactStore": ArtifactStore}


def snake(name: str) -> str:
    """nodePort -> node_port"""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def duration(text: str) -> Duration:
    return {"s": Duration.seconds, "m": Duration.minutes, "h": Duration.hours, "d": Duration.days}[text[-1]](int(text[:-1]))


def size(text: str) -> Size:
    return {"Mi": Size.mebibytes, "Gi": Size.gibibytes, "Ti": Size.tebibytes}[text[-2:]](int(text[:-2]))


def cpu(text):
    if text is None:
        return None
    return Cpu.millis(int(text[:-1])) if text.endswith("m") else Cpu.units(float(text) if "." in text else int(text))


def resources(r: dict) -> dict:
    """mlflow.yaml has requests and limits of cpu and memory; the props have cpu and memory, each with request and limit."""
    requests, limits = r.get("requests") or {}, r.get("limits") or {}
    memory = lambda text: None if text is None else size(text)  # noqa: E731
    return {"cpu": {"request": cpu(requests.get("cpu")), "limit": cpu(limits.get("cpu"))},
            "memory": {"request": memory(requests.get("memory")), "limit": memory(limits.get("memory"))}}


def value(key: str, v):
    if key in DURATIONS:
        return duration(v)
    if key in SIZES:
        return size(v)
    if key in ENUMS:  # NodePort -> NODE_PORT, direct -> DIRECT
        return ENUMS[key][re.sub(r"(?<=[a-z])(?=[A-Z])", "_", v).upper()]
    if key == "resources":
        return resources(v)
    if key in STORES:  # exactly one of postgres / external, minio / seaweedfs / s3
        (factory, options), = v.items()
        return getattr(STORES[key], factory)(**value("", options))
    if isinstance(v, dict):
        return {snake(k): value(k, x) for k, x in v.items()}
    return v


def stack_props(directory: str) -> dict:
    path = os.path.join(directory, "mlflow.yaml")
    settings = (Yaml.load(path)[0] or {}) if os.path.exists(path) else {}
    secret = (settings.get("credentials") or {}).get("existingSecret")
    props = {snake(k): value(k, v) for k, v in settings.items() if k != "credentials"}
    props["credentials"] = Credentials.from_secret_name(secret) if secret else Credentials.from_env_file(os.path.join(directory, "credentials.env"))
    return props


if len(sys.argv) < 3:
    sys.exit("usage: app.py OUT_ROOT SCENARIO_DIR...")
for scenario in sys.argv[2:]:
    outdir = os.path.join(sys.argv[1], os.path.basename(scenario.rstrip("/")))
    try:
        app = App(outdir=outdir)
        MlflowStack(Chart(app, "mlflow"), "mlflow", **stack_props(scenario))
        app.synth()
    except Exception:  # noqa: BLE001 - reported by the scenario's own test
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "error.txt"), "w", encoding="utf-8") as handle:
            handle.write(traceback.format_exc())
