"""Issue 17: a forgotten SESSIONSVC_ENV opened an unauthenticated sign-in.

The attack: a deployment with real secrets, JWT_KEYS and REDIS_URL but no
SESSIONSVC_ENV ran in development, said nothing, and ``POST /api/dev/sign-in``
made a session for any user id with any claims (``admin``, ``{"role":
"superadmin"}``), which verify then passed. Unset is now production; the
sign-in answers loopback clients only (a client forwarded from afar by a proxy
on this host too); a development start that looks like a real deployment says so.
"""

from __future__ import annotations

import logging
import runpy
from types import SimpleNamespace
from typing import Any

import prometheus_client  # noqa: F401 (imported before the test sets its directory: see below)
import pytest

from sessionsvc import create_app
from sessionsvc.config import ConfigError, deployment_signs
from sessionsvc.tokens.keyring import new_jwk
from tests.support import ROOT, auth

CSRF = {"X-Requested-With": "sessionsvc"}
SIGN_IN = "/api/dev/sign-in"
ADMIN = {"userId": "admin", "claims": {"role": "superadmin"}}


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """The deployment of the report: SESSIONSVC_ENV not set at all."""
    monkeypatch.delenv("SESSIONSVC_ENV", raising=False)
    monkeypatch.setenv("SESSIONSVC_INSTANCE_PATH", str(tmp_path))


def ring() -> dict[str, Any]:
    return {"keys": [new_jwk("EdDSA", "2026-12", active=True)]}


def test_no_environment_is_production_and_serves_no_sign_in(no_env, make_app, redis, key_prefix):
    client = make_app(JWT_KEYS=ring()).test_client()

    response = client.post(SIGN_IN, json=ADMIN, headers=CSRF)

    assert client.application.config["ENV"] == "production"
    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"
    assert list(redis.scan_iter(match=f"{key_prefix}*")) == []


def test_no_environment_and_no_secrets_refuses_and_says_how_to_develop(no_env):
    with pytest.raises(ConfigError) as refused:
        create_app()

    assert "SESSIONSVC_ENV is unset, so this is production" in str(refused.value)
    assert "SESSIONSVC_ENV=development" in str(refused.value)


LOCAL_PROXY = ["127.0.0.1", "::1"]  # nginx on this host, as gunicorn.conf.py trusts it


@pytest.mark.parametrize(
    ("peer", "headers", "trusted_proxies", "status"),
    [
        ("127.0.0.1", {}, [], 201),
        ("::1", {}, [], 201),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, LOCAL_PROXY, 201),
        ("203.0.113.7", {}, [], 404),
        ("2001:db8::7", {}, [], 404),
        ("10.0.0.5", {}, [], 404),  # a private address is still another machine
        # A proxy on this host (deploy/nginx.conf) forwarding a client from afar.
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, [], 404),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, LOCAL_PROXY, 404),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.7"}, [], 404),
        ("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:4711";proto=http'}, [], 404),
        ("127.0.0.1", {"Forwarded": "for=unknown"}, [], 404),
        # A peer from afar claiming loopback: trusted or not, the peer is still far.
        ("203.0.113.7", {"X-Forwarded-For": "127.0.0.1"}, ["203.0.113.7"], 404),
        ("203.0.113.7", {"X-Forwarded-For": "127.0.0.1"}, [], 404),
    ],
)
def test_the_development_sign_in_answers_only_clients_on_this_host(
    make_app, redis, key_prefix, peer, headers, trusted_proxies, status
):
    client = make_app(ENV="development", TRUSTED_PROXIES=trusted_proxies).test_client()

    response = client.post(
        SIGN_IN, json=ADMIN, headers=CSRF | headers, environ_base={"REMOTE_ADDR": peer}
    )
    page = client.get(
        "/api/account/sessions", headers=headers, environ_base={"REMOTE_ADDR": peer}
    ).text

    assert response.status_code == status, response.json
    if status == 404:
        assert response.json["code"] == "NOT_FOUND"
        assert list(redis.scan_iter(match=f"{key_prefix}*")) == []
        assert "data-dev-sign-in" not in page
    else:
        token = response.json["accessToken"]
        assert client.get("/api/sessions/verify", headers=auth(token)).status_code == 200
        assert "data-dev-sign-in" in page


@pytest.mark.parametrize(
    ("settings", "binds", "named"),
    [
        ({"JWT_KEYS": ring()}, (), ["SESSIONSVC_JWT_KEYS is set"]),
        ({"REDIS_URL": "redis://redis.internal:6379/0"}, (), ["names redis.internal"]),
        ({"REDIS_URL": "rediss://:pw@10.1.2.3:6380"}, (), ["names 10.1.2.3"]),
        ({"REDIS_SENTINELS": "sentinel-1:26379,127.0.0.1:26379"}, (), ["names sentinel-1"]),
        ({}, ("0.0.0.0:8000",), ["listens on 0.0.0.0:8000"]),
        ({}, ("[::]:8000",), ["listens on [::]:8000"]),
        (
            {"JWT_KEYS": ring(), "REDIS_URL": "redis://redis.internal:6379/0"},
            ("10.0.0.2:8000",),
            ["JWT_KEYS", "redis.internal", "10.0.0.2:8000"],
        ),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, ("127.0.0.1:8000",), []),
        ({"REDIS_URL": "redis://localhost:6379/0"}, ("[::1]:8000", "localhost:8000"), []),
        ({"REDIS_URL": "unix:///run/valkey.sock"}, ("unix:/run/sessionsvc.sock",), []),
        ({"REDIS_SENTINELS": "[::1]:26379"}, (), []),
    ],
)
def test_settings_of_a_real_deployment_are_named(settings, binds, named):
    config = {"ENV": "development", "REDIS_URL": None, "REDIS_SENTINELS": None} | settings
    if isinstance(config["REDIS_SENTINELS"], str):
        config["REDIS_SENTINELS"] = config["REDIS_SENTINELS"].split(",")

    signs = deployment_signs(config, binds)

    assert len(signs) == len(named), signs
    for sign, name in zip(signs, named, strict=True):
        assert name in sign


def test_a_development_start_that_looks_deployed_warns_loudly(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="sessionsvc"):
        make_app(ENV="development", JWT_KEYS=ring(), REDIS_URL="redis://redis.internal:6379/0")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    looks = [message for message in warnings if "looks like a real deployment" in message]
    assert len(looks) == 1, warnings
    assert "SESSIONSVC_JWT_KEYS" in looks[0]
    assert "redis.internal" in looks[0]


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_start_on_this_host_or_in_production_does_not_warn(make_app, caplog, env):
    with caplog.at_level(logging.WARNING, logger="sessionsvc"):
        make_app(ENV=env, JWT_KEYS=ring() if env == "production" else None)

    assert not [r for r in caplog.records if "real deployment" in r.getMessage()]


@pytest.mark.parametrize(("bind", "warned"), [("0.0.0.0:8000", True), ("127.0.0.1:8000", False)])
def test_gunicorn_s_master_warns_of_a_development_bind_beyond_loopback(
    monkeypatch, tmp_path, caplog, bind, warned
):
    # Its on_starting hook, with a stand-in for gunicorn's arbiter: only the master knows the bind.
    # prometheus_client read PROMETHEUS_MULTIPROC_DIR when this module imported it, unset:
    # the directory given here is only the one the hook empties.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("SESSIONSVC_TRUSTED_PROXIES", "127.0.0.1,::1")  # what the file would set
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", "redis://127.0.0.1:6379/0")  # no embedded Valkey
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    master = SimpleNamespace(
        cfg=SimpleNamespace(bind=[bind]), log=logging.getLogger("gunicorn.test")
    )

    with caplog.at_level(logging.WARNING, logger="gunicorn.test"):
        hooks["on_starting"](master)

    looks = [r.getMessage() for r in caplog.records if "real deployment" in r.getMessage()]
    assert len(looks) == int(warned)
    if warned:
        assert f"listens on {bind}" in looks[0]
