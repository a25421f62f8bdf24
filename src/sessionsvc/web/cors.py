"""CORS for the sessions API through flask-cors: credentials for ``CORS_ORIGINS`` only."""

from __future__ import annotations

import re

from flask import Response, current_app
from flask_cors import cross_origin

from .cookies import CSRF_HEADER


def exact(origins: list[str]) -> list[re.Pattern[str]]:
    """Return patterns matching exactly these origins, in any case.

    flask-cors reads an origin holding ``*``, ``?``, ``[`` or the like as a
    regular expression (``http://[::1]:8080`` would match ``http://1:8080``),
    and a regular expression as a prefix: given compiled, each is taken as it is.
    """
    return [re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in origins]


def add_cors_headers(response: Response) -> Response:
    """Answer a listed origin, and its preflight, with credentials; any other gets nothing.

    The sessions blueprint's hook, not the app's: verify (a blueprint of its own,
    answered by its fast path) is never CORS-enabled, so a gateway can never
    read a preflight's answer as a pass. The blueprint serves every app of the
    process, each with origins of its own, so flask-cors' decorator is applied
    here, per response, to the response the view made; Flask keeps answering
    OPTIONS itself (``automatic_options=False``).
    """
    if origins := current_app.config["CORS_ORIGINS"]:  # a list: config.validate made it one
        with_cors = cross_origin(
            origins=exact(origins),
            supports_credentials=True,
            allow_headers=["Authorization", "Content-Type", CSRF_HEADER],
            expose_headers=["Retry-After"],
            methods=["GET", "POST", "DELETE"],
            max_age=600,
            automatic_options=False,
        )
        return with_cors(lambda: response)()
    return response
