"""A webhook receiver for the tests: a real HTTP server that verifies each delivery.

JSON deliveries are verified with the ``standardwebhooks`` package (the
specification's reference library), as a receiver would; Security Event
Tokens are kept as received, for the test to verify from the JWKS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support import free_port

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "AAAAAA=="  # 30 bytes, base64
OTHER_SECRET = "whsec_" + "c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24hIQ=="  # 28 bytes


@dataclass
class Receiver:
    """Answers ``status`` (after ``hold`` is set, if given), verifying with ``secret``."""

    secret: str | None = SECRET
    status: int = 204
    port: int = field(default_factory=free_port)
    hold: threading.Event | None = None  # while unset, requests wait
    delay: float = 0.0  # seconds each request takes
    headers: dict[str, str] = field(default_factory=dict)  # extra answer headers
    received: list[dict[str, Any]] = field(default_factory=list)  # verified deliveries
    tokens: list[tuple[dict[str, str], bytes]] = field(default_factory=list)  # SET pushes
    failures: list[str] = field(default_factory=list)  # signatures that did not verify
    requests: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    @property
    def ids(self) -> set[str]:
        return {delivery["id"] for delivery in self.received}

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                time.sleep(receiver.delay)
                headers = {name.lower(): value for name, value in self.headers.items()}
                if headers.get("content-type") == "application/secevent+jwt":
                    receiver.tokens.append((headers, body))
                elif receiver.secret is not None:
                    try:
                        payload = Webhook(receiver.secret).verify(body, headers)
                    except WebhookVerificationError as error:
                        receiver.failures.append(str(error))
                    else:
                        receiver.received.append(
                            {
                                "id": headers["webhook-id"],
                                "headers": headers,
                                "body": payload,
                                "arrived": time.perf_counter(),  # for bench/webhooks.py
                            }
                        )
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def wait_for(condition: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Wait until ``condition()`` is true; return it, or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


def endpoint(name: str, receiver: Receiver, events: list[str], **more: Any) -> dict[str, Any]:
    """Return a WEBHOOKS entry for ``receiver``."""
    entry: dict[str, Any] = {"name": name, "url": receiver.url, "events": events}
    if more.get("format") != "set" and "secrets" not in more:
        entry["secret"] = receiver.secret or SECRET
    return entry | more


def webhooks(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))
