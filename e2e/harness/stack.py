"""The MLflow stack on the stand-in cluster: finds its parts in the manifests by kind and label,
starts them in the order a cluster would, and offers the checks a user would run (psql, mc)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Dict, List, Mapping, Optional

from . import kube
from .cluster import Cluster, Pod, PodFailed, _NO_PROXY

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.dirname(HERE)
REPO = os.path.dirname(E2E)


def synth(env_file: str, outdir: str) -> str:
    """`npm run synth` with another credentials file and output directory (main.ts reads MLFLOW_ENV_FILE)."""
    os.makedirs(outdir, exist_ok=True)
    env = dict(os.environ, MLFLOW_ENV_FILE=os.path.abspath(env_file), CDK8S_OUTDIR=os.path.abspath(outdir), CDK8S_CHECK_UPGRADE="false")
    result = subprocess.run(["node", os.path.join(REPO, "scripts", "synth.js")], cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"synth failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return outdir


def synth_variant(env_file: str, outdir: str, *flags: str) -> str:
    """The stack built through the library's API by e2e/synth.ts (`npx tsx`): the props main.ts leaves
    off (garbageCollection, direct artifact serving); MLFLOW_TRACKING_PASSWORD in the env file turns auth on."""
    os.makedirs(outdir, exist_ok=True)
    env = dict(os.environ, CDK8S_CHECK_UPGRADE="false")
    result = subprocess.run(["npx", "--no-install", "tsx", os.path.join(E2E, "synth.ts"), os.path.abspath(env_file), os.path.abspath(outdir), *flags],
                            cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"e2e/synth.ts failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return outdir


def by_component(manifests: kube.Manifests, kind: str, component: str) -> Dict[str, Any]:
    found = [o for o in manifests.of_kind(kind)
             if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == component]
    if len(found) != 1:
        raise kube.ManifestError(f"expected one {kind} with app.kubernetes.io/component={component}, found {len(found)}")
    return found[0]


class Stack:
    def __init__(self, dist: str, tag: str, subnet: str, node_port_ips: Optional[List[str]] = None):
        self.dist = dist
        self.manifests = kube.Manifests.from_path(dist)
        expose = [os.environ["E2E_CACHE"], os.path.realpath(os.path.join(os.environ["E2E_VENV"], "bin", "python"))]
        base = os.path.dirname(os.path.dirname(expose[1]))  # the base interpreter's prefix
        self.cluster = Cluster(self.manifests, tag=tag, subnet=subnet, expose_paths=[expose[0], base])
        self.node_ip = self.cluster.network.node_ip
        self.node_port_ips = node_port_ips if node_port_ips is not None else [self.node_ip]
        self.proxy_started = False

    # --- parts ---
    @property
    def postgres(self) -> Dict[str, Any]:
        return by_component(self.manifests, "StatefulSet", "backend-store")

    @property
    def minio(self) -> Dict[str, Any]:
        return by_component(self.manifests, "StatefulSet", "artifact-store")

    @property
    def job(self) -> Dict[str, Any]:
        return self.manifests.one("Job")

    @property
    def deployment(self) -> Dict[str, Any]:
        return self.manifests.one("Deployment")

    @property
    def service(self) -> Dict[str, Any]:
        found = [s for s in self.manifests.of_kind("Service") if (s.get("spec") or {}).get("type") == "NodePort"]
        if len(found) != 1:
            raise kube.ManifestError(f"expected one NodePort Service, found {len(found)}")
        return found[0]

    def cronjob(self, component: str) -> Dict[str, Any]:
        return by_component(self.manifests, "CronJob", component)

    def run_cronjob(self, component: str, timeout: float = 300):
        """What "the schedule fired" does: the CronJob's jobTemplate pod, init containers then its containers side by
        side, to completion. Returns (0 if every container exited 0, else the first non-zero code; pod); a failed
        init container raises PodFailed."""
        return self.cluster.run_job(self.cronjob(component), timeout=timeout)

    @property
    def node_port(self) -> int:
        return int(self.service["spec"]["ports"][0]["nodePort"])

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.node_port_ips[0]}:{self.node_port}"

    def secret(self) -> Dict[str, str]:
        name = self.manifests.of_kind("Secret")[0]["metadata"]["name"]
        return {k: v.decode() for k, v in self.manifests.secret_data(name, self.manifests.ns(self.deployment)).items()}

    def swap_manifests(self, dist: str) -> None:
        """`kubectl apply` of a new synth: later pod starts read the new objects."""
        self.dist = dist
        self.manifests = kube.Manifests.from_path(dist)
        self.cluster.manifests = self.manifests

    # --- start, in the cluster's order ---
    def start_stores(self) -> List[Pod]:
        pods = self.cluster.plan(self.postgres) + self.cluster.plan(self.minio)
        errors = self.cluster.start_all(pods)
        for e in errors:
            if e:
                raise e
        return pods

    def run_bucket_job(self, timeout: float = 120):
        return self.cluster.run_job(self.job, timeout=timeout)

    def server_pods(self, replicas: Optional[int] = None) -> List[Pod]:
        return self.cluster.plan(self.deployment, replicas)

    def start_servers(self, replicas: Optional[int] = None) -> List[Pod]:
        pods = self.server_pods(replicas)
        errors = self.cluster.start_all(pods)
        for e in errors:
            if e:
                raise e
        self.ensure_node_port()
        return pods

    def ensure_node_port(self) -> None:
        if not self.proxy_started:
            self.cluster.node_port(self.service, self.node_port_ips)
            self.proxy_started = True

    def stop_servers(self) -> None:
        """`kubectl scale deployment/<name> --replicas=0`."""
        name = self.deployment["metadata"]["name"]
        for pod in list(self.cluster.pods.values()):
            if pod.workload["kind"] == "Deployment" and pod.workload["metadata"]["name"] == name:
                pod.stop()

    def restart_pod(self, pod: Pod) -> Pod:
        pod.stop()
        return self.cluster.start_pod(pod)

    def close(self) -> None:
        self.cluster.close()

    # --- what a user checks ---
    def http_get(self, path: str, host_ip: Optional[str] = None, timeout: float = 10):
        url = f"http://{host_ip or self.node_port_ips[0]}:{self.node_port}{path}"
        with _NO_PROXY.open(urllib.request.Request(url), timeout=timeout) as response:
            return response.status, response.read().decode()

    def request(self, method: str, path: str, body: Any = None, auth: Optional[tuple] = None, host_ip: Optional[str] = None,
                headers: Optional[Mapping[str, str]] = None, data: Optional[bytes] = None, timeout: float = 30):
        """One HTTP request through the NodePort; returns (status, headers with lower-case names, text) for every status (no raise)."""
        import base64
        import urllib.error
        url = f"http://{host_ip or self.node_port_ips[0]}:{self.node_port}{path}"
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if auth is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with _NO_PROXY.open(req, timeout=timeout) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()

    def psql(self, sql: str) -> str:
        """`kubectl exec mlflow-postgres-0 -- psql ...` (local socket, as the image's user)."""
        pod = self.cluster.plan(self.postgres)[0]
        s = self.secret()
        result = pod.exec("postgres", ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-U", s["POSTGRES_USER"], "-d", s["POSTGRES_DB"], "-c", sql])
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.decode()}")
        return result.stdout.decode().strip()

    def mc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The mc client on the node, pointed at the MinIO pod (alias `e2e`) with the Secret's credentials."""
        config = os.path.join(self.cluster.run_dir, "mc-client")
        env = dict(os.environ, MC_CONFIG_DIR=config)
        if not os.path.exists(os.path.join(config, "config.json")):
            s = self.secret()
            pod = self.cluster.plan(self.minio)[0]
            # alias set, not MC_HOST_<alias>: a URL cannot carry every secret (mc does not unescape it).
            subprocess.run([os.environ["E2E_MC"], "alias", "set", "e2e", f"http://{pod.ip}:9000", s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"]],
                           env=env, check=True, capture_output=True, timeout=60)
        result = subprocess.run([os.environ["E2E_MC"], "--json", *args], env=env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"mc {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def mc_json(self, *args: str) -> List[Dict[str, Any]]:
        return [json.loads(line) for line in self.mc(*args).stdout.splitlines() if line.strip()]

    def artifact_root(self):
        root = self.secret()["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):]
        bucket, _, prefix = root.partition("/")
        return bucket, prefix.strip("/")


def client_env(tracking_uri: str, home: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """What a user's shell gives the MLflow client: only the tracking URI (no S3 or DB credentials), plus
    `extra` (MLFLOW_TRACKING_USERNAME/PASSWORD under basic auth)."""
    env = {"PATH": f"{os.path.join(os.environ['E2E_VENV'], 'bin')}:/usr/bin:/bin", "HOME": home,
           "MLFLOW_TRACKING_URI": tracking_uri, "LANG": "C.UTF-8", "NO_PROXY": "*",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
    # Diagnosis only: E2E_CLIENT_ENV="K=V K2=V2" adds client settings (a user would have to set them).
    for word in os.environ.get("E2E_CLIENT_ENV", "").split():
        key, _, value = word.partition("=")
        env[key] = value
    env.update(extra or {})
    return env


def run_client(tracking_uri: str, *args: str, timeout: float = 600, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    home = tempfile.mkdtemp(prefix="mlflow-client-")
    try:
        result = subprocess.run([os.path.join(os.environ["E2E_VENV"], "bin", "python"), os.path.join(E2E, "client_workflow.py"), *args],
                                env=client_env(tracking_uri, home, env), cwd=home, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if result.returncode != 0:
        raise AssertionError(f"client failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
