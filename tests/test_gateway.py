"""deploy/nginx.conf under a real nginx, in front of the real service and a tiny upstream."""

from __future__ import annotations

import http.client
import io
import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.support import (
    NGINX,
    SERVICE_KEY,
    Nginx,
    auth,
    free_port,
    nginx_main_conf,
    render_deploy_conf,
)

# For every test that runs the shipped nginx config (here and in tests/security/).
needs_nginx = pytest.mark.skipif(
    NGINX is None,
    reason="nginx is not installed: `make test-gateway` installs it and runs these tests",
)
pytestmark = needs_nginx

# --- The processes -------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: list[str] = field(default_factory=list)  # the status line, once answered


class Seen:
    """The requests a server received, in order."""

    def __init__(self) -> None:
        self._requests: list[Request] = []
        self._lock = threading.Lock()

    def add(self, request: Request) -> Request:
        with self._lock:
            self._requests.append(request)
        return request

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)

    def last(self) -> Request:
        with self._lock:
            return self._requests[-1]


def serve_upstream(stack: ExitStack) -> tuple[int, Seen]:
    """Start the protected service: it echoes who the gateway said the caller is."""
    seen = Seen()

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive expects

        def handle_any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen.add(Request(self.command, self.path, headers, body))
            reply = json.dumps(
                {"userId": headers.get("x-user-id"), "sessionId": headers.get("x-session-id")}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_DELETE = handle_any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    run_server(stack, server)
    return server.server_address[1], seen


def serve_app(stack: ExitStack, app: Flask) -> tuple[int, Seen]:
    """Serve the service over HTTP; record what reaches it and how it answered."""
    seen = Seen()

    def recording(environ: dict[str, Any], start_response: Callable) -> Any:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        request = seen.add(Request(environ["REQUEST_METHOD"], environ["PATH_INFO"], headers, body))

        def recording_start_response(status: str, *args: Any) -> Any:
            request.answered.append(status)
            return start_response(status, *args)

        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, recording_start_response)

    server = make_server("127.0.0.1", 0, recording, threaded=True)
    run_server(stack, server)
    return server.server_port, seen


def run_server(stack: ExitStack, server: socketserver.BaseServer) -> None:
    """Serve in a thread until the stack closes: shut down, join, close, in that order."""
    stack.callback(server.server_close)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stack.callback(thread.join, 5)
    stack.callback(server.shutdown)


def start_nginx(stack: ExitStack, directory: Path, *, sessionsvc: int, protected: int) -> int:
    """Run nginx in the foreground on the shipped config; return its port once it listens."""
    port = free_port()
    site = render_deploy_conf(listen=port, sessionsvc=sessionsvc, protected=protected)
    (directory / "sessionsvc.conf").write_text(site)
    nginx = Nginx(directory, nginx_main_conf(directory, worker_connections=512), port)
    stack.callback(nginx.stop)
    try:
        nginx.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    return port


@dataclass
class Gateway:
    port: int
    upstream: Seen  # what reached the protected service
    service: Seen  # what reached sessionsvc

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request through nginx; return status, headers and JSON body."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(headers or {})
        if data is not None:
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
        finally:
            connection.close()

    def login(self, user_id: str = "alice", **extra: Any) -> dict[str, Any]:
        """Log in through the gateway, as the login service behind it would."""
        status, _, body = self.request(
            "POST", "/api/sessions", {"X-Service-Key": SERVICE_KEY}, {"userId": user_id, **extra}
        )
        assert status == 201, body
        return body


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[[Flask | None], Gateway]]:
    """Return a starter of nginx in front of an app (or of nothing) and a tiny upstream."""
    with ExitStack() as stack:

        def start(app: Flask | None) -> Gateway:
            upstream_port, upstream = serve_upstream(stack)
            if app is None:  # sessionsvc down: nothing listens there
                service_port, service = free_port(), Seen()
            else:
                service_port, service = serve_app(stack, app)
            port = start_nginx(stack, tmp_path, sessionsvc=service_port, protected=upstream_port)
            return Gateway(port, upstream, service)

        yield start


# --- The tests -----------------------------------------------------------------------


def test_valid_token_reaches_the_upstream_with_its_user_id(gateway, app):
    gw = gateway(app)
    body = gw.login("alice")
    session_id = body["session"]["_id"]

    # The client's own X-User-Id is replaced, never passed on.
    status, _, echoed = gw.request(
        "GET", "/orders/7?x=1", {**auth(body["accessToken"]), "X-User-Id": "mallory"}
    )

    assert status == 200
    assert echoed == {"userId": "alice", "sessionId": session_id}
    reached = gw.upstream.last()
    assert (reached.method, reached.path) == ("GET", "/orders/7?x=1")
    assert reached.headers["x-user-id"] == "alice"
    assert reached.headers["x-session-id"] == session_id
    assert reached.headers["authorization"] == f"Bearer {body['accessToken']}"


def test_the_session_claims_reach_the_upstream_and_a_clients_own_never_do(gateway, app):
    gw = gateway(app)
    with_claims = gw.login("alice", claims={"role": "editor"})["accessToken"]
    without = gw.login("bob")["accessToken"]
    forged = {"X-Session-Claims": '{"role":"admin"}'}

    for token, expected in ((with_claims, {"role": "editor"}), (without, {})):
        status, _, _ = gw.request("GET", "/orders/7", {**auth(token), **forged})

        assert status == 200
        assert json.loads(gw.upstream.last().headers["x-session-claims"]) == expected


def test_verify_gets_the_token_only_and_the_upstream_gets_the_body(gateway, app):
    gw = gateway(app)
    token = gw.login("alice")["accessToken"]
    headers = {**auth(token), "Cookie": "theme=dark"}

    status, _, echoed = gw.request("POST", "/orders", headers, {"item": "x" * 1000})

    assert status == 200
    assert echoed["userId"] == "alice"
    verify = gw.service.last()
    # HEAD: nginx can keep the connection, as no body is left unread on it.
    assert (verify.method, verify.path, verify.body) == ("HEAD", "/api/sessions/verify", b"")
    assert verify.headers["authorization"] == f"Bearer {token}"
    assert "cookie" not in verify.headers
    assert verify.answered == ["200 OK"]
    reached = gw.upstream.last()
    assert reached.method == "POST"
    assert json.loads(reached.body) == {"item": "x" * 1000}
    assert reached.headers["cookie"] == "theme=dark"


def test_revoked_token_gets_401_from_the_gateway(gateway, app):
    gw = gateway(app)
    body = gw.login("alice")
    token = body["accessToken"]
    assert gw.request("GET", "/orders", auth(token))[0] == 200
    reached = len(gw.upstream)

    revoke = gw.request("DELETE", f"/api/sessions/{body['session']['_id']}", auth(token))
    assert (revoke[0], revoke[2]["code"]) == (200, "SESSION_REVOKED")
    status, headers, refused = gw.request("GET", "/orders", auth(token))

    assert status == 401
    assert headers["Content-Type"] == "application/json"
    assert refused == {"code": "TOKEN_REVOKED", "error": "A valid access token is required."}
    assert len(gw.upstream) == reached


def test_missing_and_forged_tokens_get_401(gateway, app):
    gw = gateway(app)
    refresh = gw.login("alice")["refreshToken"]

    missing = gw.request("POST", "/orders", body={"item": 1})
    forged = gw.request("GET", "/orders", auth("e30.e30.c2ln"))
    wrong_type = gw.request("GET", "/orders", auth(refresh))

    assert (missing[0], missing[2]["code"]) == (401, "MISSING_TOKEN")
    assert (forged[0], forged[2]["code"]) == (401, "INVALID_TOKEN")
    assert (wrong_type[0], wrong_type[2]["code"]) == (401, "INVALID_TOKEN")
    assert len(gw.upstream) == 0


def test_redis_down_gets_a_5xx_and_never_reaches_the_upstream(gateway, make_app, own_valkey):
    gw = gateway(make_app(REDIS_URL=own_valkey.connection_url))
    token = gw.login("alice")["accessToken"]
    assert gw.request("GET", "/orders", auth(token))[0] == 200
    reached = len(gw.upstream)

    own_valkey.stop()
    status, headers, body = gw.request("GET", "/orders", auth(token))

    assert status == 503
    assert body["code"] == "AUTH_UNAVAILABLE"
    assert headers["Content-Type"] == "application/json"
    verify = gw.service.last()
    assert (verify.path, verify.answered) == ("/api/sessions/verify", ["503 SERVICE UNAVAILABLE"])
    assert len(gw.upstream) == reached


def test_sessionsvc_down_gets_a_5xx_and_never_reaches_the_upstream(gateway):
    gw = gateway(None)

    status, _, body = gw.request("GET", "/orders", auth("e30.e30.c2ln"))

    assert status == 503
    assert body["code"] == "AUTH_UNAVAILABLE"
    assert len(gw.upstream) == 0


def test_admin_api_is_not_exposed(gateway, app):
    gw = gateway(app)
    gw.login("alice")

    status, _, body = gw.request(
        "GET", "/api/admin/users/alice/sessions", {"X-Service-Key": SERVICE_KEY}
    )

    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert len(gw.upstream) == 0


@pytest.mark.parametrize("path", ["/api/account/sessions", "/api/ui/sessionsvc-client.js"])
def test_the_devices_page_and_its_client_pass_unchecked_with_their_headers(gateway, app, path):
    gw = gateway(app)
    connection = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
    try:
        connection.request("GET", path)  # no token: the page signs in with its cookie
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert len(gw.upstream) == 0  # sessionsvc answered it, not the protected service
