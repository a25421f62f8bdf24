"""Refresh tokens: opaque, ``rt1.<user>.<session id>.<secret>.<tag>``; making and reading them.

The session holds a digest of the secret in Redis (never the secret: the store's
encoding), compared there (the store's rotate script), so no signing key,
rotated or removed, ends a session; the tag tells a token the service issued
from a guess (docs/keys.md). A login's secret is random; each refresh's is
derived from the one it replaces (``successor_secret``), so the previous token
presented again within the grace gets the same successor without the store
keeping it. Where a request carries one (a cookie or a Bearer header) is the
web layer's business.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass

import jwt as pyjwt

from ..domain.sessions import SessionRef, is_valid_user_id
from .access import MISSING_CLAIM, session_ref
from .keyring import KeyRing

# rt1.<base64url user id>.<session id>.<secret>.<tag>, the secret 16 random
# bytes and the tag 16 bytes of an HMAC, both in base64url too (a user id of
# 128 bytes is 171 characters).
REFRESH_TOKEN_PATTERN = re.compile(
    r"rt1\.([A-Za-z0-9_-]{1,171})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})"
)
# The legacy refresh JWT is read until this release, then refused (docs/keys.md).
LEGACY_REFRESH_REMOVED_IN = "0.3.0"


class InvalidRefreshToken(ValueError):
    """A presented refresh token is malformed or not one of ours; the message says which."""


@dataclass(frozen=True)
class PresentedRefresh:
    """A refresh token as presented: whose session it names, and the secret to check."""

    user_id: str
    session_id: str
    secret: str
    issued: bool  # provably issued by the service: a secret it no longer holds is theft


def new_refresh_secret() -> str:
    """Return a new secret for a session's refresh token (128 random bits)."""
    return secrets.token_urlsafe(16)


def successor_secret(session: SessionRef, previous: str, tag_secret: str) -> str:
    """Return the secret that replaces ``previous`` on a refresh (128 bits of an HMAC).

    The same previous secret always gets the same successor, so two
    presentations of one token within the grace get one new token, and the
    store keeps only digests. Its key derives from the refresh-tag secret (a
    label of its own, not the tag's): without it, neither an old token nor a copy of the
    store tells a successor.
    """
    key = hmac.digest(tag_secret.encode(), b"sessionsvc:refresh-successor", "sha256")
    message = "\0".join((*session, previous)).encode()
    digest = hmac.digest(key, message, "sha256")[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def refresh_token(session: SessionRef, secret: str, tag_secret: str) -> str:
    """Return the opaque refresh token naming a session and holding its current secret."""
    user = base64.urlsafe_b64encode(session.user_id.encode()).rstrip(b"=").decode()
    tag = _tag(session.user_id, session.session_id, secret, tag_secret)
    return f"rt1.{user}.{session.session_id}.{secret}.{tag}"


def _tag(user_id: str, session_id: str, secret: str, tag_secret: str) -> str:
    """Return the tag proving a refresh token was issued here (an HMAC, 16 bytes).

    Its key derives from the refresh-tag secret (``SERVICE_KEY``, else the first
    of ``SERVICE_KEYS``). The tag decides only whether a secret the session does
    not hold is theft (the session ends) or a guess (refused, nothing changes): a
    new tag secret ends no session, it only treats the tokens issued before it,
    until their next refresh, as guesses.
    """
    key = hmac.digest(tag_secret.encode(), b"sessionsvc:refresh", "sha256")
    message = "\0".join((user_id, session_id, secret)).encode()
    digest = hmac.digest(key, message, "sha256")[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def read_refresh_token(
    token: str, *, tag_secret: str, ring: KeyRing, issuer: str, audience: str
) -> PresentedRefresh:
    """Return what a presented refresh token claims; raise InvalidRefreshToken if it cannot be one.

    Nothing in it is trusted yet: the store compares its secret with the session's.
    """
    match = REFRESH_TOKEN_PATTERN.fullmatch(token)
    if match is None:
        return _legacy_refresh(token, ring=ring, issuer=issuer, audience=audience)
    user, session_id, secret, tag = match.groups()
    try:
        user_id = base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        user_id = None
    if user_id is None or not is_valid_user_id(user_id):
        raise InvalidRefreshToken("The refresh token names no valid user.")
    issued = hmac.compare_digest(tag, _tag(user_id, session_id, secret, tag_secret))
    return PresentedRefresh(user_id, session_id, secret, issued)


def _legacy_refresh(token: str, *, ring: KeyRing, issuer: str, audience: str) -> PresentedRefresh:
    """Read a legacy refresh JWT, until ``LEGACY_REFRESH_REMOVED_IN``.

    It is signed with ``JWT_SECRET_KEY`` and has no kid; its jti is the session's
    secret (held as 0.1.0 held it, or as its digest). Accepted once, it is rotated
    to an opaque token, so an upgrade ends no session (docs/keys.md).
    """
    not_refresh = InvalidRefreshToken("The token is not a refresh token.")
    try:
        key = ring.key_for(pyjwt.get_unverified_header(token))
        if key is not ring.keyless:  # a kid: an access token of ours, or a forgery
            raise pyjwt.InvalidTokenError("not a refresh token")
        payload = pyjwt.decode(
            token, key.verifying, algorithms=["HS256"], audience=audience, issuer=issuer
        )
    except pyjwt.PyJWTError:
        raise not_refresh from None
    if payload.get("type") != "refresh":
        raise not_refresh
    session = session_ref(payload)
    if session is None:
        raise InvalidRefreshToken(MISSING_CLAIM)
    return PresentedRefresh(*session, payload["jti"], issued=True)  # signed
