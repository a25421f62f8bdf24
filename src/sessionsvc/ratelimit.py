"""Per-user and per-client-IP rate limits on the endpoints that write (Flask-Limiter)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, request
from flask_jwt_extended import get_jwt
from flask_limiter import Limiter

F = TypeVar("F", bound=Callable)

# No default limits: only the decorated endpoints are limited, never verify
# (the gateway's hot path). The storage is set in init_app.
limiter = Limiter(key_func=lambda: request.remote_addr or "", default_limits=[])


def _user_key() -> str:
    """Return the verified user: the token's subject, or the login body's userId.

    The limits run inside the auth check, so a forged identity never spends
    somebody else's allowance.
    """
    if request.endpoint == "sessions.create_session":
        body = request.get_json(silent=True)
        return str(body.get("userId")) if isinstance(body, dict) else ""
    return get_jwt()["sub"]


def _client_ip_key() -> str:
    """Return the end user's IP: the login body's ``ip`` (the login service's word), else ours."""
    if request.endpoint == "sessions.create_session":
        body = request.get_json(silent=True)
        claimed = body.get("ip") if isinstance(body, dict) else None
        try:
            return str(ipaddress.ip_address(claimed)) if isinstance(claimed, str) else ""
        except ValueError:
            pass
    return request.remote_addr or ""


def limited(view: F) -> F:
    """Apply the per-user and per-IP limits; place it under the auth decorator."""
    per_user = limiter.limit(lambda: current_app.config["RATE_LIMIT_PER_USER"], key_func=_user_key)
    per_ip = limiter.limit(lambda: current_app.config["RATE_LIMIT_PER_IP"], key_func=_client_ip_key)
    return per_user(per_ip(view))


def init_app(app: Flask) -> None:
    """Keep the counters in the sessions' Redis, through the same timeouts and retries."""
    pool = app.extensions["sessionsvc"].redis.connection_pool
    app.config.setdefault("RATELIMIT_STORAGE_URI", "redis://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {"connection_pool": pool, "key_prefix": f"{app.config['REDIS_KEY_PREFIX']}limits"},
    )
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)  # Retry-After on a 429
    limiter.init_app(app)
