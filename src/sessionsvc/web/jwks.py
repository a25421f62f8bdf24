"""The JWKS: the ring's public keys at ``<URL_PREFIX>/.well-known/jwks.json``.

A gateway or a downstream service checks access tokens' signatures locally
with these keys (docs/gateway.md). It may cache them for ``JWKS_MAX_AGE``
seconds, which docs/keys.md's rotation waits out before a new key signs.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from ..extension import get_keys
from .openapi import operation
from .openapi_components import SIZE_ERRORS, ok

bp = Blueprint("jwks", __name__)
JWKS = {
    "type": "object",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kty", "kid", "alg", "use"],
                "properties": {
                    "kty": {"type": "string", "enum": ["OKP", "EC", "RSA"]},
                    "kid": {"type": "string"},
                    "alg": {"type": "string", "enum": ["EdDSA", "ES256", "RS256"]},
                    "use": {"type": "string", "const": "sig"},
                },
                "not": {"required": ["d"]},  # never a private part
            },
        }
    },
}


@bp.get("/.well-known/jwks.json")
@operation(
    "jwks",
    tags=["gateway"],
    summary="The public keys that verify access tokens (a JWK Set): active and verify-only, "
    "never an HMAC secret; cacheable for JWKS_MAX_AGE seconds.",
    security=[],
    responses={"200": ok("A JWK Set.", JWKS)} | SIZE_ERRORS,
)
def jwks():
    """Publish every public key of the ring, active and verify-only; never an HMAC secret."""
    headers = {"Cache-Control": f"public, max-age={current_app.config['JWKS_MAX_AGE']}"}
    return get_keys().jwks(), 200, headers
