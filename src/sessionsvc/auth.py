"""Access tokens: minting and checking them on the key ring; the service key.

Access tokens are JWTs signed with the ring's active key, with its ``kid`` in
the header; flask-jwt-extended mints and checks them through its public API
(its key, header and revocation loaders, ``create_access_token``,
``jwt_required``). Verify's fast path checks them with PyJWT directly and
remembers the ones that passed. Refresh tokens are opaque (refresh.py).
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt as pyjwt
from flask import Flask, Response, current_app, request
from flask_jwt_extended import JWTManager, create_access_token, jwt_required

from .claims import CLAIM, Claims
from .errors import (
    InvalidServiceKey,
    InvalidToken,
    MissingToken,
    SessionsvcError,
    TokenExpired,
    TokenRevoked,
    refusal,
)
from .extension import get_keys, get_store, sessionsvc
from .keys import KeyRing
from .models import is_valid_session_id, is_valid_user_id, now_ms
from .ratelimit import count_service_key_failure, refuse_service_key_guessing

F = TypeVar("F", bound=Callable[..., Any])

# Tokens verified lately, per worker. A gateway checks the same access token on
# every request of its user for up to 30 minutes, so most checks are hits.
VERIFIED_TOKENS_CACHED = 4096

jwt = JWTManager()


def init_app(app: Flask) -> None:
    """Set flask-jwt-extended up on the app's key ring: headers only, iss and aud."""
    ring = sessionsvc(app).keys
    config = app.config
    config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM=ring.active.alg,
        JWT_DECODE_ALGORITHMS=ring.algorithms,
        JWT_ENCODE_ISSUER=config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=config["JWT_ISSUER"],
        JWT_ENCODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_DECODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_ENCODE_NBF=False,
        JWT_COOKIE_CSRF_PROTECT=False,  # tokens travel in headers only: no csrf claim
    )
    jwt.init_app(app)


@dataclass(frozen=True, eq=False)
class DecodeSettings:
    """What an access token is verified against, fixed when the app is made.

    Compared by identity: remembered tokens are remembered per app.
    """

    ring: KeyRing
    issuer: str
    audience: str
    leeway: int


def decode_settings(app: Flask) -> DecodeSettings:
    """Return the app's decode settings."""
    return DecodeSettings(
        ring=sessionsvc(app).keys,
        issuer=app.config["JWT_ISSUER"],
        audience=app.config["JWT_AUDIENCE"],
        leeway=app.config.get("JWT_DECODE_LEEWAY", 0),
    )


def decoded_claims(encoded_token: str, settings: DecodeSettings) -> dict[str, Any]:
    """Return the claims of a token that passes every check now, with the key its kid names."""
    key = settings.ring.key_for(pyjwt.get_unverified_header(encoded_token))
    return pyjwt.decode(
        encoded_token,
        key.verifying,
        algorithms=[key.alg],
        audience=settings.audience,
        issuer=settings.issuer,
        leeway=settings.leeway,
    )


# Only tokens that pass are remembered (an exception is never cached), keyed by
# the exact token and the app that verified it: its bytes cannot change, so
# only its expiry needs checking again.
remembered_claims = functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)(decoded_claims)


def verified_claims(encoded_token: str, settings: DecodeSettings) -> dict[str, Any] | None:
    """Return a copy of the claims of an access token that passes every check now, else None.

    None says nothing of why: flask-jwt-extended's path checks such a token again
    and answers with the reason (expired, bad signature, unknown kid, ...).
    """
    try:
        claims = remembered_claims(encoded_token, settings)
    except pyjwt.PyJWTError:
        return None
    # A hit is re-checked for expiry; tokens without an exp are refused later (session_claims).
    expiry = claims.get("exp")
    if isinstance(expiry, int) and expiry > time.time() - settings.leeway:
        return dict(claims)  # a copy: the remembered claims stay as verified
    return None


def session_required(*, view_checks_session: bool = False) -> Callable[[F], F]:
    """Require a valid access token whose session is live.

    With ``view_checks_session``, the view checks the session itself, in the same
    Redis round trip as its own work (list, revoke): one round trip, not two.
    """
    return jwt_required(skip_revocation_check=view_checks_session)


def access_token(
    user_id: str, session_id: str, expire_at: int, session_claims: Claims | None = None
) -> str:
    """Mint a session's access token, signed with the active key.

    It never outlives the session: its expiry is capped at ``expire_at`` (ms).
    The session's claims, if any, go in it under ``claims.CLAIM``.
    """
    access_end = now_ms() // 1000 + current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    claims = {"sid": session_id, "exp": min(access_end, expire_at // 1000)}
    if session_claims:
        claims[CLAIM] = session_claims
    return create_access_token(user_id, additional_claims=claims, expires_delta=False)


def session_claims(jwt_data: Mapping[str, Any]) -> tuple[str, str]:
    """Return the token's (user id, session id), refusing a token without our claims."""
    user_id, session_id = jwt_data.get("sub"), jwt_data.get("sid")
    if not (
        is_valid_user_id(user_id)
        and is_valid_session_id(session_id)
        and isinstance(jwt_data.get("exp"), int)
        and isinstance(jwt_data.get("jti"), str)
    ):
        raise InvalidToken("The token lacks a required claim (sub, sid, exp, jti).")
    return user_id, session_id


def require_service_key() -> None:
    """Refuse the request unless it carries the service key (compared in constant time).

    Wrong keys are counted per client address; once too many, 429 to every try.
    """
    refuse_service_key_guessing()
    presented = request.headers.get("X-Service-Key", "").encode()
    expected = current_app.config["SERVICE_KEY"].encode()
    if not hmac.compare_digest(presented, expected):
        count_service_key_failure()
        raise InvalidServiceKey()


def service_key_required(view: F) -> F:
    """Decorate a view that only the trusted login service may call."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_service_key()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def reply(error: type[SessionsvcError], message: str | None = None) -> Response:
    """Answer one of flask-jwt-extended's refusals (its loaders return one) with our error."""
    return refusal(error(message))


@jwt.encode_key_loader
def signing_key(_identity: Any) -> Any:
    return get_keys().active.signing


@jwt.additional_headers_loader
def key_id_header(_identity: Any) -> dict[str, str]:
    return {"kid": get_keys().active.kid}


@jwt.decode_key_loader
def verifying_key(header: dict, payload: dict) -> Any:
    """Return the key the token's kid names; refuse an unknown kid, another alg, or no access token.

    Only access tokens come this way (refresh tokens are opaque). The library
    itself refuses only a refresh token where an access token is due: any type
    but access is refused here, before the signature or the session is checked.
    """
    if payload.get("type", "access") != "access":  # the library's default: access
        raise pyjwt.InvalidTokenError("not an access token")
    return get_keys().key_for(header).verifying


@jwt.token_in_blocklist_loader
def session_is_revoked(_header: dict, jwt_data: dict) -> bool:
    user_id, session_id = session_claims(jwt_data)
    return not get_store().is_live(user_id, session_id, token_expiry=jwt_data["exp"])


@jwt.unauthorized_loader
def missing_token(reason: str) -> Response:
    return reply(MissingToken, f"A Bearer token is required ({reason}).")


@jwt.invalid_token_loader
def invalid_token(reason: str) -> Response:
    return reply(InvalidToken, f"The token is not valid ({reason}).")


@jwt.expired_token_loader
def expired_token(_header: dict, _data: dict) -> Response:
    return reply(TokenExpired)


@jwt.revoked_token_loader
def revoked_token(_header: dict, _data: dict) -> Response:
    return reply(TokenRevoked)
