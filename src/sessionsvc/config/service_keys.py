"""The keys of the services that call us (``X-Service-Key``): named, each with its scopes.

``SERVICE_KEYS`` lists them; ``SERVICE_KEY``, the single key of earlier
versions, is one more, named ``default``, with every scope. A key is known by
its name in logs and messages, never by its value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# What a key may do; each route that takes a service key needs exactly one (docs/keys.md).
SCOPES: dict[str, str] = {
    "sessions:create": "record a login and issue its tokens (POST /sessions)",
    "admin:read": "list any user's sessions (GET /admin/users/{userId}/sessions)",
    "admin:write": "revoke any user's sessions (DELETE /admin/users/{userId}/sessions[/{id}])",
    "claims:write": "replace sessions' claims (PUT /admin/users/{userId}/[sessions/{id}/]claims)",
    "support:create": "open a support session on a user's behalf"
    " (POST /admin/users/{userId}/sessions)",
}
DEFAULT_NAME = "default"  # SERVICE_KEY's
# A name goes into log lines as it is: short, plain, no spaces or quotes.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
FIELDS = ("name", "key", "scopes")


@dataclass(frozen=True)
class ServiceKey:
    """One caller's key: its name (for logs), its scopes, and the key (never shown)."""

    name: str
    scopes: frozenset[str]
    key: str = field(repr=False)
    # The key's SHA-256: what a presented key's is compared with.
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", _digest(self.key))  # frozen: set once, here


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_service_keys(value: Any) -> list[ServiceKey] | None:
    """Read ``SERVICE_KEYS``: a JSON list of {"name", "key", "scopes"}; raise ValueError.

    The error never quotes a key, only names and positions.
    """
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("not JSON") from None
    if isinstance(value, list) and all(isinstance(entry, ServiceKey) for entry in value):
        return value  # read already
    if not isinstance(value, list) or not value:
        raise ValueError("not a JSON list of keys")
    keys = [_entry(number, entry) for number, entry in enumerate(value, 1)]
    names = [key.name for key in keys]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"the name {duplicates[0]!r} is given twice")
    digests = [key.digest for key in keys]
    if len(set(digests)) < len(digests):
        raise ValueError("two entries have the same key")
    return keys


def _entry(number: int, entry: Any) -> ServiceKey:
    where = f"entry {number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not an object")
    if unknown := sorted(set(entry) - set(FIELDS)):
        raise ValueError(f"{where} has an unknown field {unknown[0]!r} (fields: name, key, scopes)")
    name = entry.get("name")
    if not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        raise ValueError(f"{where}: name must be {NAME_RULE}")
    where = f"key {name!r}"
    if name == DEFAULT_NAME:
        raise ValueError(f"{where}: {DEFAULT_NAME!r} is SERVICE_KEY's name")
    key = entry.get("key")
    if not (isinstance(key, str) and key):
        raise ValueError(f"{where}: key must be a non-empty string")
    scopes = entry.get("scopes")
    if not (isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes)):
        raise ValueError(f"{where}: scopes must be a non-empty list of {', '.join(SCOPES)}")
    if unknown := [scope for scope in scopes if scope not in SCOPES]:
        raise ValueError(f"{where}: unknown scope {unknown[0]!r} (scopes: {', '.join(SCOPES)})")
    return ServiceKey(name, frozenset(scopes), key)


def service_keys(config: Mapping[str, Any]) -> tuple[ServiceKey, ...]:
    """Return every valid key: ``SERVICE_KEY`` (``default``, every scope), then ``SERVICE_KEYS``."""
    single = config.get("SERVICE_KEY")
    default = [ServiceKey(DEFAULT_NAME, frozenset(SCOPES), single)] if single else []
    return (*default, *(config.get("SERVICE_KEYS") or ()))


def refresh_tag_secret(config: Mapping[str, Any]) -> str | None:
    """Return the secret refresh tokens' tags are keyed by: SERVICE_KEY, else the first listed key.

    Changing it ends no session (tokens.refresh._tag): until their next refresh,
    the tokens issued before are only not provably ours.
    """
    keys = service_keys(config)
    return keys[0].key if keys else None


def matching(keys: Iterable[ServiceKey], presented: str) -> ServiceKey | None:
    """Return the key ``presented`` is, or None; compared with every key, in constant time.

    Digests of equal length are compared, with every key however early one
    matches: the time tells neither the keys' lengths nor which of them matched.
    """
    digest = _digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(digest, key.digest) and found is None:
            found = key
    return found
