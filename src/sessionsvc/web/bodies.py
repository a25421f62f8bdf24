"""The API's JSON bodies that several blueprints answer: a session, and the revoke confirmations."""

from __future__ import annotations

from typing import Any

from ..domain.sessions import Session, iso
from .openapi_components import coded, ok

SESSION_REVOKED = {"code": "SESSION_REVOKED", "error": "Session has been revoked."}
ALL_SESSIONS_REVOKED = {"code": "ALL_SESSIONS_REVOKE", "error": "All Sessions has been revoked."}
# The same confirmations, as documented responses.
REVOKED_RESPONSE = ok("The session is revoked.", coded(SESSION_REVOKED["code"]))
ALL_REVOKED_RESPONSE = ok("The sessions are revoked.", coded(ALL_SESSIONS_REVOKED["code"]))


def session_json(session: Session, current_session_id: str | None = None) -> dict[str, Any]:
    """Render a session in the API's shape (and key order), with ``current`` for the caller's."""
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
    } | remembered_json(session)


def remembered_json(session: Session) -> dict[str, Any]:
    """Return what a session has beyond a plain login's: only what it has, so plain ones stay.

    ``persistent: false`` (its refresh cookie ends with the browser), its own
    ``idleTimeout`` (s), and a support session's ``support`` (operator, reason).
    """
    extra: dict[str, Any] = {}
    if not session.persistent:
        extra["persistent"] = False
    if session.idle_timeout is not None:
        extra["idleTimeout"] = session.idle_timeout
    if session.actor is not None:
        extra["support"] = {"actor": session.actor, "reason": session.reason or ""}
    return extra
