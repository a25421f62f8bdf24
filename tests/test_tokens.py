"""Access and refresh tokens: claims, rotation, reuse, and every way a token is refused."""

from __future__ import annotations

import time
from datetime import datetime
from importlib.metadata import version

import jwt as pyjwt
import pytest
from packaging.version import Version

from sessionsvc.tokens.refresh import LEGACY_REFRESH_REMOVED_IN
from tests.support import JWT_SECRET, auth, login


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="sessionsvc")


def forge(claims: dict, *, key: str = JWT_SECRET, algorithm: str = "HS256", **headers) -> str:
    return pyjwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


def valid_claims(session: dict, **changes) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "sid": session["_id"],
        "jti": "j" * 22,
        "iat": now,
        "exp": now + 60,
        "type": "access",
        "iss": "sessionsvc",
        "aud": "sessionsvc",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_access_token_is_bound_to_the_session(client):
    body = login(client)

    claims = claims_of(body["accessToken"])

    assert claims["sub"] == "alice"
    assert claims["sid"] == body["session"]["_id"]
    assert claims["type"] == "access"
    assert claims["iss"] == "sessionsvc"
    assert claims["exp"] - claims["iat"] == 1800
    assert claims["jti"]


def test_tokens_never_outlive_the_session(make_app):
    client = make_app(SESSION_LIFETIME=600).test_client()
    body = login(client)

    access = claims_of(body["accessToken"])

    session_end = datetime.fromisoformat(body["session"]["expireAt"]).timestamp()
    assert access["exp"] == int(session_end)  # the refresh token is its session's: no exp


def test_the_refresh_token_is_opaque_and_names_its_session(client):
    body = login(client)

    kind, user, session_id, secret, tag = body["refreshToken"].split(".")

    assert (kind, user, session_id) == ("rt1", "YWxpY2U", body["session"]["_id"])  # b64 "alice"
    assert len(secret) == len(tag) == 22 and secret not in body["accessToken"]


def secret_of(refresh_token: str) -> str:
    return refresh_token.split(".")[3]


def test_a_guessed_refresh_secret_is_refused_and_ends_nothing(client, snapshot):
    body = login(client)
    kind, user, session_id, _, tag = body["refreshToken"].split(".")
    guess = ".".join((kind, user, session_id, "g" * 22, tag))  # the tag does not fit the guess
    before = snapshot()

    response = client.post("/api/sessions/refresh", headers=auth(guess))

    assert (response.status_code, response.json["code"]) == (401, "INVALID_TOKEN")
    assert snapshot() == before  # not taken for theft: the session lives on
    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    assert refreshed.status_code == 200


def test_a_new_service_key_ends_no_session_and_only_softens_theft_detection(make_app):
    body = login(make_app().test_client())
    after = make_app(SERVICE_KEY="another-service-key-" + "b" * 32, REFRESH_REUSE_GRACE=0)
    client = after.test_client()

    refreshed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    assert refreshed.status_code == 200  # its tag is the old key's, its secret the session's
    time.sleep(0.01)
    replayed = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    # Rotated out, and no longer provably the service's: refused, but not taken for theft.
    assert (replayed.status_code, replayed.json["code"]) == (401, "INVALID_TOKEN")
    again = client.post("/api/sessions/refresh", headers=auth(refreshed.json["refreshToken"]))
    assert again.status_code == 200


def test_a_refresh_jwt_of_the_previous_version_is_rotated_to_an_opaque_token(client):
    body = login(client)
    secret = secret_of(body["refreshToken"])  # what the session holds, as a jti did
    legacy = forge(valid_claims(body["session"], jti=secret, type="refresh"))

    response = client.post("/api/sessions/refresh", headers=auth(legacy))

    assert response.status_code == 200
    assert response.json["refreshToken"].startswith("rt1.")
    again = client.post("/api/sessions/refresh", headers=auth(response.json["refreshToken"]))
    assert again.status_code == 200


@pytest.mark.parametrize(
    "changes", [{"type": "access"}, {"jti": "x" * 22}], ids=["an access token", "another jti"]
)
def test_a_legacy_refresh_jwt_is_checked_like_any_refresh_token(make_app, changes):
    client = make_app(REFRESH_REUSE_GRACE=0).test_client()
    body = login(client)
    secret = secret_of(body["refreshToken"])
    forged = forge(valid_claims(body["session"], jti=secret, type="refresh") | changes)

    response = client.post("/api/sessions/refresh", headers=auth(forged))

    assert response.status_code == 401


def test_refresh_rotates_both_tokens(client):
    body = login(client)

    response = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert response.status_code == 200
    assert set(response.json) == {"accessToken", "refreshToken"}
    assert response.headers["Cache-Control"] == "no-store"
    new = response.json
    assert new["refreshToken"] != body["refreshToken"]
    assert claims_of(new["accessToken"])["sid"] == body["session"]["_id"]
    assert client.get("/api/sessions", headers=auth(new["accessToken"])).status_code == 200
    second = client.post("/api/sessions/refresh", headers=auth(new["refreshToken"]))
    assert second.status_code == 200


def test_refresh_keeps_the_absolute_expiry(make_app):
    client = make_app(SESSION_LIFETIME=600).test_client()
    body = login(client)
    before = claims_of(body["accessToken"])["exp"]
    time.sleep(1.1)

    new = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json

    assert claims_of(new["accessToken"])["exp"] == before
    sessions = client.get("/api/sessions", headers=auth(new["accessToken"])).json["sessions"]
    assert sessions[0]["expireAt"] == body["session"]["expireAt"]


def test_reused_refresh_token_revokes_the_session(make_app):
    client = make_app(REFRESH_REUSE_GRACE=0).test_client()
    body = login(client)
    other = login(client)
    rotated = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json
    time.sleep(0.01)

    response = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "REFRESH_TOKEN_REUSED"
    for token in (body["accessToken"], rotated["accessToken"]):
        assert client.get("/api/sessions", headers=auth(token)).json["code"] == "TOKEN_REVOKED"
    refused = client.post("/api/sessions/refresh", headers=auth(rotated["refreshToken"]))
    assert refused.json["code"] == "TOKEN_REVOKED"
    assert client.get("/api/sessions", headers=auth(other["accessToken"])).status_code == 200


def test_refresh_of_a_revoked_session_is_refused(client):
    body = login(client)
    client.delete("/api/sessions", headers=auth(body["accessToken"]))

    response = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


def test_refresh_token_is_not_an_access_token(client):
    body = login(client)

    response = client.get("/api/sessions", headers=auth(body["refreshToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


def test_access_token_is_not_a_refresh_token(client):
    body = login(client)

    response = client.post("/api/sessions/refresh", headers=auth(body["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_TOKEN"),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "MISSING_TOKEN"),
        ({"Authorization": "Bearer"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not-a-jwt"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer a.b.c"}, "INVALID_TOKEN"),
    ],
)
def test_missing_or_malformed_tokens_are_refused(client, headers, code):
    response = client.get("/api/sessions", headers=headers)

    assert response.status_code == 401
    assert response.json["code"] == code


@pytest.mark.parametrize(
    ("changes", "forge_args", "code"),
    [
        ({}, {"key": "another-secret-" + "y" * 64}, "INVALID_TOKEN"),
        ({}, {"algorithm": "HS512"}, "INVALID_TOKEN"),
        ({}, {"crit": ["b64"]}, "INVALID_TOKEN"),
        ({"exp": int(time.time()) - 10}, {}, "TOKEN_EXPIRED"),
        ({"iss": "someone-else"}, {}, "INVALID_TOKEN"),
        ({"iss": None}, {}, "INVALID_TOKEN"),
        ({"aud": "another-service"}, {}, "INVALID_TOKEN"),
        ({"aud": None}, {}, "INVALID_TOKEN"),
        ({"sid": None}, {}, "INVALID_TOKEN"),
        ({"sid": "../../etc"}, {}, "INVALID_TOKEN"),
        ({"sub": "al*ce"}, {}, "INVALID_TOKEN"),
        ({"exp": None}, {}, "INVALID_TOKEN"),
        ({"jti": None}, {}, "INVALID_TOKEN"),
    ],
)
def test_forged_or_incomplete_tokens_are_refused(client, changes, forge_args, code):
    session = login(client)["session"]

    token = forge(valid_claims(session, **changes), **forge_args)
    response = client.get("/api/sessions", headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == code


def test_a_well_formed_token_of_our_own_passes(client):
    session = login(client)["session"]

    response = client.get("/api/sessions", headers=auth(forge(valid_claims(session))))

    assert response.status_code == 200


def test_alg_none_is_refused(client):
    session = login(client)["session"]
    token = pyjwt.encode(valid_claims(session), key=None, algorithm="none")

    response = client.get("/api/sessions", headers=auth(token))

    assert response.status_code == 401
    assert response.json["code"] == "INVALID_TOKEN"


def test_revoked_token_code(client):
    body = login(client)
    client.delete(f"/api/sessions/{body['session']['_id']}", headers=auth(body["accessToken"]))

    response = client.get("/api/sessions", headers=auth(body["accessToken"]))

    assert response.status_code == 401
    assert response.json["code"] == "TOKEN_REVOKED"


def test_two_tabs_refreshing_at_once_both_succeed(make_app):
    client = make_app(REFRESH_REUSE_GRACE=5).test_client()
    body = login(client)

    first = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    second = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert first.status_code == second.status_code == 200
    for pair in (first.json, second.json):
        assert client.get("/api/sessions", headers=auth(pair["accessToken"])).status_code == 200
    # both tabs hold the current refresh token, so both can go on refreshing
    assert second.json["refreshToken"] == first.json["refreshToken"]
    for pair in (first.json, second.json):
        again = client.post("/api/sessions/refresh", headers=auth(pair["refreshToken"]))
        assert again.status_code == 200


def test_reuse_after_the_grace_window_is_theft(make_app):
    client = make_app(REFRESH_REUSE_GRACE=0.3).test_client()
    body = login(client)
    client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))
    time.sleep(0.4)

    response = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert response.json["code"] == "REFRESH_TOKEN_REUSED"
    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 401


def test_a_token_two_rotations_old_is_theft_even_within_the_window(make_app):
    client = make_app(REFRESH_REUSE_GRACE=5).test_client()
    body = login(client)
    first = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"])).json
    client.post("/api/sessions/refresh", headers=auth(first["refreshToken"]))

    response = client.post("/api/sessions/refresh", headers=auth(body["refreshToken"]))

    assert response.json["code"] == "REFRESH_TOKEN_REUSED"


def test_the_legacy_refresh_jwt_is_read_only_until_its_removal_release():
    # Reaching that release fails here: remove tokens.refresh._legacy_refresh
    # (refusing such tokens with 401 INVALID_TOKEN), then this test.
    assert Version(version("sessionsvc")) < Version(LEGACY_REFRESH_REMOVED_IN)
