"""Commands added to the app's CLI (``sessionsvc ...`` or ``flask --app sessionsvc ...``)."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ..domain.claims import InvalidClaims, parse_claims
from ..domain.sessions import USER_ID_RULE, is_valid_user_id
from ..extension import events_stream, sessionsvc
from ..store import StoreError
from ..tokens.keyring import ALGORITHMS, KID_PATTERN, KID_RULE, new_jwk
from ..webhooks import process
from .logins import Login, start_session


@click.command("create-session")
@click.argument("user_id")
@click.option("--user-agent", default="", help="User-Agent to record for the session.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Client IP to record.")
@click.option("--claims", default="", help='Session claims as JSON, e.g. \'{"role": "admin"}\'.')
@with_appcontext
def create_session_command(user_id: str, user_agent: str, ip: str, claims: str) -> None:
    """Create a session for USER_ID and print its tokens as JSON."""
    if not is_valid_user_id(user_id):
        raise click.BadParameter(USER_ID_RULE, param_hint="USER_ID")
    try:
        session_claims = parse_claims(json.loads(claims)) if claims else None
    except InvalidClaims as error:
        raise click.BadParameter(str(error), param_hint="--claims") from None
    except ValueError:
        raise click.BadParameter("not valid JSON", param_hint="--claims") from None
    try:
        body, _session = start_session(Login(user_id, user_agent, ip, session_claims))
    except StoreError as error:
        url = current_app.config["REDIS_URL"] or "the embedded Valkey (is `make run` running?)"
        raise click.ClickException(f"{error} ({url})") from error
    click.echo(json.dumps(body, indent=2))


@click.command("new-key")
@click.option("--kid", required=True, help=f"The key's id: {KID_RULE}.")
@click.option("--alg", type=click.Choice(list(ALGORITHMS)), default="EdDSA", show_default=True)
@click.option("--active", is_flag=True, help="Mark it the key that signs.")
def new_key_command(kid: str, alg: str, active: bool) -> None:
    """Print a new private JWK, for a JWT_KEYS JWK Set (docs/keys.md)."""
    if not KID_PATTERN.fullmatch(kid):
        raise click.BadParameter(KID_RULE, param_hint="--kid")
    click.echo(json.dumps(new_jwk(alg, kid, active=active), indent=2))


@click.command("webhooks")
@with_appcontext
def webhooks_command() -> None:
    """Deliver the events to the WEBHOOKS endpoints until stopped (SIGTERM); see docs/events.md."""
    app = current_app
    config = app.config
    stream = events_stream(config)
    if not stream:
        raise click.ClickException(
            'SESSIONSVC_EVENTS_STREAM is off (""): there is nothing to deliver'
        )
    redis = process.redis_client(config, app.instance_path)
    try:
        worker = process.worker_from_config(config, redis, sessionsvc(app).keys, stream)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    process.run(worker, config["WEBHOOK_LISTEN"])


def init_app(app: Flask) -> None:
    app.cli.add_command(create_session_command)
    app.cli.add_command(new_key_command)
    app.cli.add_command(webhooks_command)
