"""The server's version: Redis 7.0 or newer, asked once per store, an older one named plainly.

No Redis 6 runs here, and no test fakes a server: the comparison is tested on
its own, a real (7.x-compatible) server is shown to pass at the cost of one
INFO, and the refusal is shown on that same server by asking for a newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis as redis_py

from sessionsvc.store import SessionStore, StoreTooOld
from sessionsvc.store import sessions as store_module
from sessionsvc.store.connection import close, cluster_client, redis_client
from sessionsvc.store.sessions import too_old, too_old_error, version_numbers
from sessionsvc.web.errors import ServiceUnavailable, StoreVersionUnsupported, unavailable
from tests.conftest import CLUSTER, commands_run
from tests.support import SERVICE_KEY, auth, login

VERIFY = "/api/sessions/verify"
SERVICE = {"X-Service-Key": SERVICE_KEY}


@pytest.mark.parametrize(
    ("version", "numbers", "old"),
    [
        ("6.2.14", (6, 2, 14), True),
        ("6.0.20", (6, 0, 20), True),
        ("5.0.7", (5, 0, 7), True),
        ("7.0.0", (7, 0, 0), False),
        ("7.0", (7, 0), False),
        ("7.2.4", (7, 2, 4), False),  # Valkey 8 and 9 report this
        ("10.0.1", (10, 0, 1), False),  # compared as numbers, not as text
        ("255.255.255", (255, 255, 255), False),  # a proxy's made-up version
        ("", None, False),  # unknown: the scripts will tell
        ("unknown", None, False),
    ],
)
def test_versions_are_compared_as_numbers(version, numbers, old):
    assert version_numbers(version) == numbers
    assert too_old(version) is old


def test_an_old_server_is_named_plainly_with_its_own_code():
    answer = unavailable(too_old_error("6.2.14"))  # as the web layer answers the store's error

    assert isinstance(answer, StoreVersionUnsupported)  # a 503 wherever a store failure is one
    assert isinstance(answer, ServiceUnavailable)
    assert (answer.status, answer.code) == (503, "STORE_VERSION_UNSUPPORTED")
    assert answer.message == (
        "Redis 6.2.14 is too old: sessionsvc needs Redis 7.0 or newer (PEXPIRETIME)."
    )
    assert "Retry-After" not in answer.headers  # trying again soon changes nothing


def infos_during(server: redis_py.Redis, action: Callable[[], object]) -> int:
    """Return how many INFO commands the server ran during ``action``, ours left out."""

    def calls() -> int:
        return server.info("commandstats").get("cmdstat_info", {}).get("calls", 0)

    before = calls()
    action()
    return calls() - before - 1  # the first of our two INFOs counts itself in the second


@pytest.fixture
def own_server(make_app, own_valkey):
    """An app on the test's own Valkey (REDIS_CLUSTER=false: no detection), and the server."""
    app = make_app(REDIS_URL=own_valkey.connection_url, REDIS_CLUSTER=False)
    server = redis_py.Redis.from_url(own_valkey.connection_url, decode_responses=True)
    yield app.test_client(), server
    server.close()


def test_a_recent_server_is_asked_once_and_verify_stays_one_round_trip(own_server):
    client, server = own_server
    assert infos_during(server, lambda: None) == 0  # the count counts nothing else
    bodies = []

    first = infos_during(server, lambda: bodies.append(login(client)))
    token = bodies[0]["accessToken"]
    assert client.get(VERIFY, headers=auth(token)).status_code == 200  # loads the script
    later = infos_during(
        server,
        lambda: [client.get(path, headers=auth(token)) for path in [VERIFY] * 5 + ["/readyz"]],
    )
    ran = commands_run(server, lambda: [client.get(VERIFY, headers=auth(token)) for _ in range(5)])

    assert first == 1  # the store's first use: INFO server
    assert later == 0  # never again, /readyz included
    assert ran == {"evalsha": 5, "hmget": 5, "pexpiretime": 5}


def test_readyz_asking_first_spares_the_store_its_question(own_server):
    client, server = own_server

    ready = infos_during(server, lambda: client.get("/readyz"))
    then = infos_during(server, lambda: login(client))

    assert (ready, then) == (1, 0)


def test_a_server_older_than_needed_is_refused_plainly_and_logged_once(
    make_app, redis, key_prefix, monkeypatch, caplog
):
    # The real server reports 7.x; asking for a newer one takes the refusing path on it.
    monkeypatch.setattr(store_module, "OLDEST_SERVER", (99, 0))
    version = redis.info("server")["redis_version"]
    expected = f"Redis {version} is too old: sessionsvc needs Redis 99.0 or newer (PEXPIRETIME)."
    client = make_app().test_client()

    with caplog.at_level(logging.ERROR, logger="sessionsvc.store.sessions"):
        answers = [
            client.post("/api/sessions", json={"userId": "alice"}, headers=SERVICE)
            for _ in range(3)
        ]
        ready = client.get("/readyz")

    for response in [*answers, ready]:
        assert response.status_code == 503
        assert response.json == {"code": "STORE_VERSION_UNSUPPORTED", "error": expected}
        assert "Retry-After" not in response.headers
    logged = [r for r in caplog.records if r.name == "sessionsvc.store.sessions"]
    assert [(r.levelno, r.getMessage()) for r in logged] == [(logging.ERROR, expected)]
    assert list(redis.scan_iter(match=f"{key_prefix}*")) == []  # nothing was written


def test_the_store_refuses_before_running_a_script(redis_url, key_prefix, monkeypatch):
    monkeypatch.setattr(store_module, "OLDEST_SERVER", (99, 0))
    connection = (cluster_client if CLUSTER else redis_client)(redis_url, timeout=2.0, retries=0)
    store = SessionStore(connection, prefix=key_prefix)
    try:
        with pytest.raises(StoreTooOld, match="too old"):
            store.is_live("alice", "A" * 22)
        with pytest.raises(StoreTooOld):  # known now: raised again, without asking
            store.list_sessions("alice")
    finally:
        close(connection)
