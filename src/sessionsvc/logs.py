"""Logs: one JSON object per line, each request's id on its lines, and no secrets.

The app's own records and gunicorn's (``serving.logging``) share one formatter.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from typing import IO

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# The name (never the value) of the service key a request was accepted with, in
# its WSGI environ (web.auth): the access line shows it.
SERVICE_KEY_ENVIRON = "sessionsvc.service_key"
# A request id from the gateway is kept only if it is short and plain: it goes
# into every log line and back into a response header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"
# What could end a text line or pass for another: C0 and C1 controls, DEL, and
# Unicode's line and paragraph separators.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Write each control character of text as an escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], text)


class TextFormatter(logging.Formatter):
    """Plain lines; control characters escaped, so a request cannot write a line of its own.

    (JSON lines escape them already.) A traceback still follows on lines of its own.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


def valid_request_id(value: str | None) -> str | None:
    """Return ``value`` if it may serve as a request id, else None."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


def new_request_id(incoming: str | None) -> str:
    """Return the caller's request id if valid, else a new one."""
    return valid_request_id(incoming) or secrets.token_hex(16)  # as uuid4().hex, for less


def request_id() -> str:
    """Return the current request's id: the caller's ``X-Request-Id`` if valid, else a new one."""
    if "request_id" not in g:
        g.request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
    return g.request_id


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id() if has_request_context() else None
        return True


def formatter(log_format: str = "json") -> logging.Formatter:
    """Return the formatter for ``LOG_FORMAT``: one JSON object per line, or plain text."""
    if log_format == "text":
        return TextFormatter(TEXT_FORMAT)
    return JsonFormatter(
        "%(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        timestamp="time",
    )


def handler(log_format: str = "json", stream: IO[str] | None = None) -> logging.Handler:
    """Return a handler writing ``log_format`` lines, with request ids, to stream (stderr)."""
    result = logging.StreamHandler(stream if stream is not None else sys.stderr)
    result.setFormatter(formatter(log_format))
    result.addFilter(RequestIdFilter())
    return result


def configure(log_format: str, level: str) -> None:
    """Send every record at ``level`` or above to stderr, formatted per ``log_format``."""
    root = logging.getLogger()
    # Replace, not add to, the handler of an app created earlier in this process.
    for old in [h for h in root.handlers if getattr(h, "_sessionsvc", False)]:
        root.removeHandler(old)
    new = handler(log_format)
    new._sessionsvc = True  # type: ignore[attr-defined]  # our mark, found again above
    root.addHandler(new)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings become records too, not bare stderr text


def _assign_request_id() -> None:
    request_id()


def _echo_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def init_app(app: Flask) -> None:
    """Configure logging (unless testing: pytest owns it then) and echo each request's id."""
    if not app.testing:
        configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
