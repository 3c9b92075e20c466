"""The daemon's small HTTP server: `/metrics` for Prometheus, `/healthz` and `/readyz` for
orchestrators.

`/healthz` says whether the process is alive and worth keeping (a restart would not help a
store outage, so it does not look at the store); `/readyz` says whether this deployment is
doing its job: the store answers, the scheduler runs and every model ticked recently. Both
answer JSON that names what is wrong, so a failing probe explains itself in `kubectl describe`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
PATHS = ["/metrics", "/healthz", "/readyz"]


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry,
    ready: HealthCheck,
    alive: HealthCheck | None = None,
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; `server.server_address` tells the bound port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, detail = alive() if alive else (True, {})
                self._json(200 if ok else 503, {"status": "alive" if ok else "dead", **detail})
            elif path == "/readyz":
                ok, detail = ready()
                self._json(200 if ok else 503, {"status": "ready" if ok else "not ready", **detail})
            else:
                self._json(404, {"error": "not found", "paths": PATHS})

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._reply(code, json.dumps(body, default=str).encode(), "application/json")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes and probes are not worth a log line each."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="vigil-http", daemon=True).start()
    return server
