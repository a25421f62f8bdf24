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
    body = {
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
    if session.device_id:  # sessions from before devices (issue 19) have none
        body["deviceId"] = session.device_id
    if session.risk:
        body["risk"] = {"level": session.risk[0], "signals": list(session.risk[1:])}
    return body
