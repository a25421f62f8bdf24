"""Issue 17: every status the shipped nginx answers itself is JSON.

Attack: through deploy/nginx.conf, ``Transfer-Encoding: gzip``, an ``HTTP/2.0``
request line, ``TRACE`` and sessionsvc being down got nginx's HTML 501, 505, 405
and 502. Defence: an error page in the service's JSON shape for every status
nginx can make on these locations; an upstream it cannot reach (502, 504) is
``503 SERVICE_UNAVAILABLE`` with ``Retry-After``.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest

from tests.security.test_gunicorn_edges import exchange
from tests.support import SERVICE_KEY, free_port
from tests.test_gateway import needs_nginx, start_nginx

pytestmark = needs_nginx

PATHS = ["/api/sessions", "/api/account/sessions", "/api/ui/devices.js", "/orders"]


def assert_json(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    assert answer[0] == status, answer
    assert answer[1]["content-type"] == "application/json", answer
    assert json.loads(answer[2])["code"] == code, answer


REFUSALS = {
    "transfer coding gzip": (
        b"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
        501,
        "NOT_IMPLEMENTED",
    ),
    "HTTP/2.0 request line": (
        b"GET {path} HTTP/2.0\r\nHost: x\r\n\r\n",
        505,
        "HTTP_VERSION_NOT_SUPPORTED",
    ),
    "TRACE": (
        b"TRACE {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        405,
        "METHOD_NOT_ALLOWED",
    ),
    "no length": (
        b"POST {path} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "BAD_REQUEST",
    ),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_nginxs_own_refusals_are_json(tmp_path, refusal, path):
    request, status, code = REFUSALS[refusal]
    with ExitStack() as stack:
        # Refused before any upstream is asked: none need be there.
        port = start_nginx(stack, tmp_path, sessionsvc=free_port(), protected=free_port())

        answer = exchange(port, request.replace(b"{path}", path.encode()))

    assert_json(answer, status, code)


def login_through(port: int) -> bytes:
    body = b'{"userId": "alice"}'
    return (
        b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"X-Service-Key: " + SERVICE_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


@pytest.mark.parametrize("path", ["/api/sessions", "/api/account/sessions"])
def test_sessionsvc_down_is_a_json_503_with_retry_after(tmp_path, path):
    with ExitStack() as stack:
        port = start_nginx(stack, tmp_path, sessionsvc=free_port(), protected=free_port())

        answer = exchange(
            port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode()
        )

    assert_json(answer, 503, "SERVICE_UNAVAILABLE")
    assert answer[1]["retry-after"] == "1"


def test_a_protected_service_down_is_a_json_503_with_retry_after(gunicorn, tmp_path):
    server = gunicorn(WEB_CONCURRENCY="1")
    with ExitStack() as stack:
        port = start_nginx(stack, tmp_path, sessionsvc=server.port, protected=free_port())
        status, _, body = exchange(port, login_through(port))
        assert status == 201, body
        token = json.loads(body)["accessToken"]

        answer = exchange(
            port,
            b"GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n\r\n",
        )

    assert_json(answer, 503, "SERVICE_UNAVAILABLE")
    assert answer[1]["retry-after"] == "1"
