"""The per-app objects: the Redis client and the session store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from . import embedded
from .store import SessionStore


@dataclass(frozen=True)
class Sessionsvc:
    redis: redis.Redis
    store: SessionStore


def redis_client(url: str, *, timeout: float, retries: int) -> redis.Redis:
    """Make a client that gives up on a dead or hung server within a bounded time."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        # No health_check_interval: its PING on connect would run inside connect's
        # own retry, nested in each command's retry, and triple the worst wait on
        # a hung server. A stale connection fails its command and is retried anyway.
    )


def events_stream(config: Mapping[str, Any]) -> str | None:
    """Return the events stream's key: ``EVENTS_STREAM``, else ``<prefix>events``; "" = off."""
    stream = config["EVENTS_STREAM"]
    if stream is None:
        return f"{config['REDIS_KEY_PREFIX']}events"
    return stream or None


def init_app(app: Flask) -> None:
    """Create the Redis client and store (connecting lazily) and register them on the app."""
    config = app.config
    url = config["REDIS_URL"] or embedded.socket_url(app.instance_path)
    client = redis_client(
        url, timeout=config["REDIS_SOCKET_TIMEOUT"], retries=config["REDIS_RETRIES"]
    )
    store = SessionStore(
        client,
        prefix=config["REDIS_KEY_PREFIX"],
        lifetime=config["SESSION_LIFETIME"],
        idle_timeout=config["SESSION_IDLE_TIMEOUT"],
        refresh_grace=config["REFRESH_REUSE_GRACE"],
        max_sessions=config["MAX_SESSIONS_PER_USER"],
        events_stream=events_stream(config),
        events_maxlen=config["EVENTS_MAXLEN"],
    )
    app.extensions["sessionsvc"] = Sessionsvc(redis=client, store=store)


def get_store() -> SessionStore:
    """Return the current app's session store."""
    return current_app.extensions["sessionsvc"].store
