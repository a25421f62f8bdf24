"""Refresh tokens: opaque, ``rt1.<user>.<session id>.<secret>.<tag>``, read from a request.

The secret is what the session holds in Redis, compared there (scripts.py,
rotate), so no signing key, rotated or removed, ends a session; the tag tells
a token the service issued from a guess (docs/keys.md). A browser's token comes
in the refresh cookie (cookies.py), anyone else's as a Bearer header.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt as pyjwt
from flask import current_app, g, request

from . import cookies
from .auth import session_claims
from .errors import InvalidToken, MissingToken
from .extension import get_keys
from .models import REFRESH_TOKEN_PATTERN, is_valid_user_id

F = TypeVar("F", bound=Callable[..., Any])


def new_refresh_secret() -> str:
    """Return a new secret for a session's refresh token (128 random bits)."""
    return secrets.token_urlsafe(16)


def refresh_token(user_id: str, session_id: str, secret: str) -> str:
    """Return the opaque refresh token naming a session and holding its current secret."""
    user = base64.urlsafe_b64encode(user_id.encode()).rstrip(b"=").decode()
    return f"rt1.{user}.{session_id}.{secret}.{_tag(user_id, session_id, secret)}"


def _tag(user_id: str, session_id: str, secret: str) -> str:
    """Return the tag proving a refresh token was issued here (an HMAC, 16 bytes).

    Its key derives from SERVICE_KEY. The tag decides only whether a secret the
    session does not hold is theft (the session ends) or a guess (refused, nothing
    changes): a new SERVICE_KEY ends no session, it only treats the tokens issued
    before it, until their next refresh, as guesses.
    """
    key = hmac.digest(current_app.config["SERVICE_KEY"].encode(), b"sessionsvc:refresh", "sha256")
    message = "\0".join((user_id, session_id, secret)).encode()
    digest = hmac.digest(key, message, "sha256")[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class PresentedRefresh:
    """A refresh token as presented: whose session it names, and the secret to check."""

    user_id: str
    session_id: str
    secret: str
    issued: bool  # provably issued by the service: a secret it no longer holds is theft


def refresh_token_required(view: F) -> F:
    """Read the request's refresh token before the view (and its rate limits); refuse a bad one.

    A browser's comes in the refresh cookie (cookies.py), anyone else's as a Bearer
    header. Nothing in it is trusted yet: the store compares its secret with the session's.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = cookies.presented_refresh_token() or _bearer_token()
        g.sessionsvc_refresh = _parse_refresh(token)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def presented_refresh() -> PresentedRefresh:
    """Return the refresh token ``refresh_token_required`` read."""
    return g.sessionsvc_refresh


def _bearer_token() -> str:
    config = current_app.config
    header = request.headers.get(config["JWT_HEADER_NAME"], "")
    kind, _, token = header.partition(" ")
    if kind != config["JWT_HEADER_TYPE"]:
        raise MissingToken(f"A Bearer token is required (missing {config['JWT_HEADER_NAME']}).")
    return token


def _parse_refresh(token: str) -> PresentedRefresh:
    match = REFRESH_TOKEN_PATTERN.fullmatch(token)
    if match is None:
        return _legacy_refresh(token)
    user, session_id, secret, tag = match.groups()
    try:
        user_id = base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        user_id = None
    if not is_valid_user_id(user_id):
        raise InvalidToken("The refresh token names no valid user.")
    issued = hmac.compare_digest(tag, _tag(user_id, session_id, secret))
    return PresentedRefresh(user_id, session_id, secret, issued)


def _legacy_refresh(token: str) -> PresentedRefresh:
    """Read a refresh JWT of the service's versions before opaque refresh tokens.

    It is signed with ``JWT_SECRET_KEY`` and has no kid; its jti is the secret the
    session holds. Accepted once, it is rotated to an opaque token, so upgrading
    ends no session (docs/keys.md).
    """
    keys, config = get_keys(), current_app.config
    try:
        key = keys.key_for(pyjwt.get_unverified_header(token))
        if key is not keys.keyless:  # a kid: an access token of ours, or a forgery
            raise pyjwt.InvalidTokenError("not a refresh token")
        claims = pyjwt.decode(
            token,
            key.verifying,
            algorithms=["HS256"],
            audience=config["JWT_AUDIENCE"],
            issuer=config["JWT_ISSUER"],
        )
    except pyjwt.PyJWTError:
        raise InvalidToken("The token is not a refresh token.") from None
    if claims.get("type") != "refresh":
        raise InvalidToken("The token is not a refresh token.")
    user_id, session_id = session_claims(claims)
    return PresentedRefresh(user_id, session_id, claims["jti"], issued=True)  # signed
