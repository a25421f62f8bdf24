"""gunicorn settings for sessionsvc; ``make run`` serves with these.

Each setting can be overridden on the command line or, where noted, by an
environment variable.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import shutil
import tempfile

# Metrics (see sessionsvc/telemetry.py): each worker writes its counters into
# PROMETHEUS_MULTIPROC_DIR and /metrics sums them. prometheus_client reads the
# variable when first imported, so it is set here, before sessionsvc is. Unset,
# each run gets a temporary directory of its own, removed on exit; one given is
# emptied at start (stale files would add a past run's counts). The environment,
# not a global, remembers ours: a reload (SIGHUP) runs this file again.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sessionsvc-metrics-")
    os.environ["_SESSIONSVC_METRICS_TMPDIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]

from gunicorn import util
from prometheus_client import multiprocess

# Not `config`: every global of this file is read as a gunicorn setting of that name.
from sessionsvc import config as sessionsvc_config
from sessionsvc.serving import embedded

# gunicorn must not face clients: behind deploy/nginx.conf (or another buffering
# gateway) only. A gthread worker holds a thread for as long as a client takes
# to send its request, so ten clients sending a header line every few seconds
# would hold them all (docs/security.md). Hence loopback by default; HOST=a
# private address for a gateway on another host, never a public one.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Behind that one gateway, on this host, the client is the X-Forwarded-For entry
# it sets (deploy/nginx.conf): rate limits per client, not one bucket for all.
# Only from it: a caller reaching gunicorn from anywhere else names no one.
os.environ.setdefault("SESSIONSVC_TRUSTED_PROXIES", "127.0.0.1,::1")
# gunicorn >= 25 opens a control socket (~/.gunicorn/gunicorn.ctl) by default:
# a way in that nothing here uses. An operator who wants it sets GUNICORN_CONTROL_SOCKET.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]

# Every request is short: a token check and one Redis round trip. Chosen from
# docs/benchmarks.md ("Worker class and count"): gthread, one worker per core
# with 4 threads each. Since verify is answered in front of Flask, that shape
# served more verify and list requests than 2 workers per core with 2 threads
# in most runs, at less CPU per verify; 2 x cores + 1 sync workers fewer;
# gevent more, with a p99 several times worse. Threads overlap each
# other's Redis round trips, and the gateway's keep-alive connections (nginx
# `keepalive`) are kept, where a sync worker closes each one. One process per
# core keeps every core busy despite the GIL. Each thread keeps one Redis
# connection of its own (store.connection.thread_client).
#
# gunicorn's own gthread: in a same-run A/B through deploy/nginx.conf, a worker
# class that left new connections to a worker with a thread free served no
# more gateway requests (gthread 0.97x to 1.19x of it) and was not needed for
# the balance (gthread kept every worker at half its fair share or more in 56
# of 62 rounds); docs/benchmarks.md, "Worker class and count". nginx
# spreads the load by closing each connection after 100 requests
# (`keepalive_requests` in deploy/nginx.conf). Not reuse_port: each worker
# would listen on a socket of its own, and connections waiting on a recycled
# worker's socket are reset (502s in the benchmark).
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 4))

# A worker is killed only when a request takes longer than this. The worst
# legitimate wait is a hung Redis: one 0.5 s socket timeout (a timeout is not
# retried, see store.connection.CircuitBreaker), after which the app answers 503.
timeout = 10
# On SIGTERM or a reload, in-flight requests get this long to finish; above the
# worst request time and below a typical orchestrator's kill delay (30 s).
graceful_timeout = 20
# Recycle workers now and then to bound any slow leak; the jitter keeps them
# from all restarting at once. Not more often: a worker answers up to 1,500
# verify requests a second, so 10,000 replaced each one every few seconds at
# full load, and its successor takes 0.4 s (seconds on a busy machine) to load
# the app while the others carry its share (docs/benchmarks.md, "Even load
# across workers"). 200,000: minutes at full load, hours at ordinary load.
max_requests = 200_000
max_requests_jitter = 20_000
# Idle keep-alive connections from the gateway stay open longer than nginx's
# upstream keepalive_timeout (60 s), so gunicorn never closes a connection the
# gateway is about to reuse. (Honoured by threaded and async workers.)
keepalive = 75
# Only the local gateway may set X-Forwarded-Proto/-For for gunicorn itself;
# the app's own trust in X-Forwarded-For is TRUSTED_PROXIES (web/proxies.py).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-"
# Room above the app's own MAX_HEADER_BYTES (8 KiB, answered with a JSON 431),
# so that only absurd requests meet gunicorn's own refusal.
limit_request_field_size = 16_384
limit_request_line = 16_384
# One JSON object per line (SESSIONSVC_LOG_FORMAT=text for plain lines); the
# access log has a fixed list of fields: no headers, no query string.
logger_class = "sessionsvc.serving.gunicorn_logs.GunicornLogger"

_embedded = None


def on_starting(server):
    """Check the configuration; start the embedded Valkey when no Redis is configured.

    A bad configuration stops the master here, before any worker starts: a
    ConfigError is a RuntimeError, which gunicorn prints as one "Error:" line
    block and exits 1, where a worker failing to create the app would print a
    traceback. Workers inherit the embedded Valkey's URL.
    """
    global _embedded
    settings = sessionsvc_config.from_environment()
    sessionsvc_config.validate(settings)
    # Only the master knows the bind; each worker's create_app warns of the rest.
    only_env = {"ENV": settings["ENV"]}
    sessionsvc_config.warn_if_deployed(only_env, server.cfg.bind, server.log)
    _empty_metrics_dir(server)
    if settings["REDIS_URL"] or settings["REDIS_SENTINELS"]:
        return
    instance_path = sessionsvc_config.instance_path()
    _embedded = embedded.start(instance_path)
    os.environ["SESSIONSVC_REDIS_URL"] = sessionsvc_config.embedded_redis_url(instance_path)
    server.log.info(
        "embedded Valkey at %s (data in %s)",
        os.environ["SESSIONSVC_REDIS_URL"],
        _embedded.data_dir,
    )


def _empty_metrics_dir(server):
    """Start the run's metrics from zero: remove a previous run's files."""
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(stale)
    server.log.info("metrics files in %s", metrics_dir)


def post_fork(server, worker):
    """Make the worker write gunicorn's own refusals as the API's JSON.

    gunicorn writes them (431, 414, 400, ...) as HTML, with no setting or hook
    for the body: its one writer is replaced by one writing the API's JSON. In
    the worker, which writes them and imports the app anyway: the master only
    reads and checks the settings.
    """
    from sessionsvc.serving import raw_errors

    util.write_error = raw_errors.write_raw_error


def child_exit(server, worker):
    """Drop an exited worker's live gauges from /metrics; its counters still count."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
    if own := os.environ.get("_SESSIONSVC_METRICS_TMPDIR"):
        shutil.rmtree(own, ignore_errors=True)
