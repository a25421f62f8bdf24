"""Browsers: the "Your devices" page and its JS client, and a development sign-in."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from werkzeug.exceptions import NotFound

from ..config import is_loopback_host, is_production
from . import cookies
from .errors import CsrfRejected, InvalidRequest
from .logins import login_body, start_session
from .openapi import operation
from .openapi_components import (
    JSON,
    NO_STORE_HEADER,
    ROUTE_NOT_FOUND,
    SIZE_ERRORS,
    STORE_ERRORS,
    error,
    ok,
    ref,
)
from .proxies import PEER_KEY

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
# Headers by which a proxy names the client it forwards (RFC 7239's Forwarded too).
FORWARDING_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


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
        dev_sign_in=None
        if is_production(config) or not from_this_host()
        else config["URL_PREFIX"] + DEV_SIGN_IN_PATH,
    )


@operation(
    "devSignIn",
    tags=["browser"],
    summary="Development only (404 in production, and to a client not on this host):"
    " sign this browser in as a new session.",
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
        "404": ROUTE_NOT_FOUND,  # also to a client not on this host
        **STORE_ERRORS,
    },
)
def dev_sign_in() -> Response:
    """Start a session for a typed user id and User-Agent, as this browser (development only)."""
    if not from_this_host():
        raise NotFound  # as in production: nothing here for anyone else
    cookies.require_csrf_header()  # it sets the cookie: a login CSRF otherwise
    body, session = start_session(login_body())
    return cookies.token_response(
        body,
        HTTPStatus.CREATED,
        cookie=True,
        expire_at=session.expire_at,
        persistent=session.persistent,
    )


def forwarded_hosts() -> list[str]:
    """Return every client address the request's forwarding headers name."""
    hosts = []
    for name in FORWARDING_HEADERS:
        for value in request.headers.getlist(name):
            for item in value.split(","):
                if name == "Forwarded":  # for=192.0.2.7;proto=http, for="[2001:db8::1]:4711"
                    pairs = (pair.partition("=") for pair in item.split(";"))
                    item = next((v for k, _, v in pairs if k.strip().lower() == "for"), "")
                    item = item.strip().strip('"')
                    item = item.partition("]")[0] if item.startswith("[") else item.split(":")[0]
                hosts.append(item.strip())
    return [host for host in hosts if host]


def from_this_host() -> bool:
    """Tell whether the request comes from this machine, and was forwarded by no one from afar.

    The peer is the address the WSGI server saw (REMOTE_ADDR), as TrustedProxies
    keeps it (``proxies.PEER_KEY``) when it made ``remote_addr`` the client's:
    a proxy on this host (deploy/nginx.conf) is loopback too, so any forwarded
    client it names must be loopback as well, whether trusted or not.
    """
    original = request.environ.get(PEER_KEY)
    peer = original or request.environ.get("REMOTE_ADDR") or ""
    addresses = [peer, request.remote_addr or "", *forwarded_hosts()]
    return all(is_loopback_host(address) for address in addresses)


def add_security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def init_app(app: Flask) -> None:
    """Register the page, its files and (outside production) the development sign-in."""
    app.register_blueprint(make_blueprint(app.config), url_prefix=app.config["URL_PREFIX"])
