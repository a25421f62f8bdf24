"""Probes for the orchestrator: ``/healthz`` (the process answers), ``/readyz`` (Redis answers)."""

from __future__ import annotations

import redis
from flask import Blueprint, Flask, current_app

from . import embedded
from .errors import StoreUnavailable
from .extension import redis_client

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer 200 while the process serves requests; touch nothing else."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Answer 200 when Redis answers PING within ``READY_TIMEOUT``, else 503 STORE_UNAVAILABLE."""
    try:
        current_app.extensions["sessionsvc_ready"].ping()
    except redis.RedisError as error:
        raise StoreUnavailable() from error
    return {"status": "ok"}


def init_app(app: Flask) -> None:
    """Make the probe's own Redis client and mount the probes at the root."""
    # Its own client: a probe must answer within its short timeout and without
    # retries, where the store's client may wait out its retries (seconds).
    url = app.config["REDIS_URL"] or embedded.socket_url(app.instance_path)
    timeout = app.config["READY_TIMEOUT"]
    app.extensions["sessionsvc_ready"] = redis_client(url, timeout=timeout, retries=0)
    app.register_blueprint(bp)
