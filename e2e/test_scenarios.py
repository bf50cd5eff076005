"""Users' deployments, each synthesized from configuration only: the README's recipes, the scenarios
e2e/scenarios/<letter>-<name>/, hold the settings (`mlflow.yaml`, absent for the default), the credentials
(`credentials.env`, the user's .env) and, for an existing Secret, the Secret the user creates (`secret.yaml`).
`node scripts/synth.js` turns them into manifests exactly as for a user (matrix.synth); each is applied to the real node with `kubectl apply -f` and ends with the
MLflow client's whole workflow (log, artifacts, register, load model), through the NodePort, with only the
tracking URI.

What the users already run is there before they install MLflow:
- in the cluster, a PostgreSQL StatefulSet and Service `postgres` in `default` (their own manifests);
- outside the cluster, on an address of the machine that no pod has (10.213.20.1, on a bridge of its own):
  MinIO on port 9100 as the S3 endpoint, and Debian's MariaDB on port 3306. Pods reach it through their
  default route, the node's bridge.
The scenarios run one after another (they share namespace `default` and node port 30003); (e1) runs two
installations at once, in namespaces team-a and team-b. The servers run 1 replica, except in (c), where
two start together on an empty database. NetworkPolicies are not enforced on this node: the connections
are made for real and netpol-analyzer says what the policies make of them (e2e/README.md)."""
import concurrent.futures
import os
import re
import subprocess
import urllib.parse

import pytest
import yaml

from matrix import SynthFailed, config_file, credentials, env_file, secret_file, settings, synth
from node.outside import (MARIADB_PORT, OUTSIDE_IP, S3_ENDPOINT, S3_PORT, USERS_POSTGRES, backups_through_the_proxy, dump_experiments,
                          existing_postgres, outside_verdicts, psql, raw_get)
from node.readme import documented_secret_keys
from node.stack import Stack, alembic_head, deployed, kubectl, pod_template, policy_allows, read_manifests, scenario_dist, workflow

pytestmark = pytest.mark.stack


# --- (a) the default ----------------------------------------------------------------------------------------

def test_a_the_default_app(setup_env, tmp_path):
    assert config_file("a-default") is None
    with deployed(scenario_dist("a-default", str(tmp_path / "dist"))) as stack:
        assert {stack.postgres["metadata"]["name"], stack.minio["metadata"]["name"]} == {"mlflow-postgres", "mlflow-minio"}
        out = workflow(stack)
        bucket, prefix = stack.artifact_root()
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/{prefix}/{out['experiment_id']}/{out['run_id']}/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys
        assert stack.psql(f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"


# --- (b) an existing PostgreSQL Service, an S3 endpoint outside the cluster, a public host ---------------------

def test_b_existing_postgres_service_external_s3_and_a_public_host(outside, tmp_path):
    name = "b-existing-postgres-external-s3"
    cred, conf = credentials(name), settings(name)
    assert conf["backendStore"]["external"]["host"] == "postgres" and cred["POSTGRES_DB"] == "mlops"
    assert conf["artifactStore"]["s3"]["endpoint"] == S3_ENDPOINT
    dist = scenario_dist(name, str(tmp_path / "dist"))
    synthesized = read_manifests(dist)
    # No PostgreSQL and no MinIO of the stack's own.
    assert not [o for o in synthesized if o["kind"] == "StatefulSet"]
    assert not [o for o in synthesized if o["kind"] == "CronJob"]  # backups of an external database are its owner's
    with deployed(dist, *existing_postgres(cred["POSTGRES_USER"], cred["POSTGRES_PASSWORD"], cred["POSTGRES_DB"])) as stack:
        # The bucket Job made its bucket at the endpoint (a pod reached the outside address for real).
        bucket, _, prefix = cred["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):].partition("/")
        assert outside.mc("stat", f"outside/{bucket}", check=False).returncode == 0, outside.log("minio")
        # The policies admit the endpoint, and not a port there that nothing of this configuration needs.
        assert outside_verdicts(stack, "tracking-server", S3_PORT, MARIADB_PORT) == {S3_PORT: True, MARIADB_PORT: False}
        assert outside_verdicts(stack, "bucket-job", S3_PORT, 5432) == {S3_PORT: True, 5432: False}
        # The team's PostgreSQL, reached through its Service: the policy's rule for an external host is an ipBlock.
        assert policy_allows(stack.server_pods()[0], USERS_POSTGRES, 5432)
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        public = conf["server"]["publicHosts"][0]
        port = stack.node_port
        assert raw_get(stack, search, host=f"{public}:{port}")[0] == 200
        for unlisted in (f"54.180.12.35:{port}", f"ec2-54-180-12-34.ap-northeast-2.compute.amazonaws.com:{port}"):
            status, body = raw_get(stack, search, host=unlisted)
            assert (status, b"Invalid Host header" in body) == (403, True), (unlisted, status, body[:200])
        out = workflow(stack)
        assert psql(USERS_POSTGRES, cred["POSTGRES_USER"], "mlops", f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        keys = outside.keys(bucket)
        assert any(k.startswith(f"{prefix}/{out['experiment_id']}/{out['run_id']}/") and k.endswith("notes/hello.txt") for k in keys), keys


# --- (c) an existing MariaDB, the in-cluster MinIO, basic auth -------------------------------------------------

def test_c_existing_mariadb_in_cluster_minio_and_basic_auth(outside, tmp_path):
    name = "c-mariadb-minio-auth"
    cred, conf = credentials(name), settings(name)
    external = conf["backendStore"]["external"]
    assert (external["engine"], external["host"], external["port"]) == ("mysql", OUTSIDE_IP, MARIADB_PORT)
    outside.start_mariadb(cred["POSTGRES_DB"], cred["POSTGRES_USER"], cred["POSTGRES_PASSWORD"])
    assert "MariaDB" in outside.sql("SELECT VERSION()") or "mariadb" in outside.sql("SELECT @@version_comment").lower()
    # Both replicas of the synth start together on the empty database: the migrate steps take turns under GET_LOCK.
    with deployed(scenario_dist(name, str(tmp_path / "dist"), replicas=None)) as stack:
        uri = stack.secret()["MLFLOW_BACKEND_STORE_URI"]
        assert uri == (f"mysql+pymysql://{cred['POSTGRES_USER']}:{urllib.parse.quote(cred['POSTGRES_PASSWORD'], safe='')}"
                       f"@{OUTSIDE_IP}:{MARIADB_PORT}/{cred['POSTGRES_DB']}"), uri
        assert outside_verdicts(stack, "tracking-server", MARIADB_PORT, S3_PORT) == {MARIADB_PORT: True, S3_PORT: False}
        pods = stack.server_pods()
        assert len(pods) == 2, pods
        restarts = {p.name: [(c["name"], c["restartCount"]) for c in p.get()["status"].get("initContainerStatuses", []) + p.get()["status"]["containerStatuses"]
                             if c["restartCount"]] for p in pods}
        assert not any(restarts.values()), restarts
        logs = [p.log("migrate") for p in pods]
        assert sum("creating the mlflow schema" in log.lower() for log in logs) == 1, logs
        assert all(f"schema at {OUTSIDE_IP}:{MARIADB_PORT}/{cred['POSTGRES_DB']} is current" in log for log in logs), logs
        db = cred["POSTGRES_DB"]
        assert outside.sql("SELECT version_num FROM alembic_version", db) == alembic_head("mlflow.store.db_migrations")
        assert outside.sql("SELECT version_num FROM alembic_version_auth", db) == alembic_head("mlflow.server.auth.db.migrations")
        admin = (cred["MLFLOW_TRACKING_USERNAME"], cred["MLFLOW_TRACKING_PASSWORD"])
        assert outside.sql("SELECT CONCAT(username, ' ', is_admin) FROM users", db) == f"{admin[0]} 1"
        search = "/api/2.0/mlflow/experiments/search?max_results=1"
        assert stack.request("GET", search)[0] == 401
        assert stack.request("GET", search, auth=admin)[0] == 200
        out = workflow(stack, env={"MLFLOW_TRACKING_USERNAME": admin[0], "MLFLOW_TRACKING_PASSWORD": admin[1]})
        assert outside.sql(f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'", db) == "FINISHED"
        assert outside.sql(f"SELECT CONCAT(version, ' ', status) FROM model_versions WHERE name = '{out['model_name']}'", db) == "1 READY"
        keys = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/mlflow/artifacts/{out['experiment_id']}/{out['run_id']}/")]
        assert any(k.endswith("notes/hello.txt") for k in keys), keys


# --- (d) an existing Secret with exactly the documented keys, external stores --------------------------------------

def test_d_existing_secret_with_the_documented_keys_and_external_stores(outside, tmp_path):
    name = "d-existing-secret"
    assert env_file(name) is None  # the Secret replaces the .env
    with open(secret_file(name), encoding="utf-8") as handle:
        secret = yaml.safe_load(handle)
    values = secret["stringData"]
    assert set(values) == documented_secret_keys(), sorted(set(values) ^ documented_secret_keys())
    assert settings(name)["credentials"]["existingSecret"] == secret["metadata"]["name"]
    assert values["MLFLOW_S3_ENDPOINT_URL"] == settings(name)["artifactStore"]["s3"]["endpoint"]
    db = urllib.parse.urlsplit(values["MLFLOW_BACKEND_STORE_URI"])
    user, password, database = urllib.parse.unquote(db.username), urllib.parse.unquote(db.password), db.path.lstrip("/")
    dist = scenario_dist(name, str(tmp_path / "dist"))
    synthesized = read_manifests(os.path.join(dist, "mlflow.k8s.yaml"))
    assert not [o for o in synthesized if o["kind"] == "Secret"], "no credential in dist/"
    refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"], bool(e["valueFrom"]["secretKeyRef"].get("optional")))
            for w in synthesized if w["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
            for c in pod_template(w)["spec"].get("containers", []) + pod_template(w)["spec"].get("initContainers", [])
            for e in c.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}
    assert {r[0] for r in refs} == {secret["metadata"]["name"]}, refs
    # Exactly: every key the pods need is in the Secret, and every key of the Secret is read.
    assert {key for _, key, optional in refs if not optional} == set(values), sorted(refs)
    with deployed(dist, *existing_postgres(user, password, database)) as stack:
        out = workflow(stack)
        assert psql(USERS_POSTGRES, user, database, f"SELECT status FROM runs WHERE run_uuid = '{out['run_id']}'") == "FINISHED"
        bucket, _, prefix = values["MLFLOW_S3_ARTIFACT_ROOT"][len("s3://"):].partition("/")
        assert any(k.startswith(f"{prefix}/{out['experiment_id']}/{out['run_id']}/") for k in outside.keys(bucket))


# --- (e) installations sharing a bucket, and an artifact root at a bucket's root -----------------------------------

TEAMS = {"team-a": "e-shared-bucket-team-a", "team-b": "e-shared-bucket-team-b"}


def test_e1_two_installations_sharing_a_bucket_never_collide_and_never_serve_a_backup(outside, tmp_path):
    roots = {team: credentials(scenario)["MLFLOW_S3_ARTIFACT_ROOT"] for team, scenario in TEAMS.items()}
    buckets = {r[len("s3://"):].split("/")[0] for r in roots.values()}
    assert len(buckets) == 1 and len(set(roots.values())) == 2, roots
    bucket = buckets.pop()
    stacks = {}
    try:
        for team, scenario in TEAMS.items():
            assert settings(scenario)["namespace"] == team
            kubectl("create", "namespace", team)  # the README: a namespace of its own is created once, outside the stack
            stacks[team] = Stack(scenario_dist(scenario, str(tmp_path / team / "dist")))
            assert stacks[team].namespace == team
            stacks[team].apply()
        for stack in stacks.values():
            stack.wait_ready()
        assert len({s.node_port for s in stacks.values()}) == 2
        for team, stack in stacks.items():
            assert outside_verdicts(stack, "backup", S3_PORT, MARIADB_PORT) == {S3_PORT: True, MARIADB_PORT: False}, team
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = dict(zip(stacks, pool.map(workflow, stacks.values())))
            # Both schedules fire at the same moment.
            jobs = dict(zip(stacks, pool.map(lambda s: s.run_cronjob("backup", "upload"), stacks.values())))
        dumps = {}
        for team, (code, pod) in jobs.items():
            log = pod.log("upload")
            assert code == 0, pod.log("dump") + log
            written = re.search(rf"^backup: wrote s3://{bucket}/(backups/{team}/mlflow/mlflow-\d{{8}}T\d{{6}}Z\.dump)$", log, re.M)
            assert written, log
            dumps[team] = written.group(1)
        keys = outside.keys(bucket)
        assert sorted(k for k in keys if k.startswith("backups/")) == sorted(dumps.values()), keys  # no .partial left, nothing overwritten
        for team, run in runs.items():
            prefix = roots[team][len(f"s3://{bucket}/"):]
            mine = [k for k in keys if k.startswith(prefix + "/")]
            assert any(f"/{run['run_id']}/" in k for k in mine), mine
            others = [r["run_id"] for t, r in runs.items() if t != team]
            assert not [k for k in mine if any(o in k for o in others) or k.endswith(".dump")], mine
        # Each dump is its own installation's database.
        cat = lambda key: outside.mc("cat", f"outside/{bucket}/{key}").stdout  # noqa: E731
        for team, key in dumps.items():
            experiments = dump_experiments(cat, key)
            assert f"e2e-{runs[team]['tag']}" in experiments
            assert all(f"e2e-{r['tag']}" not in experiments for t, r in runs.items() if t != team)
        # No client of either installation lists or downloads a dump (its own or the other's) through the proxy.
        for team, stack in stacks.items():
            prefix = roots[team][len(f"s3://{bucket}/"):]
            assert backups_through_the_proxy(stack, list(dumps.values()), prefix) == []
    finally:
        for stack in stacks.values():
            stack.delete()
        kubectl("delete", "namespace", *TEAMS, "--ignore-not-found", "--wait=false", check=False)


def test_e2_an_artifact_root_at_the_bucket_root_keeps_backups_in_their_own_bucket(setup_env, tmp_path):
    name = "e-bucket-root"
    root = credentials(name)["MLFLOW_S3_ARTIFACT_ROOT"]
    assert re.fullmatch(r"s3://[a-z0-9.-]+", root), root
    backup_bucket = settings(name)["backup"]["bucket"]
    with deployed(scenario_dist(name, str(tmp_path / "dist"))) as stack:
        out = workflow(stack)
        code, pod = stack.run_cronjob("backup", "upload")
        log = pod.log("upload")
        assert code == 0, pod.log("dump") + log
        written = re.search(rf"^backup: wrote s3://{backup_bucket}/(backups/default/mlflow/mlflow-\d{{8}}T\d{{6}}Z\.dump)$", log, re.M)
        assert written, log
        bucket = root[len("s3://"):]
        artifacts = [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{bucket}/")]
        assert any(f"/{out['run_id']}/" in k for k in artifacts) and not [k for k in artifacts if k.endswith(".dump") or k.startswith("backups")], artifacts
        assert [o["key"] for o in stack.mc_json("ls", "--recursive", f"e2e/{backup_bucket}/")] == [written.group(1)]
        cat = lambda key: subprocess.run([os.environ["E2E_MC"], "cat", f"e2e/{backup_bucket}/{key}"], capture_output=True, timeout=60,  # noqa: E731
                                         env=dict(os.environ, MC_CONFIG_DIR=stack.mc_config)).stdout
        assert f"e2e-{out['tag']}" in dump_experiments(cat, written.group(1))
        # Through the proxy the dump's own bucket is out of reach (`..` past the bucket root included).
        assert backups_through_the_proxy(stack, [f"../{backup_bucket}/{written.group(1)}", written.group(1)], "") == []


def test_e3_an_artifact_root_at_the_bucket_root_without_a_backup_bucket_is_refused(tmp_path):
    conf = settings("e-bucket-root")
    del conf["backup"]["bucket"]
    if not conf["backup"]:
        del conf["backup"]
    out = tmp_path / "dist"
    with pytest.raises(SynthFailed) as refused:
        synth(conf, env_file("e-bucket-root"), str(out))
    result = refused.value.result
    assert result.returncode == 1, result.stdout + result.stderr
    root = credentials("e-bucket-root")["MLFLOW_S3_ARTIFACT_ROOT"]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and f"inside the artifact root {root}" in error and "backup.bucket" in error, result.stderr
    assert not out.exists() or not list(out.glob("*.k8s.yaml")), "nothing written"
