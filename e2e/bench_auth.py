"""Authenticated against anonymous logging on the real node, paired: two installations of the default
app side by side (the a-default scenario with a name and node port of its own, synthesized as a user does
by matrix.synth), one with basic auth on (the .env holds the admin's password), one without; one long-lived MLflow client per
installation (a training loop's client: one process, its connections reused); rounds alternate
between them, each round in the reverse order of the one before. Prints medians and the ratio."""
import json
import os
import shutil
import statistics
import subprocess
import tempfile

from matrix import credentials, synth
from node.stack import Stack, client_env

E2E = os.path.dirname(os.path.abspath(__file__))
ROUNDS = int(os.environ.get("BENCH_AUTH_ROUNDS", "9"))
PER_ROUND = {"log_metric": int(os.environ.get("BENCH_AUTH_METRICS", "60")), "log_batch": int(os.environ.get("BENCH_AUTH_BATCHES", "20"))}
ADMIN = ("admin", "bench-admin-password-1")
INSTALLATIONS = {"anonymous": ("mlflow-anon", 30111, None), "basic auth": ("mlflow-auth", 30112, ADMIN)}


def synth_installation(work: str, name: str, node_port: int, admin) -> str:
    env = credentials("a-default")
    if admin:
        env.update(MLFLOW_TRACKING_USERNAME=admin[0], MLFLOW_TRACKING_PASSWORD=admin[1])
    return synth({"name": name, "server": {"nodePort": node_port}, "backup": {"enabled": False}}, env, os.path.join(work, f"{name}.dist"))


class Client:
    """e2e/bench_client.py --rounds against one installation, as its user (tracking URI, and credentials under auth)."""

    def __init__(self, uri: str, admin):
        self.home = tempfile.mkdtemp(prefix="bench-auth-client-")
        extra = {"MLFLOW_TRACKING_USERNAME": admin[0], "MLFLOW_TRACKING_PASSWORD": admin[1]} if admin else {}
        self.proc = subprocess.Popen([os.path.join(os.environ["E2E_VENV"], "bin", "python"), os.path.join(E2E, "bench_client.py"), "--rounds"],
                                     env=client_env(uri, self.home, extra), cwd=self.home, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def round(self, kind: str, n: int) -> float:
        self.proc.stdin.write(f"{kind} {n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench client exited with {self.proc.wait()}")
        return json.loads(line)["rps"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)


def auth_vs_anonymous() -> None:
    work = tempfile.mkdtemp(prefix="bench-auth-")
    stacks = {label: Stack(synth_installation(work, name, port, admin)) for label, (name, port, admin) in INSTALLATIONS.items()}
    clients = {}
    try:
        for stack in stacks.values():
            stack.apply()
        for stack in stacks.values():
            stack.wait_ready()
        clients = {label: Client(stacks[label].tracking_uri, INSTALLATIONS[label][2]) for label in stacks}
        rates = {(label, kind): [] for label in stacks for kind in PER_ROUND}
        order = list(stacks)
        for r in range(ROUNDS):
            for kind, n in PER_ROUND.items():
                for label in order if r % 2 == 0 else order[::-1]:
                    rates[(label, kind)].append(clients[label].round(kind, n))
        deployment = stacks["basic auth"].deployment
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        print()
        print(f"auth: two installations of the default app on the node, {deployment['spec'].get('replicas', 1)} replicas x "
              f"{args[args.index('--workers') + 1]} workers each; one client each; {ROUNDS} paired rounds "
              f"({PER_ROUND['log_metric']} log_metric, {PER_ROUND['log_batch']} log_batch of 100 metrics); requests/s, medians")
        print()
        print(f"| {'request':26} | {'anonymous':>10} | {'basic auth':>10} | {'auth / anonymous':>16} |")
        print(f"|{'-' * 28}|{'-' * 12}|{'-' * 12}|{'-' * 18}|")
        for kind in PER_ROUND:
            a, b = (statistics.median(rates[(label, kind)]) for label in ("anonymous", "basic auth"))
            print(f"| {kind:26} | {a:10.1f} | {b:10.1f} | {b / a:16.2f} |")
        print()
        for key, values in rates.items():
            print(f"{key[1]} {key[0]}: {[round(v, 1) for v in values]}")
    finally:
        for client in clients.values():
            client.close()
        for stack in stacks.values():
            stack.delete()
        shutil.rmtree(work, ignore_errors=True)
