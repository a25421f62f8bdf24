"""The API's JSON bodies that several blueprints answer: a session, and the revoke confirmations."""

from __future__ import annotations

from typing import Any

from flask import request

from ..domain.history import ActorKind, EndedSession
from ..domain.sessions import Device, Session, iso
from .errors import InvalidRequest
from .openapi_components import HISTORY_LIMIT_MAX, coded, ok

SESSION_REVOKED = {"code": "SESSION_REVOKED", "error": "Session has been revoked."}
ALL_SESSIONS_REVOKED = {"code": "ALL_SESSIONS_REVOKE", "error": "All Sessions has been revoked."}
# The same confirmations, as documented responses.
REVOKED_RESPONSE = ok("The session is revoked.", coded(SESSION_REVOKED["code"]))
ALL_REVOKED_RESPONSE = ok("The sessions are revoked.", coded(ALL_SESSIONS_REVOKED["code"]))


def _device_json(device: Device) -> dict[str, Any]:
    return {
        "browser": device.browser,
        "version": device.version,
        "platform": device.platform,
        "os": device.os,
        "isDev": device.is_dev,
    }


def session_json(session: Session, current_session_id: str | None = None) -> dict[str, Any]:
    """Render a session in the API's shape (and key order), with ``current`` for the caller's.

    How the user signed in comes last, and only when the login or a step-up
    said (``acr``, ``amr``, ``authTime``): a plain session's body is as before.
    """
    body = _session_fields(session, current_session_id)
    assurance = session.assurance
    if assurance.acr:
        body["acr"] = assurance.acr
    if assurance.amr:
        body["amr"] = list(assurance.amr)
    if assurance.acr or assurance.amr or assurance.auth_time is not None:
        body["authTime"] = iso(session.auth_time)
    return body


def _session_fields(session: Session, current_session_id: str | None) -> dict[str, Any]:
    device = session.device
    body: dict[str, Any] = {
        "device": _device_json(device),
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
    return body | remembered_json(session)


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


def ended_json(ended: EndedSession, *, key_names: bool) -> dict[str, Any]:
    """Render an ended session of the history; with ``key_names``, the admin key's name too.

    A user's own history says an admin ended a session, not which service key
    did: key names are the operator's, for support staff's answers.
    """
    by: dict[str, Any] = {"type": ended.ended_by.kind.value}
    if key_names and ended.ended_by.kind is ActorKind.ADMIN and ended.ended_by.name:
        by["name"] = ended.ended_by.name
    body: dict[str, Any] = {
        "_id": ended.id,
        "reason": ended.reason.value,
        "endedBy": by,
        "endedAt": iso(ended.ended_at),
        "createdAt": None if ended.created_at is None else iso(ended.created_at),
        "lastActiveAt": None if ended.last_active_at is None else iso(ended.last_active_at),
        "device": None if ended.device is None else _device_json(ended.device),
        "location": ended.location,
        "ip": ended.ip,
    }
    if ended.device_id is not None:
        body["deviceId"] = ended.device_id
    return body


def history_limit() -> int | None:
    """Return the request's ``?limit`` (1 to HISTORY_LIMIT_MAX), None when absent; refuse others."""
    text = request.args.get("limit")
    if text is None:
        return None
    # The length first: int() of thousands of digits is refused (and slow).
    if not (text.isascii() and text.isdigit() and len(text) <= 5):
        raise InvalidRequest(f"limit must be a whole number from 1 to {HISTORY_LIMIT_MAX}.")
    if not 1 <= int(text) <= HISTORY_LIMIT_MAX:
        raise InvalidRequest(f"limit must be a whole number from 1 to {HISTORY_LIMIT_MAX}.")
    return int(text)
