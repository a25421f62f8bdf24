"""Session claims: the login's claims in every access token, at verify, changed by the admin."""

from __future__ import annotations

import json

import jwt as pyjwt
import pytest

from sessionsvc.domain.claims import MAX_BYTES, InvalidClaims, encode, parse_claims
from tests.conftest import commands_run
from tests.support import SERVICE_KEY, auth, login

# --- The rules: small, flat, typed, and never a registered name -------------------------


def test_claims_of_every_allowed_type_are_taken_as_given():
    claims = {"role": "admin", "tenant": 42, "aal": 2.5, "mfa": True, "groups": ["a", "b"]}

    assert parse_claims(claims) == claims


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (["role"], "must be a JSON object"),
        ({"sub": "bob"}, "'sub' is a registered or reserved claim name"),
        ({"sid": "x"}, "'sid' is a registered or reserved claim name"),
        ({"claims": {}}, "'claims' is a registered or reserved claim name"),
        ({"": 1}, "must be 1-64 characters"),
        ({"a b": 1}, "must be 1-64 characters"),
        ({"x" * 65: 1}, "must be 1-64 characters"),
        ({"nested": {"a": 1}}, "'nested' must be a string, a number, a boolean or a list"),
        ({"nothing": None}, "'nothing' must be"),
        ({"mixed": ["a", 1]}, "'mixed' must be"),
        ({"nan": float("nan")}, "'nan' must be"),
        ({"big": "x" * MAX_BYTES}, f"at most {MAX_BYTES} bytes"),
    ],
)
def test_bad_claims_are_refused_with_a_clear_message(claims, message):
    with pytest.raises(InvalidClaims, match=message):
        parse_claims(claims)


def test_encoded_claims_are_one_ascii_line_for_a_header():
    text = encode({"name": "Zoë\r\nX-Injected: 1"})

    assert text.isascii() and "\r" not in text and "\n" not in text


# --- Through the API: login, tokens, verify, refresh, the admin's changes ---------------

VERIFY = "/api/sessions/verify"
ADMIN = {"X-Service-Key": SERVICE_KEY}
ROLE = {"role": "editor", "tenant": "acme", "groups": ["a", "b"], "aal": 2}


def token_claims(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def verified(client, token: str) -> tuple[dict, dict]:
    response = client.get(VERIFY, headers=auth(token))
    assert response.status_code == 200, response.json
    return json.loads(response.headers["X-Session-Claims"]), response.json


def test_the_login_claims_are_in_every_access_token_and_at_verify(client):
    body = login(client, claims=ROLE)

    assert token_claims(body["accessToken"])["claims"] == ROLE
    header, answer = verified(client, body["accessToken"])
    assert header == answer["claims"] == ROLE
    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json
    assert token_claims(refreshed["accessToken"])["claims"] == ROLE


def test_a_session_without_claims_stores_none_and_says_so(client, redis, key_prefix):
    body = login(client)

    header, answer = verified(client, body["accessToken"])

    assert header == {} and "claims" not in answer
    assert "claims" not in token_claims(body["accessToken"])
    (key,) = redis.scan_iter(match=f"{key_prefix}s:*")
    assert "k" not in redis.hkeys(key)  # no field: the memory figure is unchanged


@pytest.mark.parametrize(
    "claims", [["role"], {"sub": "mallory"}, {"role": {"nested": 1}}, {"big": "x" * MAX_BYTES}]
)
def test_bad_login_claims_are_a_400_and_change_nothing(client, snapshot, claims):
    before = snapshot()

    response = client.post(
        "/api/sessions", json={"userId": "alice", "claims": claims}, headers=ADMIN
    )

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert "claims" in response.json["error"]
    assert snapshot() == before


def test_the_admin_changes_one_sessions_claims_seen_at_the_next_verify(client):
    body, other = login(client, claims=ROLE), login(client, claims=ROLE)
    session_id = body["session"]["_id"]
    verified(client, body["accessToken"])  # the token is remembered: only claims can change

    response = client.put(
        f"/api/admin/users/alice/sessions/{session_id}/claims",
        json={"claims": {"role": "viewer"}},
        headers=ADMIN,
    )

    assert response.status_code == 200
    assert response.json == {"sessionIds": [session_id]}
    assert verified(client, body["accessToken"])[0] == {"role": "viewer"}
    assert verified(client, other["accessToken"])[0] == ROLE  # the other session is untouched
    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json
    assert token_claims(refreshed["accessToken"])["claims"] == {"role": "viewer"}


def test_the_admin_changes_or_clears_the_claims_of_all_a_users_sessions(client):
    sessions = [login(client, claims=ROLE) for _ in range(2)]
    bob = login(client, "bob", claims=ROLE)

    response = client.put("/api/admin/users/alice/claims", json={"claims": {}}, headers=ADMIN)

    assert sorted(response.json["sessionIds"]) == sorted(s["session"]["_id"] for s in sessions)
    for body in sessions:
        header, answer = verified(client, body["accessToken"])
        assert header == {} and "claims" not in answer
    assert verified(client, bob["accessToken"])[0] == ROLE


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/admin/users/alice/sessions/AAAAAAAAAAAAAAAAAAAAAA/claims", {"claims": {}}, 404),
        ("/api/admin/users/alice/sessions/not-an-id/claims", {"claims": {}}, 404),
        ("/api/admin/users/alice/claims", {"claims": {"exp": 1}}, 400),
        ("/api/admin/users/alice/claims", {"role": "x"}, 400),
        ("/api/admin/users/al{ice}/claims", {"claims": {}}, 400),
    ],
)
def test_a_bad_claims_change_is_refused_and_changes_nothing(client, snapshot, path, body, status):
    login(client, claims=ROLE)
    before = snapshot()

    response = client.put(path, json=body, headers=ADMIN)

    assert response.status_code == status
    assert snapshot() == before


def test_verify_with_claims_is_still_one_round_trip(counted):
    client, server = counted
    token = login(client, claims=ROLE)["accessToken"]
    verified(client, token)

    ran = commands_run(server, lambda: [verified(client, token) for _ in range(3)])

    assert ran == {"evalsha": 3, "hmget": 3, "pexpiretime": 3}  # as without claims


def test_a_claims_change_is_an_event(client, redis, key_prefix):
    sessions = [login(client, claims=ROLE)["session"]["_id"] for _ in range(2)]

    client.put("/api/admin/users/alice/claims", json={"claims": {}}, headers=ADMIN)

    *_, (_, last) = redis.xrange(f"{key_prefix}events")
    assert (last["type"], last["userId"]) == ("session.claims_changed", "alice")
    assert sorted(last["sessionIds"].split(",")) == sorted(sessions)
