"""The real server under gunicorn.conf.py: restarts and shutdowns drop no request."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from tests.support import ROOT, Gunicorn, auth

pytestmark = pytest.mark.slow  # each test starts gunicorn


def hammer(server, token: str, stop: threading.Event, results: Counter) -> None:
    """Verify the token over and over; count statuses, and failures of any other kind."""
    while not stop.is_set():
        try:
            results[server.call("GET", "/api/sessions/verify", auth(token))[0]] += 1
        except (OSError, http.client.HTTPException) as error:
            results[type(error).__name__] += 1


def test_a_graceful_reload_under_load_drops_no_request(gunicorn):
    server = gunicorn()
    token = server.login()["accessToken"]
    stop, results = threading.Event(), Counter()
    clients = [
        threading.Thread(target=hammer, args=(server, token, stop, results)) for _ in range(4)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        server.process.send_signal(signal.SIGHUP)  # new workers up, old ones finish, socket stays
        time.sleep(2.0)
    finally:
        stop.set()
        for client in clients:
            client.join()

    assert results[200] > 50
    assert set(results) == {200}, results


def test_sigterm_lets_in_flight_requests_finish(gunicorn, own_valkey):
    server = gunicorn(
        SESSIONSVC_REDIS_URL=own_valkey.connection_url, SESSIONSVC_REDIS_SOCKET_TIMEOUT="2"
    )
    token = server.login()["accessToken"]
    results: list[int | str] = []

    def one_request() -> None:
        try:
            results.append(server.call("GET", "/api/sessions", auth(token))[0])
        except (OSError, http.client.HTTPException) as error:
            results.append(type(error).__name__)

    # Pause Redis so that requests are surely in flight (waiting on it) when
    # SIGTERM arrives; resume it well within the 2 s socket timeout.
    os.kill(own_valkey._process.pid, signal.SIGSTOP)
    try:
        requests = [threading.Thread(target=one_request) for _ in range(2)]
        for request in requests:
            request.start()
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
    finally:
        os.kill(own_valkey._process.pid, signal.SIGCONT)
    for request in requests:
        request.join()

    assert results == [200, 200]
    assert server.process.wait(timeout=30) == 0


def test_a_bad_configuration_stops_gunicorn_with_one_error_and_no_traceback(tmp_path):
    # Production with no secrets, no Redis and bad values: the master refuses.
    bad = {
        "SESSIONSVC_ENV": "production",
        "SESSIONSVC_INSTANCE_PATH": str(tmp_path),
        "SESSIONSVC_TRUSTED_PROXIES": "1.5",
        "SESSIONSVC_URL_PREFIX": "api",
        "SESSIONSVC_MAX_SESSIONS_PER_USER": "ten",
        "SESSIONSVC_REDIS_SOCKET_TIMEOUT": "half",
        "SESSIONSVC_REDIS_KEY_PREFIX": "sessions{eu}:",
    }
    server = Gunicorn(tmp_path, bad)

    result = subprocess.run(
        server.args, cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert (
        "SESSIONSVC_JWT_KEYS (or SESSIONSVC_JWT_SECRET_KEY), SESSIONSVC_SERVICE_KEY (or"
        " SESSIONSVC_SERVICE_KEYS) must be set" in result.stderr
    )
    assert "SESSIONSVC_REDIS_URL (or SESSIONSVC_REDIS_SENTINELS) must be set" in result.stderr
    for variable, value in bad.items():
        if variable not in ("SESSIONSVC_ENV", "SESSIONSVC_INSTANCE_PATH"):
            assert f"\n- {variable} must be " in result.stderr
            read = json.loads(value) if value == "1.5" else value  # as from_prefixed_env reads it
            assert f", not {read!r}; e.g. {variable}=" in result.stderr
    assert result.stderr.count("Error: ") == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "valkey").exists()  # no embedded server was started


def test_a_session_lifetime_in_days_starts_and_logs_in(gunicorn):
    server = gunicorn(SESSIONSVC_SESSION_LIFETIME="14d")

    session = server.login()["session"]

    lifetime = datetime.fromisoformat(session["expireAt"]) - datetime.fromisoformat(
        session["createdAt"]
    )
    assert lifetime == timedelta(days=14)
