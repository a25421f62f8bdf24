"""Devices a user recognises: the caller's, any user's (admin), and "Was this you?" answers.

The known devices live in the store (``store.sessions``: one hash per user);
a login notes its device and is judged there and in ``logins``
(docs/devices.md).
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, request
from flask_jwt_extended import get_jwt

from ..domain.devices import KnownDevice, is_valid_device_id, is_valid_device_name
from ..domain.history import USER, Actor, EndReason, admin
from ..domain.sessions import USER_ID_RULE, is_valid_user_id, iso, now_ms
from ..extension import get_metrics, get_store, sessionsvc
from ..store.errors import StoreUnavailable
from ..tokens import devices as device_tokens
from ..tokens.devices import AnswerToken
from . import cookies, cors
from .auth import service_key, service_key_required, session_of, session_required
from .errors import (
    AnswerAlreadyGiven,
    AnswerTokenExpired,
    DeviceNotFound,
    InvalidAnswerToken,
    InvalidRequest,
)
from .openapi import operation
from .openapi_components import (
    ACCESS,
    ACCESS_REFUSED,
    BAD_USER_ID,
    JSON,
    LIMITED,
    NO_STORE_HEADER,
    SERVICE_KEY_FORBIDDEN,
    SERVICE_KEY_REFUSED,
    SIZE_ERRORS,
    STORE_ERRORS,
    error,
    ok,
    ref,
    service_key_scope,
)
from .ratelimit import limited

log = logging.getLogger(__name__)

bp = Blueprint("devices", __name__, template_folder="templates")
bp.after_request(cors.add_cors_headers)

ANSWER_PAGE_PATH = "/account/security/answer"
# As the devices page's (web/browser.py): own origin only, no inline script, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never sent on
    "Cache-Control": "no-store",
}
DEVICE_NOT_FOUND = error("No such device of this user.", DeviceNotFound)
RENAME_BODY = {
    "required": True,
    "content": {JSON: {"schema": ref("schemas", "DeviceRename")}},
}


def device_json(device: KnownDevice, caller: str | None = None) -> dict[str, Any]:
    """Render a known device in the API's shape."""
    return {
        "id": device.id,
        "name": device.display_name,
        "defaultName": device.name,
        "ownName": device.own_name,
        "firstSeenAt": iso(device.first_seen),
        "lastSeenAt": iso(device.last_seen),
        "location": device.location,
        "trusted": device.trusted,
        "sessionIds": list(device.session_ids),
        "current": caller is not None and caller in device.session_ids,
    }


def _checked_user(user_id: str) -> str:
    if not is_valid_user_id(user_id):
        raise InvalidRequest(f"userId must be {USER_ID_RULE}")
    return user_id


def _new_name() -> str:
    body = request.get_json(silent=True)
    name = body.get("name") if isinstance(body, dict) else None
    if not is_valid_device_name(name):
        raise InvalidRequest(
            'The body must be {"name": 1-64 printable characters, no leading or trailing space}.'
        )
    return name  # type: ignore[return-value]  # checked above


def _rename(user_id: str, device_id: str, caller: str | None) -> dict[str, Any]:
    name = _new_name()
    # An id that cannot exist never becomes part of a Redis key's field: as unknown as any.
    device = is_valid_device_id(device_id) and get_store().rename_device(user_id, device_id, name)
    if not device:
        raise DeviceNotFound()
    return device_json(device, caller)


def _forget(user_id: str, device_id: str, reason: EndReason, by: Actor) -> list[str]:
    if not is_valid_device_id(device_id):
        raise DeviceNotFound()
    existed, revoked = get_store().forget_device(user_id, device_id, reason=reason, by=by)
    if not existed and not revoked:
        raise DeviceNotFound()
    get_metrics().sessions_revoked.inc(len(revoked))
    return revoked


# --- The caller's devices ----------------------------------------------------------------------


@bp.get("/devices")
@operation(
    "listDevices",
    tags=["sessions"],
    summary="List the caller's known devices, the one last seen first.",
    security=ACCESS,
    responses={
        "200": ok("The caller's devices.", ref("schemas", "DeviceList"), NO_STORE_HEADER),
        "401": ACCESS_REFUSED,
        **STORE_ERRORS,
    },
)
@session_required()
def list_devices() -> tuple[dict[str, Any], HTTPStatus, dict[str, str]]:
    """List the caller's known devices."""
    user_id, session_id = session_of(get_jwt())
    devices = get_store().devices(user_id)
    return (
        {"devices": [device_json(device, session_id) for device in devices]},
        HTTPStatus.OK,
        cookies.NO_STORE,
    )


@bp.patch("/devices/<device_id>")
@operation(
    "renameDevice",
    tags=["sessions"],
    summary="Give one of the caller's devices a name of the user's own.",
    security=ACCESS,
    requestBody=RENAME_BODY,
    responses={
        "200": ok("The device, renamed.", ref("schemas", "KnownDevice"), NO_STORE_HEADER),
        "400": error("The name is not 1-64 printable characters.", InvalidRequest),
        "401": ACCESS_REFUSED,
        "404": DEVICE_NOT_FOUND,
        **LIMITED,
        **STORE_ERRORS,
    },
)
@session_required()
@limited
def rename_device(device_id: str) -> tuple[dict[str, Any], HTTPStatus, dict[str, str]]:
    """Rename one of the caller's devices."""
    user_id, session_id = session_of(get_jwt())
    return _rename(user_id, device_id, session_id), HTTPStatus.OK, cookies.NO_STORE


@bp.delete("/devices/<device_id>")
@operation(
    "forgetDevice",
    tags=["sessions"],
    summary="Forget one of the caller's devices and sign out its sessions.",
    security=ACCESS,
    responses={
        "200": ok(
            "The device is forgotten; its sessions signed out.", ref("schemas", "ClaimsUpdated")
        ),
        "401": ACCESS_REFUSED,
        "404": DEVICE_NOT_FOUND,
        **LIMITED,
        **STORE_ERRORS,
    },
)
@session_required()
@limited
def forget_device(device_id: str) -> dict[str, list[str]]:
    """Forget one of the caller's devices and sign out its sessions."""
    user_id, session_id = session_of(get_jwt())
    # The store's forget_device script signs them out and records them in the history.
    revoked = _forget(user_id, device_id, EndReason.REVOKED_BY_USER, USER)
    if session_id in revoked:
        cookies.signed_out()
    return {"sessionIds": revoked}


# --- Any user's devices (support staff) ------------------------------------------------------

ADMIN_ERRORS = {
    "400": BAD_USER_ID,
    "401": SERVICE_KEY_REFUSED,
    "403": SERVICE_KEY_FORBIDDEN,
    **LIMITED,  # too many wrong service keys from one address
    **STORE_ERRORS,
}


def _admin(scope: str) -> dict[str, Any]:
    return {"tags": ["admin"], **service_key_scope(scope)}


@bp.get("/admin/users/<user_id>/devices")
@operation(
    "listUserDevices",
    summary="List a user's known devices, the one last seen first.",
    responses={
        "200": ok("The user's devices.", ref("schemas", "DeviceList"), NO_STORE_HEADER),
        **ADMIN_ERRORS,
    },
    **_admin("admin:read"),
)
@service_key_required("admin:read")
def list_user_devices(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """List a user's known devices."""
    return {"devices": [device_json(d) for d in get_store().devices(_checked_user(user_id))]}


@bp.patch("/admin/users/<user_id>/devices/<device_id>")
@operation(
    "renameUserDevice",
    summary="Rename one of a user's devices.",
    requestBody=RENAME_BODY,
    responses={
        "200": ok("The device, renamed.", ref("schemas", "KnownDevice"), NO_STORE_HEADER),
        **ADMIN_ERRORS,
        "400": error("The userId or the name is not valid.", InvalidRequest),
        "404": DEVICE_NOT_FOUND,
    },
    **_admin("admin:write"),
)
@service_key_required("admin:write")
def rename_user_device(user_id: str, device_id: str) -> dict[str, Any]:
    """Rename one of a user's devices."""
    return _rename(_checked_user(user_id), device_id, None)


@bp.delete("/admin/users/<user_id>/devices/<device_id>")
@operation(
    "forgetUserDevice",
    summary="Forget one of a user's devices and sign out its sessions.",
    responses={
        "200": ok("The sessions signed out.", ref("schemas", "ClaimsUpdated")),
        **ADMIN_ERRORS,
        "404": DEVICE_NOT_FOUND,
    },
    **_admin("admin:write"),
)
@service_key_required("admin:write")
def forget_user_device(user_id: str, device_id: str) -> dict[str, list[str]]:
    """Forget one of a user's devices and sign out its sessions."""
    # The store's forget_device script signs them out and records them in the history.
    by = admin(service_key().name)
    return {
        "sessionIds": _forget(_checked_user(user_id), device_id, EndReason.REVOKED_BY_ADMIN, by)
    }


# --- "Was this you?" -----------------------------------------------------------------------------


def _answer_token(token: object) -> AnswerToken:
    try:
        return device_tokens.read_answer_token(token, sessionsvc().refresh_secret, now_ms() // 1000)
    except device_tokens.ExpiredAnswerToken:
        raise AnswerTokenExpired() from None
    except device_tokens.InvalidAnswerToken:
        raise InvalidAnswerToken() from None


@bp.post("/security/answers")
@operation(
    "answerSecurityQuestion",
    tags=["sessions"],
    summary='Answer "Was this you?" with an event\'s answer token (the token is the'
    " credential): me trusts the device; not_me signs the session (or every session) out.",
    security=[],
    requestBody={"required": True, "content": {JSON: {"schema": ref("schemas", "SecurityAnswer")}}},
    responses={
        "200": ok(
            "The answer, and the sessions signed out.",
            ref("schemas", "SecurityAnswered"),
            NO_STORE_HEADER,
        ),
        "400": error("The body is not valid, or its answer is not the token's.", InvalidRequest),
        "401": error(
            "The token is forged or malformed, or past its 7 days.",
            InvalidAnswerToken,
            AnswerTokenExpired,
        ),
        "409": error(
            "The question was answered already (either token of the pair): nothing changed.",
            AnswerAlreadyGiven,
        ),
        **LIMITED,
        **STORE_ERRORS,
    },
)
@limited
def answer() -> tuple[dict[str, Any], HTTPStatus, dict[str, str]]:
    """Answer "Was this you?"."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    token = _answer_token(body.get("token"))
    everywhere = body.get("signOutEverywhere", False)
    if body.get("answer") not in ("me", "not_me") or not isinstance(everywhere, bool):
        raise InvalidRequest('answer must be "me" or "not_me"; signOutEverywhere a boolean.')
    if body["answer"] != token.answer:
        raise InvalidRequest(f'This token answers "{token.answer}".')
    store = get_store()
    user_id, session_id = token.session
    life_ms = (token.expires - now_ms() // 1000) * 1000
    if not store.answer(
        user_id,
        token.nonce,
        device_id=token.device_id,
        answer=token.answer,
        session_id=session_id,
        life_ms=life_ms,
    ):
        raise AnswerAlreadyGiven()
    revoked: list[str] = []
    if token.answer == "not_me":
        try:
            not_me = EndReason.REPORTED_NOT_ME
            if everywhere:
                revoked = store.revoke_all(user_id, reason=not_me, by=USER)
            elif store.revoke(user_id, session_id, reason=not_me, by=USER):
                revoked = [session_id]
        except StoreUnavailable:
            store.unanswer(user_id, token.nonce)  # so the user can try again
            raise
        get_metrics().sessions_revoked.inc(len(revoked))
        store.publish(
            "account.compromise_reported",
            user_id,
            revoked,
            {
                "deviceId": token.device_id,
                "reportedSessionId": session_id,
                "signOutEverywhere": "1" if everywhere else "",
            },
        )
        log.warning("user %s reported session %s as not theirs", user_id, session_id)
    body = {"answer": token.answer, "deviceId": token.device_id, "sessionIds": revoked}
    return body, HTTPStatus.OK, cookies.NO_STORE


@bp.get(ANSWER_PAGE_PATH)
@operation(
    "getSecurityAnswerPage",
    tags=["browser"],
    summary='The "Was this you?" page for an answer link (HTML): shows the sign-in and asks;'
    " a GET never acts (mail scanners open links).",
    security=[],
    parameters=[
        {
            "name": "token",
            "in": "query",
            "required": False,  # without one, the page says the link is not valid
            "description": "An answer token (answerMe or answerNotMe of the event).",
            "schema": {"type": "string"},
        }
    ],
    responses={
        "200": {
            "description": "The page (also for a token not valid: it says so).",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **SIZE_ERRORS,
    },
)
def answer_page() -> tuple[str, HTTPStatus, dict[str, str]]:
    """Serve the "Was this you?" page: what happened, and the button that answers."""
    raw = request.args.get("token", "")
    context: dict[str, Any] = {"api": current_app.config["URL_PREFIX"], "token": raw}
    try:
        token = _answer_token(raw)
    except AnswerTokenExpired:
        context["problem"] = "expired"
    except InvalidAnswerToken:
        context["problem"] = "invalid"
    else:
        session, device, given = get_store().answer_context(
            *token.session, token.device_id, token.nonce
        )
        context |= {
            "answer": token.answer,
            "given": given,
            "device": device.display_name
            if device
            else (session and f"{session.device.browser} on {session.device.os}")
            or "An unknown device",
            "place": (session.location if session else device.location if device else "unknown"),
            "when": iso(session.created_at)
            if session
            else (iso(device.last_seen) if device else ""),
            "when_text": _readable(
                session.created_at if session else device.last_seen if device else 0
            ),
            "ended": session is None,
            "expires": iso(token.expires * 1000),
        }
    headers = dict(PAGE_HEADERS)
    return render_template("answer.html", **context), HTTPStatus.OK, headers


def _readable(ms: int) -> str:
    """Return a time as people read it: "4 December 2026, 18:53 UTC"."""
    moment = time.gmtime(ms // 1000)
    return f"{moment.tm_mday} {time.strftime('%B %Y, %H:%M', moment)} UTC" if ms else "unknown"


def init_app(app: Flask) -> None:
    """Register the devices API and the answer page."""
    app.register_blueprint(bp, url_prefix=app.config["URL_PREFIX"])
