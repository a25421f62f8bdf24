"""The webhook endpoints (``WEBHOOKS``): where events go, signed how, in which format.

Read like every other setting, at start-up: a JSON list, or ``@/path/file.json``
naming a file that holds one. A secret is never quoted in a message.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FORMATS = ("json", "set")  # Standard Webhooks JSON, or RFC 8417 Security Event Tokens
FIELDS = ("name", "url", "secret", "secrets", "events", "format", "audience")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
NAME_RULE = "1 to 40 lower-case letters, digits, '_' or '-', starting with a letter or digit"
# An event type, or a pattern of them: session.revoked, session.*, *.
EVENT_PATTERN = re.compile(r"\*|[a-z_]+(\.[a-z_]+)*(\.\*)?")
SECRET_PREFIX = "whsec_"  # noqa: S105  # the prefix, not a secret
# Standard Webhooks: secrets of 24 to 64 random bytes, base64 after the prefix.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
HOW_TO_MAKE_ONE = (  # a command making one
    "python3 -c \"import base64, secrets; print('whsec_' + base64.b64encode("
    'secrets.token_bytes(32)).decode())"'
)


@dataclass(frozen=True)
class Endpoint:
    """One receiver: its name (for logs, metrics, the admin API), URL, wanted events, format."""

    name: str
    url: str
    events: tuple[str, ...]
    format: str = "json"
    audience: str | None = None  # a SET's aud; the URL when unset
    # Newest first: each signs, so a receiver holding either one verifies (rotation).
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def wants(self, event_type: str) -> bool:
        """Tell whether this endpoint asked for events of ``event_type``."""
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events)

    @property
    def host(self) -> str:
        """The URL's host name or address (without brackets)."""
        return urlsplit(self.url).hostname or ""


def secret_bytes(secret: str) -> bytes:
    """Return a ``whsec_`` secret's key bytes; raise ValueError (never quoting it)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX} and base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def parse_webhooks(value: Any) -> list[Endpoint]:
    """Read ``WEBHOOKS``: a JSON list of endpoints, or ``@path`` of a file with one."""
    if value in (None, "", []):
        return []
    if isinstance(value, list) and all(isinstance(entry, Endpoint) for entry in value):
        return value  # read already
    if isinstance(value, str) and value.startswith("@"):
        try:
            value = Path(value[1:]).read_text()
        except OSError as error:
            raise ValueError(f"the file cannot be read ({error.strerror})") from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("not JSON") from None
    if not isinstance(value, list) or not value:
        raise ValueError("not a JSON list of endpoints")
    endpoints = [_entry(number, entry) for number, entry in enumerate(value, 1)]
    names = [endpoint.name for endpoint in endpoints]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"the name {duplicates[0]!r} is given twice")
    return endpoints


def _entry(number: int, entry: Any) -> Endpoint:
    where = f"endpoint {number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not an object")
    if unknown := sorted(set(entry) - set(FIELDS)):
        raise ValueError(f"{where} has an unknown field {unknown[0]!r} ({', '.join(FIELDS)})")
    name = entry.get("name")
    if not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        raise ValueError(f"{where}: name must be {NAME_RULE}")
    where = f"endpoint {name!r}"
    url = entry.get("url")
    if not isinstance(url, str):
        raise ValueError(f"{where}: url must be a string")
    _check_url(where, url)
    kind = entry.get("format", "json")
    if kind not in FORMATS:
        raise ValueError(f"{where}: format must be one of {', '.join(FORMATS)}")
    events = entry.get("events")
    if not (
        isinstance(events, list)
        and events
        and all(isinstance(e, str) and EVENT_PATTERN.fullmatch(e) for e in events)
    ):
        raise ValueError(
            f"{where}: events must be a non-empty list of event types or patterns"
            " (session.revoked, session.*, *)"
        )
    if "secret" in entry and "secrets" in entry:
        raise ValueError(f"{where}: give secret or secrets, not both")
    given = entry.get("secrets", [entry["secret"]] if "secret" in entry else [])
    if not (isinstance(given, list) and all(isinstance(s, str) for s in given)):
        raise ValueError(f"{where}: secrets must be a list of strings")
    if kind == "json" and not 1 <= len(given) <= 2:
        raise ValueError(f"{where}: a json endpoint needs a secret (or two while rotating)")
    for secret in given:
        try:
            secret_bytes(secret)
        except ValueError as error:
            raise ValueError(f"{where}: each secret {error} ({HOW_TO_MAKE_ONE})") from None
    audience = entry.get("audience")
    if audience is not None and not (isinstance(audience, str) and audience):
        raise ValueError(f"{where}: audience must be a non-empty string")
    return Endpoint(name, url, tuple(events), kind, audience, tuple(given))


def _check_url(where: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: url must be an http or https URL")
    if parts.username or parts.password or parts.fragment:
        raise ValueError(f"{where}: url must hold no user, password or fragment")
    try:
        parts.port  # noqa: B018  # raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"{where}: url has a bad port") from None


def is_public_address(address: str) -> bool:
    """Tell whether an IP address is a public one (no private, loopback, link-local...)."""
    ip = ipaddress.ip_address(address.strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_address(host: str) -> bool:
    """Tell whether a URL's host is an IP address literal."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
