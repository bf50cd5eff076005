"""What the README says, read from it, so a test runs the README's own commands and checks its own tables."""
import os
import re
import shlex

from node.stack import REPO


def documented_secret_keys() -> set:
    """The keys the README's existing-Secret table lists for this configuration: those needed "always", and
    MLFLOW_S3_ENDPOINT_URL ("with any store but AWS S3"); not the in-cluster PostgreSQL's or basic auth's."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    table = re.search(r"\*\*Existing Secret \(GitOps\)\.\*\*.*?\n\n(\| key \| needed when \|\n.*?)\n\n", readme, re.S)
    assert table, "the README's existing-Secret table"
    keys = set()
    for row in table.group(1).splitlines()[2:]:
        names, when = row.strip("|").split("|", 1)
        if when.strip().startswith("always") or when.strip().startswith("with any store but AWS S3"):
            keys |= set(re.findall(r"`([A-Z0-9_]+)`", names))
    assert {"MLFLOW_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID", "MLFLOW_S3_ENDPOINT_URL"} <= keys, keys
    return keys


def readme_restore_command() -> str:
    """The shell program the README's restore section runs in the PostgreSQL pod (`kubectl exec ... sh -c '...' < backup.dump`)."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    m = re.search(r"kubectl exec -i \S+ -- sh -c '([^']*pg_restore[^']*)' < backup\.dump", readme)
    assert m, "the README's restore procedure no longer has `kubectl exec -i <pod> -- sh -c '...pg_restore...' < backup.dump`"
    return m.group(1)


def readme_backup_folder() -> str:
    """Where the README's restore procedure fetches the default app's dump: `mc cp mlflow/<bucket>/<prefix>/mlflow-<time>.dump backup.dump`."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    m = re.search(r"mc cp mlflow/(\S+/)mlflow-<time>\.dump backup\.dump", readme)
    assert m, "the README's restore procedure no longer has `mc cp mlflow/<bucket>/<prefix>/mlflow-<time>.dump backup.dump`"
    return m.group(1)


def readme_kek_rotation(new_passphrase: str) -> list:
    """The README's `kubectl run kek-rotate ...` (the servers scaled to 0), as kubectl arguments."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    m = re.search(r"^\s*kubectl (run kek-rotate .*?--overrides='[^']*')$", readme.replace("\\\n", " "), re.M)
    assert m, "the README's KEK rotation no longer has `kubectl run kek-rotate ... --overrides='...'`"
    return [arg.replace("<new>", new_passphrase) for arg in shlex.split(m.group(1))]
