"""Running the delivery process: the worker, its HTTP server, and a clean stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..config import embedded_redis_url, is_production
from ..store.connection import LazyClient, connector
from ..tokens.keyring import KeyRing
from .delivery import BLOCK_MS, Policy, Worker
from .keys import DeliveryKeys
from .server import serve

log = logging.getLogger(__name__)


def worker_from_config(
    config: Mapping[str, Any], redis: Callable[[], Any], ring: KeyRing, events: str
) -> Worker:
    """Build the worker the settings describe."""
    return Worker(
        redis,
        config["WEBHOOKS"],
        keys=DeliveryKeys(config["REDIS_KEY_PREFIX"], events),
        ring=ring,
        issuer=config["JWT_ISSUER"],
        policy=Policy(
            horizon=config["WEBHOOK_RETRY_HORIZON"],
            first=config["WEBHOOK_RETRY_MIN"],
            longest=config["WEBHOOK_RETRY_MAX"],
        ),
        timeout=config["WEBHOOK_TIMEOUT"],
        claim_idle=config["WEBHOOK_CLAIM_IDLE"],
        # The address guard: production refuses inside addresses unless allowed.
        guard=is_production(config) and not config["WEBHOOK_ALLOW_PRIVATE"],
    )


def redis_client(config: Mapping[str, Any], instance_path: str) -> LazyClient:
    """Return the worker's own Redis client: its socket timeout outlasts a blocking read."""
    timeout = max(config["REDIS_SOCKET_TIMEOUT"], BLOCK_MS / 1000 + 2)
    return connector({**config, "REDIS_SOCKET_TIMEOUT": timeout}, embedded_redis_url(instance_path))


def run(worker: Worker, listen: str) -> None:
    """Run until SIGTERM or SIGINT: the loops, and /readyz and /metrics on ``listen``."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("webhooks: %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if listen:
        host, _, port = listen.rpartition(":")
        server = serve(host, int(port), worker.ready, worker.metrics.registry)
        log.info("webhooks: /readyz and /metrics on http://%s:%d", host, server.server_port)
    worker.start()
    names = ", ".join(loop.endpoint.name for loop in worker.loops) or "none: idle"
    log.info("webhooks: delivering as %s to %s", worker.consumer, names)
    stop.wait()
    worker.stop(timeout=30)
    if server is not None:
        server.shutdown()
