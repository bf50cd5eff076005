"""Backups of the stack's PostgreSQL as the README describes them (test_production.py): the dumps the backup
CronJob left in the bucket, the row counts a dump must bring back, and the README's restore procedure."""
import os
import tempfile
from typing import Dict

from node.readme import readme_backup_folder, readme_restore_command
from node.stack import Stack

COUNTS = {
    "runs": "SELECT count(*) FROM runs", "metrics": "SELECT count(*) FROM metrics", "params": "SELECT count(*) FROM params",
    "tags": "SELECT count(*) FROM tags", "experiments": "SELECT count(*) FROM experiments",
    "registered_models": "SELECT count(*) FROM registered_models", "model_versions": "SELECT count(*) FROM model_versions",
    "logged_models": "SELECT count(*) FROM logged_models",
}


def counts(stack: Stack) -> Dict[str, str]:
    """The rows of every table a dump must bring back."""
    return {k: stack.psql(q) for k, q in COUNTS.items()}


def dumps(stack: Stack) -> Dict[str, dict]:
    """The dumps in the README's backup folder, by key (mc's JSON listing of each)."""
    return {o["key"]: o for o in stack.mc_json("ls", "--recursive", f"e2e/{readme_backup_folder()}")}


def restore(stack: Stack, dump_key: str) -> None:
    """The README's procedure: scale to 0, `mc cp` the dump, pg_restore in the PostgreSQL pod (scaling back is the caller's)."""
    folder = readme_backup_folder()
    stack.scale_servers(0)
    minio = stack.minio_pod()
    s = stack.secret()
    # `kubectl port-forward svc/mlflow-minio 9000` + `mc alias set mlflow http://127.0.0.1:9000 ...`: here the pod's address.
    stack.mc("alias", "set", "mlflow", f"http://{minio.ip}:9000", s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"])
    listed = [o["key"] for o in stack.mc_json("ls", f"mlflow/{folder}")]
    assert dump_key in listed, listed
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "backup.dump")
        stack.mc("cp", f"mlflow/{folder}{dump_key}", local)
        with open(local, "rb") as handle:
            dump = handle.read()
    result = stack.postgres_pod().exec("postgres", ["sh", "-c", readme_restore_command()], input=dump, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert b"error" not in result.stderr.lower(), result.stderr.decode()
