"""The service's Prometheus metrics: what is counted and timed (no Flask).

Under gunicorn every worker is its own process, so the metrics use
prometheus_client's multiprocess mode whenever ``PROMETHEUS_MULTIPROC_DIR`` is
set (gunicorn.conf.py sets it): each worker writes its values to files there
and ``/metrics`` (``web.metrics``) sums the files of every worker, live or
exited. Without it (tests, ``flask run``) each app keeps its own in-memory
registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

# A request is one Redis round trip (about a millisecond); a hung Redis costs
# one REDIS_SOCKET_TIMEOUT (store.connection.CircuitBreaker), so the buckets span both.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class Metrics:
    """The counters and histograms of one app (see new_metrics)."""

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
    """Return a new set of the service's metrics, in a registry of its own."""
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
