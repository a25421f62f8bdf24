"""The support staff's API: any user's sessions, behind a service key with the route's scope."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request

from ..domain.claims import parse_claims, stored
from ..domain.history import EndReason, admin
from ..domain.sessions import USER_ID_RULE, is_valid_session_id, is_valid_user_id
from ..extension import get_metrics, get_store
from . import cookies
from .auth import (
    admin_paths_are_not_stored,
    admin_paths_need_a_key,
    service_key,
    service_key_required,
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
from .errors import InvalidRequest, SessionNotFound
from .logins import start_session, support_body
from .openapi import operation
from .openapi_components import (
    BAD_USER_ID,
    HISTORY_LIMIT,
    JSON,
    LIMITED,
    NO_STORE_HEADER,
    ROUTE_NOT_FOUND,
    SERVICE_KEY_FORBIDDEN,
    SERVICE_KEY_REFUSED,
    SESSION_NOT_FOUND,
    STORE_ERRORS,
    error,
    ok,
    ref,
    service_key_scope,
)

bp = Blueprint("admin", __name__)
# Any path under it, route or not, needs a valid key (401); each view, its scope (403).
bp.before_app_request(admin_paths_need_a_key)
bp.after_app_request(admin_paths_are_not_stored)  # users' IP addresses and locations


def _admin(scope: str) -> dict[str, Any]:
    return {"tags": ["admin"], **service_key_scope(scope)}


def _checked(user_id: str) -> str:
    if not is_valid_user_id(user_id):
        raise InvalidRequest(f"userId must be {USER_ID_RULE}")
    return user_id


@bp.get("/users/<user_id>/sessions")
@operation(
    "listUserSessions",
    summary="List a user's live sessions, newest first.",
    responses={
        "200": ok("The user's sessions.", ref("schemas", "SessionList"), NO_STORE_HEADER),
        "400": BAD_USER_ID,
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **LIMITED,  # too many wrong service keys from one address
        "404": ROUTE_NOT_FOUND,
        **STORE_ERRORS,
    },
    **_admin("admin:read"),
)
@service_key_required("admin:read")
def list_user_sessions(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """List a user's live sessions, newest first."""
    sessions = get_store().list_sessions(_checked(user_id)) or []  # None only for a caller
    return {"sessions": [session_json(session) for session in sessions]}


@bp.get("/users/<user_id>/sessions/history")
@operation(
    "listUserSessionHistory",
    summary="List a user's ended sessions of the last HISTORY_DAYS: why, by whom, when.",
    parameters=[HISTORY_LIMIT],
    responses={
        "200": ok(
            "The user's security activity, the latest ended first; endedBy names the"
            " service key of an admin's revoke.",
            ref("schemas", "SessionHistory"),
            NO_STORE_HEADER,
        ),
        "400": error("The userId or limit is not valid.", InvalidRequest),
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **LIMITED,  # too many wrong service keys from one address
        "404": ROUTE_NOT_FOUND,
        **STORE_ERRORS,
    },
    **_admin("admin:read"),
)
@service_key_required("admin:read")
def list_user_session_history(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """List a user's ended sessions of the last HISTORY_DAYS, the latest ended first."""
    user_id, limit = _checked(user_id), history_limit()
    ended = get_store().history(user_id, limit=limit)
    return {"sessions": [ended_json(each, key_names=True) for each in ended]}


@bp.post("/users/<user_id>/sessions")
@operation(
    "createSupportSession",
    summary="Open a support session on a user's behalf: the operator is recorded, its tokens "
    "carry `act`, its life is capped by SUPPORT_SESSION_LIFETIME, and the user sees and can "
    "end it.",
    requestBody={
        "required": True,
        "content": {JSON: {"schema": ref("schemas", "SupportSessionRequest")}},
    },
    responses={
        "201": ok(
            "The support session and its tokens (always in the body: an operator's tool"
            " is no browser of the user's).",
            ref("schemas", "Login"),
            NO_STORE_HEADER,
        ),
        "400": error(
            "The userId, actor, reason, lifetime, userAgent or ip is not valid.", InvalidRequest
        ),
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **LIMITED,  # too many wrong service keys from one address
        "404": ROUTE_NOT_FOUND,
        **STORE_ERRORS,
    },
    **_admin("support:create"),
)
@service_key_required("support:create")
def create_support_session(user_id: str) -> Response:
    """Open a support session on a user's behalf, recording the operator."""
    body, _session = start_session(support_body(_checked(user_id)))
    return cookies.token_response(body, HTTPStatus.CREATED, cookie=False, expire_at=0)


@bp.delete("/users/<user_id>/sessions/<session_id>")
@operation(
    "revokeUserSession",
    summary="Revoke one session of a user.",
    responses={
        "200": REVOKED_RESPONSE,
        "400": BAD_USER_ID,
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **LIMITED,  # too many wrong service keys from one address
        "404": SESSION_NOT_FOUND,
        **STORE_ERRORS,
    },
    **_admin("admin:write"),
)
@service_key_required("admin:write")
def revoke_user_session(user_id: str, session_id: str) -> dict[str, str]:
    """Revoke one session of a user."""
    user_id = _checked(user_id)
    by = admin(service_key().name)
    if not is_valid_session_id(session_id) or not get_store().revoke(
        user_id, session_id, reason=EndReason.REVOKED_BY_ADMIN, by=by
    ):
        raise SessionNotFound()
    get_metrics().sessions_revoked.inc()
    return SESSION_REVOKED


@bp.delete("/users/<user_id>/sessions")
@operation(
    "revokeUserSessions",
    summary="Revoke every session of a user (after an account compromise).",
    responses={
        "200": ALL_REVOKED_RESPONSE,
        "400": BAD_USER_ID,
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **LIMITED,  # too many wrong service keys from one address
        "404": ROUTE_NOT_FOUND,
        **STORE_ERRORS,
    },
    **_admin("admin:write"),
)
@service_key_required("admin:write")
def revoke_user_sessions(user_id: str) -> dict[str, str]:
    """Revoke every session of a user (after an account compromise)."""
    revoked = get_store().revoke_all(
        _checked(user_id), reason=EndReason.REVOKED_BY_ADMIN, by=admin(service_key().name)
    )
    get_metrics().sessions_revoked.inc(len(revoked))
    return ALL_SESSIONS_REVOKED


def _claims_body() -> str:
    """Return the body's new claims as stored (JSON, '' for none), or refuse the body."""
    body = request.get_json(silent=True)
    if not (isinstance(body, dict) and "claims" in body):
        raise InvalidRequest('The body must be a JSON object with "claims" ({} for none).')
    return stored(parse_claims(body["claims"]))


CLAIMS_CHANGE: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": ref("schemas", "ClaimsUpdate")}},
    },
    "responses": {
        "200": ok("The live sessions whose claims were replaced.", ref("schemas", "ClaimsUpdated")),
        "400": error("The userId or the claims are not valid.", InvalidRequest),
        "401": SERVICE_KEY_REFUSED,
        "403": SERVICE_KEY_FORBIDDEN,
        **STORE_ERRORS,
    },
    **_admin("claims:write"),
}


@bp.put("/users/<user_id>/sessions/<session_id>/claims")
@operation(
    "setSessionClaims",
    summary="Replace one session's claims: verify returns them from the next request on, "
    "and access tokens from the next refresh.",
    **CLAIMS_CHANGE | {"responses": CLAIMS_CHANGE["responses"] | {"404": SESSION_NOT_FOUND}},
)
@service_key_required("claims:write")
def set_session_claims(user_id: str, session_id: str) -> dict[str, list[str]]:
    """Replace one session's claims."""
    user_id, claims_json = _checked(user_id), _claims_body()
    changed = is_valid_session_id(session_id) and get_store().set_claims(
        user_id, session_id, claims_json
    )
    if not changed:
        raise SessionNotFound()
    return {"sessionIds": changed}


@bp.put("/users/<user_id>/claims")
@operation(
    "setUserClaims",
    summary="Replace the claims of every live session of a user (a role revoked bites at the "
    "gateway on the next request).",
    **CLAIMS_CHANGE | {"responses": CLAIMS_CHANGE["responses"] | {"404": ROUTE_NOT_FOUND}},
)
@service_key_required("claims:write")
def set_user_claims(user_id: str) -> dict[str, list[str]]:
    """Replace the claims of every live session of a user."""
    return {"sessionIds": get_store().set_claims(_checked(user_id), None, _claims_body())}
