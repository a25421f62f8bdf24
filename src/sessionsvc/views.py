"""The sessions API: thin views that parse, call the store and answer."""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, NamedTuple, TypeVar

from flask import Blueprint, g, request
from flask_jwt_extended import get_jwt

from . import cookies, cors
from .auth import service_key_required, session_claims, session_required
from .claims import Claims, decode, parse_claims
from .cookies import NO_STORE  # token answers' header, and personal data's (list, verify, admin)
from .errors import (
    CsrfRejected,
    InvalidRequest,
    InvalidToken,
    RefreshTokenReused,
    SessionNotFound,
    TokenRevoked,
)
from .extension import get_metrics, get_store
from .models import USER_ID_RULE, Rotation, is_valid_session_id, is_valid_user_id
from .openapi import operation
from .openapi_components import (
    ACCESS,
    ACCESS_REFUSED,
    JSON,
    LIMITED,
    LOGIN_LINKS,
    NO_STORE_HEADER,
    REFRESH,
    REFRESH_ERRORS,
    SERVICE,
    SERVICE_KEY_REFUSED,
    SESSION_NOT_FOUND,
    STORE_ERRORS,
    coded,
    error,
    ok,
    one_of,
    ref,
    unauthorized,
)
from .ratelimit import limited
from .refresh import new_refresh_secret, presented_refresh, refresh_token_required
from .service import issue_tokens, session_json, start_session

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("sessions", __name__)
bp.after_request(cors.add_cors_headers)  # CORS_ORIGINS; verify has a blueprint of its own
log = logging.getLogger(__name__)

SESSION_REVOKED = {"code": "SESSION_REVOKED", "error": "Session has been revoked."}
ALL_SESSIONS_REVOKED = {"code": "ALL_SESSIONS_REVOKE", "error": "All Sessions has been revoked."}
# The seed's confirmations, as documented responses (admin.py answers them too).
REVOKED_RESPONSE = ok("The session is revoked.", coded(SESSION_REVOKED["code"]))
ALL_REVOKED_RESPONSE = ok("The sessions are revoked.", coded(ALL_SESSIONS_REVOKED["code"]))


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


class Login(NamedTuple):
    """A login as the login service describes it (create's body)."""

    user_id: str
    user_agent: str
    ip: str
    claims: Claims | None


def login_body() -> Login:
    """Return the request's login, or raise InvalidRequest saying what is wrong with it."""
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
    return Login(
        user_id, user_agent, ip, parse_claims(body["claims"]) if "claims" in body else None
    )


def login_body_required(view: F) -> F:
    """Read and check the login body before the view and its rate limits, which key on it.

    So a body refused (400) spends no allowance, and no unchecked userId becomes
    a counter's Redis key.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.sessionsvc_login = login_body()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@bp.post("/sessions")
@operation(
    "createSession",
    tags=["sessions"],
    summary="Record a login (called by the trusted login service) and issue its tokens.",
    security=SERVICE,
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
            "The body is not a JSON object, or userId, userAgent or ip is not valid.",
            InvalidRequest,
        ),
        "401": SERVICE_KEY_REFUSED,
        **LIMITED,
        **STORE_ERRORS,
    },
)
@service_key_required
@login_body_required
@limited
def create_session():
    """Record a login (called by the trusted login service) and issue its tokens."""
    body, session = start_session(*g.sessionsvc_login)
    return cookies.token_response(
        body, HTTPStatus.CREATED, cookie=cookies.creates_cookie(), expire_at=session.expire_at
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
def refresh_session():
    """Rotate the refresh token; a rotated-out token presented again revokes the session."""
    presented = presented_refresh()
    user_id, session_id = presented.user_id, presented.session_id
    refresh = get_store().rotate_refresh(
        user_id, session_id, presented.secret, new_refresh_secret(), issued=presented.issued
    )
    if refresh.rotation is Rotation.UNKNOWN:
        raise InvalidToken("The refresh token is not valid.")
    if refresh.rotation is Rotation.REUSED:
        get_metrics().theft_detected.inc()
        log.warning("refresh token reused: session %s of %s revoked", session_id, user_id)
        raise RefreshTokenReused()
    if refresh.rotation is Rotation.GONE:
        raise TokenRevoked()
    get_metrics().sessions_refreshed.inc()
    tokens = issue_tokens(
        user_id, session_id, refresh.expire_at, refresh.refresh_secret, decode(refresh.claims)
    )
    return cookies.token_response(
        tokens, HTTPStatus.OK, cookie=cookies.came_in_cookie(), expire_at=refresh.expire_at
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
def list_sessions():
    """List the caller's live sessions, newest first."""
    claims = get_jwt()
    user_id, session_id = session_claims(claims)
    sessions = get_store().list(user_id, caller=session_id, token_expiry=claims["exp"])
    if sessions is None:
        raise TokenRevoked()
    body = {"sessions": [session_json(session, session_id) for session in sessions]}
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
def revoke_session(session_id: str):
    """Revoke one of the caller's sessions."""
    claims = get_jwt()
    user_id, caller = session_claims(claims)
    store = get_store()
    asking = {"token_expiry": claims["exp"]}
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
def revoke_all_sessions():
    """Revoke every session of the caller, or all but its own with ``?keep=current``."""
    user_id, session_id = session_claims(get_jwt())
    keep = request.args.get("keep")
    if keep not in (None, "current"):
        raise InvalidRequest("keep must be 'current' or absent.")
    revoked = get_store().revoke_all(user_id, keep=session_id if keep == "current" else None)
    if keep is None:
        cookies.signed_out()
    get_metrics().sessions_revoked.inc(len(revoked))
    return ALL_SESSIONS_REVOKED
