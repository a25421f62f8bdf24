"""The ``sessionsvc create-session`` command."""

from __future__ import annotations

import json

import pytest

from tests.support import auth


def test_create_session_prints_working_tokens(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-session", "alice", "--user-agent", "curl/8"]
    )

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    sessions = client.get("/api/sessions", headers=auth(body["accessToken"])).json["sessions"]
    assert [s["_id"] for s in sessions] == [body["session"]["_id"]]
    assert sessions[0]["device"]["isDev"] is True


def test_create_session_rejects_a_bad_user_id(app):
    result = app.test_cli_runner().invoke(args=["create-session", "al{ice}"])

    assert result.exit_code != 0
    assert "USER_ID" in result.output


def test_create_session_explains_an_unreachable_store(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1", REDIS_SOCKET_TIMEOUT=0.2, REDIS_RETRIES=0)

    result = app.test_cli_runner().invoke(args=["create-session", "alice"])

    assert result.exit_code == 1
    assert "unavailable" in result.output


def test_new_key_prints_a_private_jwk_the_ring_takes(make_app):
    result = (
        make_app()
        .test_cli_runner()
        .invoke(args=["new-key", "--kid", "2026-12", "--alg", "ES256", "--active"])
    )

    assert result.exit_code == 0, result.output
    jwk = json.loads(result.output)
    assert (jwk["kid"], jwk["alg"], jwk["crv"]) == ("2026-12", "ES256", "P-256")
    assert jwk["active"] is True
    ring = make_app(JWT_KEYS={"keys": [jwk]}).extensions["sessionsvc"].keys
    assert ring.active.kid == "2026-12"


def test_new_key_rejects_a_bad_kid(app):
    result = app.test_cli_runner().invoke(args=["new-key", "--kid", "a b"])

    assert result.exit_code != 0
    assert "--kid" in result.output


def test_create_session_takes_claims(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-session", "alice", "--claims", '{"role": "admin"}']
    )

    assert result.exit_code == 0, result.output
    token = json.loads(result.output)["accessToken"]
    assert client.get("/api/sessions/verify", headers=auth(token)).json["claims"] == {
        "role": "admin"
    }


@pytest.mark.parametrize(
    ("claims", "message"), [("{role", "not valid JSON"), ('{"sub": 1}', "sub")]
)
def test_create_session_rejects_bad_claims(app, claims, message):
    result = app.test_cli_runner().invoke(args=["create-session", "alice", "--claims", claims])

    assert result.exit_code != 0
    assert "--claims" in result.output and message in result.output
