"""The per-app objects: the Redis client and the session store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from . import embedded
from .config import ConfigError
from .connection import Client, connector
from .connection import redis_client as redis_client  # where it used to live
from .store import SessionStore


@dataclass(frozen=True)
class Sessionsvc:
    connect: Callable[[], Client]  # the first call may connect (Cluster detection)
    store: SessionStore

    @property
    def redis(self) -> Client:
        """Return the app's Redis client, connecting first if need be."""
        return self.connect()


def events_stream(config: Mapping[str, Any]) -> str | None:
    """Return the events stream's key: ``EVENTS_STREAM``, else ``<prefix>events``; "" = off."""
    stream = config["EVENTS_STREAM"]
    if stream is None:
        return f"{config['REDIS_KEY_PREFIX']}events"
    return stream or None


def init_app(app: Flask) -> None:
    """Create the Redis client and store (connecting lazily) and register them on the app."""
    config = app.config
    if config["REDIS_WAIT_REPLICAS"] and (
        config["REDIS_WAIT_TIMEOUT"] >= config["REDIS_SOCKET_TIMEOUT"]
    ):
        # Else the read would time out first and be retried: the revoke would run twice.
        raise ConfigError("REDIS_WAIT_TIMEOUT must be below REDIS_SOCKET_TIMEOUT")
    connect = connector(config, default_url=embedded.socket_url(app.instance_path))
    store = SessionStore(
        connect,
        prefix=config["REDIS_KEY_PREFIX"],
        lifetime=config["SESSION_LIFETIME"],
        idle_timeout=config["SESSION_IDLE_TIMEOUT"],
        refresh_grace=config["REFRESH_REUSE_GRACE"],
        max_sessions=config["MAX_SESSIONS_PER_USER"],
        events_stream=events_stream(config),
        events_maxlen=config["EVENTS_MAXLEN"],
        wait_replicas=config["REDIS_WAIT_REPLICAS"],
        wait_timeout=config["REDIS_WAIT_TIMEOUT"],
    )
    app.extensions["sessionsvc"] = Sessionsvc(connect=connect, store=store)


def get_store() -> SessionStore:
    """Return the current app's session store."""
    return current_app.extensions["sessionsvc"].store
