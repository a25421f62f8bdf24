"""How a user signed in (acr, amr, authTime), step-up, verify's requirements (issue 18 §1 §2)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from sessionsvc.domain.assurance import DEFAULT_LEVELS, Assurance
from sessionsvc.domain.history import EndReason
from sessionsvc.domain.sessions import iso, now_ms
from tests.support import CHROME_LINUX, SERVICE_KEY, auth, login
from tests.test_hot_paths import answer, both_paths  # noqa: F401 (the fixture, for pytest)

VERIFY = "/api/sessions/verify"
KEY = {"X-Service-Key": SERVICE_KEY}


def payload(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def step_up(client, user_id: str, session_id: str, **body: Any):
    return client.post(
        f"/api/admin/users/{user_id}/sessions/{session_id}/step-up", json=body, headers=KEY
    )


def events(redis, key_prefix) -> list[dict[str, str]]:
    return [fields for _id, fields in redis.xrange(f"{key_prefix}events")]


def open_support(client, user_id: str = "alice") -> dict[str, Any]:
    """Open a real support session (issue 18 §4) for ``user_id``, operator op-7."""
    opened = client.post(
        f"/api/admin/users/{user_id}/sessions",
        json={"actor": "op-7", "reason": "Ticket #1: cannot sign in"},
        headers=KEY,
    )
    assert opened.status_code == 201, opened.json
    return opened.json


# --- §1 the login -----------------------------------------------------------------------------


def test_a_login_stores_and_shows_how_the_user_signed_in(client, redis, store):
    signed_in = ago(30)
    body = login(client, acr="aal2", amr=["pwd", "otp"], authTime=signed_in)
    session = body["session"]
    assert session["acr"] == "aal2"
    assert session["amr"] == ["pwd", "otp"]
    expected = int(datetime.fromisoformat(signed_in).timestamp() * 1000)
    assert session["authTime"] == iso(expected)
    fields = redis.hgetall(store.session_key("alice", session["_id"]))
    assert (fields["e"], fields["m"], fields["w"]) == ("aal2", "pwd,otp", str(expected))
    claims = payload(body["accessToken"])
    assert (claims["acr"], claims["amr"], claims["auth_time"]) == (
        "aal2",
        ["pwd", "otp"],
        expected // 1000,
    )
    listed = client.get("/api/sessions", headers=auth(body["accessToken"])).json["sessions"]
    assert (listed[0]["acr"], listed[0]["amr"]) == ("aal2", ["pwd", "otp"])
    admin = client.get("/api/admin/users/alice/sessions", headers=KEY).json["sessions"]
    assert admin[0]["authTime"] == iso(expected)


def test_a_plain_login_stores_nothing_more_and_its_body_is_unchanged(client, redis, store):
    body = login(client)
    session = body["session"]
    assert not {"acr", "amr", "authTime"} & set(session)
    fields = redis.hgetall(store.session_key("alice", session["_id"]))
    assert not {"e", "m", "w"} & set(fields)
    # The token still says when: at the session's creation.
    created = int(datetime.fromisoformat(session["createdAt"]).timestamp())
    assert payload(body["accessToken"])["auth_time"] == created
    assert "acr" not in payload(body["accessToken"])


def test_a_refreshed_token_carries_the_same_assurance(client):
    body = login(client, acr="aal2", amr=["hwk"])
    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    assert refreshed.status_code == 200
    claims = payload(refreshed.json["accessToken"])
    assert (claims["acr"], claims["amr"]) == ("aal2", ["hwk"])
    assert claims["auth_time"] == payload(body["accessToken"])["auth_time"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("acr", ""),
        ("acr", "a" * 65),
        ("acr", "aal 2"),
        ("acr", "aal,2"),
        ("acr", 'a"b'),
        ("acr", "é"),
        ("acr", 2),
        ("acr", None),
        ("amr", []),
        ("amr", "pwd"),
        ("amr", ["PWD"]),
        ("amr", ["pwd", "pwd"]),
        ("amr", ["a" * 13]),
        ("amr", ["pwd", "otp", "hwk", "sms", "pin", "face"]),
        ("amr", [1]),
        ("amr", ["pw d"]),
        ("authTime", "yesterday"),
        ("authTime", "2026-01-01T00:00:00"),  # no offset
        ("authTime", "2999-01-01T00:00:00Z"),
        ("authTime", "1969-12-31T23:59:59Z"),
        ("authTime", 1700000000),
        ("authTime", ""),
    ],
)
def test_bad_assurance_in_a_login_is_refused_and_nothing_is_written(
    client, redis, key_prefix, field, value
):
    response = client.post(
        "/api/sessions",
        json={"userId": "alice", "userAgent": CHROME_LINUX, field: value},
        headers=KEY,
    )
    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert field in response.json["error"]
    assert not list(redis.scan_iter(f"{key_prefix}*"))


def test_an_auth_time_a_little_ahead_is_taken_as_now(client):
    ahead = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
    before = now_ms() // 1000
    claims = payload(login(client, authTime=ahead)["accessToken"])
    assert before <= claims["auth_time"] <= now_ms() // 1000


def test_the_development_sign_in_takes_the_same_fields(client):
    response = client.post(
        "/api/dev/sign-in",
        json={"userId": "alice", "acr": "aal2", "amr": ["pwd"]},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert response.status_code == 201, response.json
    assert (response.json["session"]["acr"], response.json["session"]["amr"]) == ("aal2", ["pwd"])
    refused = client.post(
        "/api/dev/sign-in",
        json={"userId": "alice", "acr": "aal 2"},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert refused.status_code == 400


# --- verify's headers -------------------------------------------------------------------------


def test_verify_sends_the_assurance_headers_always(client):
    strong = login(client, acr="aal2", amr=["pwd", "otp"])
    plain = login(client)
    answer = client.get(VERIFY, headers=auth(strong["accessToken"]))
    assert answer.headers["X-Session-Acr"] == "aal2"
    assert answer.headers["X-Session-Amr"] == "pwd,otp"
    assert answer.headers["X-Session-Actor"] == ""
    assert (answer.json["acr"], answer.json["amr"]) == ("aal2", ["pwd", "otp"])
    answer = client.get(VERIFY, headers=auth(plain["accessToken"]))
    for name in ("X-Session-Acr", "X-Session-Amr", "X-Session-Actor"):
        assert answer.headers[name] == ""
    assert set(answer.json) == {"userId", "sessionId"}


def test_verify_sends_a_support_sessions_actor(client):
    body = open_support(client)
    answer = client.get(VERIFY, headers=auth(body["accessToken"]))
    assert answer.headers["X-Session-Actor"] == "op-7"
    assert answer.json["actor"] == "op-7"


# --- §2 verify's requirements -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("acr", "query", "passes"),
    [
        ("aal2", "acr_values=aal2", True),
        ("aal3", "acr_values=aal2", True),  # above a listed level (ACR_LEVELS)
        ("aal1", "acr_values=aal2", False),
        ("aal1", "acr_values=aal2%20aal3", False),
        ("aal1", "acr_values=aal3,aal1", True),
        ("custom", "acr_values=aal1", False),  # not in ACR_LEVELS: only itself
        ("custom", "acr_values=custom+aal3", True),
        (None, "acr_values=aal1", False),
        (None, "max_age=60", True),  # just signed in: at its creation
        (None, "other=1", True),
        ("aal1", "", True),
    ],
)
def test_verify_checks_the_routes_acr_values(client, acr, query, passes):
    body = login(client, **({"acr": acr} if acr else {}))
    answer = client.get(f"{VERIFY}?{query}", headers=auth(body["accessToken"]))
    if passes:
        assert answer.status_code == 200, answer.json
    else:
        assert answer.status_code == 401
        assert answer.json["code"] == "INSUFFICIENT_AUTHENTICATION"
        assert answer.headers["X-Error-Code"] == "INSUFFICIENT_AUTHENTICATION"
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="insufficient_user_authentication"')
        assert "acr_values=" in challenge and "max_age" not in challenge


def test_verify_checks_max_age_against_the_auth_time(client):
    body = login(client, acr="aal2", authTime=ago(700))
    token = auth(body["accessToken"])
    assert client.get(f"{VERIFY}?max_age=800", headers=token).status_code == 200
    answer = client.get(f"{VERIFY}?acr_values=aal2&max_age=600", headers=token)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication",'
        ' error_description="A more recent authentication is required.",'
        ' acr_values="aal2", max_age=600'
    )


def test_a_step_up_counts_at_verify_with_the_same_token(client, redis, key_prefix):
    body = login(client, acr="aal1", amr=["pwd"], authTime=ago(3600))
    token, session_id = auth(body["accessToken"]), body["session"]["_id"]
    demand = f"{VERIFY}?acr_values=aal2&max_age=600"
    assert client.get(demand, headers=token).status_code == 401

    stepped = step_up(client, "alice", session_id, acr="aal2", amr=["pwd", "otp"])

    assert stepped.status_code == 200, stepped.json
    assert client.get(demand, headers=token).status_code == 200  # the old token, the new level
    claims = payload(stepped.json["accessToken"])
    assert (claims["sid"], claims["acr"], claims["amr"]) == (session_id, "aal2", ["pwd", "otp"])
    assert abs(claims["auth_time"] - time.time()) < 5
    listed = client.get("/api/sessions", headers=token).json["sessions"]
    assert [s["_id"] for s in listed] == [session_id]  # the same row, in place
    assert listed[0]["acr"] == "aal2"
    event = events(redis, key_prefix)[-1]
    assert (event["type"], event["sessionIds"], event["acr"]) == (
        "session.stepped_up",
        session_id,
        "aal2",
    )
    assert "actor" not in event


def test_a_step_up_of_a_support_session_is_the_operators(client, redis, key_prefix):
    body = open_support(client)
    session_id, token = body["session"]["_id"], auth(body["accessToken"])
    # Opened without a level (issue 18 §4): only a step-up gives it one.
    assert "acr" not in payload(body["accessToken"])
    demand = f"{VERIFY}?acr_values=aal2"
    assert client.get(demand, headers=token).status_code == 401

    stepped = step_up(client, "alice", session_id, acr="aal2", amr=["otp"])

    assert stepped.status_code == 200, stepped.json
    claims = payload(stepped.json["accessToken"])
    assert (claims["acr"], claims["act"]) == ("aal2", {"sub": "op-7"})  # still the operator's
    assert client.get(demand, headers=token).status_code == 200
    event = events(redis, key_prefix)[-1]
    assert (event["type"], event["actor"]) == ("session.stepped_up", "op-7")


def test_a_step_up_of_a_users_own_session_mints_no_act(client):
    body = login(client)
    stepped = step_up(client, "alice", body["session"]["_id"], acr="aal2", amr=["otp"])
    assert stepped.status_code == 200, stepped.json
    assert "act" not in payload(stepped.json["accessToken"])


def test_verify_refuses_support_sessions_where_the_route_says(client):
    own, support = login(client), open_support(client)
    query = f"{VERIFY}?support=deny"
    assert client.get(query, headers=auth(own["accessToken"])).status_code == 200
    answer = client.get(query, headers=auth(support["accessToken"]))
    assert answer.status_code == 403
    assert answer.json["code"] == "SUPPORT_SESSION_REFUSED"
    assert (
        client.get(f"{VERIFY}?support=allow", headers=auth(support["accessToken"])).status_code
        == 200
    )


@pytest.mark.parametrize(
    "query",
    [
        "acr_values=",
        "acr_values=+",
        "acr_values=a%22b",
        "acr_values=aal1&acr_values=aal2",
        "max_age=",
        "max_age=-1",
        "max_age=1.5",
        "max_age=ten",
        "max_age=12345678901",
        "max_age=1&max_age=1000",
        "support=",
        "support=no",
        "support=deny&support=allow",
    ],
)
def test_bad_requirements_are_refused(client, query):
    body = login(client, acr="aal3")
    answer = client.get(f"{VERIFY}?{query}", headers=auth(body["accessToken"]))
    assert answer.status_code == 400
    assert answer.json["code"] == "INVALID_REQUEST"


# --- step-up ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "new", "accepted"),
    [
        ("aal1", "aal2", True),
        ("aal2", "aal2", True),  # the same level, a fresh authTime
        ("aal2", "aal3", True),
        ("aal3", "aal2", False),
        ("aal2", "aal1", False),
        ("custom", "aal2", False),
        ("aal1", "custom", False),
        ("custom", "custom", True),
        (None, "custom", True),
    ],
)
def test_a_level_is_only_raised(client, redis, store, held, new, accepted):
    body = login(client, **({"acr": held} if held else {}))
    session_id = body["session"]["_id"]
    answer = step_up(client, "alice", session_id, acr=new, amr=["otp"])
    stored = redis.hget(store.session_key("alice", session_id), "e")
    if accepted:
        assert answer.status_code == 200, answer.json
        assert stored == new
    else:
        assert answer.status_code == 400
        assert answer.json["code"] == "INVALID_REQUEST"
        assert stored == held


def test_a_step_up_never_moves_the_auth_time_back(client, redis, store):
    body = login(client, acr="aal1", authTime=ago(60))
    session_id = body["session"]["_id"]
    before = redis.hgetall(store.session_key("alice", session_id))
    answer = step_up(client, "alice", session_id, acr="aal2", amr=["otp"], authTime=ago(600))
    assert answer.status_code == 400
    assert redis.hgetall(store.session_key("alice", session_id)) == before


def test_a_step_up_follows_acr_levels(make_app):
    client = make_app(ACR_LEVELS=["silver", "gold"]).test_client()
    body = login(client, acr="gold")
    session_id = body["session"]["_id"]
    assert step_up(client, "alice", session_id, acr="silver", amr=["pwd"]).status_code == 400
    token = auth(body["accessToken"])
    assert client.get(f"{VERIFY}?acr_values=silver", headers=token).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"acr": "aal2"},
        {"amr": ["otp"]},
        {"acr": "aal 2", "amr": ["otp"]},
        {"acr": "aal2", "amr": []},
        {"acr": "aal2", "amr": ["otp"], "authTime": "soon"},
        {"acr": "aal2", "amr": ["otp"], "authTime": "2999-01-01T00:00:00Z"},
    ],
)
def test_bad_step_up_bodies_are_refused(client, redis, store, body):
    session_id = login(client, acr="aal1")["session"]["_id"]
    before = redis.hgetall(store.session_key("alice", session_id))
    answer = client.post(
        f"/api/admin/users/alice/sessions/{session_id}/step-up", json=body, headers=KEY
    )
    assert answer.status_code == 400
    assert answer.json["code"] == "INVALID_REQUEST"
    assert redis.hgetall(store.session_key("alice", session_id)) == before


@pytest.mark.parametrize("session_id", ["A" * 22, "not-an-id"])
def test_a_step_up_of_no_session_is_a_404(client, redis, key_prefix, session_id):
    answer = step_up(client, "alice", session_id, acr="aal2", amr=["otp"])
    assert answer.status_code == 404
    assert answer.json["code"] == "SESSION_NOT_FOUND"
    assert not list(redis.scan_iter(f"{key_prefix}*"))


def test_a_step_up_needs_its_scope(make_app):
    keys = [{"name": "login", "key": "l" * 32, "scopes": ["sessions:create"]}]
    client = make_app(SERVICE_KEYS=keys, SERVICE_KEY=None).test_client()
    body = client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": "l" * 32}
    ).json
    answer = client.post(
        f"/api/admin/users/alice/sessions/{body['session']['_id']}/step-up",
        json={"acr": "aal2", "amr": ["otp"]},
        headers={"X-Service-Key": "l" * 32},
    )
    assert answer.status_code == 403


# --- both of verify's paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "fast"),
    [
        ("", 200, True),
        ("acr_values=aal2&max_age=600", 200, True),
        ("acr_values=aal3", 401, True),
        ("max_age=0", 401, True),
        ("support=deny", 403, True),
        ("acr_values=aal2&acr_values=aal3", 400, False),  # a bad one: Flask's to answer
    ],
)
def test_verify_answers_requirements_without_flask_as_flask_would(
    both_paths,  # noqa: F811 (the fixture)
    query,
    status,
    fast,
):
    served, flask_alone, handled = both_paths
    if query == "support=deny":
        body = open_support(served)
    else:
        body = login(served, acr="aal2", amr=["pwd", "otp"], authTime=ago(5))
    path = f"{VERIFY}?{query}" if query else VERIFY
    handled.clear()

    served_answer = served.get(path, headers=auth(body["accessToken"]))
    assert handled == ([] if fast else [1])
    alone = flask_alone.get(path, headers=auth(body["accessToken"]))

    assert answer(served_answer) == answer(alone)
    assert served_answer.status_code == status


def test_a_step_up_ends_a_session_idle_past_its_own_timeout(client, store):
    body = login(client, idleTimeout=60)
    session_id, created = body["session"]["_id"], store.list_sessions("alice")[0].created_at
    later = created + 61_000  # past the login's own 60 s, well within the settings' timeout
    stepped = store.step_up(
        "alice", session_id, Assurance("aal2", ("otp",), later), levels=DEFAULT_LEVELS, now=later
    )
    assert stepped.outcome == 0
    assert store.list_sessions("alice") == []
    [ended] = store.history("alice")
    assert (ended.id, ended.reason, ended.ended_at) == (
        session_id,
        EndReason.IDLE,
        created + 60_000,
    )
