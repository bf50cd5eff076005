"""OTLP trace ingestion, as a user's OpenTelemetry SDK does it (test_mlflow3.py): a span exported to
`/v1/traces` through the NodePort from the node, and through the Service name from inside a pod, then found
with `mlflow.search_traces`."""
import glob
import io
import json
import os
import secrets
import subprocess
import zipfile

from node.rollout import mlflow_client
from node.stack import Pod, Stack, basic

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


EXPORT_SPAN = r"""
import json, sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
endpoint, headers, name = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
span = TracerProvider(resource=Resource.create({"service.name": "e2e-otlp"})).get_tracer("e2e").start_span(name)
span.set_attribute("e2e.path", name)
span.end()
result = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=30).export([span])
print(json.dumps({"result": result.name, "trace_id": format(span.get_span_context().trace_id, "032x")}))
"""


FIND_TRACES = r"""
import json, sys, mlflow
print(json.dumps(sorted(t.info.trace_id for t in mlflow.search_traces(locations=[sys.argv[1]], return_type="list"))))
"""


BUNDLE = "/tmp/e2e-otlp-exporter.zip"


def otlp_site() -> str:
    return glob.glob(os.path.join(os.environ["E2E_OTLP_VENV"], "lib", "python3*", "site-packages"))[0]


def exporter_bundle() -> bytes:
    """The OTLP/HTTP exporter's packages from the client virtualenv, zipped (pure Python): the MLflow image carries
    the OpenTelemetry SDK and protobuf messages but not the exporter. Directory entries make the namespace
    package importable from the zip."""
    buffer = io.BytesIO()
    site = otlp_site()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.write(os.path.join(site, "opentelemetry"), "opentelemetry")
        for root, _, files in os.walk(os.path.join(site, "opentelemetry", "exporter")):
            bundle.write(root, os.path.relpath(root, site))
            for name in files:
                if not name.endswith(".pyc"):
                    bundle.write(os.path.join(root, name), os.path.relpath(os.path.join(root, name), site))
    return buffer.getvalue()


def export_from_node(stack: Stack, headers: dict, name: str) -> dict:
    """A user's OpenTelemetry SDK outside the cluster, exporting to http://<node>:<nodePort>/v1/traces."""
    result = subprocess.run([os.path.join(os.environ["E2E_OTLP_VENV"], "bin", "python"), "-c", EXPORT_SPAN, f"{stack.tracking_uri}/v1/traces",
                             json.dumps(headers), name],
                            env={"PATH": BASE_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", "NO_PROXY": "*"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_in_cluster(stack: Stack, pod: Pod, headers: dict, name: str) -> dict:
    """The same program in a pod of the cluster (the server's container: its image has Python and the SDK; the
    exporter comes as a zip on the import path), to http://<service>.<namespace>.svc.cluster.local:5000/v1/traces
    (CoreDNS resolves the name)."""
    svc = next(o for o in stack.objects if o["kind"] == "Service" and o["spec"].get("type") == "NodePort")["metadata"]
    url = f"http://{svc['name']}.{svc['namespace']}.svc.cluster.local:5000/v1/traces"
    copied = pod.exec("mlflow", ["python", "-c", f"import sys; open({BUNDLE!r}, 'wb').write(sys.stdin.buffer.read())"], input=exporter_bundle())
    assert copied.returncode == 0, copied.stderr.decode()[-3000:]
    result = pod.exec("mlflow", ["python", "-c", f"import sys; sys.path.append({BUNDLE!r})\n{EXPORT_SPAN}", url, json.dumps(headers), name], timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def check_otlp(stack: Stack, pod: Pod, auth=None) -> None:
    headers = {"Authorization": basic(*auth)} if auth else {}
    status, _, text = stack.request("POST", "/api/2.0/mlflow/experiments/create", {"name": f"otlp-{secrets.token_hex(4)}"}, auth=auth)
    assert status == 200, text
    experiment = json.loads(text)["experiment_id"]
    headers["x-mlflow-experiment-id"] = experiment
    via_node = export_from_node(stack, headers, "via-node-port")
    via_service = export_in_cluster(stack, pod, headers, "via-service-name")
    assert via_node["result"] == via_service["result"] == "SUCCESS", (via_node, via_service)
    if auth:
        refused = export_from_node(stack, {"x-mlflow-experiment-id": experiment}, "without-credentials")
        assert refused["result"] == "FAILURE", refused
    found = mlflow_client(stack, FIND_TRACES, experiment, env={"MLFLOW_TRACKING_USERNAME": auth[0], "MLFLOW_TRACKING_PASSWORD": auth[1]} if auth else None)
    assert sorted(found) == sorted(f"tr-{r['trace_id']}" for r in (via_node, via_service)), found
