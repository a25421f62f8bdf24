"""Logs: one JSON object per line, each request's id on its lines, and no secrets.

The app's own records and gunicorn's (its error log and its access log) share
one formatter. The access log is built here from a fixed list of fields, never
from gunicorn's atoms, which hold every request header (``Authorization``,
``X-Service-Key``) and the query string.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import IO, Any

from flask import Flask, Response, g, has_request_context, request
from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# A request id from the gateway is kept only if it is short and plain: it goes
# into every log line and back into a response header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
USER_AGENT_LIMIT = 256  # characters of the User-Agent put in an access line

LOG_FORMATS = ("json", "text")
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
    new._sessionsvc = True  # type: ignore[attr-defined]
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


def _log_format_from_env() -> str:
    # The app reads SESSIONSVC_LOG_FORMAT through Flask's config (JSON-decoded
    # where it can be); gunicorn's logger has no app, so it reads it the same way.
    raw = os.environ.get("SESSIONSVC_LOG_FORMAT", "json")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return value if value in LOG_FORMATS else "json"


def _header(headers: Iterable[tuple[str, str]] | Mapping[str, str], name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name.lower():
            return value
    return None


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with our formatter, and an access log of safe fields only.

    Set as ``logger_class`` in gunicorn.conf.py.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if cfg.logconfig or cfg.logconfig_dict or getattr(cfg, "logconfig_json", None):
            return  # the operator's logging configuration has the last word
        fmt = formatter(_log_format_from_env())
        # Without one, gunicorn's two loggers (which do not propagate) hold only
        # the handlers its setup just made: its error log, access log, syslog.
        for log in (self.error_log, self.access_log):
            for own in log.handlers:
                own.setFormatter(fmt)
                own.addFilter(RequestIdFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        """Log one request: method, path (no query string), status, size, time, ids; no headers."""
        # The same switch as gunicorn's own access(): an access log is configured.
        cfg = self.cfg
        if not (
            cfg.accesslog
            or cfg.logconfig
            or cfg.logconfig_dict
            or getattr(cfg, "logconfig_json", None)
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        ):
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        method = environ.get("REQUEST_METHOD", "-")
        path = environ.get("PATH_INFO", "-")
        # The app sets the response's id; a request it never saw keeps a valid incoming one.
        request_id = _header(resp.headers, REQUEST_ID_HEADER) or valid_request_id(
            environ.get("HTTP_X_REQUEST_ID")
        )
        try:
            self.access_log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": int(status),
                    "bytes": getattr(resp, "sent", None),
                    "duration_ms": round(request_time.total_seconds() * 1000, 3),
                    "remote_addr": environ.get("REMOTE_ADDR"),
                    "user_agent": environ.get("HTTP_USER_AGENT", "")[:USER_AGENT_LIMIT],
                    "protocol": environ.get("SERVER_PROTOCOL"),
                },
            )
        except Exception:
            self.exception("could not write an access log line")
