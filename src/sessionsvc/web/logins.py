"""A login: its body as the login service sends it, starting its session, issuing its tokens.

Needs an app context (the store, the locator, the metrics and the JWT settings
are the app's); create, the development sign-in and the CLI share it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from flask import current_app, g, request

from ..domain import claims
from ..domain.claims import SessionClaims, parse_claims
from ..domain.devices import (
    CLIENT_HINTS,
    MAX_HINT_LENGTH,
    default_device_name,
    new_device_id,
    parse_device,
    with_client_hints,
)
from ..domain.risk import Risk, Spot, judge, signals
from ..domain.sessions import USER_ID_RULE, Session, SessionRef, is_valid_user_id, now_ms
from ..extension import get_locator, get_metrics, get_store, sessionsvc
from ..tokens.access import access_token
from ..tokens.devices import answer_tokens, device_token, read_device_token
from ..tokens.refresh import new_refresh_secret, refresh_token
from .bodies import session_json
from .cookies import DEVICE_COOKIE
from .errors import InvalidRequest

F = TypeVar("F", bound=Callable[..., Any])


class Login(NamedTuple):
    """A login as the login service describes it (create's body)."""

    user_id: str
    user_agent: str
    ip: str
    session_claims: SessionClaims | None
    device_token: str | None = None  # as presented: not checked yet
    client_hints: dict[str, str] = {}  # noqa: RUF012 (never changed)


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
    # A device token of any other shape is as unknown as a forged one: a new device.
    token = body.get("deviceToken", request.cookies.get(DEVICE_COOKIE))
    hints = _client_hints(body.get("clientHints", {}))
    return Login(
        user_id,  # type: ignore[arg-type]  # checked
        user_agent,
        ip,
        session_claims,
        token if isinstance(token, str) else None,
        hints,
    )


def _client_hints(value: object) -> dict[str, str]:
    """Return the Client Hints the body forwards (names as sessionsvc spells them); 400 if bad."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and _is_text(v) and len(v) <= MAX_HINT_LENGTH for k, v in value.items()
    ):
        raise InvalidRequest(
            f"clientHints must be an object of header names to strings of at most"
            f" {MAX_HINT_LENGTH} characters."
        )
    names = {name.lower(): name for name in CLIENT_HINTS}
    return {names[k.lower()]: v for k, v in value.items() if k.lower() in names}


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
) -> dict[str, str]:
    """Return a session's token pair: a new access token, and its refresh token."""
    return {
        "accessToken": access_token(session, expire_at, session_claims),
        "refreshToken": refresh_token(session, refresh_secret, sessionsvc().refresh_secret),
    }


def start_session(login: Login) -> tuple[dict[str, Any], Session]:
    """Record a login; return the create endpoint's body (tokens and session), and the session.

    The login is judged against the user's history first (its device, place and
    time: ``domain.risk``), and announced when new or risky (docs/devices.md).
    """
    refresh_secret = new_refresh_secret()
    store, tag_secret = get_store(), sessionsvc().refresh_secret
    device = with_client_hints(parse_device(login.user_agent), login.client_hints)
    place = get_locator().place(login.ip)
    device_id, history = store.device_login(
        login.user_id,
        read_device_token(login.device_token, tag_secret),
        name=default_device_name(device),
        new_id=new_device_id(),
        place=place,
    )
    now = now_ms()
    found = signals(history, Spot(now, place.country, place.latitude, place.longitude))
    risk = judge(found, current_app.config["RISK_LEVELS"])
    session, evicted = store.create(
        login.user_id,
        device=device,
        ip=login.ip,
        location=place.location,
        refresh_secret=refresh_secret,
        claims_json=claims.stored(login.session_claims),
        device_id=device_id,
        risk=(risk.level, *risk.signals),
    )
    get_metrics().sessions_created.inc()
    get_metrics().sessions_evicted.inc(len(evicted))
    ref = SessionRef(login.user_id, session.id)
    _announce(ref, device_id, risk)
    tokens = issue_tokens(ref, session.expire_at, refresh_secret, login.session_claims)
    return tokens | {
        "session": session_json(session, session.id),
        "deviceToken": device_token(device_id, tag_secret),
        "risk": risk.json(),
    }, session


def _announce(session: SessionRef, device_id: str, risk: Risk) -> None:
    """Emit session.new_device and session.risky, with a "Was this you?" pair, when due.

    Not on a first login (nothing to compare with) nor a low-risk one on a known device.
    """
    kinds = ["session.new_device"] if "new_device" in risk.signals else []
    if risk.level != "low":
        kinds.append("session.risky")
    if not kinds:
        return
    pair = answer_tokens(session, device_id, sessionsvc().refresh_secret, now_ms() // 1000)
    fields = {
        "deviceId": device_id,
        "riskLevel": risk.level,
        "signals": ",".join(risk.signals),
        "answerMe": pair["me"],
        "answerNotMe": pair["notMe"],
    }
    for kind in kinds:
        get_store().publish(kind, session.user_id, [session.session_id], fields)
