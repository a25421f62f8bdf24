"""``/metrics`` and the request hooks that feed it: every request counted and timed."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from ..extension import get_metrics
from .openapi import operation
from .openapi_components import META, SIZE_ERRORS

# Requests that matched no route (404, 405) share one label, so a scan of
# random paths cannot create new time series.
UNMATCHED = "unmatched"


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    get_metrics().observe(
        request.endpoint or UNMATCHED,
        response.status_code,
        None if started is None else time.perf_counter() - started,
    )
    return response


@operation(
    "metrics",
    summary="Prometheus metrics (text exposition format), summed over all workers.",
    responses={
        "200": {
            "description": "The metrics.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
    | SIZE_ERRORS,
    **META,
)
def exposition() -> Response:
    """Answer ``GET /metrics``: every worker's metrics in Prometheus's text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A fresh registry per scrape, as prometheus_client documents: it reads the files.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = get_metrics().registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time every request and serve ``GET /metrics`` at the root."""
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "metrics", exposition, methods=["GET"])
