"""Starting a session, and what the API says about one: for the views and the CLI.

Needs an app context (the store, the locator, the metrics and the JWT settings
are the app's), not a request: nothing here imports a blueprint.
"""

from __future__ import annotations

from typing import Any

from . import claims
from .auth import access_token
from .claims import Claims
from .device import parse_device
from .extension import get_locator, get_metrics, get_store
from .models import Session, iso
from .refresh import new_refresh_secret, refresh_token


def session_json(session: Session, current_session_id: str | None = None) -> dict[str, Any]:
    """Render a session in the seed's shape (and key order), plus our extra fields."""
    device = session.device
    return {
        "device": {
            "browser": device.browser,
            "version": device.version,
            "platform": device.platform,
            "os": device.os,
            "isDev": device.is_dev,
        },
        "location": session.location,
        "_id": session.id,
        "expireAt": iso(session.expire_at),
        "createdAt": iso(session.created_at),
        "lastActiveAt": iso(session.last_active_at),
        "ip": session.ip,
        "current": session.id == current_session_id,
    }


def issue_tokens(
    user_id: str,
    session_id: str,
    expire_at: int,
    refresh_secret: str,
    session_claims: Claims | None = None,
) -> dict[str, str]:
    """Return a session's token pair: a new access token, and its refresh token."""
    return {
        "accessToken": access_token(user_id, session_id, expire_at, session_claims),
        "refreshToken": refresh_token(user_id, session_id, refresh_secret),
    }


def start_session(
    user_id: str, user_agent: str, ip: str, session_claims: Claims | None = None
) -> tuple[dict[str, Any], Session]:
    """Record a login; return the create endpoint's body (tokens and session), and the session."""
    refresh_secret = new_refresh_secret()
    session, evicted = get_store().create(
        user_id,
        device=parse_device(user_agent),
        ip=ip,
        location=get_locator().locate(ip),
        refresh_secret=refresh_secret,
        claims=claims.encode(session_claims) if session_claims else "",
    )
    get_metrics().sessions_created.inc()
    get_metrics().sessions_evicted.inc(len(evicted))
    tokens = issue_tokens(user_id, session.id, session.expire_at, refresh_secret, session_claims)
    return tokens | {"session": session_json(session, session.id)}, session
