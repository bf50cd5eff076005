"""The scenario matrix, for the real-node suite: e2e/scenarios/<name>/ holds what a user of the app holds
(mlflow.yaml; credentials.env, or secret.yaml with an existing Secret), the same directories e2e/matrix.ts
gives the unit, API-server and Python suites. Every stack this suite deploys is a scenario, as written or
with settings and .env keys changed by the test (a new admin password, another image).

`synth(config, env, outdir)` is the one way this suite synthesizes: the app as its users run it,
`node scripts/synth.js` with MLFLOW_CONFIG_FILE, MLFLOW_ENV_FILE and CDK8S_OUTDIR, in an empty working
directory (so no mlflow.yaml or .env of the checkout is read)."""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Union

import yaml

E2E = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(E2E)
SCENARIOS = os.path.join(E2E, "scenarios")


def names() -> List[str]:
    return sorted(d for d in os.listdir(SCENARIOS) if os.path.isdir(os.path.join(SCENARIOS, d)))


def scenario_dir(name: str) -> str:
    path = os.path.join(SCENARIOS, name)
    if not os.path.isdir(path):
        raise KeyError(f"no scenario {name}; known: {', '.join(names())}")
    return path


def _file(name: str, file: str) -> Optional[str]:
    path = os.path.join(scenario_dir(name), file)
    return path if os.path.exists(path) else None


def config_file(name: str) -> Optional[str]:
    """The scenario's mlflow.yaml (None: the defaults)."""
    return _file(name, "mlflow.yaml")


def env_file(name: str) -> Optional[str]:
    """The scenario's credentials.env (None: the settings name an existing Secret)."""
    return _file(name, "credentials.env")


def secret_file(name: str) -> Optional[str]:
    """The Secret the scenario's user creates (secret.yaml), if any."""
    return _file(name, "secret.yaml")


def settings(name: str) -> Dict[str, Any]:
    """The scenario's settings, a copy the caller may change ({} without mlflow.yaml)."""
    path = config_file(name)
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        return copy.deepcopy(yaml.safe_load(handle) or {})


def credentials(name: str) -> Dict[str, str]:
    """The KEY=value lines of the scenario's credentials.env, quotes ('', "", ``) removed."""
    values = {}
    with open(env_file(name) or os.devnull, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"`":
                value = value[1:-1]
            values[key] = value
    return values


def merged(base: Dict[str, Any], changes: Dict[str, Any]) -> Dict[str, Any]:
    """`changes` merged into a copy of `base`, mappings key by key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


class SynthFailed(AssertionError):
    """The app refused the configuration; `result` holds its exit code and output."""

    def __init__(self, result: subprocess.CompletedProcess):
        super().__init__(f"synth failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        self.result = result


def _env_text(values: Dict[str, str]) -> str:
    """A .env: each value in backquotes (dotenv keeps both quote kinds and '#' in them), or in another quote."""
    lines = []
    for key, value in values.items():
        quote = next(q for q in "`'\"" if q not in value)
        lines.append(f"{key}={quote}{value}{quote}")
    return "\n".join(lines) + "\n"


Source = Union[None, str, Dict[str, Any]]


def synth(config: Source, env: Source, outdir: str) -> str:
    """The app's synth into `outdir` (its mlflow.k8s.yaml); returns `outdir`.

    config: the settings (a dict) or the path of an mlflow.yaml; None for the defaults.
    env: the .env's keys (a dict) or the path of a .env; None when the settings name an existing Secret.
    Raises SynthFailed, with the app's one-line error, when the app refuses them."""
    work = tempfile.mkdtemp(prefix="cdk8s-mlflow-synth-")
    try:
        run_env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_CONFIG_FILE", "MLFLOW_ENV_FILE")}
        run_env.update(CDK8S_OUTDIR=os.path.abspath(outdir), CDK8S_CHECK_UPGRADE="false")
        if isinstance(config, dict):
            run_env["MLFLOW_CONFIG_FILE"] = os.path.join(work, "mlflow.yaml")
            with open(run_env["MLFLOW_CONFIG_FILE"], "w", encoding="utf-8") as handle:
                yaml.safe_dump(config, handle)
        elif config is not None:
            run_env["MLFLOW_CONFIG_FILE"] = os.path.abspath(config)
        if isinstance(env, dict):
            run_env["MLFLOW_ENV_FILE"] = os.path.join(work, ".env")
            with open(run_env["MLFLOW_ENV_FILE"], "w", encoding="utf-8") as handle:
                handle.write(_env_text(env))
        elif env is not None:
            run_env["MLFLOW_ENV_FILE"] = os.path.abspath(env)
        cwd = os.path.join(work, "cwd")
        os.makedirs(cwd)
        result = subprocess.run(["node", os.path.join(REPO, "scripts", "synth.js")], cwd=cwd, env=run_env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.returncode != 0:
        raise SynthFailed(result)
    return outdir


def synth_scenario(name: str, outdir: str, config: Optional[Dict[str, Any]] = None, env: Optional[Dict[str, str]] = None) -> str:
    """The scenario as written (its own files), or with `config` merged into its settings and `env` into its .env keys."""
    return synth(merged(settings(name), config) if config else config_file(name),
                 {**credentials(name), **env} if env else env_file(name), outdir)
