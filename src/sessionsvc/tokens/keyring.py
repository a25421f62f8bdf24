"""Signing keys: the key ring (a JWK Set), its checks, and the public JWKS it publishes.

``JWT_KEYS`` is a JWK Set (RFC 7517), given as the path of a file holding it (a
Kubernetes secret mounted as a file, a Vault agent template) or as the JSON
itself (``SESSIONSVC_JWT_KEYS='{"keys": [...]}'``). Each key has a ``kid``, an
``alg`` (EdDSA with Ed25519, ES256, RS256 or HS256) and, on exactly one of
them, ``"active": true``: the key that signs. The others only verify, and
need no private part. ``JWT_SECRET_KEY``, the one HS256 secret of the service
before keys had ids, checks the tokens that carry no kid; without
``JWT_KEYS`` it is also the ring's one key (kid ``jwt-secret-key``). With
neither, a development instance generates an Ed25519 key into the instance
folder once, and production refuses to start. See docs/keys.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..instance import write_once

log = logging.getLogger(__name__)

# alg -> (kty, crv): the only algorithms a ring may hold.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "HS256": ("oct", None),
}
MIN_RSA_BITS = 2048
MIN_HMAC_BYTES = 32
KID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
KID_RULE = "1-64 characters of A-Z a-z 0-9 . _ : -"
# A token's header may name its algorithm, type and key, and nothing else: a
# jku, x5u, jwk or x5c header would point at a key of the sender's choosing.
ACCEPTED_HEADERS = frozenset({"alg", "typ", "kid"})
LEGACY_KID = "jwt-secret-key"
DEV_KEYS_FILE = "jwt-keys.json"


class KeyRingError(ValueError):
    """The configured keys cannot be used; the message names every faulty key."""


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One key of the ring: what signs (when active) and what verifies."""

    kid: str
    alg: str
    signing: Any  # the private key (HMAC: the secret); None for a verify-only public key
    verifying: Any  # the public key (HMAC: the secret)
    active: bool = False

    @property
    def public_jwk(self) -> dict[str, Any] | None:
        """Return the key's public JWK for the JWKS; None for an HMAC secret (never published)."""
        if self.alg == "HS256":
            return None
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public = algorithm.to_jwk(self.verifying, as_dict=True)
        return public | {"kid": self.kid, "alg": self.alg, "use": "sig"}


class InvalidKeyHeader(jwt.InvalidTokenError):
    """A token's header names no key of the ring, or one of another algorithm."""


@dataclass(frozen=True, eq=False)
class KeyRing:
    """The keys tokens are signed and verified with, by ``kid``."""

    keys: Mapping[str, SigningKey]
    active: SigningKey
    # The key a token without a kid is checked against: JWT_SECRET_KEY's, for
    # legacy tokens, which carry none; None: a kid is required.
    keyless: SigningKey | None = None

    @property
    def algorithms(self) -> list[str]:
        """Return the algorithms of the ring's keys, the one for tokens without a kid included."""
        keys = [*self.keys.values(), *([self.keyless] if self.keyless else [])]
        return sorted({key.alg for key in keys})

    def key_for(self, header: Mapping[str, Any]) -> SigningKey:
        """Return the key a token's (unverified) header names; refuse any doubt.

        The header's ``alg`` must be the key's own: an HMAC token made with a
        public key's bytes names a public key and HS256, and is refused here.
        """
        if not ACCEPTED_HEADERS.issuperset(header):
            raise InvalidKeyHeader("a header other than alg, typ and kid")
        if "kid" not in header:
            key = self.keyless
        else:
            kid = header["kid"]
            key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidKeyHeader("unknown or missing kid")
        if header.get("alg") != key.alg:
            raise InvalidKeyHeader("alg does not match the key's algorithm")
        return key

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Return the ring's public keys as a JWK Set: active and verify-only, no HMAC secret."""
        return {"keys": [jwk for key in self.keys.values() if (jwk := key.public_jwk)]}


def check_ring(config: Mapping[str, Any]) -> None:
    """Raise KeyRingError if ``JWT_KEYS`` or ``JWT_SECRET_KEY`` cannot be used (config.validate)."""
    _legacy_key(config)
    if source := config.get("JWT_KEYS"):
        ring_from_jwks(_read_jwks(source))


def load_ring(config: Mapping[str, Any], instance_path: str) -> KeyRing:
    """Return the configured key ring; raise KeyRingError naming every fault at once."""
    legacy = _legacy_key(config)
    if source := config.get("JWT_KEYS"):
        # JWT_SECRET_KEY beside JWT_KEYS only checks the tokens minted before (docs/keys.md).
        return dataclasses.replace(ring_from_jwks(_read_jwks(source)), keyless=legacy)
    if legacy is not None:
        active = dataclasses.replace(legacy, active=True)
        return KeyRing({LEGACY_KID: active}, active, keyless=active)
    # Production never gets here: config.validate refuses to start without keys.
    path = Path(instance_path) / DEV_KEYS_FILE
    # Every worker of a server reads the one ring the first of them wrote.
    made = write_once(
        path, lambda: {"keys": [new_jwk("EdDSA", f"dev-{secrets.token_hex(4)}", active=True)]}
    )
    ring = ring_from_jwks(_read_jwks(str(path)))
    how = "generated in" if made else "taken from"
    log.warning(
        "development signing key %s (%s) %s %s", ring.active.kid, ring.active.alg, how, path
    )
    return ring


def _legacy_key(config: Mapping[str, Any]) -> SigningKey | None:
    """Return ``JWT_SECRET_KEY`` as an HS256 key, the one tokens without a kid are checked with."""
    secret = config.get("JWT_SECRET_KEY")
    if not (secret and isinstance(secret, str)):  # not a string: config.validate says so
        return None
    # Its length is config.validate's to check, with the service key's (production).
    return SigningKey(LEGACY_KID, "HS256", secret.encode(), secret.encode())


def _read_jwks(source: Any) -> Any:
    """Return the JWK Set of ``JWT_KEYS``: a path, or the JSON (parsed or as text)."""
    if isinstance(source, dict):
        return source
    if not isinstance(source, str):
        raise KeyRingError("JWT_KEYS: must be the path of a JWK Set file, or a JWK Set in JSON")
    text = source
    if not source.lstrip().startswith("{"):
        try:
            text = Path(source).read_text()
        except OSError as error:
            raise KeyRingError(f"JWT_KEYS: cannot read {source}: {error.strerror}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise KeyRingError("JWT_KEYS: not valid JSON (a JWK Set is expected)") from None


def ring_from_jwks(jwks: Any) -> KeyRing:
    """Build a ring from a JWK Set; raise KeyRingError naming every fault at once."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeyRingError('JWT_KEYS: must be a JWK Set, {"keys": [...]}, with at least one key')
    faults: list[str] = []
    keys: dict[str, SigningKey] = {}
    for number, entry in enumerate(entries, 1):
        kid = entry.get("kid") if isinstance(entry, dict) else None
        name = f"key {kid!r}" if isinstance(kid, str) else f"key #{number}"
        try:
            key = _signing_key(entry)
        except ValueError as error:
            faults.append(f"{name}: {error}")
            continue
        if key.kid in keys:
            faults.append(f"{name}: duplicate kid")
        keys[key.kid] = key
    active = [key for key in keys.values() if key.active]
    if not faults and len(active) != 1:
        named = ", ".join(repr(key.kid) for key in active)
        faults.append(
            'no key is active (mark one with "active": true)'
            if not active
            else f"only one key may be active, not {named}"
        )
    if faults:
        raise KeyRingError("JWT_KEYS: " + "; ".join(faults))
    return KeyRing(keys, active[0])


def _signing_key(entry: Any) -> SigningKey:
    """Return one JWK as a SigningKey; raise ValueError saying what is wrong with it."""
    if not isinstance(entry, dict):
        raise ValueError("must be a JSON object (a JWK)")
    kid, alg, active = entry.get("kid"), entry.get("alg"), entry.get("active", False)
    if not (isinstance(kid, str) and KID_PATTERN.fullmatch(kid)):
        raise ValueError(f"kid must be {KID_RULE}")
    if alg not in ALGORITHMS:
        raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}")
    if not isinstance(active, bool):
        raise ValueError("active must be true or false")
    kty, crv = ALGORITHMS[alg]
    if entry.get("kty") != kty or (crv and entry.get("crv") != crv):
        raise ValueError(f"{alg} needs kty {kty!r}" + (f" and crv {crv!r}" if crv else ""))
    try:
        parsed = jwt.PyJWK(entry, alg).key
    except jwt.PyJWTError:
        # Not the library's words: some quote the key, and this message is logged.
        raise ValueError(f"malformed {kty} key: its members make no valid key") from None
    if alg == "HS256":
        if len(parsed) < MIN_HMAC_BYTES:
            raise ValueError(f"an HMAC secret must be at least {MIN_HMAC_BYTES} bytes")
        return SigningKey(kid, alg, parsed, parsed, active)
    private = "d" in entry
    if alg == "RS256" and parsed.key_size < MIN_RSA_BITS:
        raise ValueError(f"an RSA key must be at least {MIN_RSA_BITS} bits, not {parsed.key_size}")
    if active and not private:
        raise ValueError("the active key must hold its private part (d) to sign")
    public = parsed.public_key() if private else parsed
    return SigningKey(kid, alg, parsed if private else None, public, active)


def new_jwk(alg: str, kid: str, *, active: bool = False) -> dict[str, Any]:
    """Return a new private JWK of the algorithm, with its kid, alg and active flag."""
    make_key: dict[str, Callable[[], Any]] = {
        "EdDSA": Ed25519PrivateKey.generate,
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS),
        "HS256": lambda: secrets.token_bytes(MIN_HMAC_BYTES),
    }
    jwk = jwt.get_algorithm_by_name(alg).to_jwk(make_key[alg](), as_dict=True)
    return jwk | {"kid": kid, "alg": alg, "active": active}
