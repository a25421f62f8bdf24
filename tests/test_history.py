"""Issue 19 §4: the security activity, ended sessions kept with why, by whom and when."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis.crc import key_slot

from sessionsvc.domain.history import USER, EndReason
from sessionsvc.domain.sessions import iso, now_ms
from sessionsvc.extension import get_store
from tests.support import SERVICE_KEY, auth, login, logins_in_order

SUPPORT_KEY = "support-desk-key-" + "s" * 20
READER_KEY = "history-reader-key-" + "r" * 20
KEYS = [
    {"name": "support-desk", "key": SUPPORT_KEY, "scopes": ["admin:read", "admin:write"]},
    {"name": "reader", "key": READER_KEY, "scopes": ["admin:write"]},
]
IDLE_TIMEOUT = 60  # seconds; the service finds a session idle past it
CAP = 3


@pytest.fixture
def app(make_app):
    return make_app(
        SERVICE_KEYS=KEYS,
        MAX_SESSIONS_PER_USER=CAP,
        REFRESH_REUSE_GRACE=0,  # a rotated-out refresh token presented again is theft at once
        SESSION_IDLE_TIMEOUT=IDLE_TIMEOUT,
    )


def admin_history(client: FlaskClient, user_id: str = "alice", **query: Any) -> list[dict]:
    response = client.get(
        f"/api/admin/users/{user_id}/sessions/history",
        headers={"X-Service-Key": SUPPORT_KEY},
        query_string=query,
    )
    assert response.status_code == 200, response.json
    return response.json["sessions"]


def entry_of(client: FlaskClient, session_id: str) -> dict[str, Any]:
    [entry] = [each for each in admin_history(client) if each["_id"] == session_id]
    return entry


def age_hash(redis, store, session_id: str, field: str, ms: int, user_id: str = "alice") -> None:
    """Set a session's time field ``ms`` in the past, as if that long had passed."""
    redis.hset(store.session_key(user_id, session_id), field, now_ms() - ms)


# How each reason comes about: end a session of alice's; return its id.
def signed_out(client, redis, store) -> str:
    body = login(client)
    sid = body["session"]["_id"]
    assert (
        client.delete(f"/api/sessions/{sid}", headers=auth(body["accessToken"])).status_code == 200
    )
    return sid


def revoked_by_user(client, redis, store) -> str:
    phone, laptop = login(client), login(client)
    sid = phone["session"]["_id"]
    response = client.delete(f"/api/sessions/{sid}", headers=auth(laptop["accessToken"]))
    assert response.status_code == 200
    return sid


def revoked_by_admin(client, redis, store) -> str:
    sid = login(client)["session"]["_id"]
    response = client.delete(
        f"/api/admin/users/alice/sessions/{sid}", headers={"X-Service-Key": SUPPORT_KEY}
    )
    assert response.status_code == 200
    return sid


def signed_out_everywhere(client, redis, store) -> str:
    body = login(client)
    assert client.delete("/api/sessions", headers=auth(body["accessToken"])).status_code == 200
    return body["session"]["_id"]


def evicted_by_cap(client, redis, store) -> str:
    bodies = logins_in_order(client, CAP + 1)
    return bodies[0]["session"]["_id"]


def refresh_token_reused(client, redis, store) -> str:
    body = login(client)
    stale = body["refreshToken"]
    assert client.post("/api/sessions/refresh", headers=auth(stale)).status_code == 200
    response = client.post("/api/sessions/refresh", headers=auth(stale))
    assert response.json["code"] == "REFRESH_TOKEN_REUSED"
    return body["session"]["_id"]


def reported_not_me(client, redis, store) -> str:
    # The "Was this you?" flow (issue 19 §3) ends the session this way.
    sid = login(client)["session"]["_id"]
    assert store.revoke("alice", sid, reason=EndReason.REPORTED_NOT_ME, by=USER) is True
    return sid


def expired(client, redis, store) -> str:
    sid = login(client)["session"]["_id"]
    # What Redis does at expireAt: the hash goes, and no code runs; the index keeps the id.
    redis.zadd(store.index_key("alice"), {sid: now_ms() - 1})
    redis.delete(store.session_key("alice", sid))
    other = login(client)  # a login prunes the index: the service finds it there
    assert client.get("/api/sessions", headers=auth(other["accessToken"])).status_code == 200
    return sid


def idle(client, redis, store) -> str:
    body = login(client)
    sid = body["session"]["_id"]
    age_hash(redis, store, sid, "a", (IDLE_TIMEOUT + 1) * 1000)
    response = client.get("/api/sessions/verify", headers=auth(body["accessToken"]))
    assert response.status_code == 401
    return sid


CAUSES: dict[EndReason, tuple[Callable[..., str], str]] = {
    EndReason.SIGNED_OUT: (signed_out, "user"),
    EndReason.REVOKED_BY_USER: (revoked_by_user, "user"),
    EndReason.REVOKED_BY_ADMIN: (revoked_by_admin, "admin"),
    EndReason.SIGNED_OUT_EVERYWHERE: (signed_out_everywhere, "user"),
    EndReason.EVICTED_BY_CAP: (evicted_by_cap, "service"),
    EndReason.REFRESH_TOKEN_REUSED: (refresh_token_reused, "service"),
    EndReason.REPORTED_NOT_ME: (reported_not_me, "user"),
    EndReason.EXPIRED: (expired, "service"),
    EndReason.IDLE: (idle, "service"),
}


def test_every_reason_has_a_way_to_happen():
    assert set(CAUSES) == set(EndReason)


@pytest.mark.parametrize("reason", list(EndReason), ids=str)
def test_an_ended_session_is_kept_with_why_and_by_whom(client, redis, store, reason):
    cause, actor = CAUSES[reason]
    before = now_ms()

    sid = cause(client, redis, store)

    entry = entry_of(client, sid)
    assert entry["reason"] == reason.value
    assert entry["endedBy"]["type"] == actor
    assert set(entry) >= {"endedAt", "createdAt", "lastActiveAt", "device", "location", "ip"}
    if reason is EndReason.EXPIRED:  # its hash expired with it: only its id and end are left
        assert entry["device"] is None
        assert entry["createdAt"] is None
    else:
        assert entry["device"]["browser"] == "Chrome"
        assert entry["device"]["os"] == "Linux"
        assert entry["ip"] is not None
        assert entry["location"] is not None
        assert entry["createdAt"] >= iso(before)
    if reason is not EndReason.IDLE:
        assert entry["endedAt"] >= iso(before - 1)


def test_an_idle_session_ended_when_it_became_idle(client, redis, store):
    body = login(client)
    sid = body["session"]["_id"]
    last = now_ms() - (IDLE_TIMEOUT + 5) * 1000
    redis.hset(store.session_key("alice", sid), "a", last)

    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 401

    entry = entry_of(client, sid)
    assert entry["reason"] == "idle"
    assert entry["lastActiveAt"] == iso(last)
    assert entry["endedAt"] == iso(last + IDLE_TIMEOUT * 1000)


def test_idle_sessions_found_by_a_list_are_recorded(client, redis, store):
    asleep, awake = login(client), login(client)
    age_hash(redis, store, asleep["session"]["_id"], "a", (IDLE_TIMEOUT + 1) * 1000)

    listed = client.get("/api/sessions", headers=auth(awake["accessToken"])).json["sessions"]

    assert [each["_id"] for each in listed] == [awake["session"]["_id"]]
    assert entry_of(client, asleep["session"]["_id"])["reason"] == "idle"


def test_an_expired_session_is_recorded_at_its_expiry(client, redis, store):
    sid = login(client)["session"]["_id"]
    ended = now_ms() - 5_000
    redis.zadd(store.index_key("alice"), {sid: ended})
    redis.delete(store.session_key("alice", sid))

    login(client)  # a login prunes the index

    entry = entry_of(client, sid)
    assert (entry["reason"], entry["endedAt"]) == ("expired", iso(ended))


def test_an_expired_session_is_not_taken_for_one_signed_out_everywhere(client, redis, store):
    gone, body = login(client), login(client)
    redis.zadd(store.index_key("alice"), {gone["session"]["_id"]: now_ms() - 1})
    redis.delete(store.session_key("alice", gone["session"]["_id"]))

    assert client.delete("/api/sessions", headers=auth(body["accessToken"])).status_code == 200

    reasons = {each["_id"]: each["reason"] for each in admin_history(client)}
    assert reasons == {
        gone["session"]["_id"]: "expired",
        body["session"]["_id"]: "signed_out_everywhere",
    }


def test_signing_out_the_others_ends_them_as_revoked_by_the_user(client):
    mine, other = login(client), login(client)

    response = client.delete(
        "/api/sessions", headers=auth(mine["accessToken"]), query_string={"keep": "current"}
    )

    assert response.status_code == 200
    assert [(each["_id"], each["reason"]) for each in admin_history(client)] == [
        (other["session"]["_id"], "revoked_by_user")
    ]


def test_nothing_is_recorded_when_nothing_ended(client, store):
    body = login(client)
    headers = auth(body["accessToken"])
    unknown = "A" * 22

    assert client.delete(f"/api/sessions/{unknown}", headers=headers).status_code == 404
    assert store.revoke("alice", unknown) is False
    assert store.revoke("alice", body["session"]["_id"], caller=unknown) is None  # caller not live

    assert admin_history(client) == []
    assert client.get("/api/sessions", headers=headers).status_code == 200  # still live


def test_an_admin_revoke_names_the_service_key_to_support_staff_only(client):
    body = login(client)
    sid = body["session"]["_id"]
    client.delete(f"/api/admin/users/alice/sessions/{sid}", headers={"X-Service-Key": SUPPORT_KEY})
    other = login(client)

    assert entry_of(client, sid)["endedBy"] == {"type": "admin", "name": "support-desk"}
    mine = client.get("/api/sessions/history", headers=auth(other["accessToken"]))
    assert mine.status_code == 200
    assert mine.headers["Cache-Control"] == "no-store"
    assert [each["endedBy"] for each in mine.json["sessions"]] == [{"type": "admin"}]


def test_an_admin_revoke_all_names_the_service_key(client):
    sid = login(client)["session"]["_id"]

    response = client.delete(
        "/api/admin/users/alice/sessions", headers={"X-Service-Key": SUPPORT_KEY}
    )

    assert response.status_code == 200
    entry = entry_of(client, sid)
    assert (entry["reason"], entry["endedBy"]) == (
        "revoked_by_admin",
        {"type": "admin", "name": "support-desk"},
    )


def test_a_user_sees_only_their_own_history_latest_first(client):
    first, second = login(client), login(client)
    client.delete(f"/api/sessions/{first['session']['_id']}", headers=auth(first["accessToken"]))
    time.sleep(0.002)
    client.delete(f"/api/sessions/{second['session']['_id']}", headers=auth(second["accessToken"]))
    bob = login(client, "bob")

    alices = admin_history(client)
    bobs = client.get("/api/sessions/history", headers=auth(bob["accessToken"])).json["sessions"]

    assert [each["_id"] for each in alices] == [second["session"]["_id"], first["session"]["_id"]]
    assert bobs == []


def test_the_history_needs_a_live_access_token(client):
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    assert client.get("/api/sessions/history").json["code"] == "MISSING_TOKEN"
    revoked = client.get("/api/sessions/history", headers=auth(body["accessToken"]))
    assert (revoked.status_code, revoked.json["code"]) == (401, "TOKEN_REVOKED")


@pytest.mark.parametrize("limit", ["0", "-1", "x", "10001", "1" * 5000, "1.5"])
def test_a_bad_limit_is_refused(client, limit):
    body = login(client)

    mine = client.get(
        "/api/sessions/history", headers=auth(body["accessToken"]), query_string={"limit": limit}
    )
    theirs = client.get(
        "/api/admin/users/alice/sessions/history",
        headers={"X-Service-Key": SUPPORT_KEY},
        query_string={"limit": limit},
    )

    assert (mine.status_code, mine.json["code"]) == (400, "INVALID_REQUEST")
    assert (theirs.status_code, theirs.json["code"]) == (400, "INVALID_REQUEST")


def test_a_limit_keeps_the_latest(client):
    ids = []
    for _ in range(3):
        body = login(client)
        client.delete("/api/sessions", headers=auth(body["accessToken"]))
        ids.append(body["session"]["_id"])
        time.sleep(0.002)

    assert [each["_id"] for each in admin_history(client, limit=2)] == ids[::-1][:2]


def test_the_admin_history_needs_admin_read(client):
    response = client.get(
        "/api/admin/users/alice/sessions/history", headers={"X-Service-Key": READER_KEY}
    )
    assert (response.status_code, response.json["code"]) == (403, "FORBIDDEN")
    anonymous = client.get("/api/admin/users/alice/sessions/history")
    assert (anonymous.status_code, anonymous.json["code"]) == (401, "INVALID_SERVICE_KEY")
    bad_user = client.get(
        "/api/admin/users/al ice/sessions/history", headers={"X-Service-Key": SUPPORT_KEY}
    )
    assert (bad_user.status_code, bad_user.json["code"]) == (400, "INVALID_REQUEST")


# Bounds: a count per user, and an age.


def test_the_history_keeps_at_most_the_cap_per_user(make_app, redis):
    client = make_app(HISTORY_MAX_PER_USER=3).test_client()
    ended = []
    for _ in range(5):
        body = login(client)
        client.delete("/api/sessions", headers=auth(body["accessToken"]))
        ended.append(body["session"]["_id"])
        time.sleep(0.002)

    kept = client.get(
        "/api/admin/users/alice/sessions/history", headers={"X-Service-Key": SERVICE_KEY}
    ).json["sessions"]

    assert [each["_id"] for each in kept] == ended[::-1][:3]


def test_the_history_lives_history_days_after_its_last_entry(make_app, redis):
    app = make_app(HISTORY_DAYS=2)
    client = app.test_client()
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    with app.app_context():
        key = get_store().history_key("alice")
    ttl = redis.pttl(key)

    assert 2 * 86_400_000 - 60_000 < ttl <= 2 * 86_400_000


def test_entries_older_than_history_days_are_left_out_and_dropped(make_app, redis):
    app = make_app(HISTORY_DAYS=1)
    client = app.test_client()
    old, new = login(client), login(client)
    client.delete("/api/sessions/" + old["session"]["_id"], headers=auth(old["accessToken"]))
    with app.app_context():
        key = get_store().history_key("alice")
    # As if it had ended two days ago.
    entry = json.loads(redis.lindex(key, 0))
    entry["end"] = now_ms() - 2 * 86_400_000
    redis.lset(key, 0, json.dumps(entry))
    headers = {"X-Service-Key": SERVICE_KEY}
    path = "/api/admin/users/alice/sessions/history"

    assert client.get(path, headers=headers).json["sessions"] == []  # left out at once
    client.delete("/api/sessions/" + new["session"]["_id"], headers=auth(new["accessToken"]))

    assert [each["_id"] for each in client.get(path, headers=headers).json["sessions"]] == [
        new["session"]["_id"]
    ]
    assert redis.llen(key) == 1  # and dropped by the next record


def test_history_days_zero_keeps_none(make_app, redis):
    app = make_app(HISTORY_DAYS=0)
    client = app.test_client()
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))
    with app.app_context():
        key = get_store().history_key("alice")

    assert redis.exists(key) == 0
    response = client.get(
        "/api/admin/users/alice/sessions/history", headers={"X-Service-Key": SERVICE_KEY}
    )
    assert response.json == {"sessions": []}


def test_the_history_is_in_the_users_hash_slot(store):
    # In a Cluster, the scripts write it next to the index: one slot per user.
    assert key_slot(store.history_key("alice").encode()) == key_slot(
        store.index_key("alice").encode()
    )


def test_a_not_me_report_can_sign_out_every_session_with_its_reason(client, store):
    # "Was this you?" with signOutEverywhere (issue 19 §3) revokes all with this reason.
    ids = {login(client)["session"]["_id"] for _ in range(2)}

    assert set(store.revoke_all("alice", reason=EndReason.REPORTED_NOT_ME, by=USER)) == ids

    entries = admin_history(client)
    assert {each["_id"] for each in entries} == ids
    assert {(each["reason"], each["endedBy"]["type"]) for each in entries} == {
        ("reported_not_me", "user")
    }


@pytest.mark.parametrize(
    ("asking", "reason", "actor"),
    [
        ("itself", "signed_out", "user"),
        ("another", "revoked_by_user", "user"),
        ("none", "revoked_by_admin", "admin"),
    ],
)
def test_the_stores_revoke_says_why_by_default(client, store, asking, reason, actor):
    ended, other = login(client)["session"]["_id"], login(client)["session"]["_id"]
    caller = {"itself": ended, "another": other, "none": None}[asking]

    assert store.revoke("alice", ended, caller=caller) is True

    entry = entry_of(client, ended)
    assert (entry["reason"], entry["endedBy"]["type"]) == (reason, actor)
