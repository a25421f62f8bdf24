"""sessionsvc: login sessions, their tokens, and revoking them everywhere at once.

Importing the package loads nothing but this module: ``create_app`` imports what
it registers, so gunicorn's master can read and check the settings
(``sessionsvc.config``) without importing the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then ``SESSIONSVC_*`` environment variables, then test_config."""
    from . import config, extension, logs
    from .web import (
        admin,
        application,
        auth,
        browser,
        cli,
        devices,
        docs,
        errors,
        health,
        jwks,
        metrics,
        proxies,
        ratelimit,
        sessions,
        verify,
        webhooks,
    )

    # No static route at the root: the page serves its files itself, with its headers.
    app = application.App(__name__, instance_path=config.instance_path(), static_folder=None)
    # No redirect for "//" (werkzeug builds it from the Host header): such paths are 404s.
    app.url_map.merge_slashes = False
    config.read(app.config, test_config)
    config.validate(app.config)  # every bad setting named at once, before anything uses one
    logs.init_app(app)  # first: later steps log, and every request gets its id before the rest
    config.warn_if_deployed(app.config)  # development that looks like a real deployment
    config.ensure_secrets(app.config, app.instance_path)
    app.json = errors.JSONProvider(app)
    app.json.sort_keys = False  # keep the documented key order
    extension.init_app(app)
    metrics.init_app(app)
    errors.register_error_handlers(app, extension.sessionsvc(app).metrics)
    auth.init_app(app)  # after extension: the key ring
    ratelimit.init_app(app)
    cli.init_app(app)
    prefix = app.config["URL_PREFIX"]
    app.register_blueprint(sessions.bp, url_prefix=prefix)
    app.register_blueprint(verify.bp, url_prefix=prefix)
    app.register_blueprint(admin.bp, url_prefix=prefix + auth.ADMIN_PATH)
    app.register_blueprint(jwks.bp, url_prefix=prefix)
    app.register_blueprint(webhooks.bp, url_prefix=prefix + auth.ADMIN_PATH)
    health.init_app(app)  # /healthz and /readyz, at the root like /metrics: outside URL_PREFIX
    docs.init_app(app)  # <URL_PREFIX>/openapi.json and /docs
    devices.init_app(app)  # the known devices API, "Was this you?" answers and their page
    browser.init_app(app)  # the devices page and its files, the development sign-in
    verify.init_app(app)  # after every hook and view: it refuses any its fast path would skip
    # X-Forwarded-For counts only from the proxies listed, never from whoever sends it.
    if trusted := app.config["TRUSTED_PROXIES"]:
        # Flask's documented way to add WSGI middleware; mypy sees a method.
        app.wsgi_app = proxies.TrustedProxies(app.wsgi_app, trusted)  # type: ignore[method-assign]  # see above
    return app
