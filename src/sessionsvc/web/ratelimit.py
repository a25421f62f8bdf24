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
from http import HTTPStatus
from typing import Any, TypeVar

import redis
from flask import Flask, Response, current_app, g, request
from flask_jwt_extended import get_jwt
from flask_limiter import Limiter, RequestLimit
from limits import parse
from limits.storage import (
    MovingWindowSupport,
    RedisStorage,
    SlidingWindowCounterSupport,
    Storage,
)
from redis.cluster import RedisCluster
from werkzeug.exceptions import TooManyRequests

from ..config import embedded_redis_url
from ..extension import sessionsvc
from ..store.connection import ERRORS, Client

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


def retry_after(limit: RequestLimit) -> Response:
    """Answer a breached limit with its Retry-After, read while the limit is checked."""
    wait = max(1, int(limit.reset_at - time.time()))
    return Response(status=HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": str(wait)})


# No default limits: only the decorated endpoints are limited, never verify
# (the gateway's hot path). The storage is set in init_app. Retry-After comes
# with the refusal (on_breach), not from Flask-Limiter's headers: those are
# read from Redis after the view, where a hung Redis turned a session already
# created or rotated into a 500.
limiter = Limiter(key_func=client_key, default_limits=[], on_breach=retry_after)


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
    if request.endpoint == "devices.answer":
        # No verified user yet (the answer token is checked in the view): the address's.
        return f"answer:{client_key()}"
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

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


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


class ClusterStorage(RedisStorage):
    """limits' Redis storage on a Cluster client of the app's own.

    limits' RedisClusterStorage makes a client of its own, connecting at once
    and without the app's circuit breaker; its Redis storage sends every
    command through get_connection(), the Cluster client here (listed in
    docs/dependencies.md). Each counter is one key (a sliding window's two
    share a hash tag), so its scripts run on a Cluster client too.
    """

    def __init__(self, url: str, *, cluster: RedisCluster, key_prefix: str) -> None:
        self.cluster = cluster  # before RedisStorage registers its scripts on get_connection()
        # Its own client, made from the node's URL, is never used (no I/O).
        super().__init__(url, key_prefix=key_prefix)

    def get_connection(self, readonly: bool = False) -> Any:
        return self.cluster


def limits_storage(client: Client, *, url: str, key_prefix: str) -> RedisStorage:
    """Return limits' Redis storage on the app's client: the same server, timeouts and breaker."""
    if isinstance(client, redis.Redis):  # one server, or Sentinel's primary
        # On the client's own pool, the URI only tells redis-py from valkey-py.
        return RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix=key_prefix
        )
    return ClusterStorage(url, cluster=client, key_prefix=key_prefix)


class AppRedisStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """The counters in the sessions' Redis, through the app's own client (scheme ``sessionsvc``).

    A storage of limits' documented kind (a Storage subclass with its scheme),
    which Flask-Limiter makes in init_app: it hands every call to limits' own
    Redis storage, made on the first one, so that the client connects (and
    detects a Cluster) on first use, as the store's does, never in create_app.
    """

    STORAGE_SCHEME = ["sessionsvc"]  # noqa: RUF012 (limits' own class attribute)

    def __init__(
        self,
        uri: str,
        *,
        connect: Callable[[], Client],
        url: str,
        key_prefix: str,
        wrap_exceptions: bool = False,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.connect = connect
        self.url = url
        self.key_prefix = key_prefix
        self._counters: RedisStorage | None = None

    @property
    def counters(self) -> RedisStorage:
        """limits' Redis storage on the app's client, made on first use (by two threads alike)."""
        if self._counters is None:
            self._counters = limits_storage(
                self.connect(), url=self.url, key_prefix=self.key_prefix
            )
        return self._counters

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ERRORS

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.counters.incr(key, expiry, amount)

    def get(self, key: str) -> int:
        return self.counters.get(key)

    def get_expiry(self, key: str) -> float:
        return self.counters.get_expiry(key)

    def check(self) -> bool:
        try:
            return self.counters.check()
        except ERRORS:  # no client yet: the server is down
            return False

    def reset(self) -> int | None:
        return self.counters.reset()

    def clear(self, key: str) -> None:
        self.counters.clear(key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.counters.acquire_entry(key, limit, expiry, amount)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self.counters.get_moving_window(key, limit, expiry)

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return self.counters.acquire_sliding_window_entry(key, limit, expiry, amount)

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self.counters.get_sliding_window(key, expiry)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.counters.clear_sliding_window(key, expiry)


def init_app(app: Flask) -> None:
    """Keep the counters in the sessions' Redis, through the app's own client."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "sessionsvc://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {
            "connect": sessionsvc(app).connect,
            "url": app.config["REDIS_URL"] or embedded_redis_url(app.instance_path),
            "key_prefix": f"{app.config['REDIS_KEY_PREFIX']}limits",
        },
    )
    # Never after the view (see on_breach above): the view's answer is final.
    app.config["RATELIMIT_HEADERS_ENABLED"] = False
    limiter.init_app(app)
