"""The baseline: a bare Flask endpoint answering a constant JSON, the framework's limit.

bench/run.py serves it with the same gunicorn configuration as the service and
sends it the same requests (method, headers, body) as the endpoint it compares.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)

BODY = {"userId": "alice", "sessionId": "x2wM1y8y0dO8rR3n5ZJ8ZQ"}


@app.route("/bare", methods=["GET", "POST", "DELETE"])
def bare() -> dict[str, str]:
    """Answer the constant JSON, whatever the request carries."""
    return BODY
