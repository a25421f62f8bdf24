"""The per-app objects: Redis clients, the session store, the locator, the metrics, the keys.

The layer between the web and the parts it uses: it builds them from the
settings and keeps them under ``app.extensions["sessionsvc"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from .config import ConfigError, embedded_redis_url
from .config.service_keys import ServiceKey, refresh_tag_secret, service_keys
from .domain.locations import Locator
from .store import SessionStore
from .store.connection import LazyClient, connector
from .telemetry import Metrics, new_metrics
from .tokens.keyring import KeyRing, load_ring

log = logging.getLogger(__name__)

NAME = "sessionsvc"  # the key in app.extensions


@dataclass(frozen=True)
class Sessionsvc:
    """Everything an app holds, under ``app.extensions["sessionsvc"]``; see sessionsvc()."""

    connect: LazyClient  # the first call may connect (Cluster detection)
    store: SessionStore
    ready: LazyClient  # /readyz's own client: one try, READY_TIMEOUT
    locator: Locator
    metrics: Metrics
    keys: KeyRing  # the signing keys (tokens.keyring)
    service_keys: tuple[ServiceKey, ...]  # SERVICE_KEY's (named default), then SERVICE_KEYS
    refresh_secret: str  # what refresh tokens' tags are keyed by (tokens.refresh)

    def close(self) -> None:
        """Close the Redis connections made so far, and the GeoIP database."""
        self.connect.close()
        self.ready.close()
        self.locator.close()


def events_stream(config: Mapping[str, Any]) -> str | None:
    """Return the events stream's key: ``EVENTS_STREAM``, else ``<prefix>events``; "" = off."""
    stream = config["EVENTS_STREAM"]
    if stream is None:
        return f"{config['REDIS_KEY_PREFIX']}events"
    return stream or None


def init_app(app: Flask) -> None:
    """Create the Redis client and store (connecting lazily) and register them on the app."""
    config = app.config
    default_url = embedded_redis_url(app.instance_path)
    connect = connector(config, default_url)
    # A probe must answer within its short timeout and without retries, where the
    # store's client may wait out its retries (seconds).
    probe = {"REDIS_SOCKET_TIMEOUT": config["READY_TIMEOUT"], "REDIS_RETRIES": 0}
    ready = connector({**config, **probe}, default_url)
    store = SessionStore(
        connect,
        prefix=config["REDIS_KEY_PREFIX"],
        lifetime=config["SESSION_LIFETIME"],
        idle_timeout=config["SESSION_IDLE_TIMEOUT"],
        refresh_grace=config["REFRESH_REUSE_GRACE"],
        max_sessions=config["MAX_SESSIONS_PER_USER"],
        max_devices=config["MAX_DEVICES_PER_USER"],
        events_stream=events_stream(config),
        events_maxlen=config["EVENTS_MAXLEN"],
        wait_replicas=config["REDIS_WAIT_REPLICAS"],
        wait_timeout=config["REDIS_WAIT_TIMEOUT"],
        wait_aof=config["REDIS_WAIT_AOF"],
        history_days=config["HISTORY_DAYS"],
        history_max=config["HISTORY_MAX_PER_USER"],
    )
    locator = Locator(config["GEOIP_DATABASE"])
    log.debug("locations from %s", locator.source)
    app.extensions[NAME] = Sessionsvc(
        connect=connect,
        store=store,
        ready=ready,
        locator=locator,
        metrics=new_metrics(),
        keys=load_ring(config, app.instance_path),
        service_keys=service_keys(config),
        refresh_secret=_refresh_secret(config),
    )


def _refresh_secret(config: Mapping[str, Any]) -> str:
    # Production requires a service key, development makes SERVICE_KEY (config.ensure_secrets).
    secret = refresh_tag_secret(config)
    if not secret:
        raise ConfigError("SESSIONSVC_SERVICE_KEY (or SESSIONSVC_SERVICE_KEYS) must be set")
    return secret


def sessionsvc(app: Flask | None = None) -> Sessionsvc:
    """Return an app's per-app objects: the current app's, unless one is given."""
    return (current_app if app is None else app).extensions[NAME]


def get_store() -> SessionStore:
    """Return the current app's session store."""
    return sessionsvc().store


def get_locator() -> Locator:
    """Return the current app's locator."""
    return sessionsvc().locator


def get_metrics() -> Metrics:
    """Return the current app's metrics."""
    return sessionsvc().metrics


def get_keys() -> KeyRing:
    """Return the current app's key ring."""
    return sessionsvc().keys
