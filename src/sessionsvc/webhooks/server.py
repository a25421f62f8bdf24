"""The delivery process's own small HTTP server: ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def serve(
    host: str, port: int, ready: Callable[[], bool], registry: CollectorRegistry
) -> ThreadingHTTPServer:
    """Serve /readyz and /metrics on host:port in a daemon thread; return the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            if self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif self.path == "/readyz":
                ok = ready()
                body = (
                    {"status": "ready"}
                    if ok
                    else {
                        "code": "STORE_UNAVAILABLE",
                        "error": "A delivery loop cannot reach Redis or has stopped.",
                    }
                )
                self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
            else:
                body = {"code": "NOT_FOUND", "error": "No such path: /readyz or /metrics."}
                self._send(404, "application/json", json.dumps(body).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds: not worth a log line each

    server = ThreadingHTTPServer((host.strip("[]"), port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="webhooks-http", daemon=True).start()
    return server
