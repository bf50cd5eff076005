"""Tests of the harness itself on hand-written manifests: expansion, env resolution, argv, volumes.

Fast and needing nothing installed but PyYAML; the namespace tests need root and `ip`.
"""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import kube  # noqa: E402
from harness.kube import Image, Manifests, PodContext  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.mark.parametrize("text,expected", [
    ("$(A)", "a"),
    ("x$(A)y$(B)z", "xay$(A)z"),   # B is "$(A)": values are not re-expanded
    ("$$(A)", "$(A)"),
    ("$$$(A)", "$a"),
    ("$(MISSING)", "$(MISSING)"),
    ("$(A", "$(A"),
    ("$A", "$A"),
    ("$", "$"),
    ("a$", "a$"),
    ("$()", "$()"),
    ("$(A)$(A)", "aa"),
    ("$(EMPTY)x", "x"),
    ("ünï$(A)cödé", "ünïacödé"),
])
def test_expand_like_the_kubelet(text, expected):
    assert kube.expand(text, {"A": "a", "B": "$(A)", "EMPTY": ""}) == expected


def test_expand_first_context_wins():
    assert kube.expand("$(X)", {"X": "1"}, {"X": "2"}) == "1"
    assert kube.expand("$(Y)", {"X": "1"}, {"Y": "2"}) == "2"


@pytest.mark.parametrize("ref,repo,tag", [
    ("postgres:17", "docker.io/library/postgres", "17"),
    ("docker.io/library/postgres:17.7-bookworm", "docker.io/library/postgres", "17.7-bookworm"),
    ("burakince/mlflow:3.1", "docker.io/burakince/mlflow", "3.1"),
    ("quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z", "quay.io/minio/mc", "RELEASE.2025-08-13T08-35-41Z"),
    ("localhost:5000/x/y", "localhost:5000/x/y", "latest"),
    ("ghcr.io/mlflow/mlflow@sha256:abc", "ghcr.io/mlflow/mlflow", "latest"),
])
def test_image_names(ref, repo, tag):
    assert kube.image_repository(ref) == repo
    assert kube.image_tag(ref) == tag


@pytest.fixture
def small():
    return Manifests.from_path(os.path.join(FIXTURES, "small.yaml"))


def _ctx():
    return PodContext(name="web-abc-1", namespace="demo", uid="u", pod_ip="10.0.0.5", host_ip="10.0.0.1",
                      labels={"app": "web", "tier": "front"})


BUSYBOX = Image(entrypoint=[], cmd=["sh"], path=[], env={"PATH": "/bin", "FROM_IMAGE": "1"})


def test_env_resolution(small):
    dep = small.one("Deployment", "web")
    spec = kube.pod_template(dep)["spec"]
    svc_env = kube.service_env(small.of_kind("Service", "demo"), lambda s: "10.0.0.9")
    container = spec["containers"][0]
    env = kube.container_env(container, spec, _ctx(), small, svc_env)
    assert env["USER"] == "alice"
    assert env["PASS"] == "p@ss:w/rd#%?&\"'$("           # secret values are never expanded
    assert env["URI"] == "postgresql://db.demo.svc.cluster.local/app"   # stringData, plain
    # $(POD) is defined after GREETING: stays literal; service-link variables are visible.
    assert env["GREETING"] == "hi alice from $(POD) at $(MISSING) on 10.0.0.9"
    assert env["LATE"] == "web-abc-1"
    assert env["CM_MODE"] == "fast" and env["MODE"] == "fast"
    assert env["TIER"] == "front"
    assert "OPT" not in env
    assert env["MEM"] == "256"
    # Docker-links variables: headless services get none.
    assert env["WEB_API_PORT"] == "tcp://10.0.0.9:8080"
    assert env["WEB_API_SERVICE_PORT_METRICS"] == "9090"
    assert env["WEB_API_PORT_9090_TCP_ADDR"] == "10.0.0.9"
    assert not any(k.startswith("DB_") for k in env)


def test_enable_service_links_false_drops_them(small):
    dep = small.one("Deployment", "web")
    spec = dict(kube.pod_template(dep)["spec"], enableServiceLinks=False)
    svc_env = kube.service_env(small.of_kind("Service", "demo"), lambda s: "10.0.0.9")
    env = kube.container_env(spec["containers"][0], spec, _ctx(), small, svc_env)
    assert not any(k.startswith("WEB_API_") for k in env)


def test_argv_and_identity(small):
    dep = small.one("Deployment", "web")
    spec = kube.pod_template(dep)["spec"]
    svc_env = kube.service_env(small.of_kind("Service", "demo"), lambda s: "10.0.0.9")
    vols = {"conf": "/host/conf", "scratch": "/host/scratch"}
    app = kube.build_process(spec["containers"][0], spec, _ctx(), small, BUSYBOX, svc_env, vols, init=False)
    # no command: image entrypoint (none) + args, expanded
    assert app.argv == ["--user=alice", "--pass=p@ss:w/rd#%?&\"'$(", "--lit=$(USER)", "--open=$(USER", "--dollar=$x$", "--mode=fast"]
    assert (app.uid, app.gid, app.groups) == (1000, 1000, [2000])
    assert app.env["FROM_IMAGE"] == "1" and app.env["HOSTNAME"] == "web-abc-1" and app.env["HOME"] == "/"
    assert [(m.host_path, m.container_path) for m in app.mounts] == [("/host/conf", "/etc/app"), ("/host/scratch", "/scratch")]
    init = kube.build_process(spec["initContainers"][0], spec, _ctx(), small, BUSYBOX, svc_env, vols, init=True)
    assert init.argv == ["sh", "-c", "echo alice $HOME $(NOPE)"]


def test_image_cmd_is_not_expanded():
    image = Image(entrypoint=["run"], cmd=["$(A)"], path=[])
    assert kube.resolve_argv({"name": "c"}, image, {"A": "x"}) == ["run", "$(A)"]
    assert kube.resolve_argv({"name": "c", "args": ["$(A)"]}, image, {"A": "x"}) == ["run", "x"]
    assert kube.resolve_argv({"name": "c", "command": ["sh"], "args": []}, image, {}) == ["sh"]


def test_missing_secret_key_is_an_error(small):
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "NOPE"}}}]}
    with pytest.raises(kube.ManifestError, match="couldn't find key NOPE"):
        kube.container_env(container, {}, _ctx(), small, {})


def test_run_as_non_root_with_root_uid_is_refused():
    with pytest.raises(kube.ManifestError, match="runAsNonRoot"):
        kube.effective_ids({"name": "c"}, {"securityContext": {"runAsNonRoot": True}}, BUSYBOX)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")


@needs_root
def test_pods_get_their_own_address_hosts_and_volumes(small, tmp_path):
    """Two pods on the bridge: DNS names from the hosts file, volumes at their mountPaths, uid/fsGroup."""
    from harness.cluster import Cluster
    images = {"docker.io/library/busybox": Image(entrypoint=[], cmd=["sh"], path=[], env={"PATH": "/usr/bin:/bin"})}
    cluster = Cluster(small, run_dir=str(tmp_path), tag="mle2et", subnet="10.213.250.0/24", images=images)
    try:
        dep = small.one("Deployment", "web")
        pod = cluster.plan(dep)[0]
        pod.prepare()
        app = pod.containers["app"]
        script = ("id -u; id -G; cat /etc/app/app.ini; touch /scratch/ok && echo wrote; "
                  "getent hosts web-api.demo.svc.cluster.local; cat /proc/net/fib_trie | grep -c 10.213.250 ; "
                  "test -e /etc/app/MODE || echo only-items")
        out = pod.exec("app", ["/bin/sh", "-c", script])
        assert out.returncode == 0, out.stderr
        lines = out.stdout.decode().splitlines()
        assert lines[0] == "1000"
        assert "2000" in lines[1].split()
        assert "[x]" in lines and "a=1" in lines
        assert "wrote" in lines
        assert any(line.startswith(pod.ip) and "web-api.demo.svc.cluster.local" in line for line in lines)
        assert "only-items" in lines
        # The host's /etc/hosts is untouched.
        with open("/etc/hosts") as handle:
            assert "web-api" not in handle.read()
        assert app.spec.env["USER"] == "alice"
    finally:
        cluster.close()
    assert subprocess.run(["ip", "link", "show", "mle2etbr"], capture_output=True).returncode != 0
