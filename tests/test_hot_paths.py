"""The hot paths' shortcuts keep every check: remembered tokens, one round trip per request."""

from __future__ import annotations

import time

import pytest
import redis as redis_py

from conftest import auth, login

VERIFY = "/api/sessions/verify"


# --- Remembered tokens: only the signature check is saved, never expiry or revocation -------


def test_a_remembered_token_is_refused_once_expired(make_app):
    client = make_app(JWT_ACCESS_TOKEN_EXPIRES=1).test_client()
    token = login(client)["accessToken"]
    assert client.get(VERIFY, headers=auth(token)).status_code == 200  # verified, remembered

    time.sleep(2.1)  # exp is in whole seconds: at most 2 s away
    response = client.get(VERIFY, headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_EXPIRED"


def test_a_remembered_token_is_refused_once_its_session_is_revoked(client):
    body = login(client)
    token = body["accessToken"]
    assert client.get(VERIFY, headers=auth(token)).status_code == 200

    client.delete("/api/sessions", headers=auth(token))
    response = client.get(VERIFY, headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


@pytest.mark.parametrize(
    "other_settings",
    [{"JWT_SECRET_KEY": "another-secret-" + "z" * 48}, {"JWT_AUDIENCE": "another-service"}],
    ids=["another key", "another audience"],
)
def test_a_token_remembered_under_some_settings_is_refused_under_others(make_app, other_settings):
    first = make_app().test_client()
    token = login(first)["accessToken"]
    assert first.get(VERIFY, headers=auth(token)).status_code == 200

    other = make_app(**other_settings).test_client()
    response = other.get(VERIFY, headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


def test_a_refresh_token_is_refused_as_an_access_token_after_its_own_use(client):
    refresh = login(client)["refreshToken"]
    rotated = client.post("/api/sessions/refresh", headers=auth(refresh)).json

    response = client.get(VERIFY, headers=auth(rotated["refreshToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


# --- List and revoke check the caller's session inside their own script ---------------------


def test_a_revoked_caller_cannot_revoke_its_users_other_sessions(client):
    gone, other = login(client), login(client)
    client.delete(f"/api/sessions/{gone['session']['_id']}", headers=auth(gone["accessToken"]))

    response = client.delete(
        f"/api/sessions/{other['session']['_id']}", headers=auth(gone["accessToken"])
    )

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"
    assert client.get(VERIFY, headers=auth(other["accessToken"])).status_code == 200


@pytest.mark.parametrize("session_id", ["not-an-id", "A" * 22])
def test_a_revoked_caller_gets_401_not_404(client, session_id):
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    response = client.delete(f"/api/sessions/{session_id}", headers=auth(body["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


def test_a_revoked_caller_cannot_list(client):
    body = login(client)
    login(client)  # another live session of the same user
    client.delete(f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"]))

    response = client.get("/api/sessions", headers=auth(body["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


def test_an_idle_caller_cannot_list_and_its_session_is_pruned(make_app, redis, key_prefix):
    client = make_app(SESSION_IDLE_TIMEOUT=1).test_client()
    idle = login(client)
    time.sleep(1.2)
    fresh = login(client)

    response = client.get("/api/sessions", headers=auth(idle["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"
    index = redis.zrange(f"{key_prefix}u:{{alice}}", 0, -1)
    assert index == [fresh["session"]["_id"]]


# --- Round trips, counted by the server itself (see test_verify.py) -------------------------


@pytest.fixture
def counted(make_app, own_valkey):
    app = make_app(REDIS_URL=own_valkey.connection_url)
    server = redis_py.Redis.from_url(own_valkey.connection_url, decode_responses=True)
    yield app.test_client(), server
    server.close()


def top_level_commands(server: redis_py.Redis, action) -> dict[str, int]:
    """Run ``action``; return the commands the server ran meanwhile that a client sent."""

    def calls() -> dict[str, int]:
        stats = server.info("commandstats")
        return {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items()}

    before = calls()
    action()
    after = calls()
    delta = {name: count - before.get(name, 0) for name, count in after.items()}
    # A script's own commands are counted too; a client sent only the EVALSHA.
    return {name: n for name, n in delta.items() if n and name in {"evalsha", "eval", "multi"}}


def test_list_is_one_round_trip(counted):
    client, server = counted
    token = login(client)["accessToken"]
    login(client)
    client.get("/api/sessions", headers=auth(token))  # loads the script once

    ran = top_level_commands(
        server, lambda: [client.get("/api/sessions", headers=auth(token)) for _ in range(5)]
    )

    assert ran == {"evalsha": 5}


def test_revoke_is_one_round_trip(counted):
    client, server = counted
    caller = login(client)
    others = [login(client)["session"]["_id"] for _ in range(3)]
    client.delete(f"/api/sessions/{others.pop()}", headers=auth(caller["accessToken"]))

    def revoke_two() -> None:
        for session_id in others:
            response = client.delete(
                f"/api/sessions/{session_id}", headers=auth(caller["accessToken"])
            )
            assert response.status_code == 200

    assert top_level_commands(server, revoke_two) == {"evalsha": 2}
