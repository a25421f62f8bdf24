"""Remember me, or not: a login's own lifetime, persistence and idle timeout (issue 18 §3)."""

from __future__ import annotations

import time
from datetime import datetime
from http.cookies import SimpleCookie

import pytest

from sessionsvc.domain.sessions import Device
from sessionsvc.store import SessionStore
from tests.support import SERVICE_KEY, auth, login

COOKIE = "__Secure-sessionsvc-refresh"
CSRF = {"X-Requested-With": "sessionsvc"}
DEVICE = Device(browser="Chrome", version="120", platform="desktop", os="Linux")


def set_cookie(response) -> dict[str, str]:
    """Return the refresh cookie's value and attributes as the response sets them."""
    for line in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie(line)
        if COOKIE in parsed:
            return {"value": parsed[COOKIE].value, **{k: v for k, v in parsed[COOKIE].items() if v}}
    raise AssertionError("no refresh cookie set")


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def post_login(client, **body):
    return client.post(
        "/api/sessions", json={"userId": "alice", **body}, headers={"X-Service-Key": SERVICE_KEY}
    )


def session_key(key_prefix, session_id: str) -> str:
    return SessionStore(lambda: None, prefix=key_prefix).session_key("alice", session_id)


def session_hash(redis, key_prefix, session_id: str) -> dict[str, str]:
    return redis.hgetall(session_key(key_prefix, session_id))


# --- The login body -------------------------------------------------------------------------


def test_a_login_lifetime_sets_when_the_session_ends(client, redis, key_prefix):
    session = login(client, lifetime=3600)["session"]

    assert seconds_between(session["createdAt"], session["expireAt"]) == 3600
    ttl = redis.pttl(session_key(key_prefix, session["_id"]))
    assert 3590_000 < ttl <= 3600_000


@pytest.mark.parametrize(
    ("settings", "field", "value"),
    [
        ({}, "lifetime", 0),
        ({}, "lifetime", -1),
        ({}, "lifetime", 1_209_601),  # past SESSION_LIFETIME (14 days)
        ({"SESSION_LIFETIME": 3600}, "lifetime", 3601),
        ({}, "lifetime", 1.5),
        ({}, "lifetime", "3600"),
        ({}, "lifetime", True),
        ({}, "lifetime", None),
        ({}, "persistent", "false"),
        ({}, "persistent", 0),
        ({}, "persistent", None),
        ({}, "idleTimeout", 59),  # below production's minimum
        ({}, "idleTimeout", 0),
        ({}, "idleTimeout", 1_209_601),  # no idle timeout set: at most the lifetime
        ({"SESSION_IDLE_TIMEOUT": 1800}, "idleTimeout", 1801),  # a login may only tighten it
        ({}, "idleTimeout", "600"),
        ({}, "idleTimeout", False),
    ],
)
def test_bad_remember_me_fields_are_refused(make_app, settings, field, value):
    response = post_login(make_app(**settings).test_client(), **{field: value})

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert field in response.json["error"]


@pytest.mark.parametrize(
    ("settings", "body"),
    [
        ({}, {"lifetime": 1}),
        ({}, {"lifetime": 1_209_600}),
        ({}, {"lifetime": 600.0}),  # a JSON integer written with a fraction
        ({}, {"persistent": False, "idleTimeout": 60}),
        ({"SESSION_IDLE_TIMEOUT": 1800}, {"idleTimeout": 1800}),
        ({"SESSION_IDLE_TIMEOUT": 30}, {"idleTimeout": 30}),  # development's short ones
    ],
)
def test_good_remember_me_fields_are_taken(make_app, settings, body):
    assert post_login(make_app(**settings).test_client(), **body).status_code == 201


def test_a_plain_login_stores_no_remember_me_field(client, redis, key_prefix):
    session = login(client)["session"]

    assert not {"n", "z"} & set(session_hash(redis, key_prefix, session["_id"]))
    assert "persistent" not in session and "idleTimeout" not in session


def test_persistent_true_and_the_setting_s_idle_timeout_store_nothing(make_app, redis, key_prefix):
    client = make_app(SESSION_IDLE_TIMEOUT=1800).test_client()
    session = login(client, persistent=True, idleTimeout=1800)["session"]

    assert not {"n", "z"} & set(session_hash(redis, key_prefix, session["_id"]))


def test_a_non_persistent_login_with_its_own_idle_timeout_is_stored_and_listed(
    client, redis, key_prefix
):
    body = login(client, persistent=False, idleTimeout=900)

    assert body["session"]["persistent"] is False
    assert body["session"]["idleTimeout"] == 900
    fields = session_hash(redis, key_prefix, body["session"]["_id"])
    assert (fields["n"], fields["z"]) == ("1", "900")
    listed = client.get("/api/sessions", headers=auth(body["accessToken"])).json["sessions"]
    assert (listed[0]["persistent"], listed[0]["idleTimeout"]) == (False, 900)
    assert listed[0]["expireAt"] == body["session"]["expireAt"]
    admin = client.get("/api/admin/users/alice/sessions", headers={"X-Service-Key": SERVICE_KEY})
    assert admin.json["sessions"][0]["persistent"] is False
    assert admin.json["sessions"][0]["expireAt"] == body["session"]["expireAt"]


# --- The refresh cookie -----------------------------------------------------------------------


@pytest.mark.parametrize("persistent", [True, False])
def test_the_refresh_cookie_outlives_the_browser_only_when_persistent(make_app, persistent):
    client = make_app(REFRESH_TOKEN_TRANSPORT="cookie").test_client()
    created = post_login(client, persistent=persistent, lifetime=7200)
    refreshed = client.post("/api/sessions/refresh", headers=CSRF)

    assert refreshed.status_code == 200
    for response in (created, refreshed):
        cookie = set_cookie(response)
        assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
        if persistent:
            assert int(cookie["max-age"]) == pytest.approx(7200, abs=2)
            assert "expires" in cookie
        else:  # a session cookie: the browser forgets it when it closes
            assert "max-age" not in cookie and "expires" not in cookie


def test_the_development_sign_in_honours_persistent_false(client):
    response = client.post(
        "/api/dev/sign-in", json={"userId": "alice", "persistent": False}, headers=CSRF
    )

    assert response.status_code == 201
    assert response.json["session"]["persistent"] is False
    assert "max-age" not in set_cookie(response)


def test_a_non_persistent_session_still_ends_at_its_expire_at(client, redis, key_prefix):
    body = login(client, persistent=False, lifetime=1)
    time.sleep(1.2)

    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 401
    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    assert refreshed.status_code == 401


def test_a_refresh_never_moves_expire_at(client):
    body = login(client, lifetime=600)
    time.sleep(0.01)
    tokens = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json
    listed = client.get("/api/sessions", headers=auth(tokens["accessToken"])).json["sessions"]

    assert listed[0]["expireAt"] == body["session"]["expireAt"]


# --- The session's own idle timeout, in every script that checks idleness ---------------------


def own_idle_session(redis, key_prefix, idle_timeout: int, *, setting: int = 0):
    store = SessionStore(redis, prefix=key_prefix, idle_timeout=setting)
    session, _ = store.create(
        "alice",
        device=DEVICE,
        ip="127.0.0.1",
        location="unknown",
        refresh_secret="r",
        idle_timeout=idle_timeout,
    )
    return store, session


IDLE_CHECKS = {
    "check": lambda store, sid: store.is_live("alice", sid),
    "list": lambda store, sid: sid in [s.id for s in store.list_sessions("alice")],
    "caller's list": lambda store, sid: store.list_sessions("alice", caller=sid) is not None,
    "rotate": lambda store, sid: store.rotate_refresh("alice", sid, "r", "r2").expire_at > 0,
    "revoke's caller": lambda store, sid: store.revoke("alice", "x" * 22, caller=sid) is not None,
}


@pytest.mark.parametrize("check", IDLE_CHECKS.values(), ids=IDLE_CHECKS)
@pytest.mark.parametrize("setting", [0, 3600])  # off, or much looser than the session's own
def test_a_session_dies_of_its_own_idle_timeout(redis, key_prefix, check, setting):
    store, session = own_idle_session(redis, key_prefix, 1, setting=setting)
    time.sleep(1.2)

    assert not check(store, session.id)
    assert redis.exists(store.session_key("alice", session.id)) == 0


@pytest.mark.parametrize("check", IDLE_CHECKS.values(), ids=IDLE_CHECKS)
def test_a_session_s_own_idle_timeout_can_be_looser_than_the_setting(redis, key_prefix, check):
    store, session = own_idle_session(redis, key_prefix, 60, setting=1)
    time.sleep(1.2)

    assert check(store, session.id)


def test_a_session_used_within_its_own_idle_timeout_lives(redis, key_prefix):
    # Use is written at least every tenth of the session's own timeout, not the
    # setting's interval (a minute with it off), or it would die between uses.
    store, session = own_idle_session(redis, key_prefix, 1)
    for _ in range(5):
        time.sleep(0.5)
        assert store.is_live("alice", session.id)
