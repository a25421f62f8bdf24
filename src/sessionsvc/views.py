"""The sessions API: thin views that parse, call the store and answer."""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request
from flask_jwt_extended import get_jwt
from werkzeug.exceptions import MethodNotAllowed

from .auth import (
    issue_tokens,
    new_refresh_secret,
    presented_refresh,
    service_key_required,
    session_claims,
    session_required,
)
from .device import parse_device
from .errors import InvalidRequest, RefreshTokenReused, SessionNotFound, TokenRevoked
from .extension import get_store
from .geo import get_locator
from .metrics import get_metrics
from .ratelimit import limited
from .store import USER_ID_RULE, Rotation, Session, is_valid_session_id, is_valid_user_id

bp = Blueprint("sessions", __name__)
log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
SESSION_REVOKED = {"code": "SESSION_REVOKED", "error": "Session has been revoked."}
ALL_SESSIONS_REVOKED = {"code": "ALL_SESSIONS_REVOKE", "error": "All Sessions has been revoked."}


@functools.lru_cache(maxsize=8192)
def iso(ms: int) -> str:
    """Format epoch milliseconds like the seed: ``2020-12-21T02:23:36.380Z``."""
    # 30 times per list of 10, mostly the same values again (createdAt and expireAt
    # never change): remembered, and strftime on a struct_time, a third of datetime's cost.
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


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


def _address(value: object) -> str | None:
    """Return value as a normalized IP address, or None if it is not one (or has a %zone)."""
    if not isinstance(value, str):  # ip_address() would take an int as an address
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # A zone names an interface of the sender's own host: meaningless here, and free text.
    if getattr(address, "scope_id", None) is not None:
        return None
    return str(address)


def _is_text(value: object) -> bool:
    """Tell whether value is a string that encodes as UTF-8 (JSON can carry lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _login_body() -> tuple[str, str, str]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    user_id = body.get("userId")
    if not is_valid_user_id(user_id):
        raise InvalidRequest(f"userId must be {USER_ID_RULE}")
    user_agent = body.get("userAgent", request.user_agent.string)
    if not _is_text(user_agent):
        raise InvalidRequest("userAgent must be a string of Unicode text.")
    if "ip" in body:
        ip = _address(body["ip"])
        if ip is None:
            raise InvalidRequest("ip must be an IPv4 or IPv6 address (without a %zone).")
    else:
        # Behind a gateway on a Unix socket the request has no address of its own.
        ip = _address(request.remote_addr) or "unknown"
    return user_id, user_agent, ip


def start_session(user_id: str, user_agent: str, ip: str) -> dict[str, Any]:
    """Record a login and return its tokens and session, as the create endpoint answers."""
    refresh_secret = new_refresh_secret()
    session, evicted = get_store().create(
        user_id,
        device=parse_device(user_agent),
        ip=ip,
        location=get_locator().locate(ip),
        refresh_jti=refresh_secret,
    )
    get_metrics().sessions_created.inc()
    get_metrics().sessions_evicted.inc(len(evicted))
    tokens = issue_tokens(user_id, session.id, session.expire_at, refresh_secret)
    return tokens | {"session": session_json(session, session.id)}


@bp.post("/sessions")
@service_key_required
@limited
def create_session():
    """Record a login (called by the trusted login service) and issue its tokens."""
    return start_session(*_login_body()), HTTPStatus.CREATED, NO_STORE


@bp.post("/sessions/refresh")
@limited
def refresh_session():
    """Rotate the refresh token; a rotated-out token presented again revokes the session."""
    presented = presented_refresh()
    user_id, session_id = presented.user_id, presented.session_id
    refresh = get_store().rotate_refresh(
        user_id, session_id, presented.secret, new_refresh_secret()
    )
    if refresh.rotation is Rotation.REUSED:
        get_metrics().theft_detected.inc()
        log.warning("refresh token reused: session %s of %s revoked", session_id, user_id)
        raise RefreshTokenReused()
    if refresh.rotation is Rotation.GONE:
        raise TokenRevoked()
    get_metrics().sessions_refreshed.inc()
    tokens = issue_tokens(user_id, session_id, refresh.expire_at, refresh.refresh_jti)
    return tokens, HTTPStatus.OK, NO_STORE


# nginx and Traefik call verify with GET; Envoy's ext_authz (HTTP) keeps the
# original request's method and appends its path to the configured path prefix.
# OPTIONS is routed here only to be refused: flask-jwt-extended checks no token
# on OPTIONS, and any automatic OPTIONS answer is a 200 a gateway takes for a pass.
VERIFY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
VERIFY = {"methods": [*VERIFY_METHODS, "OPTIONS"], "provide_automatic_options": False}


def verified(user_id: str, session_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Return verify's 200 body and headers for a live session (fastpath.py answers the same)."""
    headers = {"X-User-Id": user_id, "X-Session-Id": session_id, **NO_STORE}
    return {"userId": user_id, "sessionId": session_id}, headers


@bp.route("/sessions/verify", **VERIFY)
@bp.route("/sessions/verify/", **VERIFY)
@bp.route("/sessions/verify/<path:_original_path>", **VERIFY)
@session_required()
def verify_session(_original_path: str = ""):
    """Answer a gateway's forward-auth: 200 with the caller's ids while its session is live.

    The token check (one Redis round trip) is all the work; a dead session never
    gets here (401).
    """
    if request.method == "OPTIONS":
        raise MethodNotAllowed(valid_methods=VERIFY_METHODS)
    body, headers = verified(*session_claims(get_jwt()))
    return body, HTTPStatus.OK, headers


@bp.after_request
def repeat_verify_error_code(response: Response) -> Response:
    """Repeat a verify error's code in ``X-Error-Code``: nginx's auth_request drops the body."""
    if request.endpoint == "sessions.verify_session" and response.status_code >= 400:
        body = response.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            response.headers["X-Error-Code"] = body["code"]
    return response


@bp.get("/sessions")
@session_required(view_checks_session=True)
def list_sessions():
    """List the caller's live sessions, newest first."""
    user_id, session_id = session_claims(get_jwt())
    sessions = get_store().list(user_id, caller=session_id)
    if sessions is None:
        raise TokenRevoked()
    return {"sessions": [session_json(session, session_id) for session in sessions]}


@bp.delete("/sessions/<session_id>")
@session_required(view_checks_session=True)
@limited
def revoke_session(session_id: str):
    """Revoke one of the caller's sessions."""
    user_id, caller = session_claims(get_jwt())
    store = get_store()
    # An id that cannot exist never becomes a Redis key; it is as unknown as any other.
    if not is_valid_session_id(session_id):
        revoked = False if store.is_live(user_id, caller) else None
    else:
        revoked = store.revoke(user_id, session_id, caller=caller)
    if revoked is None:
        raise TokenRevoked()
    if not revoked:
        raise SessionNotFound()
    get_metrics().sessions_revoked.inc()
    return SESSION_REVOKED


@bp.delete("/sessions")
@session_required()
@limited
def revoke_all_sessions():
    """Revoke every session of the caller, or all but its own with ``?keep=current``."""
    user_id, session_id = session_claims(get_jwt())
    keep = request.args.get("keep")
    if keep not in (None, "current"):
        raise InvalidRequest("keep must be 'current' or absent.")
    revoked = get_store().revoke_all(user_id, keep=session_id if keep == "current" else None)
    get_metrics().sessions_revoked.inc(len(revoked))
    return ALL_SESSIONS_REVOKED
