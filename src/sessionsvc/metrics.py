"""Prometheus metrics: request counts and latency, store errors, session outcomes; ``/metrics``.

Under gunicorn every worker is its own process, so the metrics use
prometheus_client's multiprocess mode whenever ``PROMETHEUS_MULTIPROC_DIR`` is
set (gunicorn.conf.py sets it): each worker writes its values to files there
and ``/metrics`` sums the files of every worker, live or exited. Without it
(tests, ``flask run``) each app keeps its own in-memory registry.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# The module, not its names: extension.py imports this one to build the per-app Metrics.
from . import extension
from .openapi import operation
from .openapi_components import META, SIZE_ERRORS

# A request is one Redis round trip (about a millisecond); a hung Redis costs
# one REDIS_SOCKET_TIMEOUT (connection.CircuitBreaker), so the buckets span both.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Requests that matched no route (404, 405) share one label, so a scan of
# random paths cannot create new time series.
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    store_errors: Counter
    sessions_created: Counter
    sessions_refreshed: Counter
    sessions_revoked: Counter
    sessions_evicted: Counter
    theft_detected: Counter
    verify_fast_path_fallbacks: Counter
    # (endpoint, status) -> its request counter and latency histogram: labels()
    # validates and locks on each call; a few dozen pairs exist at most.
    by_labels: dict[tuple[str, str], tuple[Counter, Histogram]] = field(default_factory=dict)

    def observe(self, endpoint: str, status: int, seconds: float | None) -> None:
        """Count a request to endpoint answered with status, and its latency if timed."""
        labels = (endpoint, str(status))
        children = self.by_labels.get(labels)
        if children is None:
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self.by_labels[labels] = children
        count, latency = children
        count.inc()
        if seconds is not None:
            latency.observe(seconds)


def new_metrics() -> Metrics:
    registry = CollectorRegistry()
    labels = ("endpoint", "status")

    def counter(name: str, doc: str, labelnames: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labelnames, registry=registry)

    return Metrics(
        registry=registry,
        requests=counter(
            "sessionsvc_http_requests_total", "HTTP requests by Flask endpoint and status.", labels
        ),
        latency=Histogram(
            "sessionsvc_http_request_duration_seconds",
            "Time to answer an HTTP request, by Flask endpoint and status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        store_errors=counter(
            "sessionsvc_store_errors_total",
            "Requests answered 503 STORE_UNAVAILABLE (Redis unreachable, hung or failing).",
        ),
        sessions_created=counter("sessionsvc_sessions_created_total", "Sessions created."),
        sessions_refreshed=counter(
            "sessionsvc_sessions_refreshed_total", "Refresh tokens rotated (or reused in grace)."
        ),
        sessions_revoked=counter(
            "sessionsvc_sessions_revoked_total", "Sessions revoked by their user or by an admin."
        ),
        sessions_evicted=counter(
            "sessionsvc_sessions_evicted_total", "Sessions revoked by MAX_SESSIONS_PER_USER."
        ),
        theft_detected=counter(
            "sessionsvc_sessions_theft_detected_total",
            "Rotated-out refresh tokens presented again; their sessions were revoked.",
        ),
        # Labelled by the exception's class: the code's own classes, a bounded set.
        verify_fast_path_fallbacks=counter(
            "sessionsvc_verify_fast_path_fallbacks_total",
            "Verify requests whose fast path raised an exception and that Flask answered instead.",
            ("error",),
        ),
    )


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    extension.get_metrics().observe(
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
        registry = extension.get_metrics().registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time every request and serve ``GET /metrics`` at the root."""
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "metrics", exposition, methods=["GET"])
