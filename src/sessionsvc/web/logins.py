"""A login: its body as the login service sends it, starting its session, issuing its tokens.

Needs an app context (the store, the locator, the metrics and the JWT settings
are the app's); create, the development sign-in and the CLI share it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from flask import g, request

from ..domain import claims
from ..domain.assurance import NO_ASSURANCE, Assurance, InvalidAssurance, parse_assurance
from ..domain.claims import SessionClaims, parse_claims
from ..domain.devices import parse_device
from ..domain.sessions import USER_ID_RULE, Session, SessionRef, is_valid_user_id, now_ms
from ..extension import get_locator, get_metrics, get_store, sessionsvc
from ..tokens.access import access_token
from ..tokens.refresh import new_refresh_secret, refresh_token
from .bodies import session_json
from .errors import InvalidRequest

F = TypeVar("F", bound=Callable[..., Any])


class Login(NamedTuple):
    """A login as the login service describes it (create's body)."""

    user_id: str
    user_agent: str
    ip: str
    session_claims: SessionClaims | None
    assurance: Assurance = NO_ASSURANCE  # acr, amr, authTime: how the user signed in


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
    session_claims = parse_claims(body["claims"]) if "claims" in body else None
    try:
        assurance = parse_assurance(body, now_ms())
    except InvalidAssurance as error:
        raise InvalidRequest(str(error)) from None
    return Login(user_id, user_agent, ip, session_claims, assurance)  # type: ignore[arg-type]  # user_id: checked


def login_body_required(view: F) -> F:
    """Read and check the login body before the view and its rate limits, which key on it.

    So a body refused (400) spends no allowance, and no unchecked userId becomes
    a counter's Redis key.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.sessionsvc_login = login_body()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def checked_login() -> Login:
    """Return the login ``login_body_required`` read."""
    return g.sessionsvc_login


def issue_tokens(
    session: SessionRef,
    expire_at: int,
    refresh_secret: str,
    session_claims: SessionClaims | None = None,
    assurance: Assurance = NO_ASSURANCE,
) -> dict[str, str]:
    """Return a session's token pair: a new access token, and its refresh token."""
    return {
        "accessToken": access_token(session, expire_at, session_claims, assurance),
        "refreshToken": refresh_token(session, refresh_secret, sessionsvc().refresh_secret),
    }


def start_session(login: Login) -> tuple[dict[str, Any], Session]:
    """Record a login; return the create endpoint's body (tokens and session), and the session."""
    refresh_secret = new_refresh_secret()
    session, evicted = get_store().create(
        login.user_id,
        device=parse_device(login.user_agent),
        ip=login.ip,
        location=get_locator().locate(login.ip),
        refresh_secret=refresh_secret,
        claims_json=claims.stored(login.session_claims),
        assurance=login.assurance,
    )
    get_metrics().sessions_created.inc()
    get_metrics().sessions_evicted.inc(len(evicted))
    ref = SessionRef(login.user_id, session.id)
    tokens = issue_tokens(
        ref,
        session.expire_at,
        refresh_secret,
        login.session_claims,
        login.assurance.at(session.created_at),
    )
    return tokens | {"session": session_json(session, session.id)}, session
