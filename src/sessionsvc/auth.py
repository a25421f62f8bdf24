"""Tokens: flask-jwt-extended's manager, its loaders, and minting a session's token pair."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, request
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

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
from .store import is_valid_session_id, is_valid_user_id, now_ms

F = TypeVar("F", bound=Callable[..., Any])

jwt = JWTManager()


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
    """Refuse the request unless it carries the service key (compared in constant time)."""
    presented = request.headers.get("X-Service-Key", "").encode()
    expected = current_app.config["SERVICE_KEY"].encode()
    if not hmac.compare_digest(presented, expected):
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
    return not get_store().is_live(user_id, session_id)


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
