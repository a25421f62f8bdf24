"""The store's own exceptions: what its callers catch, never a Redis client's."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's exceptions."""


class StoreUnavailable(StoreError):
    """Redis could not be reached, hung or failed the command: callers fail closed."""

    def __init__(self, message: str = "the session store is unavailable") -> None:
        super().__init__(message)


class StoreTooOld(StoreUnavailable):
    """The server is older than the store's scripts need; the message says which it is."""


class StoreNotDurable(StoreUnavailable):
    """``REDIS_WAIT_AOF`` is set, and the server cannot confirm writes on disk; says why."""


class RevokeNotDurable(StoreUnavailable):
    """A revoke was applied, but the server did not confirm it on disk within the wait."""

    def __init__(
        self, message: str = "the revoke was applied but not confirmed on disk in time"
    ) -> None:
        super().__init__(message)
