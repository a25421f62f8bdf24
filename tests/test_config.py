"""Configuration: environment variables, development secrets, production refusal."""

from __future__ import annotations

import json
import stat

import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))
    return tmp_path


def test_environment_variables_override_defaults(instance, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_SESSION_LIFETIME", "60")
    monkeypatch.setenv("SESSIONSVC_URL_PREFIX", "/v2")

    app = create_app()

    assert app.config["SESSION_LIFETIME"] == 60
    assert app.url_map.bind("localhost").match("/v2/sessions")[0] == "sessions.list_sessions"


def test_test_config_overrides_the_environment(instance, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_SESSION_LIFETIME", "60")

    assert create_app({"SESSION_LIFETIME": 30}).config["SESSION_LIFETIME"] == 30


def test_development_secrets_are_generated_once_and_shared(instance, caplog):
    first = create_app()
    second = create_app()

    path = instance / "secrets.json"
    stored = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for app in (first, second):
        assert app.config["SERVICE_KEY"] == stored["SERVICE_KEY"]
    assert len(stored["SERVICE_KEY"]) >= 43
    assert "development secrets" in caplog.text
    assert stored["SERVICE_KEY"] not in caplog.text
    # Tokens are signed with a generated Ed25519 key, not a generated HMAC secret.
    assert "JWT_SECRET_KEY" not in stored
    keys = instance / "jwt-keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    (jwk,) = json.loads(keys.read_text())["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["active"]) == ("OKP", "Ed25519", "EdDSA", True)
    for app in (first, second):
        assert app.extensions["sessionsvc"].keys.active.kid == jwk["kid"]
    assert f"development signing key {jwk['kid']} (EdDSA) generated in" in caplog.text
    assert jwk["d"] not in caplog.text


def test_given_secrets_are_kept(instance):
    app = create_app({"JWT_SECRET_KEY": "j" * 64, "SERVICE_KEY": "s" * 32})

    assert app.config["SERVICE_KEY"] == "s" * 32
    assert not (instance / "secrets.json").exists()


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, r"SESSIONSVC_JWT_KEYS \(or SESSIONSVC_JWT_SECRET_KEY\), SESSIONSVC_SERVICE_KEY"),
        ({"JWT_SECRET_KEY": "j" * 64}, "SESSIONSVC_SERVICE_KEY"),
    ],
)
def test_production_refuses_to_start_without_secrets(instance, monkeypatch, given, missing):
    monkeypatch.setenv("SESSIONSVC_ENV", "production")

    with pytest.raises(ConfigError, match=missing):
        create_app(given)

    assert not (instance / "secrets.json").exists()


def test_a_secret_that_parses_as_a_number_is_refused(instance, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_SERVICE_KEY", "12345")

    with pytest.raises(ConfigError, match="must be a string"):
        create_app()
