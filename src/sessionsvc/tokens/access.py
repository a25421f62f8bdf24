"""Access tokens: minting them on the key ring, and checking them without Flask's request cycle.

Access tokens are JWTs signed with the ring's active key, with its ``kid`` in
the header. flask-jwt-extended mints them (``create_access_token``) and checks
them on Flask's path, through the loaders ``web.auth`` registers; verify's fast
path checks them here with PyJWT and remembers the ones that passed. A token's
*payload* is its set of JWT claims (``sub``, ``sid``, ``exp``, ...); the
session's own claims travel inside it under ``domain.claims.TOKEN_CLAIM``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from flask import current_app
from flask_jwt_extended import create_access_token

from ..domain.claims import TOKEN_CLAIM, SessionClaims
from ..domain.sessions import SessionRef, is_valid_session_id, is_valid_user_id, now_ms
from .keyring import KeyRing

# Tokens verified lately, per worker. A gateway checks the same access token on
# every request of its user for up to 30 minutes, so most checks are hits.
VERIFIED_TOKENS_CACHED = 4096
# What a token without the claims session_ref needs is refused with.
MISSING_CLAIM = "The token lacks a required claim (sub, sid, exp, jti)."


@dataclass(frozen=True, eq=False)
class DecodeSettings:
    """What an access token is verified against, fixed when the app is made.

    Compared by identity: remembered tokens are remembered per app.
    """

    ring: KeyRing
    issuer: str
    audience: str
    leeway: int


def decoded_payload(encoded_token: str, settings: DecodeSettings) -> dict[str, Any]:
    """Return the payload of a token that passes every check now, with the key its kid names."""
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
remembered_payload = functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)(decoded_payload)


def verified_payload(encoded_token: str, settings: DecodeSettings) -> dict[str, Any] | None:
    """Return a copy of the payload of an access token that passes every check now, else None.

    None says nothing of why: flask-jwt-extended's path checks such a token again
    and answers with the reason (expired, bad signature, unknown kid, ...).
    """
    try:
        payload = remembered_payload(encoded_token, settings)
    except pyjwt.PyJWTError:
        return None
    # A hit is re-checked for expiry; tokens without an exp are refused later (session_ref).
    expiry = payload.get("exp")
    if isinstance(expiry, int) and expiry > time.time() - settings.leeway:
        return dict(payload)  # a copy: the remembered payload stays as verified
    return None


def access_token(
    session: SessionRef,
    expire_at: int,
    session_claims: SessionClaims | None = None,
    *,
    actor: str | None = None,
) -> str:
    """Mint a session's access token, signed with the active key (in an app context).

    It never outlives the session: its expiry is capped at ``expire_at`` (ms).
    The session's claims, if any, go in it under ``TOKEN_CLAIM``; a support
    session's operator as ``act: {"sub": actor}`` (RFC 8693, section 4.1).
    """
    access_end = now_ms() // 1000 + current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    payload: dict[str, Any] = {"sid": session.session_id, "exp": min(access_end, expire_at // 1000)}
    if session_claims:
        payload[TOKEN_CLAIM] = session_claims
    if actor:
        payload["act"] = {"sub": actor}
    return create_access_token(session.user_id, additional_claims=payload, expires_delta=False)


def session_ref(payload: Mapping[str, Any]) -> SessionRef | None:
    """Return the session a token's payload names; None when it lacks a claim of ours."""
    user_id, session_id = payload.get("sub"), payload.get("sid")
    if (
        is_valid_user_id(user_id)
        and is_valid_session_id(session_id)
        and isinstance(payload.get("exp"), int)
        and isinstance(payload.get("jti"), str)
    ):
        return SessionRef(user_id, session_id)  # type: ignore[arg-type]  # checked just above
    return None
