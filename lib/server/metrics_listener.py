# The tracking server's Prometheus metrics on a port of their own: `python -c <this>` in a container
# beside MLflow, in MLflow's image. `mlflow server --expose-prometheus DIR` keeps every worker's
# metrics in files under DIR (prometheus_client's multi-process mode) and serves them on /metrics of
# its own port, behind whatever guards that port: basic auth, or the single sign-on proxy, which no
# scraper can pass. This reads the same files and serves them, and nothing else, on METRICS_PORT,
# which the stack's NetworkPolicy opens only to the namespaces in `metrics.scrapeFrom`. It only
# reads: PROMETHEUS_MULTIPROC_DIR stays unset here, so this process writes no files of its own.
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

directory = os.environ["METRICS_DIR"]
port = int(os.environ["METRICS_PORT"])


class Metrics(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        body = generate_latest(registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


ThreadingHTTPServer(("0.0.0.0", port), Metrics).serve_forever()
