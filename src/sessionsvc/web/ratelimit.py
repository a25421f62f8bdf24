"""Per-user and per-client-IP rate limits on the endpoints that write (Flask-Limiter).

A client's address is keyed as one host: an IPv4-mapped IPv6 address as its
IPv4 one, an IPv6 address by its /64 (one subscriber's usual allocation, so a
client cannot change buckets by changing its interface id).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask_jwt_extended import get_jwt
from flask_limiter import Limiter
from limits import parse
from limits.storage import RedisStorage, Storage
from werkzeug.exceptions import TooManyRequests

from ..extension import sessionsvc
from ..store.connection import Client

F = TypeVar("F", bound=Callable)
log = logging.getLogger(__name__)

IPV6_PREFIX = 64  # an IPv6 client is keyed by its network of this length
# No address at all (a gateway on a Unix socket without TRUSTED_PROXIES): one
# shared bucket still limits, where an empty key would skip the limit.
NO_ADDRESS = "unknown"


def address_key(address: str | None) -> str:
    """Return the bucket of a client address: IPv4 (also ::ffff:-mapped) as is, IPv6 by its /64."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or NO_ADDRESS
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


def client_key() -> str:
    """Return the bucket of the caller's own address (see TRUSTED_PROXIES)."""
    return address_key(request.remote_addr)


# No default limits: only the decorated endpoints are limited, never verify
# (the gateway's hot path). The storage is set in init_app.
limiter = Limiter(key_func=client_key, default_limits=[])


def _user_key() -> str:
    """Return the verified user: the token's subject, or the login body's userId.

    The limits run inside the auth check, so a forged identity never spends
    somebody else's allowance.
    """
    if request.endpoint == "sessions.create_session":
        return g.sessionsvc_login.user_id  # read and checked by logins.login_body_required
    if request.endpoint == "sessions.refresh_session":
        # A refresh token whose tag proves it the service's spends its user's
        # allowance; any other (a guess) one of its own, never a real user's.
        presented = g.sessionsvc_refresh  # read by auth.refresh_token_required
        if presented.issued:
            return presented.user_id
        return f"unproven:{presented.user_id}/{presented.session_id}"
    return get_jwt()["sub"]


def _client_ip_key() -> str:
    """Return the end user's bucket: the login body's ``ip`` (the login service's word), else ours.

    A login without ``ip`` counts against the caller's own address; one with a bad
    ``ip`` is refused (400) before any limit.
    """
    if request.endpoint == "sessions.create_session":
        # The body's ip, or the caller's own address without one (logins.login_body).
        return address_key(g.sessionsvc_login.ip)
    return client_key()


def _enabled() -> bool:
    # The app's own switch: the one Limiter object serves every app of the process.
    return current_app.config.get("RATELIMIT_ENABLED", True)


def limited(view: F) -> F:
    """Apply the per-user and per-IP limits; place it under the auth decorator."""
    per_user = limiter.limit(lambda: current_app.config["RATE_LIMIT_PER_USER"], key_func=_user_key)
    per_ip = limiter.limit(lambda: current_app.config["RATE_LIMIT_PER_IP"], key_func=_client_ip_key)
    limited_view = per_user(per_ip(view))

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Disabled, Flask-Limiter still works out on every request that there is
        # nothing to check: 5% to 10% of a login's time (docs/benchmarks.md).
        if not _enabled():
            return view(*args, **kwargs)
        return limited_view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def refuse_service_key_guessing() -> None:
    """Answer 429 to a client whose failed service-key attempts are used up, right key or not."""
    if not _enabled():
        return
    failures = parse(current_app.config["RATE_LIMIT_SERVICE_KEY_FAILURES"])
    bucket = ("service-key-failures", client_key())
    if not limiter.limiter.test(failures, *bucket):
        reset_at = limiter.limiter.get_window_stats(failures, *bucket).reset_time
        raise TooManyRequests(
            "Too many wrong X-Service-Key values from this address; try again later.",
            retry_after=max(1, int(reset_at - time.time()) + 1),
        )


def count_service_key_failure() -> None:
    """Count a wrong service key against the caller's address, and log it (never the key)."""
    log.warning("wrong X-Service-Key from %s", request.remote_addr)
    if _enabled():
        failures = parse(current_app.config["RATE_LIMIT_SERVICE_KEY_FAILURES"])
        limiter.limiter.hit(failures, "service-key-failures", client_key())


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
