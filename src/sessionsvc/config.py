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
    # The signing keys: a JWK Set, as a file's path or as JSON (keys.py, docs/keys.md).
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

# Generated in development when missing. JWT_SECRET_KEY is not: without it (or
# JWT_KEYS) development signs with a generated Ed25519 key (keys.py).
SECRET_KEYS = ("SERVICE_KEY",)


def instance_path() -> str:
    """Return the instance folder: ``SESSIONSVC_INSTANCE_PATH``, else ``./var``.

    It holds development secrets and the embedded Valkey; Flask's default for an
    installed package would be inside the virtualenv.
    """
    return os.environ.get("SESSIONSVC_INSTANCE_PATH") or os.path.abspath("var")


class ConfigError(RuntimeError):
    """The configuration cannot run a service."""


def trusted_proxies(config: dict[str, Any]) -> int:
    """Return ``TRUSTED_PROXIES`` as a hop count, refusing anything but an integer >= 0."""
    hops = config["TRUSTED_PROXIES"]
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ConfigError(f"TRUSTED_PROXIES must be an integer >= 0, not {hops!r}")
    return hops


def ensure_secrets(config: dict[str, Any], instance_path: str) -> None:
    """Fill missing secrets from the instance folder in development; refuse in production."""
    for key in ("JWT_SECRET_KEY", *SECRET_KEYS):
        # from_prefixed_env parses values as JSON: a secret like 12345 becomes an int.
        if config.get(key) is not None and not isinstance(config[key], str):
            raise ConfigError(f"SESSIONSVC_{key} must be a string (quote it as JSON)")
    missing = [key for key in SECRET_KEYS if not config.get(key)]
    if config["ENV"] == "production":
        names = [f"SESSIONSVC_{key}" for key in missing]
        if not (config.get("JWT_KEYS") or config.get("JWT_SECRET_KEY")):
            names.insert(0, "SESSIONSVC_JWT_KEYS (or SESSIONSVC_JWT_SECRET_KEY)")
        if names:
            raise ConfigError(f"{', '.join(names)} must be set when SESSIONSVC_ENV=production")
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
