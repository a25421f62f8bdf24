"""Session claims: what the login service says of a session (a role, a tenant, ...).

A small JSON object given at login or by the admin API, kept with the session,
put in every access token under ``TOKEN_CLAIM`` and returned by verify (its
body, and the ``X-Session-Claims`` header a gateway forwards). Not to be
confused with a token's payload, whose registered claims (``sub``, ``exp``)
are the tokens layer's.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

TOKEN_CLAIM = "claims"  # noqa: S105 (a claim name) the access token's claim holding them
HEADER = "X-Session-Claims"
MAX_BYTES = 1024  # of the compact JSON
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
NAME_RULE = "1-64 characters of A-Z a-z 0-9 _ . : -, starting with a letter"
# Registered claims (RFC 7519) and the service's own: a downstream reader that
# flattens the claims into the token's must never find one of these replaced.
RESERVED = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "type", "fresh", "csrf", TOKEN_CLAIM}
)

SessionClaims = dict[str, Any]


class InvalidClaims(ValueError):
    """Session claims break a rule; the message says which, for the caller to read."""


def parse_claims(value: object) -> SessionClaims:
    """Return the session claims given in a request, or raise InvalidClaims saying what is wrong."""
    if not isinstance(value, dict):
        raise InvalidClaims("claims must be a JSON object.")
    for name, item in value.items():
        if not NAME_PATTERN.fullmatch(name):
            raise InvalidClaims(f"claims: the name {name[:70]!r} must be {NAME_RULE}.")
        if name in RESERVED:
            raise InvalidClaims(f"claims: {name!r} is a registered or reserved claim name.")
        if not _is_claim_value(item):
            raise InvalidClaims(
                f"claims: {name!r} must be a string, a number, a boolean or a list of strings."
            )
    if len(encode(value)) > MAX_BYTES:
        raise InvalidClaims(f"claims must be at most {MAX_BYTES} bytes as compact JSON.")
    return value


def _is_claim_value(item: object) -> bool:
    if isinstance(item, str | bool | int):
        return True
    if isinstance(item, float):
        return math.isfinite(item)
    return isinstance(item, list) and all(isinstance(entry, str) for entry in item)


def encode(claims: SessionClaims) -> str:
    """Return claims as compact ASCII JSON: a header value any gateway can carry."""
    return json.dumps(claims, separators=(",", ":"), ensure_ascii=True)


def stored(claims: SessionClaims | None) -> str:
    """Return claims as a session keeps them: ``encode``'s JSON, '' for none."""
    return encode(claims) if claims else ""


def decode(text: str | None) -> SessionClaims:
    """Return claims stored by ``encode``; none stored is no claims."""
    return json.loads(text) if text else {}
