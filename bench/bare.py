"""The baselines: a bare Flask endpoint answering a constant JSON, the framework's limit.

bench/run.py serves it with the same gunicorn configuration as the service and
sends it the same requests (method, headers, body) as the endpoint it compares.
``/bare/redis`` answers the same after one Redis round trip (a PING to the
benchmark's Valkey, on a connection per thread as the service keeps them): the
least any check against Redis can cost, which bench/gateway.py sets beside verify.
"""

from __future__ import annotations

import os
import threading

import redis
from flask import Flask

app = Flask(__name__)

BODY = {"userId": "alice", "sessionId": "x2wM1y8y0dO8rR3n5ZJ8ZQ"}
_clients = threading.local()


@app.route("/bare", methods=["GET", "POST", "DELETE"])
def bare() -> dict[str, str]:
    """Answer the constant JSON, whatever the request carries."""
    return BODY


@app.route("/bare/redis", methods=["GET", "POST", "DELETE"])
def bare_redis() -> dict[str, str]:
    """Answer the constant JSON after one round trip to Redis."""
    client = getattr(_clients, "client", None)
    if client is None:  # on first use: nothing connects at import
        url = os.environ["SESSIONSVC_REDIS_URL"]
        client = _clients.client = redis.Redis.from_url(url, socket_timeout=0.5)
    client.ping()
    return BODY
