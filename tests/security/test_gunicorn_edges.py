"""Issue 13 §5: what gunicorn (and nginx) answer themselves, and what gunicorn opens.

Attacks: a header over gunicorn's 16 KiB limit got its HTML 431; a chunked
body over MAX_CONTENT_LENGTH got 400 (the truncated body read as bad JSON);
gunicorn >= 25 opened a control socket nobody asked for; with
LOG_FORMAT=text, a %0a in the path wrote a line of the caller's choosing.
Issue 17: a malformed chunked body (``ZZ`` as a chunk size) straight to
gunicorn got a 500 and a traceback.
"""

from __future__ import annotations

import json
import socket
import time
from contextlib import ExitStack

import pytest

from tests.support import SERVICE_KEY, free_port
from tests.test_gateway import needs_nginx, start_nginx


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes; return status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def oversized_header() -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n"


def chunked_login(size: int) -> bytes:
    body = json.dumps({"userId": "alice", "userAgent": "x" * size}).encode()
    return (
        b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"X-Service-Key: " + SERVICE_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )


def assert_json_error(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    assert answer[0] == status, answer
    assert answer[1]["content-type"].startswith("application/json"), answer
    assert json.loads(answer[2])["code"] == code


def test_gunicorns_own_refusals_are_json(gunicorn):
    server = gunicorn(WEB_CONCURRENCY="1")

    assert_json_error(
        exchange(server.port, oversized_header()), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"
    )
    assert_json_error(exchange(server.port, chunked_login(20_000)), 413, "REQUEST_ENTITY_TOO_LARGE")
    assert exchange(server.port, chunked_login(100))[0] == 201  # a small chunked body is fine


@needs_nginx
def test_nginxs_own_refusals_are_json(gunicorn, tmp_path):
    server = gunicorn(WEB_CONCURRENCY="1")
    with ExitStack() as stack:
        port = start_nginx(stack, tmp_path, sessionsvc=server.port, protected=free_port())

        too_big_header = exchange(port, oversized_header())
        too_big_body = exchange(port, chunked_login(20_000))
        not_http = exchange(port, b"NOT HTTP\r\n\r\n")
        no_host = exchange(port, b"GET /api/sessions HTTP/1.1\r\n\r\n")

    assert_json_error(too_big_header, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    assert_json_error(too_big_body, 413, "REQUEST_ENTITY_TOO_LARGE")
    assert_json_error(not_http, 400, "BAD_REQUEST")
    assert_json_error(no_host, 400, "BAD_REQUEST")


def test_no_control_socket_unless_asked_for(gunicorn, tmp_path):
    # The fixture points XDG_RUNTIME_DIR, gunicorn's first choice, at tmp_path.
    gunicorn(WEB_CONCURRENCY="1")
    assert not (tmp_path / "gunicorn.ctl").exists()

    asked = tmp_path / "asked" / "gunicorn.ctl"
    asked.parent.mkdir()
    server = gunicorn(WEB_CONCURRENCY="1", GUNICORN_CONTROL_SOCKET=str(asked))
    deadline = time.monotonic() + 10  # opened in the background once the workers run
    while not asked.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert asked.exists(), server.log_text()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_path_cannot_write_a_log_line(gunicorn, log_format):
    server = gunicorn(WEB_CONCURRENCY="1", SESSIONSVC_LOG_FORMAT=log_format)
    forged = "2026-01-01 00:00:00,000 INFO [1] [x] gunicorn.access: GET /admin 200"

    for path in ("/api/sessions/verify/%0a" + forged.replace(" ", "%20"), "/x%0d%0a%e2%80%a8y"):
        server.call("GET", path)
    server.stop()

    lines = server.log_text().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")], lines[-5:]
    assert not [line for line in lines if line.startswith(("y ", "y\t"))], lines[-5:]
    access = [line for line in lines if "/api/sessions/verify/" in line]
    assert len(access) == 1 and "\\n2026-01-01" in access[0], access


def malformed_chunked_login(chunks: bytes) -> bytes:
    return (
        b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"X-Service-Key: " + SERVICE_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    )


@pytest.mark.parametrize(
    "chunks",
    [
        b"ZZ\r\n{}\r\n0\r\n\r\n",  # a chunk size that is no number
        b"2\r\n{}XX0\r\n\r\n",  # a chunk without its CRLF
        b"2;\x00=1\r\n{}\r\n0\r\n\r\n",  # a chunk extension that is not one
    ],
    ids=["bad size", "no terminator", "bad extension"],
)
def test_a_malformed_chunked_body_is_a_json_400(gunicorn, chunks):
    server = gunicorn(WEB_CONCURRENCY="1")

    answer = exchange(server.port, malformed_chunked_login(chunks))

    assert_json_error(answer, 400, "INVALID_REQUEST")
    assert "Traceback" not in server.log_text()
