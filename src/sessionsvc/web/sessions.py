"""The sessions API: thin views that parse, call the store and answer."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request
from flask_jwt_extended import get_jwt

from ..domain.claims import decode
from ..domain.history import EndReason
from ..domain.sessions import Rotation, SessionRef, is_valid_session_id
from ..extension import get_metrics, get_store, sessionsvc
from ..tokens.refresh import successor_secret
from . import cookies, cors
from .auth import (
    presented_refresh,
    refresh_token_required,
    service_key_required,
    session_of,
    session_required,
)
from .bodies import (
    ALL_REVOKED_RESPONSE,
    ALL_SESSIONS_REVOKED,
    REVOKED_RESPONSE,
    SESSION_REVOKED,
    ended_json,
    history_limit,
    session_json,
)
from .cookies import NO_STORE  # token answers' header, and personal data's (list, verify, admin)
from .errors import (
    CsrfRejected,
    InvalidRequest,
    InvalidToken,
    RefreshTokenReused,
    SessionNotFound,
    TokenRevoked,
)
from .logins import checked_login, issue_tokens, login_body_required, start_session
from .openapi import operation
from .openapi_components import (
    ACCESS,
    ACCESS_REFUSED,
    HISTORY_LIMIT,
    JSON,
    LIMITED,
    LOGIN_LINKS,
    NO_STORE_HEADER,
    REFRESH,
    REFRESH_ERRORS,
    SERVICE_KEY_FORBIDDEN,
    SERVICE_KEY_REFUSED,
    SESSION_NOT_FOUND,
    STORE_ERRORS,
    error,
    ok,
    one_of,
    ref,
    service_key_scope,
    unauthorized,
)
from .ratelimit import limited

bp = Blueprint("sessions", __name__)
bp.after_request(cors.add_cors_headers)  # CORS_ORIGINS; verify has a blueprint of its own
log = logging.getLogger(__name__)
# What a refresh token that refreshes nothing gets, unless it is provably issued.
REFRESH_REFUSED = "The refresh token is not valid."


@bp.post("/sessions")
@operation(
    "createSession",
    tags=["sessions"],
    summary="Record a login (called by the trusted login service) and issue its tokens.",
    **service_key_scope("sessions:create"),
    requestBody={"required": True, "content": {JSON: {"schema": ref("schemas", "LoginRequest")}}},
    responses={
        "201": ok(
            "The session and its tokens; with REFRESH_TOKEN_TRANSPORT=cookie, the refresh"
            " token only as the Set-Cookie line to pass on to the browser (docs/browser.md).",
            one_of("Login", "BrowserLogin"),
            NO_STORE_HEADER,
        )
        | {"links": LOGIN_LINKS},
        "400": error(
            "The body is not a JSON object, or userId, userAgent, ip, claims, lifetime,"
            " persistent or idleTimeout is not valid.",
            InvalidRequest,
        ),
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **LIMITED,
        **STORE_ERRORS,
    },
)
@service_key_required("sessions:create")
@login_body_required
@limited
def create_session() -> Response:
    """Record a login (called by the trusted login service) and issue its tokens."""
    body, session = start_session(checked_login())
    return cookies.token_response(
        body,
        HTTPStatus.CREATED,
        cookie=cookies.creates_cookie(),
        expire_at=session.expire_at,
        persistent=session.persistent,
    )


@bp.post("/sessions/refresh")
@operation(
    "refreshSession",
    tags=["sessions"],
    summary="Rotate the tokens; a rotated-out refresh token presented again revokes the session.",
    security=REFRESH,
    responses={
        "200": ok(
            "A new token pair; for the refresh cookie, the access token and the rotated cookie.",
            one_of("Tokens", "AccessToken"),
            NO_STORE_HEADER,
        ),
        "401": unauthorized(REFRESH_ERRORS),
        "403": error("The refresh cookie came without X-Requested-With.", CsrfRejected),
        **LIMITED,
        **STORE_ERRORS,
    },
)
@refresh_token_required
@limited
def refresh_session() -> Response:
    """Rotate the refresh token; a rotated-out token presented again revokes the session."""
    presented = presented_refresh()
    user_id, session_id = presented.user_id, presented.session_id
    session = SessionRef(user_id, session_id)
    successor = successor_secret(session, presented.secret, sessionsvc().refresh_secret)
    refresh = get_store().rotate_refresh(
        user_id, session_id, presented.secret, successor, issued=presented.issued
    )
    # A token not provably issued here learns nothing of its session: a guess
    # at a live one and any token of a dead or unknown one get the same answer,
    # or every holder of a session id (any upstream) could tell if it is live.
    if refresh.rotation is Rotation.UNKNOWN or (
        refresh.rotation is Rotation.GONE and not presented.issued
    ):
        raise InvalidToken(REFRESH_REFUSED)
    if refresh.rotation is Rotation.REUSED:
        get_metrics().theft_detected.inc()
        log.warning("refresh token reused: session %s of %s revoked", session_id, user_id)
        raise RefreshTokenReused()
    if refresh.rotation is Rotation.GONE:
        raise TokenRevoked()
    get_metrics().sessions_refreshed.inc()
    tokens = issue_tokens(
        session,
        refresh.expire_at,
        refresh.refresh_secret,
        decode(refresh.claims_json),
        actor=refresh.actor or None,
    )
    return cookies.token_response(
        tokens,
        HTTPStatus.OK,
        cookie=cookies.came_in_cookie(),
        expire_at=refresh.expire_at,
        persistent=refresh.persistent,
    )


@bp.get("/sessions")
@operation(
    "listSessions",
    tags=["sessions"],
    summary="List the caller's live sessions, newest first.",
    security=ACCESS,
    responses={
        "200": ok("The caller's sessions.", ref("schemas", "SessionList"), NO_STORE_HEADER),
        "401": ACCESS_REFUSED,
        **STORE_ERRORS,
    },
)
@session_required(view_checks_session=True)
def list_sessions() -> tuple[dict[str, Any], HTTPStatus, dict[str, str]]:
    """List the caller's live sessions, newest first."""
    payload = get_jwt()
    user_id, session_id = session_of(payload)
    sessions = get_store().list_sessions(user_id, caller=session_id, token_expiry=payload["exp"])
    if sessions is None:
        raise TokenRevoked()
    body = {"sessions": [session_json(session, session_id) for session in sessions]}
    return body, HTTPStatus.OK, NO_STORE  # IP addresses and locations: no cache keeps them


@bp.get("/sessions/history")
@operation(
    "listSessionHistory",
    tags=["sessions"],
    summary="List the caller's ended sessions of the last HISTORY_DAYS: why, by whom, when.",
    security=ACCESS,
    parameters=[HISTORY_LIMIT],
    responses={
        "200": ok(
            "The caller's security activity, the latest ended first.",
            ref("schemas", "SessionHistory"),
            NO_STORE_HEADER,
        ),
        "400": error("limit is not a whole number from 1 to 10000.", InvalidRequest),
        "401": ACCESS_REFUSED,
        **STORE_ERRORS,
    },
)
@session_required()
def list_session_history() -> tuple[dict[str, Any], HTTPStatus, dict[str, str]]:
    """List the caller's ended sessions of the last HISTORY_DAYS, the latest ended first."""
    limit = history_limit()
    user_id, _ = session_of(get_jwt())
    ended = get_store().history(user_id, limit=limit)
    body = {"sessions": [ended_json(each, key_names=False) for each in ended]}
    return body, HTTPStatus.OK, NO_STORE  # IP addresses and locations: no cache keeps them


@bp.delete("/sessions/<session_id>")
@operation(
    "revokeSession",
    tags=["sessions"],
    summary="Revoke one of the caller's sessions.",
    security=ACCESS,
    responses={
        "200": REVOKED_RESPONSE,
        "401": ACCESS_REFUSED,
        "404": SESSION_NOT_FOUND,
        **LIMITED,
        **STORE_ERRORS,
    },
)
@session_required(view_checks_session=True)
@limited
def revoke_session(session_id: str) -> dict[str, str]:
    """Revoke one of the caller's sessions."""
    payload = get_jwt()
    user_id, caller = session_of(payload)
    store = get_store()
    asking = {"token_expiry": payload["exp"]}
    # An id that cannot exist never becomes a Redis key; it is as unknown as any other.
    if not is_valid_session_id(session_id):
        revoked = False if store.is_live(user_id, caller, **asking) else None
    else:
        revoked = store.revoke(user_id, session_id, caller=caller, **asking)
    if revoked is None:
        raise TokenRevoked()
    if not revoked:
        raise SessionNotFound()
    if session_id == caller:
        cookies.signed_out()
    get_metrics().sessions_revoked.inc()
    return SESSION_REVOKED


@bp.delete("/sessions")
@operation(
    "revokeAllSessions",
    tags=["sessions"],
    summary="Revoke every session of the caller, or all but its own with `?keep=current`.",
    security=ACCESS,
    parameters=[
        {
            "name": "keep",
            "in": "query",
            "required": False,
            "description": "`current` keeps the caller's own session.",
            "schema": {"type": "string", "enum": ["current"]},
        }
    ],
    responses={
        "200": ALL_REVOKED_RESPONSE,
        "400": error("keep is neither absent nor `current`.", InvalidRequest),
        "401": ACCESS_REFUSED,
        **LIMITED,
        **STORE_ERRORS,
    },
)
@session_required()
@limited
def revoke_all_sessions() -> dict[str, str]:
    """Revoke every session of the caller, or all but its own with ``?keep=current``."""
    user_id, session_id = session_of(get_jwt())
    keep = request.args.get("keep")
    if keep not in (None, "current"):
        raise InvalidRequest("keep must be 'current' or absent.")
    # Signing out the others from this device is ending them one by one, at once.
    reason = EndReason.SIGNED_OUT_EVERYWHERE if keep is None else EndReason.REVOKED_BY_USER
    revoked = get_store().revoke_all(
        user_id, keep=session_id if keep == "current" else None, reason=reason
    )
    if keep is None:
        cookies.signed_out()
    get_metrics().sessions_revoked.inc(len(revoked))
    return ALL_SESSIONS_REVOKED
