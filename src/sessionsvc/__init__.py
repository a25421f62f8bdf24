"""sessionsvc: login sessions, their tokens, and revoking them everywhere at once."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    admin,
    auth,
    cli,
    config,
    errors,
    extension,
    fastpath,
    health,
    jwks,
    logs,
    metrics,
    openapi,
    ratelimit,
    views,
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then ``SESSIONSVC_*`` environment variables, then test_config."""
    app = Flask(__name__, instance_path=config.instance_path())
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_prefixed_env("SESSIONSVC")
    if test_config is not None:
        app.config.from_mapping(test_config)
    logs.init_app(app)  # first: later steps log, and every request gets its id before the rest
    config.ensure_secrets(app.config, app.instance_path)
    app.json.sort_keys = False  # keep the seed's key order
    extension.init_app(app)
    metrics.init_app(app)
    errors.register_error_handlers(app)
    auth.init_app(app)  # after extension: the key ring
    ratelimit.init_app(app)
    cli.init_app(app)
    prefix = app.config["URL_PREFIX"]
    app.register_blueprint(views.bp, url_prefix=prefix)
    app.register_blueprint(admin.bp, url_prefix=f"{prefix}/admin")
    app.register_blueprint(jwks.bp, url_prefix=prefix)
    health.init_app(app)  # /healthz and /readyz, at the root like /metrics: outside URL_PREFIX
    app.register_blueprint(openapi.bp, url_prefix=prefix)
    fastpath.init_app(app)
    # The client address is the X-Forwarded-For entry our own gateway appended; any
    # earlier entry came from the client and is never trusted.
    if hops := config.trusted_proxies(app.config):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)
    return app
