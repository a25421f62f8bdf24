"""Configuration defaults and the secrets a running service needs."""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    # None: the embedded Valkey's socket under the instance folder (see embedded.py).
    "REDIS_URL": None,
    "REDIS_KEY_PREFIX": "sessionsvc:",
    # Worst wait for a dead or hung Redis: (1 + retries) x timeout + backoff, about 3.3 s.
    "REDIS_SOCKET_TIMEOUT": 1.0,
    "REDIS_RETRIES": 2,
    # None: detect a Cluster node on first use (INFO cluster); true/false: force.
    "REDIS_CLUSTER": None,
    # "host:port,host:port": ask these Sentinels for the primary (REDIS_URL's host unused).
    "REDIS_SENTINELS": None,
    "REDIS_SENTINEL_MASTER": "mymaster",
    # Replicas a revoke waits for (WAIT; standalone and Sentinel only), and for how long.
    "REDIS_WAIT_REPLICAS": 0,
    "REDIS_WAIT_TIMEOUT": 0.5,  # seconds; below REDIS_SOCKET_TIMEOUT
    "JWT_SECRET_KEY": None,
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
    "READY_TIMEOUT": 0.5,  # seconds /readyz waits for Redis's PING (no retries)
}

SECRET_KEYS = ("JWT_SECRET_KEY", "SERVICE_KEY")
ENVIRONMENTS = ("development", "production")
# Shortest secrets production accepts: 256 bits for HS256's key (RFC 7518 3.2),
# and as many characters for the service key; a short one is guessed offline
# from one token (HS256) or online (the service key).
MIN_SECRET_LENGTH = 32
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105
# In production, an idle timeout shorter than this would end sessions between
# two clicks (development takes any, to try it out).
MIN_IDLE_TIMEOUT = 60


def instance_path() -> str:
    """Return the instance folder: ``SESSIONSVC_INSTANCE_PATH``, else ``./var``.

    It holds development secrets and the embedded Valkey; Flask's default for an
    installed package would be inside the virtualenv.
    """
    return os.environ.get("SESSIONSVC_INSTANCE_PATH") or os.path.abspath("var")


class ConfigError(RuntimeError):
    """The configuration cannot run a service."""


def apply_jwt_settings(config: dict[str, Any]) -> None:
    """Pin flask-jwt-extended to our token format: headers only, HS256, iss and aud."""
    config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_ENCODE_ISSUER=config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=config["JWT_ISSUER"],
        JWT_ENCODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_DECODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_ENCODE_NBF=False,
        JWT_COOKIE_CSRF_PROTECT=False,  # tokens travel in headers only: no csrf claim
    )


def trusted_proxies(config: dict[str, Any]) -> int:
    """Return ``TRUSTED_PROXIES`` as a hop count, refusing anything but an integer >= 0."""
    hops = config["TRUSTED_PROXIES"]
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ConfigError(f"TRUSTED_PROXIES must be an integer >= 0, not {hops!r}")
    return hops


def environment(config: dict[str, Any]) -> str:
    """Return ``ENV`` in lower case, refusing any value but the documented ones."""
    env = config["ENV"]
    if not isinstance(env, str) or env.lower() not in ENVIRONMENTS:
        raise ConfigError(f"SESSIONSVC_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    config["ENV"] = env.lower()
    return config["ENV"]


def check_idle_timeout(config: dict[str, Any]) -> None:
    """Refuse an idle timeout that is not whole seconds, or in production too short to mean much."""
    timeout = config["SESSION_IDLE_TIMEOUT"]
    shortest = MIN_IDLE_TIMEOUT if environment(config) == "production" else 1
    if timeout == 0 and not isinstance(timeout, bool):
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < shortest:
        raise ConfigError(
            f"SESSIONSVC_SESSION_IDLE_TIMEOUT must be 0 (off) or at least {shortest}"
            f" seconds with SESSIONSVC_ENV={config['ENV']}, not {timeout!r}"
        )


def ensure_secrets(config: dict[str, Any], instance_path: str) -> None:
    """Fill missing secrets from the instance folder in development; refuse in production.

    Production also refuses secrets shorter than ``MIN_SECRET_LENGTH``.
    """
    for key in SECRET_KEYS:
        # from_prefixed_env parses values as JSON: a secret like 12345 becomes an int.
        if config.get(key) is not None and not isinstance(config[key], str):
            raise ConfigError(f"SESSIONSVC_{key} must be a string (quote it as JSON)")
    missing = [key for key in SECRET_KEYS if not config.get(key)]
    production = environment(config) == "production"
    if production:
        if missing:
            names = ", ".join(f"SESSIONSVC_{key}" for key in missing)
            raise ConfigError(f"{names} must be set when SESSIONSVC_ENV=production")
        short = [key for key in SECRET_KEYS if len(config[key].encode()) < MIN_SECRET_LENGTH]
        if short:
            names = ", ".join(f"SESSIONSVC_{key}" for key in short)
            raise ConfigError(
                f"{names} must be at least {MIN_SECRET_LENGTH} bytes long when"
                f" SESSIONSVC_ENV=production; make one with: {MAKE_SECRET}"
            )
    if not missing:
        return
    path = Path(instance_path) / "secrets.json"
    stored = _load_or_create_secrets(path)
    for key in missing:
        config[key] = stored[key]
    log.warning("development secrets %s taken from %s", ", ".join(missing), path)


def _load_or_create_secrets(path: Path) -> dict[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        generated = {key: secrets.token_urlsafe(32) for key in SECRET_KEYS}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")  # created 0600
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle)
        # link() fails if another worker won the race; then everyone reads the winner's.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return json.loads(path.read_text())
