"""The store: sessions in Redis (Redis only; no Flask, no HTTP).

One hash per session and one sorted-set index per user, each change one atomic
Lua script; its failures are its own exceptions (``store.errors``).
"""

from __future__ import annotations

from .errors import (
    RevokeNotDurable,
    StoreError,
    StoreNotDurable,
    StoreTooOld,
    StoreUnavailable,
)
from .sessions import Held, SessionStore, StepUp

__all__ = [
    "Held",
    "RevokeNotDurable",
    "SessionStore",
    "StepUp",
    "StoreError",
    "StoreNotDurable",
    "StoreTooOld",
    "StoreUnavailable",
]
