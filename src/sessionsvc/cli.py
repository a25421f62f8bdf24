"""The ``sessionsvc`` command: Flask's CLI for this app, plus a way to try the API."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import FlaskGroup

from . import create_app
from .auth import issue_tokens, new_jti
from .device import parse_device
from .errors import SessionsvcError
from .extension import get_store
from .store import is_valid_user_id
from .views import session_json


@click.group(cls=FlaskGroup, create_app=create_app)
def cli() -> None:
    """Manage the session service."""


@cli.command("create-session")
@click.argument("user_id")
@click.option("--user-agent", default="", help="User-Agent to record for the session.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Client IP to record.")
def create_session_command(user_id: str, user_agent: str, ip: str) -> None:
    """Create a session for USER_ID and print its tokens as JSON."""
    if not is_valid_user_id(user_id):
        raise click.BadParameter("1-128 characters of A-Z a-z 0-9 . _ @ + : -", param_hint="USER_ID")
    refresh_jti = new_jti()
    try:
        session, _evicted = get_store().create(
            user_id, device=parse_device(user_agent), ip=ip, location="unknown",
            refresh_jti=refresh_jti,
        )
    except SessionsvcError as error:
        url = current_app.config["REDIS_URL"] or "the embedded Valkey (is `make run` running?)"
        raise click.ClickException(f"{error.message} ({url})") from error
    tokens = issue_tokens(user_id, session.id, session.expire_at, refresh_jti)
    click.echo(json.dumps(tokens | {"session": session_json(session, session.id)}, indent=2))
