"""Issue 13 §1: weak secrets, an unknown environment, service-key guessing, odd token types."""

from __future__ import annotations

import logging

import jwt
import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from tests.support import JWT_SECRET, SERVICE_KEY, auth, login

STRONG = "s" * 32


@pytest.fixture
def production(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SESSIONSVC_ENV", "production")


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ({"JWT_SECRET_KEY": "hsweb", "SERVICE_KEY": STRONG}, "SESSIONSVC_JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": STRONG, "SERVICE_KEY": "abcde"}, "SESSIONSVC_SERVICE_KEY"),
        ({"JWT_SECRET_KEY": "j" * 31, "SERVICE_KEY": STRONG}, "SESSIONSVC_JWT_SECRET_KEY"),
    ],
)
def test_production_refuses_short_secrets_and_says_how_to_make_one(production, secrets, named):
    with pytest.raises(ConfigError) as refused:
        create_app(secrets)

    message = str(refused.value)
    assert named in message
    assert "at least 32 bytes" in message
    assert "secrets.token_urlsafe(32)" in message
    assert secrets["JWT_SECRET_KEY"] not in message.replace(named, "")


def test_production_takes_secrets_of_32_bytes(production):
    app = create_app(
        {"JWT_SECRET_KEY": STRONG, "SERVICE_KEY": STRONG, "REDIS_URL": "redis://unused:6379/0"}
    )

    assert app.config["ENV"] == "production"


def test_development_still_generates_strong_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))

    app = create_app()

    assert len(app.config["SERVICE_KEY"]) >= 32
    # Tokens are signed with a generated Ed25519 key, not a generated HMAC secret.
    assert app.config["JWT_SECRET_KEY"] is None
    assert app.extensions["sessionsvc"].keys.active.alg == "EdDSA"


@pytest.mark.parametrize("env", ["Production", "PRODUCTION"])
def test_production_in_any_case_is_production(production, monkeypatch, env):
    monkeypatch.setenv("SESSIONSVC_ENV", env)

    with pytest.raises(ConfigError, match="must be set when SESSIONSVC_ENV=production"):
        create_app()  # no secrets: development would have generated them


@pytest.mark.parametrize("env", ["prod", "staging", ""])
def test_an_unknown_environment_refuses_to_start(tmp_path, monkeypatch, env):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SESSIONSVC_ENV", env)

    with pytest.raises(ConfigError, match="SESSIONSVC_ENV must be one of development, production"):
        create_app()
    assert not (tmp_path / "secrets.json").exists()


def test_wrong_service_keys_are_throttled_per_address_and_logged(make_app, caplog):
    client = make_app(
        RATELIMIT_ENABLED=True, RATE_LIMIT_SERVICE_KEY_FAILURES="5 per minute"
    ).test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.7"}

    def create(key, environ):
        return client.post(
            "/api/sessions",
            json={"userId": "alice"},
            headers={"X-Service-Key": key},
            environ_base=environ,
        )

    with caplog.at_level(logging.WARNING, logger="sessionsvc.web.ratelimit"):
        wrong = [create(f"guess-{i}", attacker).status_code for i in range(5)]
    throttled = create(SERVICE_KEY, attacker)  # even the right key, once guessing is used up
    admin = client.get(
        "/api/admin/users/alice/sessions",
        headers={"X-Service-Key": "guess"},
        environ_base=attacker,
    )

    assert wrong == [401] * 5
    assert (throttled.status_code, throttled.json["code"]) == (429, "TOO_MANY_REQUESTS")
    assert int(throttled.headers["Retry-After"]) > 0
    assert admin.status_code == 429
    assert create(SERVICE_KEY, {"REMOTE_ADDR": "198.51.100.1"}).status_code == 201
    assert caplog.text.count("wrong X-Service-Key from 203.0.113.7") == 5
    assert "guess-" not in caplog.text


def resigned(token: str, **changes: object) -> str:
    """Return the token with some claims changed, signed with the real secret (as if leaked)."""
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="sessionsvc")
    return jwt.encode(claims | changes, JWT_SECRET, algorithm="HS256")


def assert_refused_wherever_access_is_expected(client, body, token, code):
    for method, path in [
        ("GET", "/api/sessions/verify"),
        ("GET", "/api/sessions"),
        ("DELETE", f"/api/sessions/{body['session']['_id']}"),
        ("DELETE", "/api/sessions/not-an-id"),
        ("DELETE", "/api/sessions"),
    ]:
        response = client.open(path, method=method, headers=auth(token))
        assert (response.status_code, response.json["code"]) == (401, code), path
    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200


@pytest.mark.parametrize("kind", ["weird", "", "ACCESS", "id"])
def test_only_an_access_token_is_taken_as_one(client, kind):
    # (A token without "type" is an access token to flask-jwt-extended, by design.)
    body = login(client)
    token = resigned(body["accessToken"], type=kind)

    assert_refused_wherever_access_is_expected(client, body, token, "INVALID_TOKEN")


def test_an_access_token_outliving_its_session_is_refused(client):
    # A token we issue never outlives its session; one that does was forged (the
    # secret leaked): with an exp in 2100 it passed verify for as long as its session lived.
    body = login(client)
    token = resigned(body["accessToken"], exp=4_102_444_800)  # 2100-01-01

    assert_refused_wherever_access_is_expected(client, body, token, "TOKEN_REVOKED")
