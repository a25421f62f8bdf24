"""gunicorn settings for sessionsvc; ``make run`` serves with these."""

from __future__ import annotations

import glob
import multiprocessing
import os
import shutil
import tempfile

# Metrics (see sessionsvc/metrics.py): each worker writes its counters into
# PROMETHEUS_MULTIPROC_DIR and /metrics sums them. prometheus_client reads the
# variable when first imported, so it is set here, before sessionsvc is. Unset,
# each run gets a temporary directory of its own, removed on exit; one given is
# emptied at start (stale files would add a past run's counts). The environment,
# not a global, remembers ours: a reload (SIGHUP) runs this file again.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sessionsvc-metrics-")
    os.environ["_SESSIONSVC_METRICS_TMPDIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]

from prometheus_client import multiprocess

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
# One JSON object per line (SESSIONSVC_LOG_FORMAT=text for plain lines); the
# access log has a fixed list of fields: no headers, no query string.
logger_class = "sessionsvc.logs.GunicornLogger"

_embedded = None


def on_starting(server):
    """Start the embedded Valkey when no Redis is configured; workers inherit its URL."""
    global _embedded
    _empty_metrics_dir(server)
    if os.environ.get("SESSIONSVC_REDIS_URL"):
        return
    instance_path = sessionsvc_instance_path()
    _embedded = embedded.start(instance_path)
    os.environ["SESSIONSVC_REDIS_URL"] = embedded.socket_url(instance_path)
    server.log.info(
        "embedded Valkey at %s (data in %s)", os.environ["SESSIONSVC_REDIS_URL"], _embedded.data_dir
    )


def _empty_metrics_dir(server):
    """Start the run's metrics from zero: remove a previous run's files."""
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(stale)
    server.log.info("metrics files in %s", metrics_dir)


def child_exit(server, worker):
    """Drop an exited worker's live gauges from /metrics; its counters still count."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
    if own := os.environ.get("_SESSIONSVC_METRICS_TMPDIR"):
        shutil.rmtree(own, ignore_errors=True)
