"""Helpers the tests and the benchmark share: credentials, logins, free ports, gunicorn, nginx.

Imported by tests/conftest.py, the test modules and bench/ (which puts tests/ on
its path); it holds no fixtures.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")

SERVICE_KEY = "test-service-key-" + "k" * 16  # as long as production requires
JWT_SECRET = "test-jwt-secret-" + "x" * 64  # long enough for HS512 forgeries too
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36"
)
POSTMAN = "PostmanRuntime/7.26.8"


def auth(token: str) -> dict[str, str]:
    """Return the Authorization header for a Bearer token."""
    return {"Authorization": f"Bearer {token}"}


def login(
    client: FlaskClient, user_id: str = "alice", user_agent: str = CHROME_LINUX, **body: Any
) -> dict[str, Any]:
    """Create a session through the API as the login service would; return the 201 body."""
    response = client.post(
        "/api/sessions",
        json={"userId": user_id, "userAgent": user_agent, **body},
        headers={"X-Service-Key": SERVICE_KEY},
    )
    assert response.status_code == 201, response.json
    return response.json


def logins_in_order(client: FlaskClient, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Log in ``count`` times a millisecond apart: sessions of one millisecond have no order."""
    bodies = []
    for _ in range(count):
        bodies.append(login(client, **kwargs))
        time.sleep(0.002)
    return bodies


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """An app under gunicorn with the project's gunicorn.conf.py, on a free port.

    The environment is the caller's but for any ``SESSIONSVC_*``, ``PROMETHEUS_*``
    and worker-count variable, which only ``env`` sets. ``ready`` is a path that
    answers 200 once the server serves.
    """

    START_BOUND = 60.0  # seconds

    def __init__(
        self,
        directory: Path,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        *,
        app: str = "wsgi:app",
        ready: str = "/readyz",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready = ready
        self.stdout = directory / f"gunicorn-{self.port}.stdout"
        self.stderr = directory / f"gunicorn-{self.port}.stderr"
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SESSIONSVC_", "PROMETHEUS_", "GUNICORN_", "WEB_CONCURRENCY"))
        }
        self.env = clean | {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # gunicorn >= 25 opens a control socket here: keep it out of $HOME.
            "XDG_RUNTIME_DIR": str(directory),
            **env,
        }
        self.args = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *args, app]
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        """Start the server and wait until ``ready`` answers 200."""
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + self.START_BOUND
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_text()
            try:
                if self.call("GET", self.ready)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gunicorn did not become ready:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the server with SIGTERM (its graceful shutdown); kill it after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log_text(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request on a new connection; return (status, headers, JSON or text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body)
            headers = dict(headers or {})
            if data is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            return (
                response.status,
                dict(response.getheaders()),
                json.loads(text) if is_json else text,
            )
        finally:
            connection.close()

    def login(self, user_id: str = "alice") -> dict[str, Any]:
        status, _, body = self.call(
            "POST", "/api/sessions", {"X-Service-Key": SERVICE_KEY}, {"userId": user_id}
        )
        assert status == 201, body
        return body


def nginx_main_conf(directory: Path, *, worker_connections: int, http: str = "") -> str:
    """Return a main config that runs deploy/nginx.conf (as rendered into ``directory``).

    deploy/nginx.conf is an http-context file; this is the rest, with every path
    under ``directory`` and ``http`` added inside http {} after it.
    """
    return f"""\
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/sessionsvc.conf;
{http}}}
"""


def render_deploy_conf(*, listen: int, sessionsvc: int, protected: int) -> str:
    """Return deploy/nginx.conf pointed at these ports; nothing else changes."""
    conf = DEPLOY_NGINX_CONF.read_text()
    for shipped, ours in {
        "listen 8080;": f"listen 127.0.0.1:{listen};",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{sessionsvc};",
        "server 127.0.0.1:9000;": f"server 127.0.0.1:{protected};",
    }.items():
        if conf.count(shipped) != 1:
            raise ValueError(f"deploy/nginx.conf should have one {shipped!r}")
        conf = conf.replace(shipped, ours)
    return conf


class Nginx:
    """nginx in the foreground on ``main_conf`` (every path under ``directory``).

    It runs in a process group of its own, so that no worker outlives it.
    """

    START_BOUND = 10.0  # seconds

    def __init__(self, directory: Path, main_conf: str, port: int) -> None:
        self.directory = directory
        self.conf = directory / "nginx.conf"
        self.conf.write_text(main_conf)
        self.error_log = directory / "error.log"
        self.port = port  # one it listens on, to know that it has started
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        """Start nginx and wait until it listens; RuntimeError with its error log if not."""
        if NGINX is None:
            raise RuntimeError("nginx is not installed (`make test-gateway` installs it)")
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.directory), "-c", str(self.conf), "-e", str(self.error_log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.START_BOUND
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    message = f"nginx did not listen on {self.port}:\n{self.log()}"
                    raise RuntimeError(message) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (the master stops its workers, then exits); SIGKILL to the group after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.error_log.read_text() if self.error_log.exists() else ""
