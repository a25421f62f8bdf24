"""Sessions in Redis: one hash per session, one sorted-set index per user.

The hash is kept small, since with one session per user the two keys' own
overhead is already most of the memory: a session's expiry is its key's TTL
and its index score, not a field too; lastActiveAt is stored only once it
differs from createdAt; the descriptive parts share one value (see ``_encode``).

Every key of a user carries the ``{userId}`` hash tag, so all of a user's keys
live in one Cluster slot and each multi-key change can be one atomic script.
Each public method is exactly one round trip to Redis; in a Cluster, a change
that emits an event takes a second one (the stream is in another slot).
"""

from __future__ import annotations

import enum
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from .connection import ERRORS, Client
from .errors import StoreUnavailable

log = logging.getLogger(__name__)

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._@+:-]{1,128}")
USER_ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ @ + : -"  # the pattern, for people
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 random bytes, base64url

# Hash fields are one letter and values stay short so Redis keeps each session
# in its compact listpack encoding (values up to 64 bytes).
MAX_FIELD_LENGTH = 64
UNKNOWN = "unknown"  # what a device or location part is when nothing better is known
SEPARATOR = "\x1f"  # between the parts of the packed description, field x


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


# Every script runs with the same head: KEYS[1] is the user's index (KEYS[2] the
# session's hash, where there is one), ARGV[1..6] the values below, and its own
# arguments from ARGV[7]. Session hashes are reached as PREFIX .. id: the
# {userId} hash tag keeps them in the index's slot. STREAM is '' in a Cluster,
# where the stream lives in another slot: the store appends the event itself.
_HEAD = """
local NOW, USER, PREFIX = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local STREAM, MAXLEN, IDLE = ARGV[4], ARGV[5], tonumber(ARGV[6])
local function emit(kind, ids, expire_at)
  if STREAM == '' or #ids == 0 then return end
  redis.call('XADD', STREAM, 'MAXLEN', '~', MAXLEN, '*', 'type', kind, 'userId', USER,
    'sessionIds', table.concat(ids, ','), 'at', NOW, 'expireAt', expire_at or '')
end
-- When the session was last active: field a, absent until the first touch
-- (the session was last active when created, field c).
local function last_active(created, active)
  return tonumber(active or created)
end
local function idle(last)
  return IDLE > 0 and NOW - last > IDLE
end
-- Delete a session: its hash and its index entry.
local function drop(key, id)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
end
-- Is the session (its hash key and id) live? An idle one is deleted; activity
-- is noted at most every `touch` ms. HSET runs only after HMGET found the hash,
-- so a dead session is never re-created as a key without a TTL.
local function live(key, id, touch)
  local seen = redis.call('HMGET', key, 'c', 'a')
  if not seen[1] then return false end
  local last = last_active(seen[1], seen[2])
  if idle(last) then
    drop(key, id)
    return false
  end
  if NOW - last >= tonumber(touch) then redis.call('HSET', key, 'a', NOW) end
  return true
end
"""

# ARGV[7..]: session id, expire_at, max sessions (0 = no cap), then the hash's
# field/value pairs. Returns the ids evicted by the cap.
_CREATE = """
local id, expire_at, cap = ARGV[7], ARGV[8], tonumber(ARGV[9])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW)
redis.call('HSET', KEYS[2], unpack(ARGV, 10))
redis.call('PEXPIREAT', KEYS[2], expire_at)
redis.call('ZADD', KEYS[1], expire_at, id)
emit('session.created', {id}, expire_at)
local evicted = {}
local excess = redis.call('ZCARD', KEYS[1]) - cap
if cap > 0 and excess > 0 then
  evicted = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  for _, old in ipairs(evicted) do redis.call('DEL', PREFIX .. old) end
  redis.call('ZREM', KEYS[1], unpack(evicted))
  emit('session.evicted', evicted)
end
-- The index lives exactly as long as the user's last session.
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return evicted
"""

# ARGV[7]: session id, ARGV[8]: touch interval. Returns 1 when the session is live.
_CHECK = """
if live(KEYS[2], ARGV[7], ARGV[8]) then return 1 end
return 0
"""

# ARGV[7..]: session id, presented jti, new jti, grace.
# Returns {outcome, current jti, expire_at}; outcomes as in Rotation.
_ROTATE = """
local id, presented, new, grace = ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
local cur = redis.call('HMGET', KEYS[2], 'r', 'q', 't', 'c', 'a')
if not cur[1] then return {0, false, false} end
if idle(last_active(cur[4], cur[5])) then
  drop(KEYS[2], id)
  return {0, false, false}
end
local expire_at = redis.call('PEXPIRETIME', KEYS[2])
if cur[1] == presented then
  redis.call('HSET', KEYS[2], 'r', new, 'q', presented, 't', NOW, 'a', NOW)
  emit('session.refreshed', {id}, expire_at)
  return {1, new, expire_at}
end
if cur[2] == presented and NOW - tonumber(cur[3]) <= grace then
  redis.call('HSET', KEYS[2], 'a', NOW)
  emit('session.refreshed', {id}, expire_at)
  return {2, cur[1], expire_at}
end
drop(KEYS[2], id)
emit('session.theft_detected', {id}, expire_at)
return {-1, false, expire_at}
"""

# ARGV[7]: the asking session's id ('' = none; its hash is KEYS[2]), ARGV[8]:
# touch interval. Returns id, expire_at, fields, id, expire_at, fields, ... of
# the live sessions and prunes the rest; nil when the asking session is not live.
_LIST = """
if ARGV[7] ~= '' and not live(KEYS[2], ARGV[7], ARGV[8]) then return false end
-- A field of an HGETALL reply (name, value, name, value, ...).
local function field(flat, name)
  for f = 1, #flat, 2 do
    if flat[f] == name then return flat[f + 1] end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW)
local out = {}
local index = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #index, 2 do
  local id = index[i]
  local fields = redis.call('HGETALL', PREFIX .. id)
  if #fields == 0 then
    redis.call('ZREM', KEYS[1], id)
  elseif IDLE > 0 and idle(last_active(field(fields, 'c'), field(fields, 'a'))) then
    drop(PREFIX .. id, id)
  else
    out[#out + 1] = id
    out[#out + 1] = index[i + 1]
    out[#out + 1] = fields
  end
end
return out
"""

# ARGV[7]: session id; ARGV[8]: the asking session's id ('' = none; its hash is
# KEYS[3]), ARGV[9]: touch interval. Returns 1 when it existed, 0 when not, -1
# when the asking session is not live (nothing revoked).
_REVOKE = """
if ARGV[8] ~= '' and not live(KEYS[3], ARGV[8], ARGV[9]) then return -1 end
local existed = redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[7])
if existed == 1 then emit('session.revoked', {ARGV[7]}) end
return existed
"""

# ARGV[7]: session id to keep ('' = none). Returns the revoked ids. One script,
# so a login racing with it either lands before (and is revoked) or after (and
# is indexed): never a live session missing from the index.
_REVOKE_ALL = """
local revoked = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[7] then
    if redis.call('DEL', PREFIX .. id) == 1 then revoked[#revoked + 1] = id end
    redis.call('ZREM', KEYS[1], id)
  end
end
emit('sessions.revoked_all', revoked)
return revoked
"""


_SCRIPTS = {
    "create": _CREATE,
    "check": _CHECK,
    "rotate": _ROTATE,
    "list": _LIST,
    "revoke": _REVOKE,
    "revoke_all": _REVOKE_ALL,
}


@contextmanager
def _store_errors() -> Iterator[None]:
    """Turn any Redis failure into StoreUnavailable, so callers fail closed."""
    try:
        yield
    except ERRORS as error:
        raise StoreUnavailable() from error


@dataclass(frozen=True)
class _Bound:
    client: Client
    scripts: dict[str, Script]
    cluster: bool  # events go to the stream in a second command
    per_thread: bool  # a plain pool: each thread keeps a connection (see _connection)


class SessionStore:
    """Create, check, rotate, list and revoke sessions; knows Redis, not HTTP.

    ``client`` is a Redis or RedisCluster client made with
    ``decode_responses=True``, or a function returning one, called on first use.
    With an ``events_stream``, every change also appends an event to that
    stream: in the same script as the change, except in a Cluster (see
    ``_append_event``). With ``wait_replicas``, a revoke is answered once that
    many replicas have it, or ``wait_timeout`` seconds have passed (not in a
    Cluster; see ``_run_and_wait``).
    """

    # The tag's closing brace ends the user id: no separator before the session id.
    SESSION_KEY = "{prefix}s:{{{user_id}}}{session_id}"
    INDEX_KEY = "{prefix}u:{{{user_id}}}"
    TOUCH_INTERVAL_MS = 60_000  # lastActiveAt moves at most once a minute
    # ... and at most every tenth of the idle timeout: a session used more often
    # than every 0.9 x the timeout is never taken for idle.
    TOUCH_PER_IDLE_TIMEOUT = 10

    def __init__(
        self,
        client: Client | Callable[[], Client],
        *,
        prefix: str = "sessionsvc:",
        lifetime: int = 1_209_600,
        idle_timeout: int = 0,
        refresh_grace: float = 10,
        max_sessions: int = 50,
        events_stream: str | None = None,
        events_maxlen: int = 100_000,
        wait_replicas: int = 0,
        wait_timeout: float = 0.5,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain a hash tag")
        self._connect = client if callable(client) else lambda: client
        self._bound: _Bound | None = None
        self._own = threading.local()
        self.prefix = prefix
        self.lifetime_ms = lifetime * 1000
        self.idle_timeout_ms = idle_timeout * 1000
        self.touch_interval_ms = min(
            self.TOUCH_INTERVAL_MS,
            self.idle_timeout_ms // self.TOUCH_PER_IDLE_TIMEOUT or self.TOUCH_INTERVAL_MS,
        )
        self.refresh_grace_ms = int(refresh_grace * 1000)
        self.max_sessions = max_sessions
        self.events_stream = events_stream
        self.events_maxlen = events_maxlen
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = int(wait_timeout * 1000)

    def _bind(self) -> _Bound:
        """Get the client (the first call may connect) and its scripts."""
        bound = self._bound
        if bound is None:
            with _store_errors():
                client = self._connect()
            scripts = {
                name: client.register_script(_HEAD + body) for name, body in _SCRIPTS.items()
            }
            cluster = isinstance(client, RedisCluster)
            # Not a Cluster client (one pool per node), a Sentinel one (its pool finds
            # the primary again after a failover) or a pipeline: those are used as they are.
            per_thread = (
                isinstance(client, redis.Redis)
                and not isinstance(client, Pipeline)
                and type(client.connection_pool) is redis.ConnectionPool
            )
            if cluster and self.wait_replicas:
                log.error("REDIS_WAIT_REPLICAS is ignored in a Cluster: revokes do not wait")
            # Two threads may both get here: they build the same thing.
            bound = self._bound = _Bound(client, scripts, cluster, per_thread)
        return bound

    def _connection(self, bound: _Bound) -> Client:
        """Return a client on a connection of this thread's own, made on first use.

        redis-py's pool checks a connection out and back in around every command
        (a lock, and a poll() to see nothing is left unread on it): about half of
        a round trip's cost on the client. A worker thread serves one request at
        a time, so it keeps one connection instead, taken from the same pool (same
        timeouts and retries). Made again in a forked child, never shared with it.
        Other clients (``per_thread`` false) are used as they are.
        """
        client = bound.client
        if not bound.per_thread:
            return client
        own = self._own
        if getattr(own, "pid", None) != os.getpid():
            # Connects now: a failure here is a store failure like any other.
            own.client = redis.Redis(
                connection_pool=client.connection_pool, single_connection_client=True
            )
            own.pid = os.getpid()
        return own.client

    @property
    def redis(self) -> Client:
        """The Redis client (connecting first, if the store has not yet)."""
        return self._bind().client

    def session_key(self, user_id: str, session_id: str) -> str:
        return self.SESSION_KEY.format(prefix=self.prefix, user_id=user_id, session_id=session_id)

    def index_key(self, user_id: str) -> str:
        return self.INDEX_KEY.format(prefix=self.prefix, user_id=user_id)

    def _run(
        self,
        script: str,
        user_id: str,
        session_ids: tuple[str, ...],
        *args: str | int,
        now: int,
        wait: bool = False,
    ) -> Any:
        """Run one of the scripts for a user (and the sessions it names): one round trip.

        With ``wait``, wait for ``wait_replicas`` replicas to have the change.
        """
        bound = self._bind()
        keys = [self.index_key(user_id)]
        keys += [self.session_key(user_id, session_id) for session_id in session_ids]
        head = [
            now,
            user_id,
            self.session_key(user_id, ""),
            "" if bound.cluster else self.events_stream or "",
            self.events_maxlen,
            self.idle_timeout_ms,
        ]
        with _store_errors():
            if wait and self.wait_replicas and not bound.cluster:
                return self._run_and_wait(bound, bound.scripts[script], keys, [*head, *args])
            client = self._connection(bound)
            return bound.scripts[script](keys=keys, args=[*head, *args], client=client)

    def _run_and_wait(self, bound: _Bound, script: Script, keys: list[str], args: list) -> Any:
        """Run a script and WAIT behind it on the same connection: a pipeline, one round trip.

        WAIT counts the replicas that have this connection's writes, so it
        cannot be a command of its own; in a Cluster, the client picks the
        connection, hence no WAIT there. Too few replicas in time is logged:
        the change stands on the primary either way.
        """
        for _ in range(2):  # the second time with the script loaded
            pipe = bound.client.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            result, acknowledged = pipe.execute(raise_on_error=False)
            if not isinstance(result, NoScriptError):
                break
            bound.client.script_load(script.script)
        for outcome in (result, acknowledged):
            if isinstance(outcome, Exception):
                raise outcome
        if acknowledged < self.wait_replicas:
            log.warning(
                "a revoke reached %d of %d replicas within %d ms: a failover now could undo it",
                acknowledged,
                self.wait_replicas,
                self.wait_timeout_ms,
            )
        return result

    def _append_event(
        self,
        kind: str,
        user_id: str,
        session_ids: list[str],
        now: int,
        expire_at: int | str | None = None,
    ) -> None:
        """In a Cluster, append the event the script could not: one more round trip.

        Not atomic with the change, which is committed by now: should this
        fail, the event is lost and logged, and the request still succeeds.
        """
        bound = self._bind()
        if not bound.cluster or not self.events_stream or not session_ids:
            return
        fields = {
            "type": kind,
            "userId": user_id,
            "sessionIds": ",".join(session_ids),
            "at": now,
            "expireAt": "" if expire_at is None else expire_at,
        }
        try:
            bound.client.xadd(
                self.events_stream, fields, maxlen=self.events_maxlen, approximate=True
            )
        except ERRORS:
            log.exception("event lost: %s", fields)

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
        evicted = self._run(
            "create",
            user_id,
            (session.id,),
            session.id,
            session.expire_at,
            self.max_sessions,
            *(item for pair in fields.items() for item in pair),
            now=now,
        )
        self._append_event("session.created", user_id, [session.id], now, session.expire_at)
        self._append_event("session.evicted", user_id, evicted, now)
        return session, evicted

    def is_live(self, user_id: str, session_id: str) -> bool:
        """Tell whether the session exists and is not idle; note the activity."""
        live = self._run(
            "check", user_id, (session_id,), session_id, self.touch_interval_ms, now=now_ms()
        )
        return bool(live)

    def rotate_refresh(
        self, user_id: str, session_id: str, presented_jti: str, new_jti: str
    ) -> Refresh:
        """Swap the session's refresh token id for ``new_jti`` if ``presented_jti`` is current."""
        now = now_ms()
        outcome, current, expire_at = self._run(
            "rotate",
            user_id,
            (session_id,),
            session_id,
            presented_jti,
            new_jti,
            self.refresh_grace_ms,
            now=now,
        )
        if outcome == Rotation.REUSED.value:
            self._append_event("session.theft_detected", user_id, [session_id], now, expire_at)
        if outcome <= 0:
            return Refresh(Rotation(outcome))
        self._append_event("session.refreshed", user_id, [session_id], now, expire_at)
        return Refresh(Rotation(outcome), current, int(expire_at))

    def _asking(self, caller: str | None) -> tuple[tuple[str, ...], tuple[str, int]]:
        """Return the session keys and script arguments that check the asking session.

        No caller: no key, and an empty id, which the scripts take as "no check".
        """
        if caller is None:
            return (), ("", 0)
        return (caller,), (caller, self.touch_interval_ms)

    def list(self, user_id: str, *, caller: str | None = None) -> list[Session] | None:
        """Return the user's live sessions, newest first.

        With ``caller``, the session asking is checked (and its activity noted) in
        the same round trip, as ``is_live`` would: None when it is not live.
        """
        ids, asking = self._asking(caller)
        flat = self._run("list", user_id, ids, *asking, now=now_ms())
        if flat is None:
            return None
        sessions = [_decode(user_id, *flat[i : i + 3]) for i in range(0, len(flat), 3)]
        return sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True)

    def revoke(self, user_id: str, session_id: str, *, caller: str | None = None) -> bool | None:
        """Delete one session; return whether it existed.

        With ``caller``, the session asking is checked first in the same round
        trip, as ``is_live`` would: None (and nothing deleted) when it is not live.
        """
        now = now_ms()
        ids, asking = self._asking(caller)
        existed = self._run(
            "revoke", user_id, (session_id, *ids), session_id, *asking, now=now, wait=True
        )
        if existed < 0:
            return None
        if existed:
            self._append_event("session.revoked", user_id, [session_id], now)
        return bool(existed)

    def revoke_all(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Delete every session of the user but ``keep``; return the revoked ids."""
        now = now_ms()
        revoked = self._run("revoke_all", user_id, (), keep or "", now=now, wait=True)
        self._append_event("sessions.revoked_all", user_id, revoked, now)
        return revoked


def _clip(value: str) -> str:
    return value[:MAX_FIELD_LENGTH]


def _encode(session: Session) -> dict[str, str | int]:
    """Return the hash fields of a new session."""
    device = session.device
    parts = [
        _clip(value)
        for value in (
            device.browser,
            device.version,
            device.platform,
            device.os,
            session.location,
            session.ip,
        )
    ]
    fields: dict[str, str | int] = {"c": session.created_at}
    if session.last_active_at != session.created_at:  # else a is left out until the first touch
        fields["a"] = session.last_active_at
    # One field for all of them saves six fields' overhead: x holds the parts
    # separated, "unknown" as an empty part, and isDev as "1" or "". When they
    # do not fit one listpack value, or would not read back the same (an empty
    # part, a part holding the separator), each keeps a field of its own.
    packed = SEPARATOR.join(
        [*("" if part == UNKNOWN else part for part in parts), "1" if device.is_dev else ""]
    )
    if (
        all(part and SEPARATOR not in part for part in parts)
        and len(packed.encode()) <= MAX_FIELD_LENGTH
    ):
        fields["x"] = packed
    else:
        fields |= dict(zip("bvpoli", parts, strict=True)) | {"d": int(device.is_dev)}
    return fields


def _decode(user_id: str, session_id: str, expire_at: str, flat_fields: list[str]) -> Session:
    fields = dict(zip(flat_fields[::2], flat_fields[1::2], strict=True))
    if "x" in fields:
        *parts, is_dev = fields["x"].split(SEPARATOR)
        browser, version, platform, os_name, location, ip = (part or UNKNOWN for part in parts)
    else:
        browser, version, platform, os_name, location, ip = (fields[name] for name in "bvpoli")
        is_dev = fields["d"]
    return Session(
        id=session_id,
        user_id=user_id,
        created_at=int(fields["c"]),
        expire_at=int(expire_at),
        last_active_at=int(fields.get("a", fields["c"])),
        device=Device(
            browser=browser,
            version=version,
            platform=platform,
            os=os_name,
            is_dev=is_dev == "1",
        ),
        location=location,
        ip=ip,
    )
