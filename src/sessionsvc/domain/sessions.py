"""What a session is: the domain types, the id rules and the time helpers.

Nothing here knows Redis or HTTP: the store (``store.sessions``) keeps these,
the web layer renders them.
"""

from __future__ import annotations

import enum
import functools
import re
import secrets
import time
from dataclasses import dataclass
from typing import NamedTuple

from .assurance import NO_ASSURANCE, Assurance

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._@+:-]{1,128}")
USER_ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ @ + : -"  # the pattern, for people
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 random bytes, base64url

SUPPORT_REASON_LENGTH = 200  # a support session's reason, at most, in characters
# Shown to the user and written to events: no control characters, no line breaks.
SUPPORT_REASON_PATTERN = re.compile(
    rf"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{{1,{SUPPORT_REASON_LENGTH}}}"
)
SUPPORT_REASON_RULE = f"1-{SUPPORT_REASON_LENGTH} characters, none of them a control character"

UNKNOWN = "unknown"  # what a device or location part is when nothing better is known


def new_session_id() -> str:
    """Return a fresh opaque session id (128 random bits)."""
    return secrets.token_urlsafe(16)


def is_valid_user_id(user_id: object) -> bool:
    """Tell whether a value is a user id that may become part of a Redis key."""
    return isinstance(user_id, str) and USER_ID_PATTERN.fullmatch(user_id) is not None


def is_valid_session_id(session_id: object) -> bool:
    """Tell whether a value is a session id this service could have made."""
    return isinstance(session_id, str) and SESSION_ID_PATTERN.fullmatch(session_id) is not None


def now_ms() -> int:
    """Return the time in milliseconds since the epoch, the unit of every time here."""
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=8192)
def iso(ms: int) -> str:
    """Format epoch milliseconds as the API writes times: ``2020-12-21T02:23:36.380Z``."""
    # 30 times per list of 10, mostly the same values again (createdAt and expireAt
    # never change): remembered, and strftime on a struct_time, a third of datetime's cost.
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


class SessionRef(NamedTuple):
    """Which session: a user id and one of that user's session ids (what a token names)."""

    user_id: str
    session_id: str


@dataclass(frozen=True)
class Device:
    browser: str = UNKNOWN
    version: str = UNKNOWN
    platform: str = UNKNOWN
    os: str = UNKNOWN
    is_dev: bool = False


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    created_at: int  # all times in milliseconds since the epoch
    expire_at: int
    last_active_at: int
    device: Device
    location: str
    ip: str
    assurance: Assurance = NO_ASSURANCE  # how the user signed in, as far as the login said
    device_id: str = ""  # the known device it is on (issue 19); "" for a session from before
    risk: tuple[str, ...] = ()  # its login's risk level, then its signals; () unknown
    # Remember-me (docs/sessions-lifetime.md): False when the refresh cookie must
    # not outlive the browser; the session's own idle timeout (s), None: the setting's.
    persistent: bool = True
    idle_timeout: int | None = None
    # A support session (docs/support-sessions.md): the operator who opened it, and why.
    actor: str | None = None
    reason: str | None = None

    @property
    def auth_time(self) -> int:
        """When the user last authenticated (ms): the given authTime, else the creation."""
        return self.created_at if self.assurance.auth_time is None else self.assurance.auth_time


class Rotation(enum.Enum):
    """Outcome of presenting a refresh token."""

    ROTATED = 1  # it was the current one: a new one replaces it
    GRACE = 2  # it was the previous one, presented within the grace window
    GONE = 0  # the session has been revoked or has expired
    REUSED = -1  # an older token presented again: theft, the session is now revoked
    UNKNOWN = -2  # no token this session holds, and none provably issued: nothing changed


@dataclass(frozen=True)
class Refresh:
    rotation: Rotation
    refresh_secret: str = ""  # the session's refresh secret from now on ("" unless rotated)
    expire_at: int = 0  # the session's end (ms; 0 unless rotated)
    claims_json: str = ""  # the session's claims as JSON ('' for none)
    assurance: Assurance = NO_ASSURANCE  # its acr, amr and auth time (always set when rotated)
    persistent: bool = True  # False: its refresh cookie ends with the browser
    actor: str = ""  # a support session's operator ('' for none): its tokens' act claim
