"""Tokens: flask-jwt-extended's manager, its loaders, and minting a session's token pair."""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt as pyjwt
from flask import Response, current_app, g, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
)
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_jwt_extended.internal_utils import (
    custom_verification_for_token,
    verify_token_not_blocklisted,
    verify_token_type,
)
from flask_jwt_extended.tokens import _decode_jwt
from flask_jwt_extended.view_decorators import _decode_jwt_from_headers
from jwt import PyJWTError

from . import cookies
from .errors import (
    InvalidServiceKey,
    InvalidToken,
    MissingToken,
    SessionsvcError,
    TokenExpired,
    TokenRevoked,
    error_response,
)
from .extension import get_store
from .models import is_valid_session_id, is_valid_user_id, now_ms
from .ratelimit import count_service_key_failure, refuse_service_key_guessing

F = TypeVar("F", bound=Callable[..., Any])


# Tokens verified lately, per worker. A gateway checks the same access token on
# every request of its user for up to 30 minutes, so most checks are hits.
VERIFIED_TOKENS_CACHED = 4096


@dataclass(frozen=True)
class DecodeSettings:
    """What a token is verified against: flask-jwt-extended's settings, read once."""

    secret: str
    algorithms: tuple[str, ...]
    issuer: str
    audience: str
    leeway: int
    identity_claim_key: str
    verify_sub: bool


def decode_settings() -> DecodeSettings | None:
    """Return the current app's decode settings, or None if they are not our pinned kind."""
    audience, issuer = jwt_config.decode_audience, jwt_config.decode_issuer
    if not (isinstance(audience, str) and issuer):
        return None
    return DecodeSettings(
        secret=jwt_config.decode_key,
        algorithms=tuple(jwt_config.decode_algorithms),
        issuer=issuer,
        audience=audience,
        leeway=jwt_config.leeway,
        identity_claim_key=jwt_config.identity_claim_key,
        verify_sub=jwt_config.verify_sub,
    )


def _decoded_claims(encoded_token: str, settings: DecodeSettings) -> dict[str, Any]:
    """Return the claims of a token that passes every check, with these settings, now.

    flask-jwt-extended's own verified decode, with its checks (signature, ``alg``
    pinned to HS256, ``exp``, ``iss``, ``aud``, ``sub``, ``crit``), without the
    unverified decode the library makes first for a ``decode_key_loader`` (we
    register none: one HS256 key).
    """
    return _decode_jwt(
        algorithms=list(settings.algorithms),
        allow_expired=False,
        audience=settings.audience,
        csrf_value=None,
        encoded_token=encoded_token,
        identity_claim_key=settings.identity_claim_key,
        issuer=settings.issuer,
        leeway=settings.leeway,
        secret=settings.secret,
        verify_aud=True,
        verify_sub=settings.verify_sub,
    )


# Only tokens that pass are remembered (an exception is never cached), keyed by
# the exact token and the settings that verified it: its bytes cannot change, so
# only its expiry needs checking again.
_remembered_claims = functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)(_decoded_claims)


def verified_claims(
    encoded_token: str, settings: DecodeSettings | None, *, remember: bool = True
) -> dict[str, Any] | None:
    """Return a copy of the claims of a token that passes every check now, else None.

    None says nothing of why: flask-jwt-extended's own path decodes such a token
    again and answers with the reason (expired, bad signature, ...). With
    ``remember``, a token that passes is remembered for its next checks; a
    refresh token is used once, and would only push access tokens out.
    """
    if settings is None:
        return None
    decode = _remembered_claims if remember else _decoded_claims
    try:
        claims = decode(encoded_token, settings)
    except (PyJWTError, JWTExtendedException):
        return None
    # A hit is re-checked for expiry; tokens without an exp are refused later (session_claims).
    expiry = claims.get("exp")
    if isinstance(expiry, int) and expiry > time.time() - settings.leeway:
        return dict(claims)  # a copy: the remembered claims stay as verified
    return None


jwt = JWTManager()


@functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _remembered_header(encoded_token: str) -> dict[str, Any]:
    """Return the header of a token that has just passed verification."""
    return pyjwt.get_unverified_header(encoded_token)


def session_required(
    *, refresh: bool = False, view_checks_session: bool = False
) -> Callable[[F], F]:
    """Require a valid access token whose session is live (or, with ``refresh``, a refresh token).

    With ``view_checks_session``, the view checks the session itself, in the same
    Redis round trip as its own work (list, revoke): one round trip, not two.

    This is flask-jwt-extended's ``jwt_required()`` for our single token location,
    made of the library's own parts in the same order (header parsing, decode,
    type check, revocation loader, custom checks, error handlers) and leaving
    what ``get_jwt()`` reads. It leaves out what we do not use: other token
    locations, user loading, and the library's three further reads of the token
    (an unverified decode and two header reads). An access token that passed is
    remembered (``verified_claims``); see docs/benchmarks.md.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # As jwt_required: OPTIONS (a CORS preflight) carries no token.
            if request.method not in jwt_config.exempt_methods:
                _verify_request_token(refresh, check_session=not view_checks_session)
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _verify_request_token(refresh: bool, *, check_session: bool) -> None:
    cookie_token = cookies.presented_refresh_token() if refresh else None
    encoded_token = cookie_token or _decode_jwt_from_headers()[0]
    claims = verified_claims(encoded_token, decode_settings(), remember=not refresh)
    if claims is None:
        claims = decode_token(encoded_token)  # the library's own path raises with the reason
    if refresh:
        header = pyjwt.get_unverified_header(encoded_token)
    else:
        header = _remembered_header(encoded_token)
    verify_token_type(claims, refresh)
    if not refresh and claims.get("type") != "access":
        # The library refuses only a refresh token here; any other type is no access token.
        raise InvalidToken("The token is not an access token.")
    if check_session:
        verify_token_not_blocklisted(header, claims)
    else:
        session_claims(claims)  # what the revocation loader would refuse, refused alike
    custom_verification_for_token(header, claims)
    # What verify_jwt_in_request leaves for get_jwt() and get_jwt_header().
    g._jwt_extended_jwt_user = None  # no user_lookup_loader
    g._jwt_extended_jwt_header = header
    g._jwt_extended_jwt = claims
    g._jwt_extended_jwt_location = "headers"


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def issue_tokens(user_id: str, session_id: str, expire_at: int, refresh_jti: str) -> dict[str, str]:
    """Mint an access token and a refresh token bound to a session.

    Neither outlives the session: both expiries are capped at its ``expireAt`` (ms).
    """
    session_end = expire_at // 1000
    access_end = now_ms() // 1000 + current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    claims = {"sid": session_id}
    return {
        "accessToken": create_access_token(
            user_id,
            additional_claims=claims | {"exp": min(access_end, session_end)},
            expires_delta=False,
        ),
        "refreshToken": create_refresh_token(
            user_id,
            additional_claims=claims | {"exp": session_end, "jti": refresh_jti},
            expires_delta=False,
        ),
    }


def session_claims(jwt_data: dict[str, Any]) -> tuple[str, str]:
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


def _reply(error: type[SessionsvcError], message: str | None = None) -> tuple[Response, int]:
    return error_response(error.code, message or error.message, error.status)


@jwt.token_in_blocklist_loader
def _session_is_revoked(_header: dict, jwt_data: dict) -> bool:
    user_id, session_id = session_claims(jwt_data)
    if jwt_data["type"] == "refresh":
        return False  # the refresh view checks and rotates in one atomic step
    return not get_store().is_live(user_id, session_id, token_expiry=jwt_data["exp"])


@jwt.unauthorized_loader
def _missing_token(reason: str) -> tuple[Response, int]:
    return _reply(MissingToken, f"A Bearer token is required ({reason}).")


@jwt.invalid_token_loader
def _invalid_token(reason: str) -> tuple[Response, int]:
    return _reply(InvalidToken, f"The token is not valid ({reason}).")


@jwt.expired_token_loader
def _expired_token(_header: dict, _data: dict) -> tuple[Response, int]:
    return _reply(TokenExpired)


@jwt.revoked_token_loader
def _revoked_token(_header: dict, _data: dict) -> tuple[Response, int]:
    return _reply(TokenRevoked)
