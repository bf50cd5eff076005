"""The production features on the real node: basic auth, the gc CronJob and the backup CronJob with the
README's restore procedure. The stacks are scenarios of the matrix, auth-gc (basic auth from the .env, gc
with a 30 s olderThan) and a-default, applied with `kubectl apply -f`; a CronJob's schedule fires as
`kubectl create job --from=cronjob/...`. The NetworkPolicy test opens every connection these programs make
from pods that carry their labels and asks np-guard's netpol-analyzer what the policies say of those and
of connections none needs.

Each test sets up what it needs on its class's stack (stack_fixtures.py puts the auth stack back to its own
manifests first); what several tests read is made once by a fixture: the auth stack's first start and
its admin's run, and the default app's first backup."""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from matrix import credentials, settings, synth_scenario
from node.backup import counts, dumps, restore
from node.readme import readme_backup_folder
from node.stack import (NO_PROXY, Stack, alembic_head, basic, client_fails, connect_from_node, connect_from_pod, kubectl, pod_template,
                        policy_allows, probe_pod, proc_view, run_client)

pytestmark = pytest.mark.stack

AUTH = credentials("auth-gc")
ADMIN = (AUTH["MLFLOW_TRACKING_USERNAME"], AUTH["MLFLOW_TRACKING_PASSWORD"])
ADMIN_ENV = {"MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1]}
GC_OLDER_THAN_S = int(settings("auth-gc")["garbageCollection"]["olderThan"].rstrip("s"))
READER = ("reader", "e2e-reader-password-1")
READER_ENV = {"MLFLOW_TRACKING_USERNAME": READER[0], "MLFLOW_TRACKING_PASSWORD": READER[1]}


class TestAuthAndGarbageCollection:
    def test_1_two_replicas_with_auth_start_together_on_a_fresh_database(self, auth_stack):
        stack = auth_stack
        dep = stack.deployment["spec"]["template"]["spec"]
        server = next(c for c in dep["containers"] if c["name"] == "mlflow")
        assert server["args"][-2:] == ["--app-name", "basic-auth"], server["args"]
        pods = stack.server_pods()
        assert len(pods) == 2
        # Both schemas at their heads, in the one database of POSTGRES_DB.
        assert stack.psql("SELECT version_num FROM alembic_version") == alembic_head("mlflow.store.db_migrations")
        assert stack.psql("SELECT version_num FROM alembic_version_auth") == alembic_head("mlflow.server.auth.db.migrations")
        tables = set(stack.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").split())
        assert {"users", "alembic_version_auth", "experiments", "runs", "alembic_version"} <= tables, tables
        assert stack.psql("SELECT current_database()") == stack.secret()["POSTGRES_DB"]
        assert stack.psql("SELECT username || ' ' || is_admin::text FROM users WHERE is_admin") == f"{ADMIN[0]} true"
        # Every pod ran the auth migration under the lock as they first started; one created the MLflow schema.
        logs = list(stack.first_start.values())
        assert len(logs) == 2, stack.first_start
        assert all("auth schema" in log and "is current" in log for log in logs), logs
        assert sum("creating the mlflow schema" in log.lower() for log in logs) == 1, logs
        # The auth config file is the Secret's, mounted where MLFLOW_AUTH_CONFIG_PATH says; the Flask key is the Secret's in both pods.
        secret = stack.secret()
        for pod in pods:
            env = proc_view(pod, "mlflow")[1]
            shown = pod.exec("mlflow", ["cat", env["MLFLOW_AUTH_CONFIG_PATH"]])
            assert shown.returncode == 0, shown.stderr
            assert shown.stdout.decode() == secret["basic_auth.ini"]
            assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == secret["MLFLOW_FLASK_SERVER_SECRET_KEY"] != ""
            assert "Traceback" not in pod.log("mlflow"), pod.log("mlflow")[-3000:]

    def test_3_without_credentials_the_api_answers_401_and_health_200(self, auth_stack):
        stack = auth_stack
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        status, headers, _ = stack.request("GET", search)
        assert status == 401
        assert "basic" in headers.get("www-authenticate", "").lower(), headers
        assert stack.request("GET", search, auth=(ADMIN[0], "wrong-password-123"))[0] == 401
        assert stack.request("POST", "/api/2.0/mlflow/experiments/create", body={"name": "anonymous"})[0] == 401
        assert stack.request("GET", search, auth=ADMIN)[0] == 200
        # /health stays open: through the NodePort and on each pod, where the probes go.
        status, _, body = stack.request("GET", "/health")
        assert (status, body.strip()) == (200, "OK")
        for pod in stack.server_pods():
            with NO_PROXY.open(f"http://{pod.ip}:5000/health", timeout=5) as r:
                assert r.status == 200
        # The client with only the tracking URI is refused.
        message = client_fails(stack.tracking_uri, "write", "--light")
        assert "401" in message, message[-2000:]

    def test_4_the_admin_runs_the_whole_client_workflow(self, auth_stack, admin_run):
        out = admin_run
        assert out["predicted"] == out["expected"]
        assert out["artifact_uri"].startswith("mlflow-artifacts:"), out["artifact_uri"]
        assert out["model_version"] == "1"
        run_client(auth_stack.tracking_uri, "verify", json.dumps(out), env=ADMIN_ENV)

    def test_5_a_second_user_with_the_default_read_permission_reads_but_cannot_write(self, auth_stack, admin_run):
        stack, out, admin = auth_stack, admin_run, ADMIN
        status, _, body = stack.request("POST", "/api/2.0/mlflow/users/create", body={"username": READER[0], "password": READER[1]}, auth=admin)
        assert status == 200, body
        assert json.loads(body)["user"]["username"] == READER[0]
        assert stack.psql(f"SELECT is_admin::text FROM users WHERE username = '{READER[0]}'") == "false"
        # READ: the whole run, its artifact and the registered model load for the reader.
        run_client(stack.tracking_uri, "verify", json.dumps(out), env=READER_ENV)
        # ... but no write to the admin's run, through the client and on the wire.
        outcome = run_client(stack.tracking_uri, "try-write", json.dumps(out), env=READER_ENV)
        assert outcome == {"log_param": "PERMISSION_DENIED", "log_metric": "PERMISSION_DENIED"}, outcome
        status, _, body = stack.request("POST", "/api/2.0/mlflow/runs/log-parameter",
                                        body={"run_id": out["run_id"], "key": "k", "value": "v"}, auth=READER)
        assert status == 403, (status, body)  # MLflow's auth app answers a plain "Permission denied"
        assert "permission" in body.lower(), body
        assert stack.psql(f"SELECT count(*) FROM params WHERE run_uuid = '{out['run_id']}' AND key IN ('written-by', 'k')") == "0"
        # A non-admin cannot create users; the admin still writes (the refusal is the permission, not a broken server).
        assert stack.request("POST", "/api/2.0/mlflow/users/create", body={"username": "x", "password": "x-password-1234"}, auth=READER)[0] == 403
        outcome = run_client(stack.tracking_uri, "try-write", json.dumps(out), env=ADMIN_ENV)
        assert outcome == {"log_param": "OK", "log_metric": "OK"}, outcome

    def test_6_every_replica_shares_the_flask_secret_key(self, auth_stack):
        """The sign-up form's CSRF token and session cookie from one pod are accepted by the other."""
        stack = auth_stack
        a, b = stack.server_pods()
        auth = basic(*ADMIN)
        with NO_PROXY.open(urllib.request.Request(f"http://{a.ip}:5000/signup", headers={"Authorization": auth}), timeout=10) as r:
            page = r.read().decode()
            cookie = "; ".join(c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or [])
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
        assert token and cookie, page[:2000]

        def sign_up(pod, username, csrf_token):
            form = urllib.parse.urlencode({"username": username, "password": "signed-up-password-1", "csrf_token": csrf_token}).encode()
            request = urllib.request.Request(f"http://{pod.ip}:5000/api/2.0/mlflow/users/create-ui", data=form, method="POST", headers={
                "Authorization": auth, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
            try:
                with NO_PROXY.open(request, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as error:
                return error.code

        assert sign_up(b, "forged", "not-the-token") == 400  # the check is live
        assert sign_up(b, "signed-up", token.group(1)) == 200
        assert stack.psql("SELECT string_agg(username, ',') FROM users WHERE username IN ('signed-up', 'forged')") == "signed-up"

    def test_7_gc_removes_the_old_deleted_run_with_its_artifacts_and_nothing_else(self, auth_stack, admin_run):
        stack = auth_stack
        live = admin_run  # with a registered model
        bucket, prefix = stack.artifact_root()

        def keys(run):
            return [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/{run['experiment_id']}/{run['run_id']}/")]

        # "old" is deleted more than olderThan before the schedule fires; "recent" just before it.
        old = run_client(stack.tracking_uri, "write", "--light", "--batch", "--delete", env=ADMIN_ENV)
        time.sleep(GC_OLDER_THAN_S + 1)
        recent = run_client(stack.tracking_uri, "write", "--light", "--batch", "--delete", env=ADMIN_ENV)
        for run in (live, old, recent):
            assert any(k.endswith("notes/hello.txt") for k in keys(run)), run
        model_keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")
                      if f"/{live['run_id']}/" not in o["key"] and o["key"].endswith("MLmodel")]
        assert model_keys, "the registered model's files (under models/) are in the bucket"
        cron = stack.cronjob("garbage-collection")
        container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert {e["name"]: e.get("value") for e in container["env"]}["MLFLOW_GC_OLDER_THAN"] == f"{GC_OLDER_THAN_S}s"
        code, pod = stack.run_cronjob("garbage-collection", "gc")
        log = pod.log("gc")
        assert code == 0, log
        assert f"Run with ID {old['run_id']} has been permanently deleted" in log, log
        assert live["run_id"] not in log and recent["run_id"] not in log, log
        # The old run's rows are gone from PostgreSQL, its artifacts from MinIO.
        for table in ("runs", "params", "metrics", "latest_metrics", "tags"):
            assert stack.psql(f"SELECT count(*) FROM {table} WHERE run_uuid = '{old['run_id']}'") == "0", table
        assert keys(old) == []
        # The live run, its model and the recently deleted run are untouched.
        assert stack.psql(f"SELECT lifecycle_stage FROM runs WHERE run_uuid = '{live['run_id']}'") == "active"
        assert stack.psql(f"SELECT lifecycle_stage FROM runs WHERE run_uuid = '{recent['run_id']}'") == "deleted"
        for run in (live, recent):
            assert stack.psql(f"SELECT count(*) FROM metrics WHERE run_uuid = '{run['run_id']}' AND key = 'loss'") == "10"
            assert any(k.endswith("notes/hello.txt") for k in keys(run)), run
        assert set(model_keys) <= {o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")}

    def test_8_a_new_admin_password_in_the_env_file_is_the_admin_password_after_apply_and_restart(self, auth_stack, tmp_path):
        """The README: the admin password is MLFLOW_TRACKING_PASSWORD; the gc job (and the ServiceMonitor) sign in with
        the Secret's value. After the user changes it in .env, re-synthesizes, applies and restarts the servers, the new
        password must sign in and the gc job must still delete proxied artifacts."""
        stack, own = auth_stack, auth_stack.dist
        # A run deleted now, for the gc job to remove once it is older than olderThan.
        recent = run_client(stack.tracking_uri, "write", "--light", "--batch", "--delete", env=ADMIN_ENV)
        deleted_at = time.time()
        new_password = "e2e-rotated-admin-password-2"
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        try:
            stack.apply(synth_scenario("auth-gc", str(tmp_path / "dist"), env={"MLFLOW_TRACKING_PASSWORD": new_password}))
            assert stack.secret()["MLFLOW_TRACKING_PASSWORD"] == new_password
            # kubectl apply -f dist; kubectl rollout restart deployment/mlflow (the README's steps).
            kubectl("rollout", "restart", f"deployment/{stack.deployment['metadata']['name']}")
            stack.wait_rollout(stack.deployment)
            new_login, old_login = (stack.request("GET", search, auth=(ADMIN[0], p), timeout=30)[0] for p in (new_password, ADMIN[1]))
            # The run deleted above is old enough now; the gc job must remove it through the server, signed in from the Secret.
            time.sleep(max(0.0, deleted_at + GC_OLDER_THAN_S + 1 - time.time()))
            code, pod = stack.run_cronjob("garbage-collection", "gc")
            log = pod.log("gc")
            problems = []
            if new_login != 200:
                problems.append(f"the new admin password from the Secret gets {new_login} (the old one gets {old_login})")
            if code != 0 or f"Run with ID {recent['run_id']} has been permanently deleted" not in log:
                problems.append(f"the gc job exited {code}: " + " | ".join(line for line in log.splitlines() if "401" in line or "Error" in line)[-800:])
            assert not problems, "; ".join(problems)
        finally:
            # The stack's own admin password again, as the other tests sign in with it: apply, restart.
            stack.apply(own)
            kubectl("rollout", "restart", f"deployment/{stack.deployment['metadata']['name']}")
            stack.wait_rollout(stack.deployment)

    def test_9_network_policies_admit_every_connection_the_programs_make_and_deny_the_rest(self, auth_stack, tmp_path):
        """Each needed connection opened for real from a pod that carries the source's pod labels (the server's
        own pod for the server); what the policies say of each, needed or not, asked of np-guard's
        netpol-analyzer on the live pods (no NetworkPolicy engine runs on this kernel: e2e/README.md), with this
        stack's policies (proxied) and with the direct-serving synth's policies applied over them."""
        stack = auth_stack
        template = pod_template
        image = template(stack.deployment)["spec"]["containers"][0]["image"]
        workloads = {(o["metadata"].get("labels") or {}).get("app.kubernetes.io/component"): o
                     for o in stack.objects if o["kind"] in ("Job", "CronJob")}
        sources = {None: (None, None), "tracking-server": (stack.server_pods()[0], "mlflow")}
        for component in ("bucket-job", "backup", "garbage-collection"):
            sources[component] = (probe_pod(f"e2e-probe-{component}", template(workloads[component])["metadata"]["labels"], image), "probe")
        destinations = {"tracking-server": stack.server_pods()[0], "backend-store": stack.postgres_pod(), "artifact-store": stack.minio_pod()}
        problems = []
        try:
            direct = synth_scenario("auth-gc", str(tmp_path / "direct"), config={"server": {"artifactServing": "direct"}})
            policies = tmp_path / "direct-policies.yaml"
            policies.write_text(yaml.safe_dump_all([o for o in Stack(direct).objects if o["kind"] == "NetworkPolicy"]))
            for serving in ("proxied", "direct"):
                if serving == "direct":
                    kubectl("apply", "-f", str(policies))
                for src, dst, port in FLOWS[serving]:
                    pod, container = sources[src]
                    ip = destinations[dst].ip
                    got = connect_from_pod(pod, container, ip, port) if pod else connect_from_node(ip, port)
                    if got != "connected":
                        problems.append(f"{serving}: {src or 'node'} -> {dst}:{port}: {got}")
                    if not policy_allows(pod, destinations[dst], port):
                        problems.append(f"{serving}: {src or 'node'} -> {dst}:{port}: the policies deny it")
                for src, dst, port in FORBIDDEN:
                    if policy_allows(sources[src][0], destinations[dst], port):
                        problems.append(f"{serving}: {src or 'node'} -> {dst}:{port}: the policies allow it; nothing needs it")
        finally:
            stack.apply()
            kubectl("delete", "pod", *(f"e2e-probe-{c}" for c in ("bucket-job", "backup", "garbage-collection")), "--wait=false", check=False)
        assert not problems, "\n".join(problems)


class TestBackupAndRestore:
    def test_1_the_backup_job_streams_a_dump_of_the_database_into_the_bucket(self, backup):
        stack = backup.stack
        assert not backup.dumps_before, backup.dumps_before  # a fresh stack
        spec = stack.cronjob("backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert [c["name"] for c in spec["containers"]] == ["dump", "upload"] and not spec.get("initContainers"), spec
        assert backup.code == 0, backup.dump_log + backup.upload_log
        assert "backup: dumped database mlflow" in backup.dump_log, backup.dump_log
        folder = readme_backup_folder()
        assert folder == "mlflow/backups/default/mlflow/", folder  # the default prefix backups/<namespace>/<name>
        written = re.search(rf"backup: wrote s3://{re.escape(folder)}(mlflow-\d{{8}}T\d{{6}}Z\.dump)$", backup.upload_log, re.M)
        assert written, backup.upload_log
        assert backup.new == [written.group(1)], backup.new  # the .partial upload was renamed, not copied
        head = subprocess.run([os.environ["E2E_MC"], "cat", f"e2e/{folder}{written.group(1)}"],
                              env=dict(os.environ, MC_CONFIG_DIR=stack.mc_config), capture_output=True, timeout=60).stdout
        assert head[:5] == b"PGDMP", head[:16]  # pg_dump's custom format
        assert dumps(stack)[written.group(1)]["size"] > 10000
        # Nothing of the backups lies under the artifact root the server serves.
        bucket, prefix = stack.artifact_root()
        assert not folder.startswith(f"{bucket}/{prefix}/"), (folder, prefix)

    def test_2_a_second_run_keeps_the_earlier_dumps_and_the_artifacts(self, backup_stack, backup):
        stack = backup_stack
        bucket, prefix = stack.artifact_root()
        before = dumps(stack)
        assert backup.key in before, before
        artifacts = stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/")
        time.sleep(1.1)  # the dump's name has a one-second stamp; a schedule never fires twice in a second
        code, pod = stack.run_cronjob("backup", "upload")
        assert code == 0, pod.log("dump") + pod.log("upload")
        assert "removed backups older than 14 days" in pod.log("upload"), pod.log("upload")
        after = dumps(stack)
        assert len(after) == len(before) + 1, after
        assert {k: after[k]["etag"] for k in before} == {k: o["etag"] for k, o in before.items()}, "the earlier dumps must be kept unchanged"
        assert stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/") == artifacts

    def test_3_restore_over_the_live_database_rolls_it_back_to_the_dump(self, backup_stack, backup):
        """`--clean --if-exists` over a database that has moved on: exactly the dump's content again."""
        stack = backup_stack
        later = run_client(stack.tracking_uri, "write", "--light")  # not in the dump
        try:
            restore(stack, backup.key)
            assert stack.psql(f"SELECT count(*) FROM runs WHERE run_uuid = '{later['run_id']}'") == "0"
            assert counts(stack) == backup.counts
        finally:
            stack.scale_servers(backup.servers)

    def test_4_restore_after_the_database_volume_is_lost_brings_everything_back(self, backup_stack, backup):
        stack = backup_stack
        try:
            stack.scale_servers(0)
            name = stack.postgres["metadata"]["name"]
            kubectl("scale", f"statefulset/{name}", "--replicas=0")
            kubectl("wait", "--for=delete", f"pod/{name}-0", "--timeout=120s", check=False, timeout=150)
            claim = f"data-{name}-0"
            old_volume = kubectl("get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}").stdout.decode()
            kubectl("delete", "pvc", claim, "--wait=true")  # the volume is lost: the StatefulSet makes a new, empty claim
            kubectl("scale", f"statefulset/{name}", "--replicas=1")
            stack.wait_rollout(stack.postgres)
            new_volume = kubectl("get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}").stdout.decode()
            assert new_volume and new_volume != old_volume, (old_volume, new_volume)
            pg = stack.postgres_pod()
            assert "entrypoint: initializing" in pg.log("postgres"), pg.log("postgres")[-3000:]
            assert stack.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == "0"
            restore(stack, backup.key)
            assert counts(stack) == backup.counts
            out = backup.full
            assert stack.psql(f"SELECT version || ' ' || status FROM model_versions WHERE name = '{out['model_name']}'") == "1 READY"
            stack.scale_servers(backup.servers)  # kubectl scale deployment/mlflow --replicas=...
            # Every run, metric, param, artifact and model version, read back by the client through the servers.
            run_client(stack.tracking_uri, "verify", json.dumps(out), json.dumps(backup.light))
            # The restored experiment id sequence hands out a fresh id (a reset one would collide with a restored row).
            again = run_client(stack.tracking_uri, "write", "--light")
            assert int(again["experiment_id"]) > max(int(out["experiment_id"]), int(backup.light["experiment_id"])), again
        finally:
            stack.scale_servers(backup.servers)


# --- network isolation: the connections the programs above make, and what the NetworkPolicies say ------

# (source component, destination component, port): what each program connects to.
FLOWS_COMMON = [
    ("tracking-server", "backend-store", 5432),      # migrate init container and the server
    ("tracking-server", "artifact-store", 9000),     # proxied artifacts, and the server's S3 client
    ("bucket-job", "artifact-store", 9000),
    ("backup", "backend-store", 5432),               # dump container: pg_dump
    ("backup", "artifact-store", 9000),              # upload container: mc pipe, mc mv, mc rm
    ("garbage-collection", "backend-store", 5432),   # mlflow gc reads and hard-deletes runs
    (None, "tracking-server", 5000),                 # NodePort traffic from a node address
]
FLOWS = {
    # test_7/test_8 above: proxied artifacts are deleted through the server (its 401 is in test_8's log).
    "proxied": FLOWS_COMMON + [("garbage-collection", "tracking-server", 5000)],
    # --no-serve-artifacts: runs' artifact URIs are s3://..., which `mlflow gc` deletes with its own S3 client
    # (the CronJob gets the S3 credentials and endpoint for this).
    "direct": FLOWS_COMMON + [("garbage-collection", "artifact-store", 9000)],
}
# What no program needs: the policies must deny it.
FORBIDDEN = [("bucket-job", "backend-store", 5432), (None, "backend-store", 5432), ("tracking-server", "backend-store", 5433)]
