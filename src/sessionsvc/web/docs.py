"""The OpenAPI document at ``<URL_PREFIX>/openapi.json``, and Swagger UI showing it at ``/docs``.

Swagger UI is served from the flask-swagger-ui package's own files (no network needed).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app
from flask_swagger_ui import get_swaggerui_blueprint

from .openapi import build_spec, operation
from .openapi_components import META, SIZE_ERRORS, ok, ref

bp = Blueprint("openapi", __name__)
DOCS = "docs"  # the blueprint of Swagger UI's page and files at <URL_PREFIX>/docs/


@bp.get("/openapi.json")
@operation(
    "getOpenApi",
    summary="This document.",
    responses={"200": ok("The OpenAPI 3.1 document.", {"type": "object"})}
    | SIZE_ERRORS
    | {"500": ref("responses", "InternalError")},
    **META,
)
def openapi_json() -> dict[str, Any]:
    """Serve the OpenAPI document."""
    return build_spec(current_app)  # the proxy serves: build_spec only reads attributes


def init_app(app: Flask) -> None:
    """Serve the document at ``<URL_PREFIX>/openapi.json`` and Swagger UI at ``/docs``."""
    prefix = app.config["URL_PREFIX"]
    app.register_blueprint(bp, url_prefix=prefix)
    docs = get_swaggerui_blueprint(
        f"{prefix}/docs",
        f"{prefix}/openapi.json",
        config={"app_name": "sessionsvc API"},
        blueprint_name=DOCS,
    )
    app.register_blueprint(docs)  # not in the document: a page about it, not an operation
