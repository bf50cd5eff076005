"""Single sign-on on the real node (test_sso.py): dex as the company's OpenID Connect provider, outside the
cluster on an address no pod has (on a bridge of its own; the pods reach it through their default route,
the node), configured by e2e/fixtures/dex.yaml and by the scenario sso-dex, whose settings name the issuer,
the client, the redirect URL and the node port; a browser (urllib with a cookie jar that follows redirects);
the provider's tokens; a probe of the NodePort during a rollout."""
import base64
import glob
import hashlib
import html
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from matrix import credentials, settings
from node.stack import E2E, NODE_IP, Pod

SCENARIO = "sso-dex"
SSO = settings(SCENARIO)["sso"]
ISSUER = SSO["issuerUrl"]
IDP_BRIDGE = "mle2sso0"
IDP_IP, IDP_PORT = urllib.parse.urlsplit(ISSUER).hostname, urllib.parse.urlsplit(ISSUER).port
UI = f"http://{NODE_IP}:{settings(SCENARIO)['server']['nodePort']}"
REDIRECT_URL = SSO["redirectUrl"]
PASSWORD = "password"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@elsewhere.org"
API = "/api/2.0/mlflow/experiments/search?max_results=1"


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


class Provider:
    """dex on the node's address outside every pod network, with the fixture's users and clients."""

    def __init__(self, dex: str):
        self.dir = tempfile.mkdtemp(prefix="cdk8s-mlflow-idp-")
        ip("link", "delete", IDP_BRIDGE, check=False)  # a killed run's
        ip("link", "add", IDP_BRIDGE, "type", "bridge")
        ip("addr", "add", f"{IDP_IP}/24", "dev", IDP_BRIDGE)
        ip("link", "set", IDP_BRIDGE, "up")
        # The stack's client secret is the one its .env holds (the scenario's); another app's is made up here.
        self.client_secrets = {SSO["clientId"]: credentials(SCENARIO)["OAUTH2_PROXY_CLIENT_SECRET"], "other-app": secrets.token_urlsafe(24)}
        with open(os.path.join(E2E, "fixtures", "dex.yaml"), encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        config["issuer"] = ISSUER
        config["web"]["http"] = f"{IDP_IP}:{IDP_PORT}"
        next(c for c in config["staticClients"] if c["id"] == "mlflow")["redirectURIs"] = [REDIRECT_URL]
        self.token_lifetime = _seconds(config["expiry"]["idTokens"])
        path = os.path.join(self.dir, "dex.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle)
        env = {"PATH": "/usr/bin:/bin", "HOME": self.dir, "DEX_MLFLOW_CLIENT_SECRET": self.client_secrets[SSO["clientId"]],
               "DEX_OTHER_APP_CLIENT_SECRET": self.client_secrets["other-app"]}
        self.log_file = os.path.join(self.dir, "dex.log")
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen([dex, "serve", path], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = fetch(f"{ISSUER}/.well-known/openid-configuration")
                if status == 200 and json.loads(body)["issuer"] == ISSUER:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dex did not come up at {ISSUER}:\n{self.log()}")
            time.sleep(0.3)

    def log(self) -> str:
        with open(self.log_file, errors="replace") as handle:
            return handle.read()[-4000:]

    def token(self, user: str, client: str = "mlflow") -> dict:
        """The provider's tokens for `user` through `client` (grant_type=password; the public client sends no secret)."""
        form = {"grant_type": "password", "username": user, "password": PASSWORD, "scope": "openid email profile groups"}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if client in self.client_secrets:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{client}:{self.client_secrets[client]}".encode()).decode()
        else:
            form["client_id"] = client
        status, _, body = fetch(f"{ISSUER}/token", data=urllib.parse.urlencode(form).encode(), headers=headers)
        assert status == 200, f"token for {user} via {client}: {status} {body[:300]}"
        return json.loads(body)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        ip("link", "delete", IDP_BRIDGE, check=False)
        if os.environ.get("E2E_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_PLAIN = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def fetch(url: str, data=None, headers=None, method=None, timeout: float = 30):
    """One request, no redirects followed: (status, headers with lower-case names, body) for every status."""
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    try:
        with _PLAIN.open(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode(errors="replace")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class Browser:
    """Cookies, redirects followed, HTML accepted; `hops` are the URLs it went through (without queries)."""

    def __init__(self):
        self.cookies = http.cookiejar.CookieJar()
        browser = self

        class Redirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                browser.hops.append(newurl.split("?")[0])
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies), Redirects())
        self.hops = []

    def open(self, url: str, form=None, headers=None):
        """(status, final URL, body)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, headers={"Accept": "text/html,application/xhtml+xml", **(headers or {})})
        self.hops.append(url.split("?")[0])
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.url, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.url, error.read().decode(errors="replace")

    def login(self, user: str):
        """Opens the UI, is sent to the provider, posts its login form; (status, final URL, body, seconds)."""
        started = time.monotonic()
        status, url, body = self.open(UI + "/")
        form = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', body)
        assert status == 200 and url.startswith(ISSUER) and form and 'name="password"' in body, (status, url, body[:500])
        status, url, body = self.open(urllib.parse.urljoin(url, html.unescape(form.group(1))), form={"login": user, "password": PASSWORD})
        return status, url, body, time.monotonic() - started

    def session_cookie(self):
        return next((c for c in self.cookies if c.name == "_mlflow_oauth2"), None)


class HealthProbe(threading.Thread):
    """GET /health through the NodePort every 50 ms until stopped; `failures` lists what was not a 200."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopped, self.count, self.failures = threading.Event(), 0, []

    def run(self):
        while not self.stopped.wait(0.05):
            self.count += 1
            try:
                status = fetch(UI + "/health", timeout=5)[0]
            except OSError as error:
                status = type(getattr(error, "reason", error)).__name__
            if status != 200:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {status}")

    def stop(self):
        self.stopped.set()
        self.join()


def timed(call, n: int = 20):
    """Median and maximum seconds of n calls (each must succeed)."""
    times = []
    for _ in range(n):
        started = time.monotonic()
        call()
        times.append(time.monotonic() - started)
    return statistics.median(times), max(times)


def openssl_key() -> str:
    """A cookie key from `openssl rand -base64 32`, one with '+' or '/' in it (as three in four are)."""
    while True:
        key = subprocess.run(["openssl", "rand", "-base64", "32"], check=True, capture_output=True, text=True).stdout.strip()
        if "+" in key or "/" in key:
            return key


def main_pid(pod: Pod, container: str) -> int:
    """The node's pid of the container's first process, found through the container's cgroup."""
    status = next(s for s in pod.get()["status"]["containerStatuses"] if s["name"] == container)
    cid = status["containerID"].split("://", 1)[1]
    pids = set()
    for path in glob.glob(f"/sys/fs/cgroup/*/cdk8s-mlflow-node/**/{cid}/cgroup.procs", recursive=True):  # node.sh's cgroup root
        with open(path) as handle:
            pids.update(int(p) for p in handle.read().split())
    for pid in pids:
        with open(f"/proc/{pid}/status") as handle:
            if next(line for line in handle if line.startswith("NSpid:")).split()[-1] == "1":
                return pid
    raise AssertionError(f"no first process of {pod.name}/{container} among {sorted(pids)}")


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n    sso: {line}")
