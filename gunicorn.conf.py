"""gunicorn settings for sessionsvc; ``make run`` serves with these."""

from __future__ import annotations

import multiprocessing
import os

from sessionsvc import embedded
from sessionsvc.config import instance_path as sessionsvc_instance_path

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Sync workers: each request is short and does at most one Redis round trip.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Above the worst Redis wait (3 tries x 1 s socket timeout + backoff), so a hung
# Redis yields a 503 from the app, never a killed worker.
timeout = 10
graceful_timeout = 20
keepalive = 5
accesslog = "-"

_embedded = None


def on_starting(server):
    """Start the embedded Valkey when no Redis is configured; workers inherit its URL."""
    global _embedded
    if os.environ.get("SESSIONSVC_REDIS_URL") or os.environ.get("SESSIONSVC_REDIS_SENTINELS"):
        return
    instance_path = sessionsvc_instance_path()
    _embedded = embedded.start(instance_path)
    os.environ["SESSIONSVC_REDIS_URL"] = embedded.socket_url(instance_path)
    server.log.info(
        "embedded Valkey at %s (data in %s)", os.environ["SESSIONSVC_REDIS_URL"], _embedded.data_dir
    )


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
