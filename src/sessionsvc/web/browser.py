"""Browsers: the "Your devices" page and its JS client, and a development sign-in."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template

from ..config import is_production
from . import cookies
from .errors import CsrfRejected, InvalidRequest
from .logins import login_body, start_session
from .openapi import operation
from .openapi_components import (
    JSON,
    NO_STORE_HEADER,
    SIZE_ERRORS,
    STORE_ERRORS,
    error,
    ok,
    ref,
)

# The page and its module, CSS and client load from our own origin only; no
# inline script or style, no framing (clickjacking a "Sign out" button).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DEV_SIGN_IN_PATH = "/dev/sign-in"


def make_blueprint(config: dict[str, Any]) -> Blueprint:
    """Return the page's blueprint: the page at ``UI_PATH``, its files under ``/ui/``."""
    bp = Blueprint(
        "browser",
        __name__,
        static_folder="static",
        static_url_path="/ui",
        template_folder="templates",
    )
    if config["UI_PATH"]:
        bp.add_url_rule(config["UI_PATH"], "devices_page", devices_page)
    if not is_production(config):
        bp.add_url_rule(DEV_SIGN_IN_PATH, "dev_sign_in", dev_sign_in, methods=["POST"])
    bp.after_request(add_security_headers)
    return bp


@operation(
    "getDevicesPage",
    tags=["browser"],
    summary='The "Your devices" page (HTML; its module, client and CSS are under /ui/).',
    security=[],
    responses={
        "200": {
            "description": "The page, with its Content-Security-Policy.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **SIZE_ERRORS,
    },
)
def devices_page() -> str:
    """Serve the "Your devices" page."""
    config = current_app.config
    return render_template(
        "devices.html",
        api=config["URL_PREFIX"],
        login_url=config["UI_LOGIN_URL"],
        dev_sign_in=None if is_production(config) else config["URL_PREFIX"] + DEV_SIGN_IN_PATH,
    )


@operation(
    "devSignIn",
    tags=["browser"],
    summary="Development only (404 in production): sign this browser in as a new session.",
    security=[],
    parameters=["CsrfHeader"],  # a component: apispec refers to it by name
    requestBody={"required": True, "content": {JSON: {"schema": ref("schemas", "LoginRequest")}}},
    responses={
        "201": ok(
            "The session; the refresh token is in the Set-Cookie line only.",
            ref("schemas", "BrowserLogin"),
            NO_STORE_HEADER,
        ),
        "400": error("The body is not a JSON object, or a field is not valid.", InvalidRequest),
        "403": error("No X-Requested-With header.", CsrfRejected),
        **STORE_ERRORS,
    },
)
def dev_sign_in() -> Response:
    """Start a session for a typed user id and User-Agent, as this browser (development only)."""
    cookies.require_csrf_header()  # it sets the cookie: a login CSRF otherwise
    body, session = start_session(login_body())
    return cookies.token_response(
        body, HTTPStatus.CREATED, cookie=True, expire_at=session.expire_at
    )


def add_security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def init_app(app: Flask) -> None:
    """Register the page, its files and (outside production) the development sign-in."""
    app.register_blueprint(make_blueprint(app.config), url_prefix=app.config["URL_PREFIX"])
