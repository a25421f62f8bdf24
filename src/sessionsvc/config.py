"""Configuration: the defaults, reading them, checking them at start-up, development secrets."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import maxminddb
from flask import Config

from .instance import write_once
from .logs import LOG_FORMATS
from .tokens import keyring

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    # None: the embedded Valkey's socket under the instance folder (embedded_redis_url).
    "REDIS_URL": None,
    "REDIS_KEY_PREFIX": "sessionsvc:",
    # Worst wait for a hung Redis: one timeout (connection.CircuitBreaker); for a
    # dead one, (1 + retries) connection attempts with backoff, well under a second.
    # Half a second: a request that comes in with a burst on a hung Redis waits
    # for a thread that long at most, so /healthz answers within a second.
    "REDIS_SOCKET_TIMEOUT": 0.5,
    "REDIS_RETRIES": 2,  # on connection errors only: a timeout is not retried
    # None: detect a Cluster node on first use (INFO cluster); true/false: force.
    "REDIS_CLUSTER": None,
    # "host:port,host:port": ask these Sentinels for the primary (REDIS_URL's host unused).
    "REDIS_SENTINELS": None,
    "REDIS_SENTINEL_MASTER": "mymaster",
    # Replicas a revoke waits for (WAIT; standalone and Sentinel only), and for how long.
    "REDIS_WAIT_REPLICAS": 0,
    "REDIS_WAIT_TIMEOUT": 0.25,  # seconds; below REDIS_SOCKET_TIMEOUT
    # The signing keys: a JWK Set, as a file's path or as JSON (tokens.keyring, docs/keys.md).
    "JWT_KEYS": None,
    # Without JWT_KEYS: the one HS256 key (kid "jwt-secret-key"), as before keys had ids.
    "JWT_SECRET_KEY": None,
    # Seconds a JWKS reader may cache the public keys; a rotation waits this out twice.
    "JWKS_MAX_AGE": 300,
    "SERVICE_KEY": None,
    "SESSION_LIFETIME": 1_209_600,  # 14 days, as in the seed (expireAt - createdAt)
    "SESSION_IDLE_TIMEOUT": 0,  # seconds without use after which a session dies; 0 = off
    "REFRESH_REUSE_GRACE": 10,  # seconds the previous refresh token stays usable
    "MAX_SESSIONS_PER_USER": 50,
    "JWT_ACCESS_TOKEN_EXPIRES": 1800,
    "JWT_ISSUER": "sessionsvc",
    "JWT_AUDIENCE": "sessionsvc",
    # None: "<REDIS_KEY_PREFIX>events", i.e. sessionsvc:events; "" turns events off.
    "EVENTS_STREAM": None,
    "EVENTS_MAXLEN": 100_000,  # approximate cap (XADD MAXLEN ~)
    # Flask-Limiter syntax; each endpoint that writes has its own allowance per user and per IP.
    "RATE_LIMIT_PER_USER": "30 per minute",
    "RATE_LIMIT_PER_IP": "120 per minute",
    # Wrong X-Service-Key values a client address may send; then 429, right key or not.
    "RATE_LIMIT_SERVICE_KEY_FAILURES": "20 per minute",
    "URL_PREFIX": "/api",
    "MAX_CONTENT_LENGTH": 16 * 1024,  # bytes of body; more gets 413
    "MAX_HEADER_BYTES": 8 * 1024,  # bytes of all headers together; more gets 431
    # A MaxMind .mmdb (GeoLite2-City or -Country); None: country-level lookup via iptocc.
    "GEOIP_DATABASE": None,
    # Proxies in front of us whose X-Forwarded-For entry to trust; 0 = trust none.
    "TRUSTED_PROXIES": 0,
    "LOG_FORMAT": "json",  # or "text"; json: one object per line, for a log pipeline
    "LOG_LEVEL": "INFO",
    "READY_TIMEOUT": 0.25,  # seconds /readyz waits for Redis's PING (no retries)
    # Browsers (docs/browser.md). How create hands out the refresh token: "body"
    # (API and mobile clients) or "cookie" (an HttpOnly cookie, for a web app).
    "REFRESH_TOKEN_TRANSPORT": "body",
    "CORS_ORIGINS": [],  # origins that may call with credentials; empty: same origin only
    "UI_PATH": "/account/sessions",  # the "Your devices" page under URL_PREFIX; "" = none
    "UI_LOGIN_URL": "/login",  # where the page sends a signed-out visitor
}

# Generated in development when missing. JWT_SECRET_KEY is not: without it (or
# JWT_KEYS) development signs with a generated Ed25519 key (tokens.keyring).
SECRET_KEYS = ("SERVICE_KEY",)
ENVIRONMENTS = ("development", "production")
# Shortest secrets production accepts: 256 bits for HS256's key (RFC 7518 3.2),
# and as many characters for the service key; a short one is guessed offline
# from one token (HS256) or online (the service key).
MIN_SECRET_LENGTH = 32
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105
# In production, an idle timeout shorter than this would end sessions between
# two clicks (development takes any, to try it out).
MIN_IDLE_TIMEOUT = 60
REFRESH_TOKEN_TRANSPORTS = ("body", "cookie")


# The embedded Valkey's socket in the instance folder (serving.embedded starts it).
EMBEDDED_SOCKET = "valkey.sock"


def embedded_redis_url(instance_path: str) -> str:
    """Return the store's URL when none is configured: the embedded Valkey's socket."""
    return f"unix://{Path(instance_path) / EMBEDDED_SOCKET}"


def is_production(config: Mapping[str, Any]) -> bool:
    """Tell whether the configuration is production's (``ENV``, read in lower case)."""
    return config["ENV"] == "production"


def instance_path() -> str:
    """Return the instance folder: ``SESSIONSVC_INSTANCE_PATH``, else ``./var``.

    It holds development secrets and the embedded Valkey; Flask's default for an
    installed package would be inside the virtualenv.
    """
    return os.environ.get("SESSIONSVC_INSTANCE_PATH") or os.path.abspath("var")


class ConfigError(RuntimeError):
    """The configuration cannot run a service (a RuntimeError: gunicorn prints it, no traceback)."""


def read(config: Config, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill ``config``: the defaults, then ``SESSIONSVC_*`` variables, then test_config.

    ``ENV`` is taken in lower case: ``Production`` is production, never development.
    """
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("SESSIONSVC")
    if test_config is not None:
        config.from_mapping(test_config)
    if isinstance(config["ENV"], str):
        config["ENV"] = config["ENV"].lower()


def from_environment() -> Config:
    """Return the configuration the environment gives (gunicorn's master checks it)."""
    config = Config(os.getcwd())
    read(config)
    return config


# --- Start-up checks ----------------------------------------------------------------------
#
# Each check yields what is wrong with the configuration, naming the setting;
# validate() runs them all and reports every problem in one error. To add one,
# write a generator below and decorate it with @check.

Check = Callable[[Mapping[str, Any]], Iterator[str]]
CHECKS: list[Check] = []


def check(function: Check) -> Check:
    """Register a start-up check: a generator of problems with the configuration."""
    CHECKS.append(function)
    return function


def validate(config: Mapping[str, Any]) -> None:
    """Raise one ConfigError naming every bad setting, or return if there is none."""
    problems = [problem for one in CHECKS for problem in one(config)]
    if problems:
        raise ConfigError(
            "the configuration cannot run the service:\n" + "\n".join(f"- {p}" for p in problems)
        )


@check
def _environment(config: Mapping[str, Any]) -> Iterator[str]:
    if config["ENV"] not in ENVIRONMENTS:
        # Anything else once fell back to development, and its generated secrets.
        yield f"SESSIONSVC_ENV must be one of {', '.join(ENVIRONMENTS)}, not {config['ENV']!r}"


@check
def _secrets(config: Mapping[str, Any]) -> Iterator[str]:
    for key in ("JWT_SECRET_KEY", *SECRET_KEYS):
        # from_prefixed_env parses values as JSON: a secret like 12345 becomes an int.
        if config.get(key) is not None and not isinstance(config[key], str):
            yield f"SESSIONSVC_{key} must be a string (quote it as JSON)"
    if not is_production(config):
        return  # development generates strong ones (ensure_secrets)
    missing = [f"SESSIONSVC_{key}" for key in SECRET_KEYS if not config.get(key)]
    if not (config.get("JWT_KEYS") or config.get("JWT_SECRET_KEY")):
        missing.insert(0, "SESSIONSVC_JWT_KEYS (or SESSIONSVC_JWT_SECRET_KEY)")
    if missing:
        yield f"{', '.join(missing)} must be set when SESSIONSVC_ENV=production"
    for key in ("JWT_SECRET_KEY", *SECRET_KEYS):
        secret = config.get(key)
        if isinstance(secret, str) and secret and len(secret.encode()) < MIN_SECRET_LENGTH:
            yield (
                f"SESSIONSVC_{key} must be at least {MIN_SECRET_LENGTH} bytes long when"
                f" SESSIONSVC_ENV=production; make one with: {MAKE_SECRET}"
            )


@check
def _idle_timeout(config: Mapping[str, Any]) -> Iterator[str]:
    timeout = config["SESSION_IDLE_TIMEOUT"]
    shortest = MIN_IDLE_TIMEOUT if is_production(config) else 1
    whole = isinstance(timeout, int) and not isinstance(timeout, bool)
    if not (whole and (timeout == 0 or timeout >= shortest)):
        yield (
            f"SESSIONSVC_SESSION_IDLE_TIMEOUT must be 0 (off) or at least {shortest}"
            f" seconds with SESSIONSVC_ENV={config['ENV']}, not {timeout!r}"
        )


@check
def _signing_keys(config: Mapping[str, Any]) -> Iterator[str]:
    try:
        keyring.check_ring(config)
    except keyring.KeyRingError as error:
        yield str(error)


@check
def _redis(config: Mapping[str, Any]) -> Iterator[str]:
    if is_production(config) and not (config["REDIS_URL"] or config["REDIS_SENTINELS"]):
        # The embedded Valkey is for development (and may not even be installed).
        yield (
            "SESSIONSVC_REDIS_URL (or SESSIONSVC_REDIS_SENTINELS) must be set when "
            "SESSIONSVC_ENV=production, e.g. SESSIONSVC_REDIS_URL=redis://redis.internal:6379/0"
        )
    if config["REDIS_SENTINELS"] and config["REDIS_CLUSTER"]:
        yield "REDIS_SENTINELS and REDIS_CLUSTER=true exclude each other"
    if config["REDIS_WAIT_REPLICAS"] and (
        config["REDIS_WAIT_TIMEOUT"] >= config["REDIS_SOCKET_TIMEOUT"]
    ):
        # Else the read would time out first and be retried: the revoke would run twice.
        yield "REDIS_WAIT_TIMEOUT must be below REDIS_SOCKET_TIMEOUT"


@check
def _trusted_proxies(config: Mapping[str, Any]) -> Iterator[str]:
    hops = config["TRUSTED_PROXIES"]
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        yield f"TRUSTED_PROXIES must be an integer >= 0, not {hops!r}"


@check
def _logs(config: Mapping[str, Any]) -> Iterator[str]:
    if config["LOG_FORMAT"] not in LOG_FORMATS:
        yield f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {config['LOG_FORMAT']!r}"
    level = config["LOG_LEVEL"]
    if not isinstance(logging.getLevelName(level), int) and not isinstance(level, int):
        yield f"LOG_LEVEL must be a level name such as INFO or DEBUG, not {level!r}"


@check
def _geoip_database(config: Mapping[str, Any]) -> Iterator[str]:
    if database := config["GEOIP_DATABASE"]:
        try:
            maxminddb.open_database(database, maxminddb.MODE_AUTO).close()
        except (OSError, maxminddb.InvalidDatabaseError) as error:
            yield f"GEOIP_DATABASE {database!r}: {error}"


@check
def _browser(config: Mapping[str, Any]) -> Iterator[str]:
    transport = config["REFRESH_TOKEN_TRANSPORT"]
    if transport not in REFRESH_TOKEN_TRANSPORTS:
        names = ", ".join(REFRESH_TOKEN_TRANSPORTS)
        yield f"REFRESH_TOKEN_TRANSPORT must be one of {names}, not {transport!r}"
    ui_path = config["UI_PATH"]
    if not isinstance(ui_path, str) or (ui_path and not ui_path.startswith("/")):
        yield f"UI_PATH must be empty or start with '/', not {ui_path!r}"
    origins = cors_origins(config)
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        yield f"CORS_ORIGINS must be a list of origins, not {origins!r}"
    elif "*" in origins:
        yield "CORS_ORIGINS cannot be '*': credentials go to named origins only"


def cors_origins(config: Mapping[str, Any]) -> Any:
    """Return ``CORS_ORIGINS`` as a list: a JSON list, or a comma-separated string."""
    origins = config["CORS_ORIGINS"] or []
    if isinstance(origins, str):
        return [origin.strip() for origin in origins.split(",") if origin.strip()]
    return origins


def ensure_secrets(config: dict[str, Any], instance_path: str) -> None:
    """Fill missing secrets from the instance folder (development only: validate() ran)."""
    missing = [key for key in SECRET_KEYS if not config.get(key)]
    if not missing:
        return
    path = Path(instance_path) / "secrets.json"
    write_once(path, lambda: {key: secrets.token_urlsafe(32) for key in SECRET_KEYS})
    stored = json.loads(path.read_text())
    for key in missing:
        config[key] = stored[key]
    log.warning("development secrets %s taken from %s", ", ".join(missing), path)
