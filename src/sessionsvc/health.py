"""Probes for the orchestrator: ``/healthz`` (the process answers), ``/readyz`` (Redis answers)."""

from __future__ import annotations

from flask import Blueprint, Flask

from .extension import sessionsvc

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer 200 while the process serves requests; touch nothing else."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Answer 200 when Redis answers PING within ``READY_TIMEOUT``, else 503 STORE_UNAVAILABLE."""
    # A failure is answered by errors.py's handler for Redis errors: 503 STORE_UNAVAILABLE.
    sessionsvc().ready().ping()
    return {"status": "ok"}


def init_app(app: Flask) -> None:
    """Mount the probes at the root, outside URL_PREFIX."""
    app.register_blueprint(bp)
