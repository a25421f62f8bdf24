"""A login: its body as the login service sends it, starting its session, issuing its tokens.

Needs an app context (the store, the locator, the metrics and the JWT settings
are the app's); create, the development sign-in and the CLI share it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from flask import current_app, g, request

from ..config import MIN_IDLE_TIMEOUT
from ..domain import claims
from ..domain.assurance import NO_ASSURANCE, Assurance, InvalidAssurance, parse_assurance
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
from ..domain.sessions import (
    SUPPORT_REASON_PATTERN,
    SUPPORT_REASON_RULE,
    USER_ID_RULE,
    Session,
    SessionRef,
    is_valid_user_id,
    now_ms,
)
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
    # Remember-me (docs/sessions-lifetime.md); None: the settings'.
    lifetime: int | None = None
    persistent: bool = True
    idle_timeout: int | None = None
    # A support session's operator and reason (docs/support-sessions.md).
    actor: str | None = None
    reason: str | None = None
    assurance: Assurance = NO_ASSURANCE  # acr, amr, authTime: how the user signed in


def _seconds(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    """Return body[name], whole seconds from low to high; None when absent; else refuse."""
    if name not in body:
        return None
    value = body[name]
    # JSON's integers include 60.0; bool is an int to Python, but true is no number.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise InvalidRequest(f"{name} must be a whole number of seconds from {low} to {high}.")
    return value


def idle_timeout_bounds(config: Mapping[str, Any]) -> tuple[int, int]:
    """Return the idle timeouts a login may ask for: (lowest, highest), in seconds.

    Never above SESSION_IDLE_TIMEOUT when it is on (a login may only tighten
    it), else above SESSION_LIFETIME; never below production's minimum
    (MIN_IDLE_TIMEOUT), unless the highest is (development's short settings).
    """
    highest = config["SESSION_IDLE_TIMEOUT"] or config["SESSION_LIFETIME"]
    return min(MIN_IDLE_TIMEOUT, highest), highest


def support_lifetime_cap(config: Mapping[str, Any]) -> int:
    """Return the longest life of a support session (s): SUPPORT_SESSION_LIFETIME, or less."""
    return min(config["SUPPORT_SESSION_LIFETIME"], config["SESSION_LIFETIME"])


def _remember_me(body: dict[str, Any]) -> tuple[int | None, bool, int | None]:
    """Return the body's lifetime, persistent and idleTimeout; refuse bad ones."""
    config = current_app.config
    lifetime = _seconds(body, "lifetime", 1, config["SESSION_LIFETIME"])
    persistent = body.get("persistent", True)
    if not isinstance(persistent, bool):
        raise InvalidRequest("persistent must be true or false.")
    return lifetime, persistent, _seconds(body, "idleTimeout", *idle_timeout_bounds(config))


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


def _json_object() -> dict[str, Any]:
    """Return the request's body, or refuse it when it is not a JSON object."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


def login_body() -> Login:
    """Return the request's login, or raise InvalidRequest saying what is wrong with it."""
    body = _json_object()
    user_id = body.get("userId")
    if not is_valid_user_id(user_id):
        raise InvalidRequest(f"userId must be {USER_ID_RULE}")
    return _login(user_id, body)  # type: ignore[arg-type]  # user_id: checked


def support_body(user_id: str) -> Login:
    """Return the request's support session for ``user_id`` (checked), or refuse its body.

    Its life is at most SUPPORT_SESSION_LIFETIME (and SESSION_LIFETIME), by
    default that; no idle timeout or persistence of its own.
    """
    body = _json_object()
    actor, reason = body.get("actor"), body.get("reason")
    if not is_valid_user_id(actor):
        raise InvalidRequest(f"actor must be an operator's id: {USER_ID_RULE}")
    if not (
        isinstance(reason, str) and _is_text(reason) and SUPPORT_REASON_PATTERN.fullmatch(reason)
    ):
        raise InvalidRequest(f"reason must be {SUPPORT_REASON_RULE}.")
    cap = support_lifetime_cap(current_app.config)
    lifetime = _seconds(body, "lifetime", 1, cap) or cap
    login = _login(user_id, {k: v for k, v in body.items() if k in ("userAgent", "ip")})
    return login._replace(lifetime=lifetime, actor=actor, reason=reason)


def _login(user_id: str, body: dict[str, Any]) -> Login:
    """Return the login of ``user_id`` (checked) the rest of ``body`` describes."""
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
    # A device token of any other shape is as unknown as a forged one: a new device.
    token = body.get("deviceToken", request.cookies.get(DEVICE_COOKIE))
    hints = _client_hints(body.get("clientHints", {}))
    lifetime, persistent, idle_timeout = _remember_me(body)
    return Login(
        user_id,
        user_agent,
        ip,
        session_claims,
        token if isinstance(token, str) else None,
        hints,
        lifetime,
        persistent,
        idle_timeout,
        assurance=assurance,
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
    assurance: Assurance = NO_ASSURANCE,
    *,
    actor: str | None = None,
) -> dict[str, str]:
    """Return a session's token pair: a new access token, and its refresh token.

    ``actor``: a support session's operator, the access token's ``act``.
    """
    return {
        "accessToken": access_token(session, expire_at, session_claims, assurance, actor=actor),
        "refreshToken": refresh_token(session, refresh_secret, sessionsvc().refresh_secret),
    }


def start_session(login: Login) -> tuple[dict[str, Any], Session]:
    """Record a login; return the create endpoint's body (tokens and session), and the session.

    The login is judged against the user's history first (its device, place and
    time: ``domain.risk``), and announced when new or risky (docs/devices.md).
    A support session (``login.actor``) is no login of the user's on a device of
    theirs: it notes no device, has no risk, announces nothing, and gets no
    device token (docs/support-sessions.md).
    """
    refresh_secret = new_refresh_secret()
    store, tag_secret = get_store(), sessionsvc().refresh_secret
    device = with_client_hints(parse_device(login.user_agent), login.client_hints)
    place = get_locator().place(login.ip)
    device_id, risk = "", None
    if login.actor is None:
        device_id, history = store.device_login(
            login.user_id,
            read_device_token(login.device_token, tag_secret),
            name=default_device_name(device),
            new_id=new_device_id(),
            place=place,
        )
        found = signals(history, Spot(now_ms(), place.country, place.latitude, place.longitude))
        risk = judge(found, current_app.config["RISK_LEVELS"])
    session, evicted = store.create(
        login.user_id,
        device=device,
        ip=login.ip,
        location=place.location,
        refresh_secret=refresh_secret,
        claims_json=claims.stored(login.session_claims),
        assurance=login.assurance,
        device_id=device_id,
        risk=() if risk is None else (risk.level, *risk.signals),
        lifetime=login.lifetime,
        persistent=login.persistent,
        idle_timeout=login.idle_timeout,
        actor=login.actor,
        reason=login.reason,
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
        actor=login.actor,
    )
    body: dict[str, Any] = tokens | {"session": session_json(session, session.id)}
    if risk is not None:
        _announce(ref, device_id, risk)
        body |= {"deviceToken": device_token(device_id, tag_secret), "risk": risk.json()}
    return body, session


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
