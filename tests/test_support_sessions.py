"""Support sessions on a user's behalf (issue 18 §4): the operator recorded, the life capped."""

from __future__ import annotations

import json
import time
from datetime import datetime

import jwt as pyjwt
import pytest

from sessionsvc.store import SessionStore
from tests.support import SERVICE_KEY, auth, login

OPEN = "/api/admin/users/alice/sessions"
KEY = {"X-Service-Key": SERVICE_KEY}
SUPPORT = {"actor": "op.jane", "reason": "Ticket #4711: cannot see invoices"}


def open_support(client, **body):
    return client.post(OPEN, json=SUPPORT | body, headers=KEY)


def payload(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def lifetime_of(session: dict) -> float:
    end, start = (datetime.fromisoformat(session[k]) for k in ("expireAt", "createdAt"))
    return (end - start).total_seconds()


def events(redis, key_prefix) -> list[dict[str, str]]:
    return [fields for _id, fields in redis.xrange(f"{key_prefix}events")]


def test_a_support_session_records_the_operator_and_its_tokens_carry_act(client, redis, key_prefix):
    response = open_support(client)

    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert list(body) == ["accessToken", "refreshToken", "session"]
    assert body["session"]["support"] == SUPPORT
    assert payload(body["accessToken"])["act"] == {"sub": "op.jane"}  # RFC 8693
    assert payload(body["accessToken"])["sub"] == "alice"
    assert lifetime_of(body["session"]) == 3600  # SUPPORT_SESSION_LIFETIME's default
    key = SessionStore(lambda: None, prefix=key_prefix).session_key("alice", body["session"]["_id"])
    fields = redis.hgetall(key)
    assert (fields["s"], fields["y"]) == (SUPPORT["actor"], SUPPORT["reason"])
    assert not {"e", "m", "w"} & set(fields)  # no assurance level of its own


def test_a_login_s_tokens_carry_no_act(client):
    assert "act" not in payload(login(client)["accessToken"])


@pytest.mark.parametrize(
    ("settings", "body", "lifetime"),
    [
        ({}, {}, 3600),
        ({}, {"lifetime": 600}, 600),
        ({"SUPPORT_SESSION_LIFETIME": 900}, {}, 900),
        ({"SUPPORT_SESSION_LIFETIME": 7200, "SESSION_LIFETIME": 1800}, {}, 1800),  # both caps
    ],
)
def test_a_support_session_s_life_is_capped(make_app, settings, body, lifetime):
    response = open_support(make_app(**settings).test_client(), **body)

    assert response.status_code == 201, response.json
    assert lifetime_of(response.json["session"]) == lifetime


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"actor": None}, "actor"),
        ({"actor": ""}, "actor"),
        ({"actor": "op jane"}, "actor"),
        ({"actor": "o" * 129}, "actor"),
        ({"actor": 7}, "actor"),
        ({"reason": None}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "r" * 201}, "reason"),
        ({"reason": "line one\nline two"}, "reason"),
        ({"reason": "bell\x07"}, "reason"),
        ({"reason": "next line\x85"}, "reason"),
        ({"reason": "separator\u2028"}, "reason"),
        ({"reason": "\ud800"}, "reason"),
        ({"reason": ["Ticket"]}, "reason"),
        ({"lifetime": 3601}, "lifetime"),  # past SUPPORT_SESSION_LIFETIME
        ({"lifetime": 0}, "lifetime"),
        ({"lifetime": "600"}, "lifetime"),
        ({"lifetime": True}, "lifetime"),
        ({"ip": "not an address"}, "ip"),
        ({"userAgent": 5}, "userAgent"),
    ],
)
def test_bad_support_bodies_are_refused(client, redis, key_prefix, body, named):
    response = open_support(client, **body)

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert named in response.json["error"]
    assert redis.zcard(SessionStore(lambda: None, prefix=key_prefix).index_key("alice")) == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/admin/users/al ice/sessions", SUPPORT),
        (OPEN, ["not", "an", "object"]),
        (OPEN, {"reason": "no actor"}),
        (OPEN, {"actor": "op.jane"}),
    ],
)
def test_a_bad_user_id_or_body_is_refused(client, path, body):
    response = client.post(path, json=body, headers=KEY)

    assert (response.status_code, response.json["code"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (["support:create"], 201),
        (["admin:write", "admin:read", "sessions:create", "claims:write"], 403),
    ],
)
def test_only_the_support_create_scope_opens_one(make_app, scopes, status):
    keys = [{"name": "desk", "key": "d" * 32, "scopes": scopes}]
    client = make_app(SERVICE_KEYS=json.dumps(keys)).test_client()

    response = client.post(OPEN, json=SUPPORT, headers={"X-Service-Key": "d" * 32})

    assert response.status_code == status


def test_a_refresh_keeps_act_and_never_passes_the_cap(make_app, redis, key_prefix):
    client = make_app(SUPPORT_SESSION_LIFETIME=2).test_client()
    body = open_support(client).json
    end = datetime.fromisoformat(body["session"]["expireAt"]).timestamp()

    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert refreshed.status_code == 200, refreshed.json
    token = payload(refreshed.json["accessToken"])
    assert token["act"] == {"sub": "op.jane"}
    assert token["exp"] <= end
    listed = client.get("/api/sessions", headers=auth(refreshed.json["accessToken"]))
    assert listed.json["sessions"][0]["expireAt"] == body["session"]["expireAt"]
    time.sleep(2.2)  # past the cap: refreshing again is refused
    again = client.post("/api/sessions/refresh", headers=auth(refreshed.json["refreshToken"]))
    assert again.status_code == 401


def test_the_user_sees_it_and_can_end_it(client, redis, key_prefix):
    mine = login(client)
    support = open_support(client).json

    listed = client.get("/api/sessions", headers=auth(mine["accessToken"])).json["sessions"]
    shown = {s["_id"]: s for s in listed}[support["session"]["_id"]]
    assert shown["support"] == SUPPORT
    assert "support" not in {s["_id"]: s for s in listed}[mine["session"]["_id"]]

    sid = support["session"]["_id"]
    ended = client.delete(f"/api/sessions/{sid}", headers=auth(mine["accessToken"]))
    assert ended.status_code == 200
    gone = client.get("/api/sessions/verify", headers=auth(support["accessToken"]))
    assert gone.status_code == 401


def test_its_events_carry_the_actor(make_app, redis, key_prefix):
    client = make_app(REFRESH_REUSE_GRACE=0).test_client()
    plain = login(client)
    first = open_support(client).json
    client.post("/api/sessions/refresh", headers=auth(first["refreshToken"]))
    client.delete(f"/api/sessions/{first['session']['_id']}", headers=auth(plain["accessToken"]))
    second = open_support(client, actor="op.max").json
    client.delete(f"{OPEN}/{second['session']['_id']}", headers=KEY)

    seen = [(e["type"], e["sessionIds"], e.get("actor")) for e in events(redis, key_prefix)]
    one, two = first["session"]["_id"], second["session"]["_id"]
    assert seen == [
        ("session.created", plain["session"]["_id"], None),  # a login: no actor field
        ("session.created", one, "op.jane"),
        ("session.refreshed", one, "op.jane"),
        ("session.revoked", one, "op.jane"),
        ("session.created", two, "op.max"),
        ("session.revoked", two, "op.max"),
    ]


def test_a_long_reason_is_kept_whole(client):
    reason = "Ticket ü " + "é" * 191  # 200 characters, 392 bytes: past a listpack value
    body = open_support(client, reason=reason).json

    listed = client.get(OPEN, headers=KEY).json["sessions"]
    assert listed[0]["_id"] == body["session"]["_id"]
    assert listed[0]["support"]["reason"] == reason
