"""Replicas: WAIT after revokes, and Sentinel failing the primary over under load."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import redis as redis_py
from flask import Flask

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from sessionsvc.extension import sessionsvc
from tests.conftest import CLUSTER, app_config
from tests.support import SERVICE_KEY, auth, login
from tests.topologies import Replicated, SentinelGroup, wait_for

pytestmark = pytest.mark.skipif(
    CLUSTER, reason="runs servers of its own: the same in both modes (make test)"
)

PREFIX = "sessionsvc:"  # the servers are this module's own: the default prefix will do


def make_app(**config) -> Flask:
    return create_app(app_config(**config))


def session_key(body: dict) -> str:
    return f"{PREFIX}s:{{alice}}{body['session']['_id']}"


def verify(client, body: dict):
    return client.get("/api/sessions/verify", headers=auth(body["accessToken"]))


def revoke(client, body: dict):
    return client.delete(
        f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"])
    )


@pytest.fixture
def pair() -> Iterator[Replicated]:
    pair = Replicated()
    pair.start()
    yield pair
    pair.stop()


@pytest.fixture
def replica(pair) -> Iterator[redis_py.Redis]:
    client = redis_py.Redis(port=pair.replica.port, decode_responses=True)
    yield client
    client.close()


def test_a_revoke_waits_for_the_replica(pair, replica, caplog):
    client = make_app(
        REDIS_URL=pair.primary.connection_url, REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.25
    ).test_client()
    body = login(client)
    wait_for(lambda: replica.exists(session_key(body)), 5, "the session on the replica")

    assert revoke(client, body).status_code == 200
    assert replica.exists(session_key(body)) == 0
    assert "a revoke reached" not in caplog.text  # the warning of a short WAIT


def test_a_revoke_no_replica_acknowledges_is_logged_and_stands(pair, caplog):
    client = make_app(
        REDIS_URL=pair.primary.connection_url, REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.2
    ).test_client()
    body = login(client)
    pid = pair.replica._process.pid
    os.kill(pid, signal.SIGSTOP)  # connected, acknowledges nothing
    try:
        with caplog.at_level(logging.WARNING, logger="sessionsvc.store.sessions"):
            response = revoke(client, body)
    finally:
        os.kill(pid, signal.SIGCONT)

    assert response.status_code == 200
    assert "a revoke reached 0 of 1 replicas" in caplog.text
    assert verify(client, body).json["code"] == "TOKEN_REVOKED"


def test_the_wait_must_end_before_the_read_times_out():
    with pytest.raises(ConfigError, match="REDIS_WAIT_TIMEOUT"):
        make_app(REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.5, REDIS_SOCKET_TIMEOUT=0.5)


def test_sentinel_settings_are_read_without_connecting():
    app = make_app(
        REDIS_SENTINELS="127.0.0.1:1, [::1]:2",
        REDIS_SENTINEL_MASTER="main",
        REDIS_URL="redis://:secret@unused:6379/3",
    )

    pool = sessionsvc(app).connect().connection_pool
    assert pool.service_name == "main"
    assert [
        (
            sentinel.connection_pool.connection_kwargs["host"],
            sentinel.connection_pool.connection_kwargs["port"],
        )
        for sentinel in pool.sentinel_manager.sentinels
    ] == [("127.0.0.1", 1), ("::1", 2)]
    assert (pool.connection_kwargs["password"], pool.connection_kwargs["db"]) == ("secret", 3)


def test_sentinel_and_cluster_exclude_each_other():
    with pytest.raises(ConfigError, match="exclude"):
        make_app(REDIS_SENTINELS="127.0.0.1:1", REDIS_CLUSTER=True)


class Load:
    """Log in and verify in a loop on a thread of its own, recording every answer."""

    def __init__(self, app: Flask, limit: int = 2000) -> None:
        self.app = app
        self.limit = limit
        self.answers: list[tuple[int, str | None]] = []  # (status, error code)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        client = self.app.test_client()
        headers = {"X-Service-Key": SERVICE_KEY}
        while not self._stop.is_set() and len(self.answers) < self.limit:
            created = client.post("/api/sessions", json={"userId": "bob"}, headers=headers)
            self.answers.append((created.status_code, created.json.get("code")))
            if created.status_code == 201:
                checked = verify(client, created.json)
                self.answers.append((checked.status_code, checked.json.get("code")))
            time.sleep(0.02)  # a steady trickle, not a benchmark

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def ok_since(self, start: int) -> int:
        return sum(status in (200, 201) for status, _ in self.answers[start:])


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    group = SentinelGroup()
    group.start()
    yield group
    group.stop()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["primary killed", "SENTINEL FAILOVER"])
def test_the_service_carries_on_through_a_failover(group, how):
    app = make_app(
        REDIS_SENTINELS=group.sentinels,
        REDIS_SENTINEL_MASTER=group.name,
        REDIS_WAIT_REPLICAS=1,
        REDIS_WAIT_TIMEOUT=0.25,
    )
    client = app.test_client()
    kept, revoked = login(client), login(client)
    assert revoke(client, revoked).status_code == 200  # on the replica too: WAIT
    replica = redis_py.Redis(port=group.replica.port, decode_responses=True)
    wait_for(lambda: replica.exists(session_key(kept)), 5, "the session on the replica")
    replica.close()
    old_port = group.primary_port()

    with Load(app) as load:
        wait_for(lambda: load.ok_since(0) >= 10, 10, "load running")
        if how == "primary killed":
            group.primary.terminate()  # SIGKILL: no goodbye
        else:
            sentinel = group.sentinel_client()
            sentinel.execute_command("SENTINEL FAILOVER", group.name)
            sentinel.close()
        wait_for(lambda: group.primary_port() != old_port, 30, "Sentinel names a new primary")
        recovered = len(load.answers)
        wait_for(lambda: load.ok_since(recovered) >= 20, 30, "answers from the new primary")
        tail = len(load.answers)
        wait_for(lambda: len(load.answers) >= tail + 10, 10, "more answers")

    assert group.primary_port() == group.replica.port
    # Brief 503s while the primary changes; a session lost with the old primary
    # (written, not yet replicated) reads as revoked; nothing else.
    allowed = {(201, None), (200, None), (503, "STORE_UNAVAILABLE"), (401, "TOKEN_REVOKED")}
    assert set(load.answers) <= allowed
    assert all(status in (200, 201) for status, _ in load.answers[tail:])

    assert verify(client, kept).status_code == 200
    assert verify(client, revoked).json["code"] == "TOKEN_REVOKED"
    fresh = login(client)
    assert verify(client, fresh).status_code == 200
    assert revoke(client, fresh).status_code == 200
    assert verify(client, fresh).json["code"] == "TOKEN_REVOKED"


@pytest.mark.slow
def test_rate_limits_count_on_the_primary_sentinel_names(group):
    app = make_app(
        REDIS_SENTINELS=group.sentinels,
        REDIS_SENTINEL_MASTER=group.name,
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_PER_USER="1 per minute",
    )
    try:
        client = app.test_client()
        statuses = [
            client.post(
                "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
            ).status_code
            for _ in range(2)
        ]
    finally:
        sessionsvc(app).close()
    primary = redis_py.Redis(port=group.primary_port(), decode_responses=True)
    keys = list(primary.scan_iter(match=f"{PREFIX}limits:*"))
    primary.close()

    assert statuses == [201, 429]
    assert keys


def aof_always(*servers) -> None:
    """Give each server an append-only file fsynced on every write, once it is written."""
    for server in servers:
        with redis_py.Redis(port=server.port, decode_responses=True) as client:
            client.config_set("appendonly", "yes")
            client.config_set("appendfsync", "always")
            wait_for(
                lambda c=client: (
                    c.info("persistence")["aof_enabled"] == 1
                    and c.info("persistence")["aof_rewrite_in_progress"] == 0
                ),
                10,
                "the append-only file",
            )


def test_with_wait_aof_a_revoke_waits_for_the_replica_s_disk_too(pair, replica):
    aof_always(pair.primary, pair.replica)
    client = make_app(
        REDIS_URL=pair.primary.connection_url,
        REDIS_WAIT_AOF=True,
        REDIS_WAIT_REPLICAS=1,
        REDIS_WAIT_TIMEOUT=1.0,  # room for a busy machine (the read times out at 2 s)
    ).test_client()
    first, second = login(client), login(client)
    wait_for(lambda: replica.exists(session_key(second)), 5, "the sessions on the replica")

    assert revoke(client, first).status_code == 200
    pid = pair.replica._process.pid
    os.kill(pid, signal.SIGSTOP)  # connected, fsyncs and acknowledges nothing
    try:
        response = revoke(client, second)
    finally:
        os.kill(pid, signal.SIGCONT)

    assert response.status_code == 503
    assert response.json["code"] == "STORE_NOT_DURABLE"
    assert verify(client, second).json["code"] == "TOKEN_REVOKED"  # applied on the primary
