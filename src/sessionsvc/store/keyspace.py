"""The store's Redis keys: naming them, and reading the ids back out of them.

Every key of a user carries the ``{userId}`` hash tag, so all of a user's keys
live in one Cluster slot (docs/redis.md, key layout).
"""

from __future__ import annotations

import re
import string


class KeyLayout:
    """The keys of sessions and users' indexes under a prefix; runs no command."""

    # Key templates. The tag's closing brace ends the user id: no separator
    # before the session id.
    SESSION_KEY = "{prefix}s:{{{user_id}}}{session_id}"
    INDEX_KEY = "{prefix}u:{{{user_id}}}"
    # A user's known devices (one hash, a field per device) and the "Was this
    # you?" answers given (a key per answered pair, until the pair expires).
    DEVICES_KEY = "{prefix}dv:{{{user_id}}}"
    ANSWER_KEY = "{prefix}wa:{{{user_id}}}{nonce}"
    HISTORY_KEY = "{prefix}h:{{{user_id}}}"

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain a hash tag")
        self.prefix = prefix
        self._session_key_pattern = _key_pattern(self.SESSION_KEY, prefix)
        self._index_key_pattern = _key_pattern(self.INDEX_KEY, prefix)

    def session_key(self, user_id: str, session_id: str) -> str:
        """Return the key of a session's hash."""
        return self.SESSION_KEY.format(prefix=self.prefix, user_id=user_id, session_id=session_id)

    def index_key(self, user_id: str) -> str:
        """Return the key of a user's index: a sorted set of session ids by expireAt."""
        return self.INDEX_KEY.format(prefix=self.prefix, user_id=user_id)

    def devices_key(self, user_id: str) -> str:
        """Return the key of a user's devices: a hash of device id to its record (JSON)."""
        return self.DEVICES_KEY.format(prefix=self.prefix, user_id=user_id)

    def answer_key(self, user_id: str, nonce: str) -> str:
        """Return the key marking a "Was this you?" pair answered."""
        return self.ANSWER_KEY.format(prefix=self.prefix, user_id=user_id, nonce=nonce)

    def history_key(self, user_id: str) -> str:
        """Return the key of a user's history: a list of ended sessions, newest first."""
        return self.HISTORY_KEY.format(prefix=self.prefix, user_id=user_id)

    def parse_session_key(self, key: str) -> tuple[str, str] | None:
        """Return the user and session ids of a session's key; None for any other key."""
        match = self._session_key_pattern.fullmatch(key)
        return (match["user_id"], match["session_id"]) if match else None

    def parse_index_key(self, key: str) -> str | None:
        """Return the user id of an index's key; None for any other key."""
        match = self._index_key_pattern.fullmatch(key)
        return match["user_id"] if match else None


def _key_pattern(template: str, prefix: str) -> re.Pattern[str]:
    """Return a regex matching the keys ``template`` makes under ``prefix``, a group per id."""
    pattern = ""
    for literal, name, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if name == "prefix":
            pattern += re.escape(prefix)
        elif name:
            pattern += f"(?P<{name}>[^{{}}]*)"  # ids hold no braces (the hash tag's)
    return re.compile(pattern)
