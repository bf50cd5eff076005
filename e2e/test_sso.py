"""Single sign-on on the real node: the app synthesized from configuration only (mlflow.yaml `sso:` plus the
.env's OAUTH2_PROXY_CLIENT_SECRET and OAUTH2_PROXY_COOKIE_SECRET) and applied with `kubectl apply -f`;
the server pod's two containers as written (MLflow on the pod's loopback, the oauth2-proxy sidecar in
front of it: the image under the pinned name holds the program e2e/setup-sso.sh builds), and dex as the
company's OpenID Connect provider.

The provider is outside the cluster, a process on the node listening on an address no pod has
(10.213.31.1, on a bridge of its own; the pods reach it through their default route, the node), configured
by e2e/fixtures/dex.yaml: users alice@example.com (group mlflow-users),
bob@example.com (group sales) and carol@elsewhere.org (group mlflow-users, another e-mail domain), all
with the password "password"; clients `mlflow` (the stack's), `other-app` and the public `mlflow-cli`.
The stack allows group mlflow-users and domain example.com and accepts `mlflow-cli` as an audience.

A browser is urllib with a cookie jar that follows redirects; a data scientist's token comes from the
provider's token endpoint (password grant) and goes to the MLflow client as MLFLOW_TRACKING_TOKEN.
Tests share one stack and run in file order; the measured login and token flows are printed."""
import base64
import glob
import hashlib
import html
import http.cookiejar
import json
import os
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from node.stack import (E2E, NODE_IP, REPO, Pod, Stack, connect_from_node, connect_from_pod, kget, kubectl, policy_allows,
                        policy_allows_to_ip, run_client, wait_until)

pytestmark = pytest.mark.stack

IDP_BRIDGE, IDP_IP, IDP_PORT = "mle2sso0", "10.213.31.1", 5556
ISSUER = f"http://{IDP_IP}:{IDP_PORT}/dex"
NODE_PORT = 30313
UI = f"http://{NODE_IP}:{NODE_PORT}"
REDIRECT_URL = f"{UI}/oauth2/callback"
PASSWORD = "password"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@elsewhere.org"
API = "/api/2.0/mlflow/experiments/search?max_results=1"
SETTINGS = {
    "server": {"nodePort": NODE_PORT},
    "sso": {"issuerUrl": ISSUER, "clientId": "mlflow", "redirectUrl": REDIRECT_URL, "allowedGroups": ["mlflow-users"],
            "emailDomains": ["example.com"], "extraAudiences": ["mlflow-cli"]},
}


# --- programs --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sso_programs(setup_env):
    """dex and oauth2-proxy from e2e/setup-sso.sh (built on first use, then cached)."""
    if not (os.environ.get("E2E_DEX") and os.environ.get("E2E_OAUTH2_PROXY")):
        result = subprocess.run(["bash", os.path.join(E2E, "setup-sso.sh"), "--print-env"], capture_output=True, text=True, timeout=3600)
        assert result.returncode == 0, result.stderr[-5000:]
        for word in shlex.split(result.stdout.strip().removeprefix("export ")):
            key, _, value = word.partition("=")
            os.environ[key] = value
    return os.environ["E2E_DEX"], os.environ["E2E_OAUTH2_PROXY"]


# --- the provider ------------------------------------------------------------------------------------------------

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
        self.client_secrets = {"mlflow": secrets.token_urlsafe(24), "other-app": secrets.token_urlsafe(24)}
        with open(os.path.join(E2E, "fixtures", "dex.yaml"), encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        config["issuer"] = ISSUER
        config["web"]["http"] = f"{IDP_IP}:{IDP_PORT}"
        next(c for c in config["staticClients"] if c["id"] == "mlflow")["redirectURIs"] = [REDIRECT_URL]
        self.token_lifetime = _seconds(config["expiry"]["idTokens"])
        path = os.path.join(self.dir, "dex.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle)
        env = {"PATH": "/usr/bin:/bin", "HOME": self.dir, "DEX_MLFLOW_CLIENT_SECRET": self.client_secrets["mlflow"],
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


# --- HTTP as a browser and as a script ------------------------------------------------------------------------

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


# --- the stack ---------------------------------------------------------------------------------------------------

def url_safe_key() -> str:
    """A cookie key as oauth2-proxy documents it: `openssl rand -base64 32 | tr -- '+/' '-_'`."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def openssl_key() -> str:
    """A cookie key from `openssl rand -base64 32`, one with '+' or '/' in it (as three in four are)."""
    while True:
        key = subprocess.run(["openssl", "rand", "-base64", "32"], check=True, capture_output=True, text=True).stdout.strip()
        if "+" in key or "/" in key:
            return key


def synth_app(workdir: str, client_secret: str, cookie_secret: str):
    """`npm run synth` as the platform engineer runs it, with the settings file and .env of this app: (result, dist)."""
    os.makedirs(workdir, exist_ok=True)
    config, env_file, dist = (os.path.join(workdir, name) for name in ("mlflow.yaml", ".env", "dist"))
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump(SETTINGS, handle)
    with open(os.path.join(REPO, ".env.example"), encoding="utf-8") as handle:
        seed = handle.read()
    with open(env_file, "w", encoding="utf-8") as handle:
        handle.write(seed.rstrip("\n") + "\n")
        handle.write(f"OAUTH2_PROXY_CLIENT_SECRET='{client_secret}'\n")
        handle.write(f"OAUTH2_PROXY_COOKIE_SECRET='{cookie_secret}'\n")
    cwd = tempfile.mkdtemp(prefix="cdk8s-mlflow-synth-cwd-")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_CONFIG_FILE", "MLFLOW_ENV_FILE")}
    env.update(MLFLOW_CONFIG_FILE=config, MLFLOW_ENV_FILE=env_file, CDK8S_OUTDIR=dist, CDK8S_CHECK_UPGRADE="false")
    try:
        result = subprocess.run(["node", os.path.join(REPO, "scripts", "synth.js")], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    return result, dist


@pytest.fixture(scope="module")
def sso(sso_programs, tmp_path_factory):
    """The provider, then the app's stack applied and rolled out."""
    provider = Provider(sso_programs[0])
    stack = None
    try:
        result, dist = synth_app(str(tmp_path_factory.mktemp("sso")), provider.client_secrets["mlflow"], url_safe_key())
        assert result.returncode == 0, result.stdout + result.stderr
        stack = Stack(dist)
        assert stack.tracking_uri == UI
        started = time.monotonic()
        stack.apply()
        stack.wait_ready()
        stack.ready_after_s = time.monotonic() - started
        code, pod = stack.job_result(stack.job["metadata"]["name"], "mc")
        assert code == 0, pod.log("mc")
        yield stack, provider
    finally:
        if stack is not None:
            stack.delete()
        provider.close()


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


class TestSingleSignOn:
    state = {}

    def test_1_server_pod_is_mlflow_on_loopback_behind_the_proxy(self, sso, capsys):
        stack, _ = sso
        spec = stack.deployment["spec"]["template"]["spec"]
        assert [c["name"] for c in spec["containers"]] == ["mlflow", "oauth2-proxy"]
        mlflow = next(c for c in spec["containers"] if c["name"] == "mlflow")
        proxy = next(c for c in spec["containers"] if c["name"] == "oauth2-proxy")
        assert mlflow["args"][mlflow["args"].index("--host") + 1] == "127.0.0.1"
        assert proxy["image"] == "quay.io/oauth2-proxy/oauth2-proxy:v7.15.3"
        target = stack.one("Service", "tracking-server")["spec"]["ports"][0]["targetPort"]
        assert target in (4180, "http") and any(p["containerPort"] == 4180 and p.get("name") == "http" for p in proxy["ports"]), (target, proxy["ports"])
        # The sidecar is the pinned version's program, running with the manifest's identity.
        out = subprocess.run([os.environ["E2E_OAUTH2_PROXY"], "--version"], capture_output=True, text=True).stdout
        assert "v7.15.3" in out, out
        for pod in stack.server_pods():
            pid = main_pid(pod, "oauth2-proxy")
            assert sha256(f"/proc/{pid}/exe") == sha256(os.environ["E2E_OAUTH2_PROXY"])
            with open(f"/proc/{pid}/status") as handle:
                uids = next(line for line in handle if line.startswith("Uid:")).split()[1:]
            assert uids[0] == "65532", uids
            # MLflow answers on the pod's loopback; from outside the pod only the proxy is reachable.
            health = pod.exec("mlflow", ["python", "-c", "import urllib.request as u; print(u.urlopen('http://127.0.0.1:5000/health', timeout=10).read().decode())"])
            assert health.stdout.decode().strip() == "OK", health.stderr.decode()
            status, _, _ = fetch(f"http://{pod.ip}:4180/ping")
            assert status == 200
            assert connect_from_node(pod.ip, 5000) == "refused"
        report(capsys, f"stack Ready {stack.ready_after_s:.1f}s after kubectl apply (PostgreSQL, MinIO, bucket Job, 2 server pods: migrate + MLflow + oauth2-proxy)")

    def test_2_health_stays_open_and_only_health(self, sso):
        status, _, body = fetch(UI + "/health")
        assert (status, body) == (200, "OK")
        # The exemption is for GET /health only: other methods, and a client's claim to be asking for /health, are not let in.
        status, _, _ = fetch(UI + "/health", data=b"", method="POST")
        assert status in (302, 401, 403), status
        status, _, body = fetch(UI + API, headers={"X-Forwarded-Uri": "/health"})
        assert status == 401, (status, body[:200])

    def test_3_unauthenticated_browser_is_sent_to_the_provider(self, sso, capsys):
        started = time.monotonic()
        status, headers, _ = fetch(UI + "/", headers={"Accept": "text/html"})
        took = time.monotonic() - started
        assert status == 302, status
        location = headers["location"]
        assert location.startswith(f"{ISSUER}/auth?"), location
        query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
        assert query["client_id"] == ["mlflow"] and query["redirect_uri"] == [REDIRECT_URL] and query["response_type"] == ["code"], query
        assert set(query["scope"][0].split()) == {"openid", "email", "profile", "groups"}, query
        # The API answers 401 instead: a script gets an error, not a login page.
        for method, path in (("GET", API), ("POST", "/ajax-api/2.0/mlflow/experiments/search")):
            status, _, _ = fetch(UI + path, data=b"{}" if method == "POST" else None, method=method, headers={"Content-Type": "application/json"})
            assert status == 401, (method, path, status)
        report(capsys, f"unauthenticated GET / -> 302 to the provider in {took * 1000:.0f} ms")

    def test_4_scripted_login_reaches_the_ui(self, sso, capsys):
        browser = Browser()
        status, url, body, took = browser.login(ALICE)
        assert status == 200 and url == UI + "/", (status, url, body[:300])
        assert "<title>MLflow" in body, body[:300]
        assert browser.hops[-2:] == [REDIRECT_URL, UI + "/"], browser.hops
        assert browser.session_cookie() is not None
        hops = list(browser.hops)
        # The UI's own calls (XHR to /ajax-api) go through with the session cookie.
        request = urllib.request.Request(UI + "/ajax-api/2.0/mlflow/experiments/search", data=json.dumps({"max_results": 5}).encode(),
                                         headers={"Content-Type": "application/json"})
        with browser.opener.open(request, timeout=30) as response:
            assert response.status == 200
            assert "Default" in [e["name"] for e in json.loads(response.read())["experiments"]]
        # Again, with the session: no provider round trip.
        status, url, _ = browser.open(UI + "/")
        assert status == 200 and url == UI + "/"
        cookie = f"_mlflow_oauth2={browser.session_cookie().value}"
        self.state["cookie"] = cookie
        median, worst = timed(lambda: fetch(UI + API, headers={"Cookie": cookie})[0] == 200 or pytest.fail("cookie refused"))
        self.state["cookie_api"] = (median, worst)
        report(capsys, f"browser login (alice) {took:.2f}s, {len(hops)} requests: {' -> '.join(urllib.parse.urlparse(h).path for h in hops)}")

    def test_5_client_workflow_with_a_provider_token(self, sso, capsys):
        stack, provider = sso
        started = time.monotonic()
        tokens = provider.token(ALICE)
        grant = time.monotonic() - started
        token = tokens["id_token"]
        c = claims(token)
        assert c["aud"] == "mlflow" and c["email"] == ALICE and c["groups"] == ["mlflow-users"], c
        assert c["exp"] - c["iat"] == provider.token_lifetime
        # Kept for the expiry test: accepted now.
        self.state["expiring"] = token
        assert fetch(UI + API, headers=bearer(token))[0] == 200
        started = time.monotonic()
        written = run_client(stack.tracking_uri, "write", env={"MLFLOW_TRACKING_TOKEN": token})
        write_s = time.monotonic() - started
        assert written["predicted"] == written["expected"]
        started = time.monotonic()
        run_client(stack.tracking_uri, "verify", json.dumps(written), env={"MLFLOW_TRACKING_TOKEN": provider.token(ALICE)["id_token"]})
        verify_s = time.monotonic() - started
        self.state["written"] = written
        # The access token of the same grant and a token of the public client (an accepted audience) work too.
        assert fetch(UI + API, headers=bearer(tokens["access_token"]))[0] == 200
        cli = provider.token(ALICE, client="mlflow-cli")["id_token"]
        assert claims(cli)["aud"] == "mlflow-cli"
        run_client(stack.tracking_uri, "verify", json.dumps(written), env={"MLFLOW_TRACKING_TOKEN": cli})
        median, worst = timed(lambda: fetch(UI + API, headers=bearer(token))[0] == 200 or pytest.fail("token refused"))
        open_median, _ = timed(lambda: fetch(UI + "/health")[0] == 200 or pytest.fail("/health"))
        report(capsys, f"token from the provider (password grant) {grant * 1000:.0f} ms; client workflow with MLFLOW_TRACKING_TOKEN: "
                       f"write {write_s:.1f}s, verify {verify_s:.1f}s")
        cookie_median, cookie_worst = self.state["cookie_api"]
        report(capsys, f"experiments/search through the proxy, median/max of 20: bearer {median * 1000:.1f}/{worst * 1000:.1f} ms, "
                       f"session cookie {cookie_median * 1000:.1f}/{cookie_worst * 1000:.1f} ms; GET /health (no auth) {open_median * 1000:.1f} ms")

    def test_6_no_token_and_another_clients_token_are_refused(self, sso):
        stack, provider = sso
        written = self.state["written"]
        other = provider.token(ALICE, client="other-app")["id_token"]
        assert claims(other)["aud"] == "other-app" and claims(other)["email"] == ALICE
        for headers in ({}, bearer(other), bearer("not-a-token")):
            status, _, body = fetch(UI + API, headers=headers)
            assert status in (401, 403), (headers, status, body[:200])
        # The same on a UI path: never MLflow's page.
        status, _, body = fetch(UI + "/", headers=bearer(other))
        assert status in (401, 403) and "<title>MLflow" not in body, status
        for env in ({}, {"MLFLOW_TRACKING_TOKEN": other}):
            with pytest.raises(AssertionError):
                run_client(stack.tracking_uri, "verify", json.dumps(written), env=env, timeout=300)
        # A token whose signature is not the provider's: alice's claims with another token's signature.
        mine = provider.token(ALICE)["id_token"].split(".")
        forged = ".".join(mine[:2] + [other.split(".")[2]])
        assert fetch(UI + API, headers=bearer(forged))[0] in (401, 403)

    def test_7_users_outside_the_allowed_group_or_domain_are_refused(self, sso):
        stack, provider = sso
        for user in (BOB, CAROL):
            browser = Browser()
            status, url, body, _ = browser.login(user)
            # The provider signed them in; the proxy refuses them at the callback and gives no session.
            assert status == 403 and url.startswith(REDIRECT_URL), (user, status, url)
            assert "<title>MLflow" not in body
            assert browser.session_cookie() is None, user
            # Opening the UI again starts a new sign-in at the provider.
            status, url, _ = browser.open(UI + "/")
            assert status == 200 and url.startswith(ISSUER), (user, status, url)
            token = provider.token(user)["id_token"]
            assert fetch(UI + API, headers=bearer(token))[0] == 403, user
            with pytest.raises(AssertionError):
                run_client(stack.tracking_uri, "verify", json.dumps(self.state["written"]), env={"MLFLOW_TRACKING_TOKEN": token}, timeout=300)

    def test_8_network_policies_admit_the_provider_and_the_proxy_port_only(self, sso):
        """What the policies say (netpol-analyzer on the live pods: no policy engine runs on this kernel), and
        the needed connections opened for real."""
        stack, _ = sso
        server = stack.server_pods()[0]
        assert connect_from_pod(server, "mlflow", IDP_IP, IDP_PORT) == "connected"
        assert policy_allows_to_ip(server, IDP_IP, IDP_PORT)
        assert policy_allows(None, server, 4180)
        # MLflow's own port is for the pod's loopback only.
        assert not policy_allows(None, server, 5000)
        assert not policy_allows_to_ip(server, IDP_IP, 443)

    def test_9_a_new_cookie_key_from_openssl_rand_base64_after_apply_and_restart(self, sso, tmp_path, capsys):
        """The README's rotation with a key from `openssl rand -base64 32` (with '+' or '/', which oauth2-proxy
        does not decode): new key in .env, synth, `kubectl apply -f dist`, `kubectl rollout restart`. The proxy
        starts with it, a browser signs in, and sessions signed with the old key are over."""
        stack, provider = sso
        key = openssl_key()
        result, dist = synth_app(str(tmp_path / "app"), provider.client_secrets["mlflow"], key)
        assert result.returncode == 0, result.stdout + result.stderr
        stack.apply(dist)
        assert base64.urlsafe_b64decode(stack.secret()["OAUTH2_PROXY_COOKIE_SECRET"]) == base64.b64decode(key)
        probe = HealthProbe()
        probe.start()
        try:
            started = time.monotonic()
            kubectl("rollout", "restart", f"deployment/{stack.deployment['metadata']['name']}")
            stack.wait_rollout(stack.deployment)
            rollout = time.monotonic() - started
            # Until then a terminating pod, with the old key, can still take a connection.
            selector = stack.selector(stack.deployment)
            wait_until("the old server pods are gone", lambda: not [
                p for p in kget("pods", "-l", selector)["items"] if p["metadata"].get("deletionTimestamp")], 120)
        finally:
            probe.stop()
        self.state["rollout_probe"] = probe
        browser = Browser()
        status, url, body, took = browser.login(ALICE)
        assert status == 200 and url == UI + "/", (status, url, body[:300])
        assert browser.session_cookie() is not None
        assert fetch(UI + API, headers={"Cookie": self.state["cookie"]})[0] == 401
        report(capsys, f"re-keyed: rollout restart {rollout:.0f}s, then browser login (alice) {took:.2f}s; the old session cookie gets 401")

    @pytest.mark.xfail(reason="lib: the oauth2-proxy sidecar, the Service's backend under sso, has no preStop delay: it closes its "
                              "port on SIGTERM before kube-proxy has dropped the terminating pod (e2e/README.md)")
    def test_10_the_rollout_refused_no_request(self, sso, capsys):
        probe = self.state["rollout_probe"]
        report(capsys, f"GET /health through the NodePort every 50 ms during that rollout: {len(probe.failures)} of {probe.count} failed "
                       f"{probe.failures[:5]}")
        assert probe.failures == [], probe.failures[:10]

    def test_11_an_expired_token_is_refused(self, sso, capsys):
        token = self.state["expiring"]
        wait = claims(token)["exp"] - time.time() + 1
        if wait > 0:
            time.sleep(wait)
        status, _, body = fetch(UI + API, headers=bearer(token))
        assert status in (401, 403), (status, body[:200])
        report(capsys, f"the first token is refused once expired (waited {max(wait, 0):.0f}s more for it)")
