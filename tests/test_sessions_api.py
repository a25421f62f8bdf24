"""The seed API and the login step, over HTTP against a real Redis."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.support import CHROME_LINUX, POSTMAN, SERVICE_KEY, auth, login, logins_in_order

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_list_matches_the_seed_shape(client):
    chrome = login(client, user_agent=CHROME_LINUX)
    login(client, user_agent=POSTMAN)

    response = client.get("/api/sessions", headers=auth(chrome["accessToken"]))

    assert response.status_code == 200
    sessions = response.json["sessions"]
    assert [s["device"] for s in sessions] == [
        {
            "browser": "PostmanRuntime",
            "version": "7.26.8",
            "platform": "unknown",
            "os": "unknown",
            "isDev": True,
        },
        {
            "browser": "Chrome",
            "version": "87.0.4280.88",
            "platform": "unknown",
            "os": "Linux",
            "isDev": False,
        },
    ]
    for session in sessions:
        assert list(session)[:5] == ["device", "location", "_id", "expireAt", "createdAt"]
        assert session["location"] == "unknown"
        assert ISO_MS.fullmatch(session["expireAt"])
        assert ISO_MS.fullmatch(session["createdAt"])
    assert [s["current"] for s in sessions] == [False, True]
    assert sessions[1]["_id"] == chrome["session"]["_id"]


def test_list_shows_only_the_callers_sessions(client):
    alice = login(client, "alice")
    login(client, "bob")

    sessions = client.get("/api/sessions", headers=auth(alice["accessToken"])).json["sessions"]

    assert [s["_id"] for s in sessions] == [alice["session"]["_id"]]


def test_session_lasts_fourteen_days_by_default(client):
    session = login(client)["session"]

    delta = datetime.fromisoformat(session["expireAt"]) - datetime.fromisoformat(
        session["createdAt"]
    )
    assert delta.total_seconds() == 1_209_600


def test_revoke_one_session_answers_the_seed_body(client):
    phone = login(client, user_agent=POSTMAN)
    laptop = login(client)

    response = client.delete(
        f"/api/sessions/{phone['session']['_id']}", headers=auth(laptop["accessToken"])
    )

    assert response.status_code == 200
    assert response.json == {"code": "SESSION_REVOKED", "error": "Session has been revoked."}
    assert client.get("/api/sessions", headers=auth(phone["accessToken"])).status_code == 401
    remaining = client.get("/api/sessions", headers=auth(laptop["accessToken"])).json["sessions"]
    assert [s["_id"] for s in remaining] == [laptop["session"]["_id"]]


@pytest.mark.parametrize("session_id", ["AAAAAAAAAAAAAAAAAAAAAA", "nope", "a*", "%7Bx%7D", "x:y"])
def test_revoke_unknown_session_is_not_found(client, snapshot, session_id):
    me = login(client)
    before = snapshot()

    response = client.delete(f"/api/sessions/{session_id}", headers=auth(me["accessToken"]))

    assert response.status_code == 404
    assert response.json["code"] == "SESSION_NOT_FOUND"
    assert snapshot() == before


def test_revoke_another_users_session_looks_unknown(client):
    alice = login(client, "alice")
    bob = login(client, "bob")

    response = client.delete(
        f"/api/sessions/{bob['session']['_id']}", headers=auth(alice["accessToken"])
    )

    assert response.status_code == 404
    assert response.json["code"] == "SESSION_NOT_FOUND"
    assert client.get("/api/sessions", headers=auth(bob["accessToken"])).status_code == 200


def test_revoke_all_answers_the_seed_body_and_revokes_own_session(client):
    first, second = login(client), login(client)
    bob = login(client, "bob")

    response = client.delete("/api/sessions", headers=auth(first["accessToken"]))

    assert response.status_code == 200
    assert response.json == {
        "code": "ALL_SESSIONS_REVOKE",
        "error": "All Sessions has been revoked.",
    }
    for token in (first["accessToken"], second["accessToken"]):
        assert client.get("/api/sessions", headers=auth(token)).json["code"] == "TOKEN_REVOKED"
    assert client.get("/api/sessions", headers=auth(bob["accessToken"])).status_code == 200


def test_revoke_all_can_keep_the_current_session(client):
    first, second = login(client), login(client)

    response = client.delete("/api/sessions?keep=current", headers=auth(first["accessToken"]))

    assert response.status_code == 200
    sessions = client.get("/api/sessions", headers=auth(first["accessToken"])).json["sessions"]
    assert [s["_id"] for s in sessions] == [first["session"]["_id"]]
    assert client.get("/api/sessions", headers=auth(second["accessToken"])).status_code == 401


def test_revoke_all_rejects_an_unknown_keep(client):
    me = login(client)

    response = client.delete("/api/sessions?keep=everything", headers=auth(me["accessToken"]))

    assert response.status_code == 400
    assert client.get("/api/sessions", headers=auth(me["accessToken"])).status_code == 200


def test_create_returns_tokens_and_the_session(client):
    body = login(client, ip="203.0.113.7")

    assert set(body) == {"accessToken", "refreshToken", "session", "deviceToken", "risk"}
    assert body["session"]["current"] is True
    assert body["session"]["ip"] == "203.0.113.7"


def test_create_defaults_user_agent_and_ip_to_the_request(client):
    response = client.post(
        "/api/sessions",
        json={"userId": "alice"},
        headers={"X-Service-Key": SERVICE_KEY, "User-Agent": POSTMAN},
        environ_base={"REMOTE_ADDR": "198.51.100.4"},
    )

    assert response.status_code == 201
    assert response.json["session"]["device"]["browser"] == "PostmanRuntime"
    assert response.json["session"]["ip"] == "198.51.100.4"


def test_create_without_a_request_address_records_unknown(client):
    # gunicorn on a Unix socket (behind a gateway) gives an empty REMOTE_ADDR.
    response = client.post(
        "/api/sessions",
        json={"userId": "alice"},
        headers={"X-Service-Key": SERVICE_KEY},
        environ_base={"REMOTE_ADDR": ""},
    )

    assert response.status_code == 201
    assert response.json["session"]["ip"] == "unknown"


def test_token_responses_are_not_cached(client):
    response = client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )

    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("headers", [{}, {"X-Service-Key": "wrong"}, {"X-Service-Key": ""}])
def test_create_requires_the_service_key(client, snapshot, headers):
    response = client.post("/api/sessions", json={"userId": "alice"}, headers=headers)

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_SERVICE_KEY"
    assert snapshot() == {}


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "alice",
        {},
        {"userId": ""},
        {"userId": 42},
        {"userId": "a" * 129},
        {"userId": "al{ice}"},
        {"userId": "al*ce"},
        {"userId": "alice bob"},
        {"userId": "alice", "userAgent": 7},
        {"userId": "alice", "ip": "not-an-ip"},
        {"userId": "alice", "ip": 5},
        {"userId": "alice", "ip": "fe80::1%eth0"},
        {"userId": "alice", "ip": "::1%\ud800"},
        {"userId": "alice", "userAgent": "\ud800"},  # a lone surrogate cannot be stored
    ],
)
def test_create_rejects_a_bad_body_and_writes_nothing(client, snapshot, body):
    response = client.post("/api/sessions", json=body, headers={"X-Service-Key": SERVICE_KEY})

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert snapshot() == {}


def test_create_rejects_a_body_that_is_not_json(client, snapshot):
    response = client.post(
        "/api/sessions",
        data="userId=alice",
        content_type="application/x-www-form-urlencoded",
        headers={"X-Service-Key": SERVICE_KEY},
    )

    assert response.status_code == 400
    assert snapshot() == {}


def test_create_rejects_a_huge_body(client, snapshot):
    response = client.post(
        "/api/sessions",
        json={"userId": "alice", "userAgent": "x" * 100_000},
        headers={"X-Service-Key": SERVICE_KEY},
    )

    assert response.status_code == 413
    assert response.json["code"] == "REQUEST_ENTITY_TOO_LARGE"
    assert snapshot() == {}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/nowhere", 404, "NOT_FOUND"),
        ("get", "/", 404, "NOT_FOUND"),
        ("put", "/api/sessions", 405, "METHOD_NOT_ALLOWED"),
        ("patch", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_routing_errors_are_json(client, method, path, status, code):
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert response.is_json
    assert response.json["code"] == code
    assert response.json["error"]


def test_verify_answers_the_callers_ids(client):
    body = login(client)

    response = client.get("/api/sessions/verify", headers=auth(body["accessToken"]))

    assert response.status_code == 200
    assert response.headers["X-User-Id"] == "alice"
    assert response.headers["X-Session-Id"] == body["session"]["_id"]
    assert response.json == {"userId": "alice", "sessionId": body["session"]["_id"]}


@pytest.mark.parametrize("token", ["accessToken", "refreshToken", None])
def test_verify_refuses_what_is_not_a_live_access_token(client, token):
    body = login(client)
    client.delete("/api/sessions?keep=current", headers=auth(body["accessToken"]))
    other = login(client)
    client.delete(f"/api/sessions/{other['session']['_id']}", headers=auth(body["accessToken"]))

    headers = auth(other[token]) if token else {}
    response = client.get("/api/sessions/verify", headers=headers)

    assert response.status_code == 401
    assert "X-User-Id" not in response.headers


def test_cap_evicts_the_oldest_sessions(make_app):
    client = make_app(MAX_SESSIONS_PER_USER=3).test_client()
    logins = logins_in_order(client, 5)

    sessions = client.get("/api/sessions", headers=auth(logins[-1]["accessToken"])).json
    assert [s["_id"] for s in sessions["sessions"]] == [b["session"]["_id"] for b in logins[:1:-1]]
    for evicted in logins[:2]:
        response = client.get("/api/sessions", headers=auth(evicted["accessToken"]))
        assert response.json["code"] == "TOKEN_REVOKED"


def test_last_active_moves_at_most_once_a_minute(app, client, store, redis):
    body = login(client)
    key = store.session_key("alice", body["session"]["_id"])
    created = int(redis.hget(key, "c"))

    client.get("/api/sessions/verify", headers=auth(body["accessToken"]))
    assert redis.hget(key, "a") is None  # within the minute: untouched, still createdAt

    redis.hset(key, "a", created - 61_000)  # as if last used 61 s ago
    client.get("/api/sessions/verify", headers=auth(body["accessToken"]))

    assert int(redis.hget(key, "a")) > created - 61_000
    listed = client.get("/api/sessions", headers=auth(body["accessToken"])).json["sessions"]
    assert listed[0]["lastActiveAt"] != body["session"]["lastActiveAt"]
