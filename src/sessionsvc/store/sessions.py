"""Sessions in Redis: one hash per session, one sorted-set index per user.

This module runs the scripts (``scripts``) that change them; ``keyspace``
names the keys, ``encoding`` says what a session's hash holds.

Every key of a user carries the ``{userId}`` hash tag, so all of a user's keys
live in one Cluster slot and each multi-key change can be one atomic script.
Each public method is exactly one round trip to Redis; in a Cluster, a change
that emits an event takes a second one (the stream is in another slot).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from redis.client import Pipeline
from redis.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import Script
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from ..config import DEFAULTS
from ..domain.assurance import DEFAULT_LEVELS, NO_ASSURANCE, Assurance
from ..domain.devices import KnownDevice
from ..domain.history import USER, Actor, EndedSession, EndReason, admin
from ..domain.locations import Place
from ..domain.risk import History, Spot
from ..domain.sessions import Device, Refresh, Rotation, Session, new_session_id, now_ms
from .connection import ERRORS, Client, run_and_wait, thread_client
from .encoding import (
    decode_assurance,
    decode_ended,
    decode_session,
    encode_session,
    legacy_digest,
    secret_digest,
)
from .errors import RevokeNotDurable, StoreNotDurable, StoreTooOld, StoreUnavailable
from .keyspace import KeyLayout
from .scripts import SCRIPTS

log = logging.getLogger(__name__)


@contextmanager
def _store_errors() -> Iterator[None]:
    """Turn any Redis failure into StoreUnavailable, so callers fail closed."""
    try:
        yield
    except ERRORS as error:
        raise StoreUnavailable(
            f"the session store is unavailable: {type(error).__name__}"
        ) from error


# The scripts call PEXPIRETIME, new in Redis 7.0. Valkey reports the Redis
# version it is compatible with as its redis_version (7.2.4 for Valkey 8 and 9).
OLDEST_SERVER = (7, 0)


def version_numbers(version: str) -> tuple[int, ...] | None:
    """Return a ``redis_version``'s numbers, "6.2.14" -> (6, 2, 14); None if it has none."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(part) for part in match[0].split(".")) if match else None


def too_old(version: str) -> bool:
    """Tell whether a server reporting ``version`` lacks what the scripts call (unknown: no)."""
    numbers = version_numbers(version)
    return numbers is not None and numbers < OLDEST_SERVER


def too_old_error(version: str) -> StoreTooOld:
    """Return the error saying plainly that the server is too old."""
    oldest = ".".join(map(str, OLDEST_SERVER))
    return StoreTooOld(
        f"Redis {version} is too old: sessionsvc needs Redis {oldest} or newer (PEXPIRETIME)."
    )


def _server_version(client: Client) -> str:
    """Return the server's ``redis_version``; "" when it will not say (INFO denied by an ACL)."""
    with _store_errors():
        try:
            return str(client.info("server").get("redis_version", ""))
        except ResponseError as error:
            log.warning("the server's version is unknown (%s): Redis 7.0 or newer is needed", error)
            return ""


DURABILITY_DOC = "docs/redis.md#durability-of-revokes"


def _persistence(client: Client) -> dict[str, str] | None:
    """Return the server's ``appendonly`` and ``appendfsync``; None when it will not say.

    Managed services refuse CONFIG (or rename it): that is an answer too. In a
    Cluster, the primaries' values, the weakest first ("no" before "yes").
    """
    try:
        answers: Any
        if isinstance(client, RedisCluster):
            answers = client.config_get(
                "appendonly", "appendfsync", target_nodes=RedisCluster.PRIMARIES
            )
        else:
            answers = client.config_get("appendonly", "appendfsync")
    except ResponseError as error:
        log.warning(
            "the server will not say whether it keeps an append-only file (CONFIG GET: %s),"
            " as managed services do: make sure it does (appendonly yes), or revokes can be"
            " undone by a crash or restart of Redis; see %s",
            error,
            DURABILITY_DOC,
        )
        return None
    if not isinstance(answers, dict):
        return None
    nodes = [answer for answer in answers.values() if isinstance(answer, dict)]
    if nodes:  # a Cluster's, one per primary: the weakest
        return {
            str(k): str(v)
            for k, v in min(nodes, key=lambda n: n.get("appendonly") == "yes").items()
        }
    return {str(k): str(v) for k, v in answers.items()}


def _warn_of_persistence(persistence: dict[str, str] | None) -> None:
    """Warn when a crash or restart of Redis could undo revokes (never refuses: development)."""
    if persistence is None:
        return  # _persistence warned
    if persistence.get("appendonly") != "yes":
        log.warning(
            "the server has appendonly %s: a revoke not yet in a snapshot is lost if Redis"
            " crashes or restarts, and the revoked tokens pass again; set appendonly yes"
            " (or use replicas and SESSIONSVC_REDIS_WAIT_REPLICAS), see %s",
            persistence.get("appendonly", "unknown"),
            DURABILITY_DOC,
        )
    elif persistence.get("appendfsync") == "no":
        log.warning(
            "the server has appendfsync no: its system writes the append-only file when it"
            " likes (some 30 seconds), and a crash of the machine can undo revokes made"
            " meanwhile; appendfsync everysec or always, see %s",
            DURABILITY_DOC,
        )


def _wait_aof_refusal(client: Client, version: str) -> str:
    """Return why REDIS_WAIT_AOF cannot be kept on this server, "" when it can."""
    if isinstance(client, RedisCluster):
        return "SESSIONSVC_REDIS_WAIT_AOF cannot be kept in a Redis Cluster (no WAITAOF there)."
    try:
        # No write on this connection yet, or an old one: answered at once (1 ms at most).
        client.waitaof(1, 0, 1)
    except ResponseError as error:
        text = str(error)
        if "appendonly" in text:
            return (
                "SESSIONSVC_REDIS_WAIT_AOF is set but the server has appendonly no: set"
                " appendonly yes on it, or unset SESSIONSVC_REDIS_WAIT_AOF."
            )
        if "unknown command" in text.lower():
            return (
                f"SESSIONSVC_REDIS_WAIT_AOF needs WAITAOF, which Redis {version or '(unknown)'}"
                " lacks: Redis 7.2 or newer, or Valkey 8 or newer."
            )
        return f"SESSIONSVC_REDIS_WAIT_AOF is set but the server refuses WAITAOF: {text}"
    return ""


@dataclass(frozen=True)
class Held:
    """What verify needs of a live session, read in its one round trip."""

    claims_json: str  # '' for none
    assurance: Assurance  # its auth time always set (createdAt when the login gave none)
    actor: str  # a support session's operator; '' for the user's own session


class StepUp(NamedTuple):
    """A step-up's outcome: ``outcome`` 1 done, 0 no live session, -1 a lower level, -2 older."""

    outcome: int
    held: str = ""  # what the session holds instead (-1: its acr, -2: its auth time in ms)
    expire_at: int = 0
    claims_json: str = ""
    created_at: int = 0
    actor: str = ""


@dataclass(frozen=True)
class _Bound:
    client: Client
    scripts: dict[str, Script]
    cluster: bool  # events go to the stream in a second command
    connection: Callable[[], Client]  # the client to run scripts on, in this thread


class SessionStore(KeyLayout):
    """Create, check, rotate, list and revoke sessions; knows Redis, not HTTP.

    ``client`` is a Redis or RedisCluster client made with
    ``decode_responses=True``, or a function returning one, called on first use.
    With an ``events_stream``, every change also appends an event to that
    stream: in the same script as the change, except in a Cluster (see
    ``_append_event``). With ``wait_replicas``, a revoke is answered once that
    many replicas have it, or ``wait_timeout`` seconds have passed (not in a
    Cluster; see ``connection.run_and_wait``).
    """

    TOUCH_INTERVAL_MS = 60_000  # lastActiveAt moves at most once a minute
    # ... and at most every tenth of the idle timeout: a session used more often
    # than every 0.9 x the timeout is never taken for idle.
    TOUCH_PER_IDLE_TIMEOUT = 10

    def __init__(
        self,
        client: Client | Callable[[], Client],
        *,
        # The defaults are the settings' (config.SETTINGS), written nowhere else.
        prefix: str = DEFAULTS["REDIS_KEY_PREFIX"],
        lifetime: int = DEFAULTS["SESSION_LIFETIME"],
        idle_timeout: int = DEFAULTS["SESSION_IDLE_TIMEOUT"],
        refresh_grace: float = DEFAULTS["REFRESH_REUSE_GRACE"],
        max_sessions: int = DEFAULTS["MAX_SESSIONS_PER_USER"],
        events_stream: str | None = None,  # none: no events
        events_maxlen: int = DEFAULTS["EVENTS_MAXLEN"],
        wait_replicas: int = DEFAULTS["REDIS_WAIT_REPLICAS"],
        wait_timeout: float = DEFAULTS["REDIS_WAIT_TIMEOUT"],
        wait_aof: bool = DEFAULTS["REDIS_WAIT_AOF"],
        max_devices: int = DEFAULTS["MAX_DEVICES_PER_USER"],
        history_days: int = DEFAULTS["HISTORY_DAYS"],
        history_max: int = DEFAULTS["HISTORY_MAX_PER_USER"],
    ) -> None:
        super().__init__(prefix)
        self._connect = client if callable(client) else lambda: client
        self._bound: _Bound | None = None
        self._server_version: str | None = None  # its redis_version, once asked; "" unknown
        self._version_lock = threading.Lock()
        self._durability: str | None = None  # why WAIT_AOF cannot be kept, once asked; "" it can
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
        self.wait_aof = wait_aof
        self.max_devices = max_devices
        self.history_ms = history_days * 86_400_000
        self.history_max = history_max

    def _bind(self) -> _Bound:
        """Get the client (the first call may connect), check its server once, and its scripts."""
        bound = self._bound
        if bound is None:
            with _store_errors():
                client = self._connect()
            if not isinstance(client, Pipeline | ClusterPipeline):  # a pipeline runs nothing yet
                self.check_server(client)
            scripts = {name: client.register_script(lua) for name, lua in SCRIPTS.items()}
            cluster = isinstance(client, RedisCluster)
            if cluster and self.wait_replicas:
                log.error("REDIS_WAIT_REPLICAS is ignored in a Cluster: revokes do not wait")
            # Two threads may both get here: they build the same thing.
            bound = self._bound = _Bound(client, scripts, cluster, thread_client(client))
        return bound

    def check_version(self, client: Client) -> None:
        """Raise StoreTooOld if the server is older than the scripts need.

        The server is asked once per store (INFO server), on ``client``: the
        store's own on first use, or /readyz's if it asks first.
        """
        version = self._server_version
        if version is None:
            version = _server_version(client)
            with self._version_lock:
                first = self._server_version is None
                if first:
                    self._server_version = version
            if first and too_old(version):
                log.error("%s", too_old_error(version))
        if too_old(version):
            raise too_old_error(version)  # a new one each time: a raise adds to its traceback

    def check_server(self, client: Client) -> None:
        """Check the server once: its version (check_version), then what a crash keeps."""
        self.check_version(client)
        self.check_durability(client)

    def check_durability(self, client: Client) -> None:
        """Warn once if a crash could undo revokes; raise StoreNotDurable if WAIT_AOF can't hold.

        Asked once per store, on first use (or /readyz's first), as the version is:
        ``appendonly`` and ``appendfsync`` (CONFIG GET, a warning where refused),
        and with ``wait_aof`` whether WAITAOF works here.
        """
        refusal = self._durability
        if refusal is None:
            with _store_errors():
                persistence = _persistence(client)
                refusal = (
                    _wait_aof_refusal(client, self._server_version or "") if self.wait_aof else ""
                )
            with self._version_lock:
                first = self._durability is None
                if first:
                    self._durability = refusal
            if first:
                _warn_of_persistence(persistence)
                if refusal:
                    log.error("%s", refusal)
        if refusal:
            raise StoreNotDurable(refusal)

    @property
    def redis(self) -> Client:
        """The Redis client (connecting first, if the store has not yet)."""
        return self._bind().client

    def _run(
        self,
        script: str,
        user_id: str,
        session_ids: tuple[str, ...],
        *args: str | int,
        now: int,
        wait: bool = False,
        more_keys: tuple[str, ...] = (),
    ) -> Any:
        """Run one of the scripts for a user (and the sessions it names): one round trip.

        With ``wait``, wait for ``wait_replicas`` replicas to have the change, and
        with ``wait_aof`` for it to be on disk (RevokeNotDurable if not in time).
        """
        bound = self._bind()
        keys = [self.index_key(user_id)]
        keys += [self.session_key(user_id, session_id) for session_id in session_ids]
        keys += more_keys  # the user's other keys a script names (devices, answers)
        head: list[str | int] = [  # ARGV[1..HEAD_ARGC], as the scripts' shared head reads them
            now,
            user_id,
            self.session_key(user_id, ""),
            "" if bound.cluster else self.events_stream or "",
            self.events_maxlen,
            self.idle_timeout_ms,
            self.history_key(user_id) if self.history_ms else "",
            self.history_ms,
            self.history_max,
        ]
        run, argv = bound.scripts[script], [*head, *args]
        with _store_errors():
            # In a Cluster, the client picks the connection: no WAIT there (and
            # check_durability refused WAIT_AOF).
            if not (wait and (self.wait_replicas or self.wait_aof) and not bound.cluster):
                return run(keys=keys, args=argv, client=bound.connection())
            result, on_disk, acknowledged = run_and_wait(
                bound.client,
                run,
                keys,
                argv,
                self.wait_replicas,
                self.wait_timeout_ms,
                aof=self.wait_aof,
            )
        if self.wait_aof and (not on_disk or acknowledged < self.wait_replicas):
            # Applied in memory: a crash before the fsync could undo it, so no 200.
            log.warning(
                "a revoke was not confirmed on disk within %d ms (server: %s, replicas: %d of"
                " %d): answered 503",
                self.wait_timeout_ms,
                "yes" if on_disk else "no",
                acknowledged,
                self.wait_replicas,
            )
            raise RevokeNotDurable()
        if acknowledged < self.wait_replicas:  # the change stands on the primary either way
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
        actor: str | None = None,
        *,
        extra: dict[str, str] | None = None,
    ) -> None:
        """In a Cluster, append the event the script could not: one more round trip.

        Not atomic with the change, which is committed by now: should this
        fail, the event is lost and logged, and the request still succeeds.
        """
        bound = self._bind()
        if not bound.cluster or not self.events_stream or not session_ids:
            return
        fields: dict[FieldT, EncodableT] = {
            "type": kind,
            "userId": user_id,
            "sessionIds": ",".join(session_ids),
            "at": now,
            "expireAt": "" if expire_at is None else expire_at,
        }
        fields.update(extra or {})
        if actor:  # a support session's operator, as the scripts add it
            fields["actor"] = actor
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
        refresh_secret: str,
        claims_json: str = "",
        assurance: Assurance = NO_ASSURANCE,
        now: int | None = None,
        device_id: str = "",
        risk: tuple[str, ...] = (),
        lifetime: int | None = None,
        persistent: bool = True,
        idle_timeout: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> tuple[Session, list[str]]:
        """Store a new session (its claims as JSON); return it and the sessions the cap evicted.

        ``lifetime`` (s, default the store's) and ``idle_timeout`` (s, default the
        store's) are the login's own, checked by the caller; ``actor`` and
        ``reason`` make it a support session.
        """
        now = now_ms() if now is None else now
        session = Session(
            id=new_session_id(),
            user_id=user_id,
            created_at=now,
            expire_at=now + (self.lifetime_ms if lifetime is None else lifetime * 1000),
            last_active_at=now,
            device=device,
            location=location,
            ip=ip,
            assurance=assurance,
            device_id=device_id,
            risk=risk,
            persistent=persistent,
            # Stored only when it differs from the setting: a plain hash stays as small.
            idle_timeout=None
            if idle_timeout in (None, self.idle_timeout_ms // 1000)
            else idle_timeout,
            actor=actor,
            reason=reason,
        )
        fields = encode_session(session, refresh_secret) | (
            {"k": claims_json} if claims_json else {}
        )
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
        self._append_event("session.created", user_id, [session.id], now, session.expire_at, actor)
        self._append_event("session.evicted", user_id, evicted, now)
        return session, evicted

    def is_live(self, user_id: str, session_id: str, *, token_expiry: int = 0) -> bool:
        """Tell whether the session exists and is not idle (``check``); note the activity."""
        return self.check(user_id, session_id, token_expiry=token_expiry) is not None

    def check(self, user_id: str, session_id: str, *, token_expiry: int = 0) -> str | None:
        """Return a live session's claims (JSON, '' for none), else None; note the activity.

        With ``token_expiry`` (a token's ``exp``, seconds), a session ending before
        its token is not live for it: this service never issued such a token.
        """
        held = self.held(user_id, session_id, token_expiry=token_expiry)
        return None if held is None else held.claims_json

    def held(self, user_id: str, session_id: str, *, token_expiry: int = 0) -> Held | None:
        """Return a live session's claims, assurance and actor (as ``check``), else None."""
        ids, asking = self._asking(session_id, token_expiry)
        seen = self._run("check", user_id, ids, *asking, now=now_ms())
        if seen is None:
            return None
        claims_json, created_at, acr, amr, auth_time, actor = seen
        assurance = decode_assurance(acr, amr, auth_time).at(int(created_at))
        return Held(claims_json, assurance, actor)

    def step_up(
        self,
        user_id: str,
        session_id: str,
        assurance: Assurance,
        *,
        levels: tuple[str, ...] = DEFAULT_LEVELS,
        now: int | None = None,
    ) -> StepUp:
        """Raise a live session's level in place (``scripts.STEP_UP``); emit session.stepped_up.

        ``assurance`` has an acr, an amr and an auth time (ms).
        """
        now = now_ms() if now is None else now
        answer = self._run(
            "step_up",
            user_id,
            (session_id,),
            session_id,
            assurance.acr,
            ",".join(assurance.amr),
            now if assurance.auth_time is None else assurance.auth_time,
            ",".join(levels),
            now=now,
        )
        if answer[0] != 1:
            return StepUp(int(answer[0]), *(answer[1:2]))
        _, expire_at, claims_json, created_at, actor = answer
        self._append_event(
            "session.stepped_up",
            user_id,
            [session_id],
            now,
            expire_at,
            actor,
            extra={"acr": assurance.acr},
        )
        return StepUp(1, "", int(expire_at), claims_json, int(created_at), actor)

    def set_claims(self, user_id: str, session_id: str | None, claims_json: str) -> list[str]:
        """Replace the claims (JSON, '' for none) of one or all of a user's sessions; say which."""
        now = now_ms()
        ids = (session_id,) if session_id else ()
        changed = self._run("set_claims", user_id, ids, session_id or "", claims_json, now=now)
        self._append_event("session.claims_changed", user_id, changed, now)
        return changed

    def rotate_refresh(
        self, user_id: str, session_id: str, presented: str, successor: str, *, issued: bool = True
    ) -> Refresh:
        """Swap the session's refresh secret for ``successor`` if ``presented`` is current.

        ``successor`` must be derived from ``presented`` (``tokens.refresh``): the
        previous secret presented again within the grace gets it again, and
        only a digest of either reaches Redis. Another secret is theft (the
        session ends) only when the token was ``issued`` by the service,
        provably; else it is refused (``Rotation.UNKNOWN``).
        """
        now = now_ms()
        outcome, held, expire_at, *rest = self._run(
            "rotate",
            user_id,
            (session_id,),
            session_id,
            secret_digest(presented),
            secret_digest(successor),
            self.refresh_grace_ms,
            int(issued),
            legacy_digest(presented),
            now=now,
        )
        claims_json, not_persistent, actor, created_at, acr, amr, auth_time = (
            *rest,
            *[""] * 7,
        )[:7]
        if outcome == Rotation.REUSED.value:
            self._append_event(
                "session.theft_detected", user_id, [session_id], now, expire_at, actor
            )
        if outcome <= 0:
            return Refresh(Rotation(outcome))
        self._append_event("session.refreshed", user_id, [session_id], now, expire_at, actor)
        assurance = decode_assurance(acr, amr, auth_time).at(int(created_at))
        # A session stored by 0.1.0, on its grace, holds a secret not derived: its own.
        return Refresh(
            Rotation(outcome),
            held or successor,
            int(expire_at),
            claims_json,
            assurance,
            persistent=not_persistent != "1",
            actor=actor,
        )

    def _asking(
        self, caller: str | None, token_expiry: int
    ) -> tuple[tuple[str, ...], tuple[str, int, int]]:
        """Return the session keys and script arguments that check the asking session.

        No caller: no key, and an empty id, which the scripts take as "no check".
        """
        if caller is None:
            return (), ("", 0, 0)
        return (caller,), (caller, self.touch_interval_ms, token_expiry * 1000)

    def list_sessions(
        self, user_id: str, *, caller: str | None = None, token_expiry: int = 0
    ) -> list[Session] | None:
        """Return the user's live sessions, newest first.

        With ``caller``, the session asking is checked (and its activity noted) in
        the same round trip, as ``is_live`` would (for its token's ``token_expiry``):
        None when it is not live (never None without one).
        """
        ids, asking = self._asking(caller, token_expiry)
        flat = self._run("list", user_id, ids, *asking, now=now_ms())
        if flat is None:
            return None
        sessions = []
        for i in range(0, len(flat), 3):
            session_id, expire_at, pairs = flat[i : i + 3]
            fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
            sessions.append(decode_session(user_id, session_id, expire_at, fields))
        return sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True)

    def revoke(
        self,
        user_id: str,
        session_id: str,
        *,
        caller: str | None = None,
        token_expiry: int = 0,
        reason: EndReason | None = None,
        by: Actor | None = None,
    ) -> bool | None:
        """Delete one session and record it in the history; return whether it existed.

        With ``caller``, the session asking is checked first in the same round
        trip, as ``is_live`` would (for its token's ``token_expiry``): None (and
        nothing deleted) when it is not live.

        ``reason`` is why it ended (any ``EndReason``; ``REPORTED_NOT_ME`` for a
        "Was this you?" answered no), ``by`` who ended it. By default: with a
        caller, the user (``SIGNED_OUT`` when it is the caller's own session,
        else ``REVOKED_BY_USER``); without, support staff (``REVOKED_BY_ADMIN``).
        """
        now = now_ms()
        ids, asking = self._asking(caller, token_expiry)
        if reason is None:
            reason = (
                EndReason.REVOKED_BY_ADMIN
                if caller is None
                else EndReason.SIGNED_OUT
                if caller == session_id
                else EndReason.REVOKED_BY_USER
            )
        if by is None:
            by = admin(None) if caller is None else USER
        existed, actor = self._run(
            "revoke",
            user_id,
            (session_id, *ids),
            session_id,
            *asking,
            reason.value,
            by.stored(),
            now=now,
            wait=True,
        )
        if existed < 0:
            return None
        if existed:
            self._append_event("session.revoked", user_id, [session_id], now, actor=actor)
        return bool(existed)

    def revoke_all(
        self,
        user_id: str,
        *,
        keep: str | None = None,
        reason: EndReason = EndReason.SIGNED_OUT_EVERYWHERE,
        by: Actor = USER,
    ) -> list[str]:
        """Delete every session of the user but ``keep``, recording each; return the revoked ids.

        ``reason`` and ``by`` as for ``revoke``: the user signing out everywhere
        by default.
        """
        now = now_ms()
        revoked = self._run(
            "revoke_all",
            user_id,
            (),
            keep or "",
            reason.value,
            by.stored(),
            now=now,
            wait=True,
        )
        self._append_event("sessions.revoked_all", user_id, revoked, now)
        return revoked

    def history(self, user_id: str, *, limit: int | None = None) -> list[EndedSession]:
        """Return the user's ended sessions of the last HISTORY_DAYS, the latest ended first.

        One read (LRANGE) of the list the scripts keep: at most HISTORY_MAX_PER_USER
        entries, those older than HISTORY_DAYS left out (the next record drops them).
        """
        if not self.history_ms:
            return []
        bound = self._bind()
        with _store_errors():
            # Strings: the client decodes responses (see the class).
            entries = cast("list[str]", bound.connection().lrange(self.history_key(user_id), 0, -1))
        cutoff = now_ms() - self.history_ms
        ended = [decode_ended(entry) for entry in entries]
        recent = sorted(
            (each for each in ended if each.ended_at > cutoff),
            key=lambda each: (each.ended_at, each.id),
            reverse=True,
        )
        return recent if limit is None else recent[:limit]

    # --- Devices (issue 19) ---------------------------------------------------------------------

    # A user's devices are kept this long after their last login (any device's).
    DEVICE_RETENTION_MS = 400 * 86_400_000

    def device_login(
        self, user_id: str, presented: str | None, *, name: str, new_id: str, place: Place
    ) -> tuple[str, History]:
        """Note a login on a device (the one ``presented`` names if the user knows it, else
        a new one, ``new_id``); return its id and what was known before (for the signals)."""
        now = now_ms()
        coordinates = ("", "") if place.latitude is None else (place.latitude, place.longitude)
        known, device_id, previous, countries, had_any = self._run(
            "device_login",
            user_id,
            (),
            presented or "",
            new_id,
            name,
            place.location,
            place.country,
            *(str(value) for value in coordinates),
            self.max_devices,
            self.DEVICE_RETENTION_MS,
            now=now,
            more_keys=(self.devices_key(user_id),),
        )
        last = None
        if previous:
            spot = json.loads(previous)
            last = Spot(
                at=int(spot["at"]),
                country=spot.get("c") or "",
                latitude=float(spot["la"]) if spot.get("la") else None,
                longitude=float(spot["lo"]) if spot.get("lo") else None,
            )
        seen = frozenset(json.loads(countries)) if countries else frozenset()
        return device_id, History(bool(known), bool(had_any), seen, last)

    def devices(self, user_id: str) -> list[KnownDevice]:
        """Return the user's known devices, the one last seen first, with their live sessions."""
        flat, sessions = self._run(
            "devices", user_id, (), now=now_ms(), more_keys=(self.devices_key(user_id),)
        )
        on: dict[str, list[str]] = {}
        for i in range(0, len(sessions), 2):
            on.setdefault(sessions[i + 1], []).append(sessions[i])
        devices = [
            _device(device_id, raw, on.get(device_id, []))
            for device_id, raw in zip(flat[::2], flat[1::2], strict=True)
            if not device_id.startswith("~")
        ]
        return sorted(devices, key=lambda d: (d.last_seen, d.id), reverse=True)

    def rename_device(self, user_id: str, device_id: str, name: str) -> KnownDevice | None:
        """Give a device its user's own name; None when the user has no such device."""
        raw = self._run(
            "rename_device",
            user_id,
            (),
            device_id,
            name,
            now=now_ms(),
            more_keys=(self.devices_key(user_id),),
        )
        return _device(device_id, raw, []) if raw else None

    def forget_device(
        self,
        user_id: str,
        device_id: str,
        *,
        reason: EndReason = EndReason.REVOKED_BY_USER,
        by: Actor = USER,
    ) -> tuple[bool, list[str]]:
        """Forget a device and sign out its sessions; return whether it was known, and them.

        Each session is recorded in the history with ``reason`` and ``by``: the
        user (the default), or support staff (``REVOKED_BY_ADMIN``, ``admin(key name)``).
        """
        now = now_ms()
        existed, revoked, supported = self._run(
            "forget_device",
            user_id,
            (),
            device_id,
            reason.value,
            by.stored(),
            now=now,
            wait=True,
            more_keys=(self.devices_key(user_id),),
        )
        actors = dict(zip(supported[::2], supported[1::2], strict=True))
        plain = [each for each in revoked if each not in actors]
        self._append_event("session.revoked", user_id, plain, now)
        for each, actor in actors.items():
            self._append_event("session.revoked", user_id, [each], now, actor=actor)
        return bool(existed), revoked

    def answer(
        self,
        user_id: str,
        nonce: str,
        *,
        device_id: str,
        answer: str,
        session_id: str,
        life_ms: int,
    ) -> bool:
        """Use a "Was this you?" pair up and act on the device; False when it was used already."""
        given = self._run(
            "answer",
            user_id,
            (),
            device_id,
            answer,
            max(1, life_ms),
            session_id,
            now=now_ms(),
            wait=True,
            more_keys=(self.devices_key(user_id), self.answer_key(user_id, nonce)),
        )
        return given == 1

    def unanswer(self, user_id: str, nonce: str) -> None:
        """Give a pair back (acting on its answer failed), so it can be answered again."""
        self._run(
            "unanswer", user_id, (), now=now_ms(), more_keys=(self.answer_key(user_id, nonce),)
        )

    def answer_context(
        self, user_id: str, session_id: str, device_id: str, nonce: str
    ) -> tuple[Session | None, KnownDevice | None, str | None]:
        """Return what a "Was this you?" page shows: the session (None once it ended), the
        device (None once forgotten), and the answer given (None before one)."""
        fields, expire_at, raw, given = self._run(
            "answer_context",
            user_id,
            (session_id,),
            device_id,
            now=now_ms(),
            more_keys=(self.devices_key(user_id), self.answer_key(user_id, nonce)),
        )
        session = None
        if fields:
            pairs = dict(zip(fields[::2], fields[1::2], strict=True))
            session = decode_session(user_id, session_id, expire_at, pairs)
        return session, _device(device_id, raw, []) if raw else None, given or None

    def publish(
        self, kind: str, user_id: str, session_ids: list[str], fields: dict[str, str]
    ) -> None:
        """Append an event with fields of its own (signals, device, answer tokens) to the stream.

        Its own round trip, after the change: should it fail, the event is lost
        and logged, and the request still succeeds (as ``_append_event``).
        """
        if not self.events_stream:
            return
        entry: dict[FieldT, EncodableT] = {
            "type": kind,
            "userId": user_id,
            "sessionIds": ",".join(session_ids),
            "at": now_ms(),
            "expireAt": "",
        }
        entry.update(fields)
        try:
            with _store_errors():
                client = self._bind().client
            client.xadd(self.events_stream, entry, maxlen=self.events_maxlen, approximate=True)
        except (*ERRORS, StoreUnavailable):
            log.exception("event lost: %s", kind)


def _device(device_id: str, raw: str, session_ids: list[str]) -> KnownDevice:
    """Return a device from its stored record (JSON, see scripts)."""
    record = json.loads(raw)
    return KnownDevice(
        id=device_id,
        name=str(record.get("n") or ""),
        own_name=str(record.get("u") or ""),
        first_seen=int(record.get("f") or 0),
        last_seen=int(record.get("l") or 0),
        location=str(record.get("p") or "unknown"),
        trusted=bool(record.get("t")),
        session_ids=tuple(session_ids),
    )
