"""Browsers: the "Your devices" page and its JS client, CORS, and a development sign-in."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask_cors import CORS

from . import cookies
from .config import ConfigError
from .errors import CsrfRejected
from .views import _login_body, start_session

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
TRANSPORTS = ("body", "cookie")
DEV_SIGN_IN_PATH = "/dev/sign-in"


def is_production(config: dict[str, Any]) -> bool:
    return config["ENV"] == "production"


def cors_origins(config: dict[str, Any]) -> list[str]:
    """Return ``CORS_ORIGINS`` as a list (a JSON list, or a comma-separated string)."""
    origins = config["CORS_ORIGINS"] or []
    if isinstance(origins, str):
        origins = [origin.strip() for origin in origins.split(",") if origin.strip()]
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigError(f"CORS_ORIGINS must be a list of origins, not {origins!r}")
    if "*" in origins:
        raise ConfigError("CORS_ORIGINS cannot be '*': credentials go to named origins only")
    return origins


def check_config(config: dict[str, Any]) -> None:
    """Refuse a browser setting that cannot work."""
    if config["REFRESH_TOKEN_TRANSPORT"] not in TRANSPORTS:
        raise ConfigError(
            f"REFRESH_TOKEN_TRANSPORT must be one of {', '.join(TRANSPORTS)}, "
            f"not {config['REFRESH_TOKEN_TRANSPORT']!r}"
        )
    ui_path = config["UI_PATH"]
    if not isinstance(ui_path, str) or (ui_path and not ui_path.startswith("/")):
        raise ConfigError(f"UI_PATH must be empty or start with '/', not {ui_path!r}")
    cors_origins(config)


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


def devices_page() -> str:
    """Serve the "Your devices" page."""
    config = current_app.config
    return render_template(
        "devices.html",
        api=config["URL_PREFIX"],
        login_url=config["UI_LOGIN_URL"],
        dev_sign_in=None if is_production(config) else config["URL_PREFIX"] + DEV_SIGN_IN_PATH,
    )


def dev_sign_in() -> Response:
    """Start a session for a typed user id and User-Agent, as this browser (development only)."""
    if not request.headers.get(cookies.CSRF_HEADER):
        raise CsrfRejected()
    tokens = start_session(*_login_body())
    return cookies.token_response(tokens, HTTPStatus.CREATED, cookie=True)


def add_security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def init_app(app: Flask) -> None:
    """Register the page and CORS (only for CORS_ORIGINS, and never on verify)."""
    config = app.config
    check_config(config)
    prefix = config["URL_PREFIX"]
    app.register_blueprint(make_blueprint(config), url_prefix=prefix)
    cookies.init_app(app)
    if origins := cors_origins(config):
        # Verify is left out: a gateway must never read a preflight's answer as a pass.
        sessions = rf"^{prefix}/sessions(/(?!verify(/|$))[^/]*)?$"
        CORS(
            app,
            resources={sessions: {}},
            origins=origins,
            supports_credentials=True,
            allow_headers=["Authorization", "Content-Type", cookies.CSRF_HEADER],
            expose_headers=["Retry-After"],
            methods=["GET", "POST", "DELETE"],
            max_age=600,
        )
