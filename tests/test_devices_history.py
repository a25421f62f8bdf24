"""Devices (issue 19 §1-3) with the history (§4) and support sessions (issue 18 §4).

Forgetting a device and answering "not me" end sessions: each is recorded in
the history with its own reason and actor; a support session notes no device.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from sessionsvc.domain.sessions import now_ms
from sessionsvc.store import SessionStore
from tests.support import auth, login

DESK_KEY = "devices-history-desk-key-" + "d" * 20
# Beside SERVICE_KEY ("default", every scope: the logins), a named key for support staff.
KEYS = [
    {"name": "desk", "key": DESK_KEY, "scopes": ["admin:read", "admin:write", "support:create"]},
]
DESK = {"X-Service-Key": DESK_KEY}
SUPPORT = {"actor": "op.jane", "reason": "Ticket #4711: cannot see invoices"}


@pytest.fixture
def app(make_app):
    return make_app(SERVICE_KEYS=KEYS)


def history(client: FlaskClient, user_id: str = "alice") -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/admin/users/{user_id}/sessions/history", headers=DESK)
    assert response.status_code == 200, response.json
    return {each["_id"]: each for each in response.json["sessions"]}


def events(redis, key_prefix: str, kind: str) -> list[dict[str, str]]:
    return [f for _, f in redis.xrange(f"{key_prefix}events") if f["type"] == kind]


def test_the_user_forgetting_a_device_records_its_sessions_as_revoked_by_the_user(client):
    phone = login(client)
    laptop = login(client)
    device_id = phone["session"]["deviceId"]

    response = client.delete(f"/api/devices/{device_id}", headers=auth(laptop["accessToken"]))

    assert response.json == {"sessionIds": [phone["session"]["_id"]]}
    entry = history(client)[phone["session"]["_id"]]
    assert entry["reason"] == "revoked_by_user"
    assert entry["endedBy"] == {"type": "user"}
    assert entry["deviceId"] == device_id
    assert entry["device"] == phone["session"]["device"]
    mine = client.get("/api/sessions/history", headers=auth(laptop["accessToken"])).json
    assert [each["deviceId"] for each in mine["sessions"]] == [device_id]


def test_an_admin_forgetting_a_device_records_the_service_keys_name(client):
    body = login(client)
    device_id = body["session"]["deviceId"]

    response = client.delete(f"/api/admin/users/alice/devices/{device_id}", headers=DESK)

    assert response.json == {"sessionIds": [body["session"]["_id"]]}
    entry = history(client)[body["session"]["_id"]]
    assert entry["reason"] == "revoked_by_admin"
    assert entry["endedBy"] == {"type": "admin", "name": "desk"}
    assert entry["deviceId"] == device_id


def test_forgetting_a_device_records_its_expired_sessions_as_expired(client, redis, store):
    old = login(client)
    phone = login(client, deviceToken=old["deviceToken"])
    laptop = login(client)
    # The first session's expireAt has passed; Redis has not dropped the index entry.
    redis.zadd(store.index_key("alice"), {old["session"]["_id"]: now_ms() - 1000})
    redis.delete(store.session_key("alice", old["session"]["_id"]))

    client.delete(
        f"/api/devices/{phone['session']['deviceId']}", headers=auth(laptop["accessToken"])
    )

    ended = history(client)
    assert ended[old["session"]["_id"]]["reason"] == "expired"
    assert ended[phone["session"]["_id"]]["reason"] == "revoked_by_user"


@pytest.mark.parametrize(("everywhere", "ended"), [(False, 1), (True, 2)])
def test_not_me_records_reported_not_me(client, redis, key_prefix, everywhere, ended):
    known = login(client)
    stranger = login(client)
    [event] = events(redis, key_prefix, "session.new_device")

    response = client.post(
        "/api/security/answers",
        json={"token": event["answerNotMe"], "answer": "not_me", "signOutEverywhere": everywhere},
    )

    assert response.status_code == 200, response.json
    entries = history(client)
    assert len(entries) == ended
    assert entries[stranger["session"]["_id"]]["reason"] == "reported_not_me"
    assert entries[stranger["session"]["_id"]]["endedBy"] == {"type": "user"}
    assert entries[stranger["session"]["_id"]]["deviceId"] == stranger["session"]["deviceId"]
    if everywhere:
        assert entries[known["session"]["_id"]]["reason"] == "reported_not_me"


def test_a_support_session_notes_no_device_and_announces_nothing(client, redis, key_prefix):
    mine = login(client)

    response = client.post("/api/admin/users/alice/sessions", json=SUPPORT, headers=DESK)

    assert response.status_code == 201, response.json
    body = response.json
    assert list(body) == ["accessToken", "refreshToken", "session"]  # no deviceToken, no risk
    assert not {"deviceId", "risk"} & set(body["session"])
    assert "Set-Cookie" not in response.headers
    key = SessionStore(lambda: None, prefix=key_prefix).session_key("alice", body["session"]["_id"])
    assert not {"I", "R"} & set(redis.hgetall(key))
    listed = client.get("/api/devices", headers=auth(mine["accessToken"])).json["devices"]
    assert [d["id"] for d in listed] == [mine["session"]["deviceId"]]
    assert events(redis, key_prefix, "session.new_device") == []
    assert events(redis, key_prefix, "session.risky") == []


def test_a_support_session_does_not_make_the_users_next_login_a_first_one(client):
    client.post("/api/admin/users/alice/sessions", json=SUPPORT, headers=DESK)

    first = login(client)

    assert first["risk"]["signals"] == ["first_login"]


def test_forgetting_a_device_with_a_support_session_on_it_names_the_operator(
    client, redis, key_prefix
):
    body = login(client)
    support = client.post("/api/admin/users/alice/sessions", json=SUPPORT, headers=DESK).json
    store = SessionStore(lambda: None, prefix=key_prefix)
    # A support session notes no device; were one on it (written here), it still says who.
    redis.hset(
        store.session_key("alice", support["session"]["_id"]), "I", body["session"]["deviceId"]
    )

    response = client.delete(
        f"/api/admin/users/alice/devices/{body['session']['deviceId']}", headers=DESK
    )

    assert set(response.json["sessionIds"]) == {body["session"]["_id"], support["session"]["_id"]}
    revoked = events(redis, key_prefix, "session.revoked")
    assert {(e["sessionIds"], e.get("actor")) for e in revoked} == {
        (body["session"]["_id"], None),
        (support["session"]["_id"], "op.jane"),
    }
    assert history(client)[support["session"]["_id"]]["reason"] == "revoked_by_admin"
