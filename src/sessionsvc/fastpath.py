"""Verify answered in front of Flask for a valid token: its session is live, or not.

A gateway asks verify on every request of every user, so its 200 is the
service's hottest answer, and Flask's request cycle (contexts, hooks, routing,
the response object) cost more than the check itself (docs/benchmarks.md).
This WSGI middleware answers a valid access token with the same checks and
the same response as the Flask view: 200 while its session is live, 401
``TOKEN_REVOKED`` once it is not, 503 ``STORE_UNAVAILABLE`` when Redis fails
(status, body, headers, request id, metrics, logs and access-log line). Every
other case and every doubt (no or odd Authorization header, a body, too many
header bytes, an expired, invalid or refresh token) goes to the Flask app
untouched, which answers as it always has. tests/test_hot_paths.py holds both
paths to the same answers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from flask import Flask

from .auth import decode_settings, session_claims, verified_claims
from .errors import StoreUnavailable, TokenRevoked, error_body, header_bytes, note_error
from .logs import REQUEST_ID_HEADER, new_request_id
from .views import VERIFY_METHODS, verified

ENDPOINT = "sessions.verify_session"  # the Flask endpoint it stands in for, in metrics
# A compact JWS: three base64url parts. Anything else in the header is Flask's to judge.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class VerifyFastPath:
    """Answer verify for a valid access token without Flask; hand anything else to ``wsgi_app``."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app
        self.extension = app.extensions["sessionsvc"]
        config = app.config
        self.path = f"{config['URL_PREFIX']}/sessions/verify"
        self.max_header_bytes = config["MAX_HEADER_BYTES"]
        self.methods = frozenset(VERIFY_METHODS)
        self.header_key = "HTTP_" + config["JWT_HEADER_NAME"].upper().replace("-", "_")
        self.header_type = config["JWT_HEADER_TYPE"]
        # The app's settings are fixed once it is created, as Flask expects of its config.
        self.settings = decode_settings(app)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            ids = self._live_session(environ)
        except (TokenRevoked, StoreUnavailable) as error:
            request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
            # A store failure is answered here: handed on, it would be waited out twice.
            note_error(error, self.extension.metrics, request_id)
            body = error_body(error.code, error.message)
            headers = {"X-Error-Code": error.code}
            return self._respond(
                environ, start_response, started, request_id, error.status, body, headers
            )
        except Exception:  # Flask's path answers what this one cannot, errors included
            ids = None
        if ids is None:
            return self.wsgi_app(environ, start_response)
        body, headers = verified(*ids)
        request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        return self._respond(
            environ, start_response, started, request_id, HTTPStatus.OK, body, headers
        )

    def _respond(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        started: float,
        request_id: str,
        status: HTTPStatus,
        body: dict[str, str],
        headers: dict[str, str],
    ) -> Iterable[bytes]:
        """Answer as Flask would: its JSON, status line and headers; count it in the metrics."""
        data = f"{json.dumps(body, separators=(',', ':'))}\n".encode()
        start_response(
            f"{status.value} {status.phrase.upper()}",  # as werkzeug's
            [
                *headers.items(),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                (REQUEST_ID_HEADER, request_id),
            ],
        )
        self.extension.metrics.observe(ENDPOINT, status, time.perf_counter() - started)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [data]

    def _live_session(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """Return the (user id, session id) of a verify request with a valid access token.

        None when this is not such a request; TokenRevoked when its session is not live.
        """
        if environ.get("REQUEST_METHOD") not in self.methods:
            return None
        path = environ.get("PATH_INFO", "")
        # The verify routes, without a repeated slash (werkzeug redirects those).
        if not path.startswith(self.path) or "//" in path:
            return None
        rest = path[len(self.path) :]
        if rest and rest[0] != "/":
            return None
        # A body, even an empty chunked one, is Flask's to size up (413).
        if environ.get("CONTENT_LENGTH") or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        if header_bytes(environ) > self.max_header_bytes:
            return None
        token = self._bearer_token(environ.get(self.header_key))
        if token is None:
            return None
        claims = verified_claims(token, self.settings)
        if claims is None or claims.get("type") != "access":
            return None
        user_id, session_id = session_claims(claims)
        if not self.extension.store.is_live(user_id, session_id):
            raise TokenRevoked()
        return user_id, session_id

    def _bearer_token(self, header: str | None) -> str | None:
        """Return the token of exactly ``<type> <token>``, else None."""
        if not header or not self.header_type:
            return None
        kind, _, token = header.partition(" ")
        if kind != self.header_type or not TOKEN_PATTERN.fullmatch(token):
            return None
        return token


def init_app(app: Flask) -> None:
    """Put the verify fast path in front of the app's WSGI callable."""
    app.wsgi_app = VerifyFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
