"""Per-user and per-client-IP rate limits on the endpoints that write (Flask-Limiter)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_jwt_extended import get_jwt
from flask_limiter import Limiter
from limits.storage import RedisStorage, Storage

from .auth import presented_refresh
from .connection import Client
from .extension import sessionsvc

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
    if request.endpoint == "sessions.refresh_session":
        # An opaque refresh token is only checked by the rotation itself: its
        # allowance is its session's, whose id only the session's holder knows.
        presented = presented_refresh()
        return f"{presented.user_id}/{presented.session_id}"
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
    limited_view = per_user(per_ip(view))

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Disabled, Flask-Limiter still works out on every request that there is
        # nothing to check: 5% to 10% of a login's time (docs/benchmarks.md).
        if not current_app.config.get("RATELIMIT_ENABLED", True):
            return view(*args, **kwargs)
        return limited_view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class AppRedisStorage(RedisStorage):
    """limits' Redis storage on the app's own client: one server, Sentinel or Cluster.

    So the counters share the sessions' timeouts and retries, and, like the
    store, connect (and detect a Cluster) on first use, never in create_app.
    Each counter is one key, so its scripts run on any of these clients.
    """

    STORAGE_SCHEME = ["sessionsvc"]  # noqa: RUF012 (limits' own class attribute)

    def __init__(
        self,
        uri: str,
        *,
        connect: Callable[[], Client],
        key_prefix: str,
        wrap_exceptions: bool = False,
    ) -> None:
        Storage.__init__(self, uri, wrap_exceptions=wrap_exceptions)
        self.key_prefix = key_prefix
        self.target_server = "redis"
        self.dependency = self.dependencies["redis"].module
        self._connect = connect

    @property
    def storage(self) -> Client:  # RedisStorage's client attribute
        return self._connect()

    def initialize_storage(self, _uri: str) -> None:
        """Register nothing yet: the scripts are registered on first use (see __getattr__)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("lua_"):  # RedisStorage's scripts, on the app's client
            RedisStorage.initialize_storage(self, "")
            return object.__getattribute__(self, name)
        raise AttributeError(name)


def init_app(app: Flask) -> None:
    """Keep the counters in the sessions' Redis, through the app's own client."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "sessionsvc://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {
            "connect": sessionsvc(app).connect,
            "key_prefix": f"{app.config['REDIS_KEY_PREFIX']}limits",
        },
    )
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)  # Retry-After on a 429
    limiter.init_app(app)
