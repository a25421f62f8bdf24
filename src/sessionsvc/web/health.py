"""Probes for the orchestrator: ``/healthz`` (the process answers), ``/readyz`` (Redis answers)."""

from __future__ import annotations

from flask import Blueprint, Flask

from ..extension import sessionsvc
from .openapi import operation
from .openapi_components import META, SIZE_ERRORS, STORE_ERRORS, ok, ref

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation(
    "healthz",
    summary="Liveness: 200 while the process serves requests; touches nothing else.",
    responses={"200": ok("Alive.", ref("schemas", "Status"))} | SIZE_ERRORS,
    **META,
)
def healthz():
    """Answer 200 while the process serves requests; touch nothing else."""
    return {"status": "ok"}


@bp.get("/readyz")
@operation(
    "readyz",
    summary="Readiness: 200 when Redis answers PING within READY_TIMEOUT and is 7.0 or newer.",
    responses={"200": ok("Ready.", ref("schemas", "Status"))} | STORE_ERRORS,
    **META,
)
def readyz():
    """Answer 200 when Redis answers PING within ``READY_TIMEOUT`` and is recent enough, else 503.

    503 STORE_UNAVAILABLE when it does not answer, STORE_VERSION_UNSUPPORTED when it is
    older than Redis 7.0, STORE_NOT_DURABLE when REDIS_WAIT_AOF cannot be kept there
    (asked once, then known).
    """
    # A failure is answered by the handler for store and Redis errors (errors): a 503.
    state = sessionsvc()
    ready = state.ready()
    ready.ping()
    state.store.check_server(ready)
    return {"status": "ok"}


def init_app(app: Flask) -> None:
    """Mount the probes at the root, outside URL_PREFIX."""
    app.register_blueprint(bp)
