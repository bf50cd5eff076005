"""The synthesized stack on a real node (e2e/node): `kubectl apply -f dist` as a user does, the kubelet,
containerd and runc run the images under the names dist/ pins, kube-proxy serves the NodePort, CoreDNS
the Service names; a real MLflow client knows nothing but the NodePort URL. No NetworkPolicy engine runs
here: netpol-analyzer says what the policies make of each connection (e2e/README.md).

TestDefaultApp reads the default app (scenario a-default) as it came up. TestChangesToTheStack changes a
default app whose passwords hold every URI-special character (scenario special-characters): a fixture
puts it back to its own manifests and rolls it out before each test, which sets up whatever else it needs."""
import copy
import json
import time

import pytest
import yaml

from matrix import credentials, synth_scenario
from node.stack import (NODE_IP, RolloutFailed, alembic_head, connect_from_node, connect_from_pod, kget, kubectl, pods_report,
                        policy_allows, probe_pod, proc_view, run_client, seconds, wait_terminated)

pytestmark = pytest.mark.stack

SCENARIO = "special-characters"
SPECIAL = credentials(SCENARIO)   # @ : / # % ? & and both quotes (and a %-escape look-alike) in the passwords


class TestDefaultApp:
    def test_5_two_replicas_started_together_on_a_fresh_database_migrate_once(self, default_stack):
        stack = default_stack
        pods = stack.server_pods()
        assert len(pods) == 2, "the default synth has two replicas"
        assert stack.psql("SELECT version_num FROM alembic_version") == alembic_head()
        tables = set(stack.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").split())
        assert {"experiments", "runs", "metrics", "params", "registered_models", "model_versions", "logged_models"} <= tables
        for pod in pods:
            assert stack.request("GET", "/health", base=f"http://{pod.ip}:5000")[0] == 200
        # Both pods ran the migration step as they first started; it held the lock, so exactly one of them created the tables.
        logs = list(stack.first_start.values())
        assert len(logs) == 2, stack.first_start
        assert sum("creating" in log.lower() for log in logs) == 1, logs

    def test_2_server_runs_the_deployment_command_and_answers_health(self, default_stack):
        stack = default_stack
        status, body = stack.http_get("/health")
        assert (status, body.strip()) == (200, "OK")
        container = next(c for c in stack.deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")
        pod = stack.server_pods()[0]
        argv, env, uid = proc_view(pod, "mlflow")
        assert argv[0].rsplit("/", 1)[-1].startswith("python"), argv
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
        version = pod.exec("mlflow", ["python", "-c", "import importlib.metadata as m; print(m.version('mlflow'))"]).stdout.decode().strip()
        assert container["image"].endswith(f":v{version}-full"), (version, container["image"])
        # The Host header a user's browser sends for the node address is accepted, and for 127.0.0.1 too.
        for ip in stack.node_port_ips:
            assert stack.http_get("/api/2.0/mlflow/experiments/search?max_results=1", host_ip=ip)[0] == 200

    def test_3_client_logs_params_metrics_artifacts_and_a_model_through_the_node_port(self, default_stack, default_run):
        out = default_run
        assert out["predicted"] == out["expected"]
        assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]  # proxied: no S3 on the client
        assert out["model_version"] == "1"
        run_client(default_stack.tracking_uri, "verify", json.dumps(out))

    def test_4_artifacts_are_minio_objects_and_runs_are_postgres_rows(self, default_stack, default_run):
        stack, out = default_stack, default_run
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

    def test_9_every_pod_is_ready_within_its_probes_budget_and_none_restarted(self, default_stack):
        stack = default_stack
        for workload in (stack.postgres, stack.minio, stack.deployment):
            container = workload["spec"]["template"]["spec"]["containers"][0]
            startup, readiness = container["startupProbe"], container["readinessProbe"]
            budget = (startup.get("initialDelaySeconds", 0) + startup["failureThreshold"] * startup["periodSeconds"]
                      + readiness["periodSeconds"])
            for pod in stack.pods(workload):
                status = pod.get()["status"]
                ready = next(c for c in status["conditions"] if c["type"] == "Ready")
                assert ready["status"] == "True", status
                started = max(seconds(s["state"]["running"]["startedAt"]) for s in status["containerStatuses"])
                took = seconds(ready["lastTransitionTime"]) - started
                assert 0 <= took <= budget, (pod, took, budget)
                assert all(s["restartCount"] == 0 for s in status["containerStatuses"]), (pod, status["containerStatuses"])
                print(f"\n{pod.name}: Ready {took:.0f}s after its containers started (budget {budget}s)")

    def test_10_restricted_security_is_enforced_by_the_runtime(self, default_stack):
        stack = default_stack
        for workload, pod in ((stack.deployment, stack.server_pods()[0]), (stack.postgres, stack.postgres_pod()), (stack.minio, stack.minio_pod())):
            container = workload["spec"]["template"]["spec"]["containers"][0]
            name, sc = container["name"], container["securityContext"]
            wrote = pod.exec(name, ["sh", "-c", "echo x > /e2e-write-test"])
            assert wrote.returncode != 0 and b"Read-only file system" in wrote.stderr, (pod, wrote.stderr)
            status = dict(line.split(":", 1) for line in pod.exec(name, ["cat", "/proc/1/status"]).stdout.decode().splitlines() if ":" in line)
            assert status["Uid"].split()[:2] == [str(sc["runAsUser"])] * 2, (pod, status["Uid"])
            assert status["Gid"].split()[0] == str(sc["runAsGroup"]), (pod, status["Gid"])
            for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert int(status[caps], 16) == 0, (pod, caps, status[caps])
            assert status["NoNewPrivs"].strip() == "1", pod
            assert status["Seccomp"].strip() == "2", (pod, "seccomp filter mode (RuntimeDefault)")

    def test_11_service_names_resolve_through_the_cluster_dns(self, default_stack):
        stack = default_stack
        pod = stack.server_pods()[0]
        resolv = pod.exec("mlflow", ["cat", "/etc/resolv.conf"]).stdout.decode()
        assert f"nameserver {NODE_IP}" in resolv and "default.svc.cluster.local" in resolv, resolv
        lookup = "import socket, sys; print(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], None, socket.AF_INET)}))"

        def resolve(name):
            result = pod.exec("mlflow", ["python", "-c", lookup, name])
            assert result.returncode == 0, (name, result.stderr.decode())
            return eval(result.stdout.decode())  # a printed list of strings
        # Headless: the pod's own address; ClusterIP: the Service's virtual address (kube-proxy).
        assert resolve("mlflow-postgres.default.svc.cluster.local") == [stack.postgres_pod().ip]
        minio_ip = kget("service", "mlflow-minio")["spec"]["clusterIP"]
        assert resolve("mlflow-minio") == [minio_ip]
        assert resolve("mlflow-minio.default.svc") == [minio_ip]
        assert connect_from_pod(pod, "mlflow", minio_ip, 9000) == "connected"

    def test_12_network_policies_admit_every_connection_the_programs_make_and_deny_the_rest(self, default_stack):
        """Each needed connection is opened for real, from a pod that carries the source's pod labels (the
        server's own pod for the server). No NetworkPolicy engine runs on this kernel (e2e/README.md), so
        what the policies say of every connection is asked of np-guard's netpol-analyzer on the live pods."""
        stack = default_stack
        server, pg, minio = stack.server_pods()[0], stack.postgres_pod(), stack.minio_pod()
        labels = lambda w: w["spec"]["template"]["metadata"]["labels"]  # noqa: E731
        image = stack.deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        bucket_job = probe_pod("e2e-probe-bucket-job", labels(stack.job), image)
        backup = probe_pod("e2e-probe-backup", labels(stack.cronjob("backup")["spec"]["jobTemplate"]), image)
        sources = {"tracking-server": (server, "mlflow"), "bucket-job": (bucket_job, "probe"), "backup": (backup, "probe"), "node": (None, None)}
        destinations = {"tracking-server": server, "backend-store": pg, "artifact-store": minio}
        needed = [("tracking-server", "backend-store", 5432), ("tracking-server", "artifact-store", 9000),
                  ("bucket-job", "artifact-store", 9000), ("backup", "backend-store", 5432), ("backup", "artifact-store", 9000),
                  ("node", "tracking-server", 5000)]
        unneeded = [("bucket-job", "backend-store", 5432), ("node", "backend-store", 5432), ("tracking-server", "backend-store", 5433),
                    ("tracking-server", "artifact-store", 9001), ("backup", "tracking-server", 5000)]
        try:
            connected, allowed = {}, {}
            for src, dst, port in needed:
                pod, container = sources[src]
                ip = destinations[dst].ip
                connected[(src, dst, port)] = connect_from_pod(pod, container, ip, port) if pod else connect_from_node(ip, port)
            for src, dst, port in needed + unneeded:
                allowed[(src, dst, port)] = policy_allows(sources[src][0], destinations[dst], port)
        finally:
            kubectl("delete", "pod", bucket_job.name, backup.name, "--wait=false")
        assert connected == {flow: "connected" for flow in needed}
        assert allowed == {**{flow: True for flow in needed}, **{flow: False for flow in unneeded}}


class TestChangesToTheStack:
    def test_1_bucket_job_creates_the_bucket_and_a_rerun_changes_nothing(self, special_stack):
        stack = special_stack
        bucket, _ = stack.artifact_root()
        name = stack.job["metadata"]["name"]
        code, pod = stack.job_result(name, "mc")
        assert code == 0, pod.log("mc")
        assert "is ready" in pod.log("mc")
        before = stack.mc_json("ls", "e2e")
        assert bucket in [b["key"].rstrip("/") for b in before]
        stack.mc("cp", "--quiet", __file__, f"e2e/{bucket}/marker/test_stack.py")
        objects_before = stack.mc_json("ls", "--recursive", f"e2e/{bucket}")
        # A rerun: the finished Job deleted, then `kubectl apply -f dist` again.
        kubectl("delete", "job", name, "--wait=true")
        stack.apply()
        code, pod = stack.job_result(name, "mc")
        assert code == 0, pod.log("mc")
        assert stack.mc_json("ls", "e2e") == before
        assert stack.mc_json("ls", "--recursive", f"e2e/{bucket}") == objects_before
        stack.mc("rm", "--quiet", f"e2e/{bucket}/marker/test_stack.py")

    def test_6_server_and_postgres_restarts_lose_nothing(self, special_stack):
        stack = special_stack
        out = run_client(stack.tracking_uri, "write")
        for pod in stack.server_pods():
            stack.restart_pod(pod)
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        pg = stack.postgres_pod()
        stack.restart_pod(pg)
        assert "Skipping initialization" in pg.log("postgres")
        # The servers kept running across the database restart; their pools must reconnect.
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        stack.restart_pod(stack.minio_pod())
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        # New writes still work after all of it.
        again = run_client(stack.tracking_uri, "write", "--light")
        run_client(stack.tracking_uri, "verify", json.dumps(again))
        # The probes connect as the configured role (no 'FATAL: role "postgres" does not exist' noise).
        assert "does not exist" not in pg.log("postgres"), pg.log("postgres")[-3000:]

    def test_7_password_with_uri_special_characters_and_quotes_works_end_to_end(self, special_stack):
        stack = special_stack
        secret = stack.secret()
        assert secret["POSTGRES_PASSWORD"] == SPECIAL["POSTGRES_PASSWORD"]
        assert secret["AWS_SECRET_ACCESS_KEY"] == SPECIAL["AWS_SECRET_ACCESS_KEY"]
        out = run_client(stack.tracking_uri, "write", "--light")
        run_client(stack.tracking_uri, "verify", json.dumps(out))
        bucket, prefix = stack.artifact_root()
        assert prefix.count("/") == 1, prefix  # a nested prefix
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys

    def test_8_wrong_database_password_fails_fast_with_a_clear_log_line(self, special_stack, tmp_path):
        stack = special_stack
        own = stack.dist
        # The user changes POSTGRES_PASSWORD in .env and re-applies; the database keeps the old one.
        stack.apply(synth_scenario(SCENARIO, str(tmp_path / "dist-wrong"), env={"POSTGRES_PASSWORD": "not-the-password"}))
        # A server pod that starts now reads the new Secret (`kubectl delete pod`, as after a node loss).
        old = {p.name for p in stack.server_pods()}
        stack.server_pods()[0].delete()
        new = next(p for p in stack.server_pods() if p.name not in old)
        try:
            terminated = wait_terminated(new, "migrate", 120)
            created = new.get()["metadata"]["creationTimestamp"]
            elapsed = seconds(terminated["finishedAt"]) - seconds(created)
            log = new.log("migrate") + new.log("migrate", previous=True)
            assert terminated["exitCode"] != 0, log
            assert elapsed < 30, f"took {elapsed:.0f}s to fail:\n{log}"
            assert "password authentication failed" in log, log
            assert "Traceback" not in log, "a clear line, not a stack trace:\n" + log
            # The old pod keeps serving: maxUnavailable 0 never takes a Ready pod away for a new one that fails.
            assert stack.http_get("/health")[0] == 200
            print(f"\nfailed after {elapsed:.1f}s: " + next(l for l in log.splitlines() if "password authentication failed" in l))
        finally:
            # The right password again, and the failing pod replaced by one that reads it.
            stack.apply(own)
            new.delete()
            stack.wait_rollout(stack.deployment)

    def test_13_a_rolling_update_keeps_ready_servers_and_the_node_port_answering(self, special_stack):
        stack = special_stack
        name = stack.deployment["metadata"]["name"]
        replicas = stack.deployment["spec"]["replicas"]
        before = {p.name for p in stack.server_pods()}
        kubectl("rollout", "restart", f"deployment/{name}")
        fewest, failures, polls = replicas, [], 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            pods = kget("pods", "-l", stack.selector(stack.deployment))["items"]
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
                     and not p["metadata"].get("deletionTimestamp")]
            fewest = min(fewest, len(ready))
            try:
                status = stack.http_get("/health", timeout=5)[0]
            except OSError as error:
                status = str(error)
            if status != 200:
                failures.append(status)
            polls += 1
            names = {p["metadata"]["name"] for p in ready}
            if len(ready) == replicas and not names & before and len(pods) == replicas:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(pods_report(stack.selector(stack.deployment)))
        assert fewest >= replicas, f"maxUnavailable 0: Ready servers fell to {fewest}"
        assert not failures, f"{len(failures)} of {polls} /health requests through the NodePort failed: {failures[:5]}"

    def test_14_eviction_respects_the_pod_disruption_budget(self, special_stack):
        stack = special_stack
        node = kget("nodes")["items"][0]["metadata"]["name"]
        replicas = stack.deployment["spec"]["replicas"]
        drain = kubectl("drain", node, f"--pod-selector={stack.selector(stack.deployment)}", "--ignore-daemonsets",
                        "--delete-emptydir-data", "--timeout=40s", check=False, timeout=120)
        try:
            ready = [p for p in stack.server_pods() if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get()["status"]["conditions"])]
            err = drain.stderr.decode()
            assert drain.returncode != 0, "the drain evicted every server"
            assert "disruption budget" in err, err[-2000:]
            assert len(ready) == replicas - 1, f"maxUnavailable 1: {len(ready)} of {replicas} servers stayed"
            assert stack.http_get("/health")[0] == 200
        finally:
            kubectl("uncordon", node)
        stack.wait_rollout(stack.deployment)

    def test_15_the_suite_can_fail_a_wrong_probe_path_or_a_read_only_path_the_program_writes(self, special_stack, tmp_path):
        """Known to be able to fail: the same waits that pass above refuse these manifests."""
        stack = special_stack
        deployment = copy.deepcopy(stack.deployment)
        server = deployment["spec"]["template"]["spec"]["containers"][0]
        server["readinessProbe"]["httpGet"]["path"] = "/no-such-health-path"
        postgres = copy.deepcopy(stack.postgres)
        pg = postgres["spec"]["template"]["spec"]["containers"][0]
        pg["volumeMounts"] = [m for m in pg["volumeMounts"] if m["mountPath"] != "/var/run/postgresql"]
        for broken, why in ((deployment, "Readiness probe failed"), (postgres, "/var/run/postgresql")):
            path = tmp_path / f"{broken['kind']}.yaml"
            path.write_text(yaml.safe_dump(broken))
            kubectl("apply", "-f", str(path))
            with pytest.raises(RolloutFailed) as failure:
                stack.wait_rollout(broken, timeout=90)
            report = str(failure.value) + "\n" + "\n".join(
                p.log(broken["spec"]["template"]["spec"]["containers"][0]["name"]) for p in stack.pods(broken))
            assert why in report, report[-3000:]
            stack.apply()
            if broken["kind"] == "StatefulSet":
                # A StatefulSet does not replace a pod that never became Ready after its template is reverted.
                for pod in stack.pods(broken):
                    pod.delete()
            stack.wait_rollout(broken)
        assert stack.http_get("/health")[0] == 200

    def test_16_a_changed_bucket_job_is_applied_and_completes(self, special_stack, tmp_path):
        stack = special_stack
        old = stack.job["metadata"]["name"]
        stack.apply(synth_scenario(SCENARIO, str(tmp_path / "dist"), env={"MLFLOW_S3_ARTIFACT_ROOT": "s3://changed-bucket/artifacts"}))
        new = stack.job["metadata"]["name"]
        assert new != old, "a changed Job gets a new name, so apply creates it (a Job's template cannot be changed)"
        code, pod = stack.job_result(new, "mc")
        assert code == 0, pod.log("mc")
        assert "changed-bucket" in [b["key"].rstrip("/") for b in stack.mc_json("ls", "e2e")]
