"""Ended sessions: why each ended, who ended it, and what it was (the security activity).

Nothing here knows Redis or HTTP: the store records an ``EndedSession`` in the
same script as the change that ends it, the web layer renders it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .sessions import Device


class EndReason(enum.StrEnum):
    """Why a session ended: the ``reason`` of a history entry (docs/history.md)."""

    SIGNED_OUT = "signed_out"  # the user ended the session they were using
    REVOKED_BY_USER = "revoked_by_user"  # the user ended another of their sessions
    REVOKED_BY_ADMIN = "revoked_by_admin"  # support staff, with a service key
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"  # the user ended all their sessions
    EVICTED_BY_CAP = "evicted_by_cap"  # a login beyond MAX_SESSIONS_PER_USER
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 (a reason, not a secret)
    REPORTED_NOT_ME = "reported_not_me"  # the user answered "Was this you?" with not_me
    EXPIRED = "expired"  # found past its expireAt by the service
    IDLE = "idle"  # found idle past SESSION_IDLE_TIMEOUT by the service


class ActorKind(enum.StrEnum):
    """Who ended a session: the user, support staff (a service key), or the service itself."""

    USER = "user"
    ADMIN = "admin"
    SERVICE = "service"


@dataclass(frozen=True)
class Actor:
    """Who ended a session; ``name`` is the service key's name for an admin."""

    kind: ActorKind
    name: str | None = None

    def stored(self) -> str:
        """Return the actor as a history entry keeps it: "u", "s", or "a:<key name>"."""
        if self.kind is ActorKind.ADMIN:
            return f"a:{self.name or ''}"
        return self.kind.value[0]

    @classmethod
    def from_stored(cls, value: str | None) -> Actor:
        """Return the actor a history entry kept (``stored``); the service when absent."""
        if value == "u":
            return USER
        if value is not None and value.startswith("a:"):
            return cls(ActorKind.ADMIN, value[2:] or None)
        return SERVICE


USER = Actor(ActorKind.USER)
SERVICE = Actor(ActorKind.SERVICE)


def admin(name: str | None) -> Actor:
    """Return support staff acting with the service key called ``name``."""
    return Actor(ActorKind.ADMIN, name)


@dataclass(frozen=True)
class EndedSession:
    """A session that ended: what was known of it when the service ended or found it.

    A session found expired left nothing but its id and end (its hash expired
    with it): ``device``, ``location``, ``ip`` and the times but ``ended_at`` are
    None then.
    """

    id: str
    reason: EndReason
    ended_by: Actor
    ended_at: int  # ms since the epoch, as every time here
    created_at: int | None
    last_active_at: int | None
    device: Device | None
    location: str | None
    ip: str | None
    device_id: str | None = None  # the known device's id (issue 19 §1), when the session had one
