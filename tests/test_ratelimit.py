"""Rate limits per user and per client IP, kept in the sessions' Redis."""

from __future__ import annotations

import pytest

from tests.support import SERVICE_KEY, auth, login


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
