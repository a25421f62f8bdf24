"""GET /api/sessions/verify: what gateways see, and its cost counted at the Redis server."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from sessionsvc.domain.sessions import now_ms
from tests.conftest import commands_run
from tests.support import auth, login

VERIFY = "/api/sessions/verify"


def test_verify_answers_the_callers_ids(client):
    body = login(client, "alice")
    session_id = body["session"]["_id"]

    response = client.get(VERIFY, headers=auth(body["accessToken"]))

    assert response.status_code == 200
    assert response.json == {"userId": "alice", "sessionId": session_id}
    assert response.headers["X-User-Id"] == "alice"
    assert response.headers["X-Session-Id"] == session_id
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-Error-Code" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", VERIFY),
        ("DELETE", VERIFY),
        ("PUT", f"{VERIFY}/"),
        ("PATCH", f"{VERIFY}/orders/7?expand=items"),
        ("HEAD", f"{VERIFY}/a/b/c"),
    ],
)
def test_verify_takes_envoys_method_and_appended_path(client, method, path):
    # Envoy's ext_authz (HTTP) keeps the request's method and appends its path.
    body = login(client, "alice")

    response = client.open(path, method=method, headers=auth(body["accessToken"]))

    assert response.status_code == 200
    assert response.headers["X-User-Id"] == "alice"
    assert response.headers["X-Session-Id"] == body["session"]["_id"]


@pytest.mark.parametrize("path", [VERIFY, f"{VERIFY}/", f"{VERIFY}/orders"])
def test_verify_never_passes_options(client, path):
    # flask-jwt-extended checks no token on OPTIONS and Flask would answer it 200:
    # a gateway forwarding the method (Envoy) must get a refusal instead.
    body = login(client)

    for headers in ({}, auth(body["accessToken"])):
        response = client.options(path, headers=headers)
        assert response.status_code == 405
        assert response.json["code"] == "METHOD_NOT_ALLOWED"
        assert "X-User-Id" not in response.headers


def test_verify_error_code_is_repeated_in_a_header(client):
    # nginx's auth_request drops verify's body; the gateway reads the code from here.
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    revoked = client.get(VERIFY, headers=auth(body["accessToken"]))
    missing = client.post(f"{VERIFY}/orders")
    garbage = client.get(VERIFY, headers=auth("not.a.jwt"))

    assert (revoked.status_code, revoked.json["code"]) == (401, "TOKEN_REVOKED")
    assert revoked.headers["X-Error-Code"] == "TOKEN_REVOKED"
    assert (missing.status_code, missing.headers["X-Error-Code"]) == (401, "MISSING_TOKEN")
    assert (garbage.status_code, garbage.headers["X-Error-Code"]) == (401, "INVALID_TOKEN")


def test_refresh_token_is_refused_by_verify(client):
    body = login(client)

    response = client.get(VERIFY, headers=auth(body["refreshToken"]))

    assert response.status_code == 401
    assert response.headers["X-Error-Code"] == "INVALID_TOKEN"


def test_other_endpoints_carry_no_error_code_header(client):
    response = client.get("/api/sessions")

    assert response.status_code == 401
    assert "X-Error-Code" not in response.headers


def test_revoking_a_session_called_verify_is_still_impossible(client):
    # DELETE /api/sessions/verify is verify now, not a revoke of a session "verify".
    body = login(client)

    response = client.delete(VERIFY, headers=auth(body["accessToken"]))

    assert response.status_code == 200
    assert response.json["sessionId"] == body["session"]["_id"]
    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200


# --- The hot path's cost, counted by the server itself -----------------------------------
#
# INFO commandstats on a Valkey of the test's own (so no other test's commands
# are counted) counts every command the server ran, including the ones a script
# ran. One EVALSHA per verify and nothing else at the top level is one round trip.


def verify(client: FlaskClient, token: str, expected_status: int = 200) -> None:
    response = client.get(VERIFY, headers=auth(token))
    assert response.status_code == expected_status, response.json


def test_verify_is_one_evalsha_per_request(counted):
    client, server = counted
    token = login(client)["accessToken"]
    verify(client, token)  # loads the script (NOSCRIPT, SCRIPT LOAD) once per server

    ran = commands_run(server, lambda: [verify(client, token) for _ in range(5)])

    # The script reads the session's createdAt and lastActiveAt and its expiry
    # (the token may not outlive it) and, touched less than a minute ago, writes nothing.
    assert ran == {"evalsha": 5, "hmget": 5, "pexpiretime": 5}


def test_verify_touching_last_activity_stays_one_round_trip(counted):
    client, server = counted
    body = login(client)
    token = body["accessToken"]
    verify(client, token)
    key = next(server.scan_iter(match="*s:{alice}*"))
    stale = now_ms() - 120_000
    server.hset(key, "a", stale)

    first = commands_run(server, lambda: verify(client, token))
    second = commands_run(server, lambda: verify(client, token))

    assert first == {"evalsha": 1, "hmget": 1, "pexpiretime": 1, "hset": 1}  # the touch, inside
    assert int(server.hget(key, "a")) > stale
    assert second == {"evalsha": 1, "hmget": 1, "pexpiretime": 1}  # not again within the minute


def test_refused_tokens_cost_at_most_one_round_trip(counted):
    client, server = counted
    body = login(client)
    verify(client, body["accessToken"])
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    revoked = commands_run(server, lambda: verify(client, body["accessToken"], 401))
    garbage = commands_run(server, lambda: verify(client, "not.a.jwt", 401))
    refresh = commands_run(server, lambda: verify(client, body["refreshToken"], 401))

    assert revoked == {"evalsha": 1, "hmget": 1}
    assert garbage == {}  # refused before Redis
    assert refresh == {}
