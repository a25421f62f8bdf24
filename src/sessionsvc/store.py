"""Sessions in Redis: one hash per session, one sorted-set index per user.

Every key of a user carries the ``{userId}`` hash tag, so all of a user's keys
live in one Cluster slot and each multi-key change can be one atomic script.
Each public method is exactly one round trip to Redis.
"""

from __future__ import annotations

import enum
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from .errors import StoreUnavailable

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._@+:-]{1,128}")
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 random bytes, base64url

# Hash fields are one letter and values stay short so Redis keeps each session
# in its compact listpack encoding (values up to 64 bytes).
MAX_FIELD_LENGTH = 64


def new_session_id() -> str:
    """Return a fresh opaque session id (128 random bits)."""
    return secrets.token_urlsafe(16)


def is_valid_user_id(user_id: object) -> bool:
    return isinstance(user_id, str) and USER_ID_PATTERN.fullmatch(user_id) is not None


def is_valid_session_id(session_id: object) -> bool:
    return isinstance(session_id, str) and SESSION_ID_PATTERN.fullmatch(session_id) is not None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Device:
    browser: str = "unknown"
    version: str = "unknown"
    platform: str = "unknown"
    os: str = "unknown"
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


class Rotation(enum.Enum):
    """Outcome of presenting a refresh token."""

    ROTATED = 1  # it was the current one: a new one replaces it
    GRACE = 2  # it was the previous one, presented within the grace window
    GONE = 0  # the session has been revoked or has expired
    REUSED = -1  # an older token presented again: theft, the session is now revoked


@dataclass(frozen=True)
class Refresh:
    rotation: Rotation
    refresh_jti: str | None = None  # the session's refresh token id from now on
    expire_at: int | None = None


# KEYS: session hash, user index. ARGV: session id, now, expire_at, max sessions
# (0 = no cap), session key prefix, then the hash's field/value pairs.
_CREATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local evicted = {}
local cap = tonumber(ARGV[4])
if cap > 0 then
  local excess = redis.call('ZCARD', KEYS[2]) - cap
  if excess > 0 then
    evicted = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
    for _, id in ipairs(evicted) do redis.call('DEL', ARGV[5] .. id) end
    redis.call('ZREM', KEYS[2], unpack(evicted))
  end
end
-- The index lives exactly as long as the user's last session.
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return evicted
"""

# KEYS: session hash, user index. ARGV: session id, now, idle timeout (0 = off),
# touch interval. Returns 1 when the session is live. The HSET runs only after
# HGET found the key, so a dead session is never re-created without a TTL.
_CHECK = """
local last = redis.call('HGET', KEYS[1], 'a')
if not last then return 0 end
local now, idle = tonumber(ARGV[2]), tonumber(ARGV[3])
if idle > 0 and now - tonumber(last) > idle then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if now - tonumber(last) >= tonumber(ARGV[4]) then redis.call('HSET', KEYS[1], 'a', ARGV[2]) end
return 1
"""

# KEYS: session hash, user index. ARGV: session id, presented jti, new jti, now,
# grace. Returns {outcome, current jti, expire_at}.
_ROTATE = """
local cur = redis.call('HMGET', KEYS[1], 'r', 'q', 't', 'e')
if not cur[1] then return {0, false, false} end
local now = tonumber(ARGV[4])
if cur[1] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'r', ARGV[3], 'q', ARGV[2], 't', ARGV[4], 'a', ARGV[4])
  return {1, ARGV[3], cur[4]}
end
if cur[2] == ARGV[2] and now - tonumber(cur[3]) <= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'a', ARGV[4])
  return {2, cur[1], cur[4]}
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {-1, false, false}
"""

# KEYS: user index. ARGV: session key prefix, now, idle timeout (0 = off).
# Returns id, fields, id, fields, ... of the live sessions; prunes the rest.
_LIST = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local now, idle = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  local dead = #fields == 0
  if not dead and idle > 0 then
    local last = tonumber(redis.call('HGET', ARGV[1] .. id, 'a'))
    if now - last > idle then redis.call('DEL', ARGV[1] .. id); dead = true end
  end
  if dead then
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = id
    out[#out + 1] = fields
  end
end
return out
"""

# KEYS: user index. ARGV: session key prefix, session id to keep ('' = none).
# One script, so a login racing with it either lands before (and is revoked)
# or after (and is indexed): never a live session missing from the index.
_REVOKE_ALL = """
local revoked = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    if redis.call('DEL', ARGV[1] .. id) == 1 then revoked[#revoked + 1] = id end
    redis.call('ZREM', KEYS[1], id)
  end
end
return revoked
"""


@contextmanager
def _store_errors() -> Iterator[None]:
    """Turn any Redis failure into StoreUnavailable, so callers fail closed."""
    try:
        yield
    except redis.RedisError as error:
        raise StoreUnavailable() from error


class SessionStore:
    """Create, check, rotate, list and revoke sessions; knows Redis, not HTTP.

    The client must be made with ``decode_responses=True``.
    """

    SESSION_KEY = "{prefix}s:{{{user_id}}}:{session_id}"
    INDEX_KEY = "{prefix}u:{{{user_id}}}"
    TOUCH_INTERVAL_MS = 60_000  # lastActiveAt moves at most once a minute

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "sessionsvc:",
        lifetime: int = 1_209_600,
        idle_timeout: int = 0,
        refresh_grace: int = 10,
        max_sessions: int = 50,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain a hash tag")
        self.redis = client
        self.prefix = prefix
        self.lifetime_ms = lifetime * 1000
        self.idle_timeout_ms = idle_timeout * 1000
        self.refresh_grace_ms = refresh_grace * 1000
        self.max_sessions = max_sessions
        self._create = client.register_script(_CREATE)
        self._check = client.register_script(_CHECK)
        self._rotate = client.register_script(_ROTATE)
        self._list = client.register_script(_LIST)
        self._revoke_all = client.register_script(_REVOKE_ALL)

    def session_key(self, user_id: str, session_id: str) -> str:
        return self.SESSION_KEY.format(prefix=self.prefix, user_id=user_id, session_id=session_id)

    def index_key(self, user_id: str) -> str:
        return self.INDEX_KEY.format(prefix=self.prefix, user_id=user_id)

    def _session_prefix(self, user_id: str) -> str:
        return self.session_key(user_id, "")

    def create(
        self,
        user_id: str,
        *,
        device: Device,
        ip: str,
        location: str,
        refresh_jti: str,
        now: int | None = None,
    ) -> tuple[Session, list[str]]:
        """Store a new session; return it and the ids of sessions evicted by the cap."""
        now = now_ms() if now is None else now
        session = Session(
            id=new_session_id(),
            user_id=user_id,
            created_at=now,
            expire_at=now + self.lifetime_ms,
            last_active_at=now,
            device=device,
            location=location,
            ip=ip,
        )
        fields = _encode(session) | {"r": refresh_jti}
        with _store_errors():
            evicted = self._create(
                keys=[self.session_key(user_id, session.id), self.index_key(user_id)],
                args=[
                    session.id,
                    now,
                    session.expire_at,
                    self.max_sessions,
                    self._session_prefix(user_id),
                    *(item for pair in fields.items() for item in pair),
                ],
            )
        return session, evicted

    def is_live(self, user_id: str, session_id: str) -> bool:
        """Tell whether the session exists and is not idle; note the activity."""
        with _store_errors():
            return bool(
                self._check(
                    keys=[self.session_key(user_id, session_id), self.index_key(user_id)],
                    args=[session_id, now_ms(), self.idle_timeout_ms, self.TOUCH_INTERVAL_MS],
                )
            )

    def rotate_refresh(
        self, user_id: str, session_id: str, presented_jti: str, new_jti: str
    ) -> Refresh:
        """Swap the session's refresh token id for ``new_jti`` if ``presented_jti`` is current."""
        with _store_errors():
            outcome, current, expire_at = self._rotate(
                keys=[self.session_key(user_id, session_id), self.index_key(user_id)],
                args=[session_id, presented_jti, new_jti, now_ms(), self.refresh_grace_ms],
            )
        if outcome <= 0:
            return Refresh(Rotation(outcome))
        return Refresh(Rotation(outcome), current, int(expire_at))

    def list(self, user_id: str) -> list[Session]:
        """Return the user's live sessions, newest first."""
        with _store_errors():
            flat = self._list(
                keys=[self.index_key(user_id)],
                args=[self._session_prefix(user_id), now_ms(), self.idle_timeout_ms],
            )
        sessions = [_decode(flat[i], user_id, flat[i + 1]) for i in range(0, len(flat), 2)]
        return sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True)

    def revoke(self, user_id: str, session_id: str) -> bool:
        """Delete one session; return whether it existed."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.session_key(user_id, session_id))
        pipe.zrem(self.index_key(user_id), session_id)
        with _store_errors():
            deleted, _ = pipe.execute()
        return bool(deleted)

    def revoke_all(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Delete every session of the user but ``keep``; return the revoked ids."""
        with _store_errors():
            revoked = self._revoke_all(
                keys=[self.index_key(user_id)],
                args=[self._session_prefix(user_id), keep or ""],
            )
        return revoked


def _clip(value: str) -> str:
    return value[:MAX_FIELD_LENGTH]


def _encode(session: Session) -> dict[str, str | int]:
    device = session.device
    return {
        "c": session.created_at,
        "e": session.expire_at,
        "a": session.last_active_at,
        "b": _clip(device.browser),
        "v": _clip(device.version),
        "p": _clip(device.platform),
        "o": _clip(device.os),
        "d": int(device.is_dev),
        "l": _clip(session.location),
        "i": _clip(session.ip),
    }


def _decode(session_id: str, user_id: str, flat_fields: list[str]) -> Session:
    fields = dict(zip(flat_fields[::2], flat_fields[1::2], strict=True))
    return Session(
        id=session_id,
        user_id=user_id,
        created_at=int(fields["c"]),
        expire_at=int(fields["e"]),
        last_active_at=int(fields["a"]),
        device=Device(
            browser=fields["b"],
            version=fields["v"],
            platform=fields["p"],
            os=fields["o"],
            is_dev=fields["d"] == "1",
        ),
        location=fields["l"],
        ip=fields["i"],
    )
