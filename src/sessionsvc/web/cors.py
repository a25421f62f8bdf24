"""CORS for the sessions API through flask-cors: credentials for ``CORS_ORIGINS`` only."""

from __future__ import annotations

from flask import Response, current_app
from flask_cors.core import get_cors_options, set_cors_headers

from ..config import cors_origins
from .cookies import CSRF_HEADER


def add_cors_headers(response: Response) -> Response:
    """Answer a listed origin, and its preflight, with credentials; any other gets nothing.

    The sessions blueprint's hook, not the app's: verify (a blueprint of its own,
    answered by its fast path) is never CORS-enabled, so a gateway can never
    read a preflight's answer as a pass.
    """
    if origins := cors_origins(current_app.config):
        options = get_cors_options(
            None,  # the current app
            {
                "origins": origins,
                "supports_credentials": True,
                "allow_headers": ["Authorization", "Content-Type", CSRF_HEADER],
                "expose_headers": ["Retry-After"],
                "methods": ["GET", "POST", "DELETE"],
                "max_age": 600,
            },
        )
        set_cors_headers(response, options)
    return response
