"""gunicorn's logger: the service's formatter on gunicorn's logs, and an access log of safe fields.

The access log is built here from a fixed list of fields, never from gunicorn's
atoms, which hold every request header (``Authorization``, ``X-Service-Key``)
and the query string. Set as ``logger_class`` in gunicorn.conf.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from ..config import LOG_FORMATS
from ..logs import (
    REQUEST_ID_HEADER,
    SERVICE_KEY_ENVIRON,
    RequestIdFilter,
    formatter,
    valid_request_id,
)

USER_AGENT_LIMIT = 256  # characters of the User-Agent put in an access line


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

    def access(
        self, resp: Any, req: Any, environ: MutableMapping[str, Any], request_time: timedelta
    ) -> None:
        """Log one request: method, path (no query string), status, size, time, ids; no headers.

        The ids: the request's, and the name of the service key it came with.
        """
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
                    "service_key": environ.get(SERVICE_KEY_ENVIRON),  # its name, set by the app
                },
            )
        except Exception:
            self.exception("could not write an access log line")
