"""docs/gateway.md's Caddy forward_auth snippet under a real Caddy: the step-up challenge."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICE_KEY, auth, free_port
from tests.test_gateway import serve_app, serve_upstream

CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(CADDY is None, reason="caddy is not installed (Debian: caddy)")


def documented_caddyfile() -> str:
    """Return the Caddyfile docs/gateway.md shows for step-up."""
    doc = (ROOT / "docs" / "gateway.md").read_text()
    section = doc.split("## Step-up with Caddy", 1)[1]
    return re.search(r"```caddyfile\n(.*?)```", section, re.S)[1]


class Caddy:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture
def caddy(app, tmp_path: Path) -> Iterator[tuple[Caddy, object]]:
    with ExitStack() as stack:
        upstream_port, upstream = serve_upstream(stack)
        service_port, _ = serve_app(stack, app)
        port = free_port()
        site = (
            documented_caddyfile()
            .replace("example.com", f"http://127.0.0.1:{port}")
            .replace("127.0.0.1:8000", f"127.0.0.1:{service_port}")
            .replace("127.0.0.1:9000", f"127.0.0.1:{upstream_port}")
        )
        config = tmp_path / "Caddyfile"
        config.write_text("{\n\tadmin off\n}\n" + site)
        env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
        process = subprocess.Popen(
            [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stack.enter_context((tmp_path / "caddy.log").open("w")),
        )
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail((tmp_path / "caddy.log").read_text())
        yield Caddy(port), upstream


def test_caddy_passes_the_challenge_and_lets_a_stepped_up_session_through(caddy, app):
    gateway, upstream = caddy
    client = app.test_client()
    body = client.post(
        "/api/sessions",
        json={"userId": "alice", "acr": "aal1"},
        headers={"X-Service-Key": SERVICE_KEY},
    ).json
    token = auth(body["accessToken"])

    status, headers, refused = gateway.get("/account/security/password", token)

    assert status == 401
    assert json.loads(refused)["code"] == "INSUFFICIENT_AUTHENTICATION"
    assert headers["Www-Authenticate"].startswith('Bearer error="insufficient_user_authentication"')
    assert 'acr_values="aal2", max_age=600' in headers["Www-Authenticate"]
    assert len(upstream) == 0
    assert gateway.get("/orders/7", token)[0] == 200

    stepped = client.post(
        f"/api/admin/users/alice/sessions/{body['session']['_id']}/step-up",
        json={"acr": "aal2", "amr": ["pwd", "otp"]},
        headers={"X-Service-Key": SERVICE_KEY},
    )
    assert stepped.status_code == 200
    forged = {"X-Session-Actor": "root"}
    status, _, _ = gateway.get("/account/security/password", {**token, **forged})
    assert status == 200
    reached = upstream.last().headers
    assert (reached["x-session-acr"], reached["x-session-amr"]) == ("aal2", "pwd,otp")
    assert reached.get("x-session-actor", "") == ""  # the client's own never passes
