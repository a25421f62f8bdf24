"""sessionsvc: login sessions, their tokens, and revoking them everywhere at once."""

from __future__ import annotations

from typing import Any

from flask import Flask

from . import admin, auth, cli, config, errors, extension, openapi, views


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then ``SESSIONSVC_*`` environment variables, then test_config."""
    app = Flask(__name__, instance_path=config.instance_path())
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_prefixed_env("SESSIONSVC")
    if test_config is not None:
        app.config.from_mapping(test_config)
    config.ensure_secrets(app.config, app.instance_path)
    config.apply_jwt_settings(app.config)
    app.json.sort_keys = False  # keep the seed's key order

    errors.register_error_handlers(app)
    extension.init_app(app)
    auth.jwt.init_app(app)
    cli.init_app(app)
    prefix = app.config["URL_PREFIX"]
    app.register_blueprint(views.bp, url_prefix=prefix)
    app.register_blueprint(admin.bp, url_prefix=f"{prefix}/admin")
    app.register_blueprint(openapi.bp, url_prefix=prefix)
    return app
