"""The delivery process: each endpoint's loop reads its consumer group, sends, retries.

At least once: an entry is acknowledged (XACK) only once its receiver
answered 2xx, or once it is held elsewhere in Redis: its retry in the
endpoint's sorted set (due time as score, the event itself as member, so a
stream trimmed meanwhile loses nothing), or its dead letter. An entry taken by
a process that died stays pending in the group; after ``claim_idle`` another
process claims it (XAUTOCLAIM). A due retry is leased the same way (its score
moved past now) so that one process sends it at a time.

Each endpoint has a thread of its own: a slow or failing receiver delays no
other endpoint (nor the API, which only writes the stream).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import ResponseError
from standardwebhooks import Webhook

from ..config.webhooks import Endpoint
from ..store.connection import ERRORS
from ..store.keyspace import KeyLayout
from ..tokens.keyring import KeyRing
from .keys import DeliveryKeys
from .outbound import Answer, Sender
from .payloads import (
    CAEP_EVENTS,
    CLAIMS_CHANGE,
    SET_CONTENT_TYPE,
    Event,
    json_body,
    security_event_tokens,
)

log = logging.getLogger(__name__)

BATCH = 50  # entries read (or claimed, or retries leased) at a time
BLOCK_MS = 1000  # how long a read waits for new entries
RECORDS_MAXLEN = 10_000  # the deliveries stream's approximate cap
DEAD_MAXLEN = 100_000
GAUGE_EVERY = 5.0  # seconds between two updates of the oldest-undelivered gauge

# Lease the due retries: move their score to the lease's end, in one step, so
# two processes never take the same one. Returns the members leased.
LEASE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""


@dataclass(frozen=True)
class Policy:
    """When to try again, and until when."""

    horizon: float  # seconds after the first attempt
    first: float  # seconds before the first retry
    longest: float  # the longest wait between two

    def delay(self, attempt: int) -> float:
        """Return the wait after attempt ``attempt`` (1, 2, ...): doubling, with full jitter."""
        ceiling = min(self.longest, self.first * 2 ** min(attempt - 1, 40))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311  # jitter, not a secret


@dataclass
class Metrics:
    """The delivery process's metrics, in a registry of its own (served by server.py)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.deliveries = Counter(
            "sessionsvc_webhook_deliveries_total",
            "Deliveries by endpoint and outcome: delivered, retry (failed, to be tried again),"
            " dead (given up), skipped (the endpoint's format has no such event).",
            ("endpoint", "outcome"),
            registry=self.registry,
        )
        self.attempts = Counter(
            "sessionsvc_webhook_attempts_total",
            "HTTP requests to receivers, by endpoint and status class (2xx, 4xx, 5xx, error).",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.oldest = Gauge(
            "sessionsvc_webhook_oldest_undelivered_seconds",
            "Age of the oldest event not yet delivered to the endpoint (0: none waiting).",
            ("endpoint",),
            registry=self.registry,
        )


def stream_ms(entry_id: str) -> int:
    """Return a stream id's time (ms)."""
    return int(entry_id.partition("-")[0])


class EndpointLoop:
    """Delivers the events one endpoint wants: its own thread, group and retry set."""

    def __init__(self, worker: Worker, endpoint: Endpoint) -> None:
        self.worker = worker
        self.endpoint = endpoint
        self.keys = worker.keys
        self.group = self.keys.group(endpoint.name)
        self.retries = self.keys.retries(endpoint.name)
        self.signers = [Webhook(secret) for secret in endpoint.secrets]
        self.healthy = False  # the last round reached Redis
        self.last_round = 0.0
        self._last_claim = 0.0
        self._last_gauge = 0.0
        self.thread = threading.Thread(target=self.run, name=f"webhooks-{endpoint.name}")

    @property
    def redis(self) -> Any:
        return self.worker.redis()

    def ensure_group(self) -> None:
        """Create the endpoint's consumer group at the stream's end, unless it exists."""
        try:
            # "$": an endpoint added today gets today's events, not the stream's backlog.
            self.redis.xgroup_create(self.keys.events, self.group, id="$", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run(self) -> None:
        """Loop until the worker stops; a Redis failure waits and tries again."""
        pause = 0.1
        while not self.worker.stopping.is_set():
            try:
                self.ensure_group()
                self.healthy = True  # Redis answers; a first batch may take long
                while not self.worker.stopping.is_set():
                    self.round()
                    self.healthy, self.last_round, pause = True, time.monotonic(), 0.1
            except ERRORS as error:
                self.healthy = False
                log.warning("webhooks %s: Redis failed (%s)", self.endpoint.name, error)
                self.worker.stopping.wait(pause)
                pause = min(pause * 2, 5.0)

    def round(self) -> None:
        """Send the due retries, claim the abandoned entries, then read new ones."""
        self.send_due_retries()
        now = time.monotonic()
        if now - self._last_claim >= self.worker.claim_idle / 2:
            self._last_claim = now
            self.claim_abandoned()
        if now - self._last_gauge >= GAUGE_EVERY:
            self._last_gauge = now
            self.update_oldest()
        block = BLOCK_MS if self._nothing_due() else 1
        replies = self.redis.xreadgroup(
            self.group, self.worker.consumer, {self.keys.events: ">"}, count=BATCH, block=block
        )
        for _stream, entries in replies or ():
            self.handle_entries(entries)

    def _nothing_due(self) -> bool:
        due = self.redis.zrange(self.retries, 0, 0, withscores=True)
        return not due or due[0][1] > time.time() * 1000 + BLOCK_MS

    def claim_abandoned(self) -> None:
        """Claim the entries a dead process held longer than claim_idle (XAUTOCLAIM)."""
        start = "0-0"
        while not self.worker.stopping.is_set():
            reply = self.redis.xautoclaim(
                self.keys.events,
                self.group,
                self.worker.consumer,
                int(self.worker.claim_idle * 1000),
                start_id=start,
                count=BATCH,
            )
            start, entries = reply[0], reply[1]
            if entries:
                log.info("webhooks %s: claimed %d abandoned", self.endpoint.name, len(entries))
                self.handle_entries(entries)
            if start == "0-0":
                return

    def handle_entries(self, entries: Sequence[tuple[str, dict[str, str] | None]]) -> None:
        """Deliver new or claimed stream entries; acknowledge each once handled.

        A delivered entry is acknowledged in the round trip that records its
        outcome (2xx, or its retry or dead letter stored); the entries this
        endpoint does not want, in one XACK at the end.
        """
        unwanted: list[str] = []
        held_since = time.monotonic()
        try:
            for number, (entry_id, fields) in enumerate(entries):
                if self.worker.stopping.is_set():
                    return  # the rest unacknowledged: claimed later, by us or another process
                if time.monotonic() - held_since > self.worker.claim_idle / 3:
                    # A slow receiver: keep the rest of the batch ours (their idle time
                    # restarts), or a live process's entries would be claimed and sent twice.
                    rest = [later for later, _ in entries[number:]]
                    self.redis.xclaim(
                        self.keys.events, self.group, self.worker.consumer, 0, rest, justid=True
                    )
                    held_since = time.monotonic()
                # None: trimmed while pending, nothing left to send.
                event = Event(entry_id, dict(fields)) if fields is not None else None
                if event is None or not self.endpoint.wants(event.type):
                    unwanted.append(entry_id)
                    continue
                self.attempt(event, attempt=1, first=time.time(), ack=entry_id)
        finally:
            if unwanted:
                self.redis.xack(self.keys.events, self.group, *unwanted)

    def send_due_retries(self) -> None:
        """Send the retries that are due, each leased to this process while it sends."""
        now = time.time()
        lease_end = (now + self.worker.claim_idle) * 1000
        members = self.worker.lease(
            keys=[self.retries], args=[int(now * 1000), int(lease_end), BATCH]
        )
        for member in members:
            if self.worker.stopping.is_set():
                return  # the lease runs out and the retry is due again
            stored = json.loads(member)
            event = Event(stored["id"], stored["fields"])
            self.attempt(event, attempt=stored["attempt"] + 1, first=stored["first"], held=member)

    def attempt(
        self,
        event: Event,
        *,
        attempt: int,
        first: float,
        held: str | None = None,
        ack: str | None = None,
    ) -> None:
        """Send the event once; then record it, and retry it later or give it up.

        ``held``: the retry it came from (removed); ``ack``: its stream entry
        (acknowledged), both in the round trip that stores the outcome.
        """
        answer = self.send(event)
        name = self.endpoint.name
        if answer is None:
            self.worker.metrics.deliveries.labels(name, "skipped").inc()
            pipe = self.redis.pipeline(transaction=False)
            if held:
                pipe.zrem(self.retries, held)
            if ack:
                pipe.xack(self.keys.events, self.group, ack)
            pipe.execute()
            return
        status = "error" if not answer.status else f"{answer.status // 100}xx"
        self.worker.metrics.attempts.labels(name, status).inc()
        policy = self.worker.policy
        if answer.ok:
            outcome = "delivered"
        elif answer.retryable:
            wait = policy.delay(attempt)
            outcome = "retry" if time.time() + wait - first <= policy.horizon else "dead"
        else:
            outcome = "dead"
        pipe = self.redis.pipeline(transaction=False)
        if outcome == "retry":
            retry = {"id": event.id, "fields": event.fields, "attempt": attempt, "first": first}
            # The next retry is in Redis before the old one (or the entry) is let go.
            pipe.zadd(self.retries, {json.dumps(retry): (time.time() + wait) * 1000})
        if outcome == "dead":
            pipe.xadd(
                self.keys.dead,
                {
                    "endpoint": name,
                    "webhookId": event.id,
                    "type": event.type,
                    "event": event.to_json(),
                    "attempts": attempt,
                    "status": answer.status,
                    "error": answer.error,
                },
                maxlen=DEAD_MAXLEN,
                approximate=True,
            )
        if held:
            pipe.zrem(self.retries, held)
        if ack:
            pipe.xack(self.keys.events, self.group, ack)
        self.record(pipe, event, attempt, outcome, answer)
        pipe.execute()  # one round trip for the outcome and its record
        self.worker.metrics.deliveries.labels(name, outcome).inc()
        if outcome != "delivered":
            log.warning(
                "webhooks %s: event %s (%s) attempt %d: %s%s",
                name,
                event.id,
                event.type,
                attempt,
                answer.status or answer.error,
                " (given up: dead letter)" if outcome == "dead" else "",
            )

    def record(self, pipe: Any, event: Event, attempt: int, outcome: str, answer: Answer) -> None:
        """Append the attempt to the deliveries stream (what the admin API lists)."""
        pipe.xadd(
            self.keys.deliveries,
            {
                "endpoint": self.endpoint.name,
                "webhookId": event.id,
                "type": event.type,
                "attempt": attempt,
                "outcome": outcome,
                "status": answer.status,
                "error": answer.error,
            },
            maxlen=RECORDS_MAXLEN,
            approximate=True,
        )

    def send(self, event: Event) -> Answer | None:
        """Send the event in the endpoint's format; None when the format has no such event."""
        sender = self.worker.sender
        if self.endpoint.format == "set":
            tokens = security_event_tokens(
                event,
                self.worker.ring,
                issuer=self.worker.issuer,
                audience=self.endpoint.audience or self.endpoint.url,
                claims=self.claims(event)
                if CAEP_EVENTS.get(event.type, ("",))[0] == CLAIMS_CHANGE
                else None,
            )
            if not tokens:
                return None
            answer = Answer(202)
            for _jti, token in tokens:  # each SET is one push (RFC 8935); all must be taken
                answer = sender.post(
                    self.endpoint.url,
                    {"Content-Type": SET_CONTENT_TYPE, "Accept": "application/json"},
                    token.encode(),
                )
                if not answer.ok:
                    return answer
            return answer
        body = json_body(event)
        now = datetime.now(UTC)
        # Every secret signs: a receiver holding either verifies during a rotation.
        signatures = " ".join(signer.sign(event.id, now, body) for signer in self.signers)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }
        return sender.post(self.endpoint.url, headers, body)

    def claims(self, event: Event) -> dict[str, Any]:
        """Return the claims the event's first session holds now (token-claims-change)."""
        user_id, sessions = event.fields.get("userId", ""), event.session_ids
        if not sessions:
            return {}
        stored = self.redis.hget(self.worker.layout.session_key(user_id, sessions[0]), "k")
        try:
            claims = json.loads(stored) if stored else {}
        except ValueError:
            return {}
        return claims if isinstance(claims, dict) else {}

    def update_oldest(self) -> None:
        """Set the gauge: the age of the oldest event waiting (pending, unread or retrying)."""
        times: list[float] = []
        pending = self.redis.xpending(self.keys.events, self.group)
        if pending and pending.get("pending"):
            times.append(stream_ms(pending["min"]))
        for group in self.redis.xinfo_groups(self.keys.events):
            if group.get("name") == self.group:
                after = group.get("last-delivered-id") or "0-0"
                unread = self.redis.xrange(self.keys.events, f"({after}", "+", count=1)
                if unread:
                    times.append(stream_ms(unread[0][0]))
        for member in self.redis.zrange(self.retries, 0, 999):
            stored = json.loads(member)
            times.append(Event(stored["id"], stored["fields"]).at)
        age = max(0.0, time.time() - min(times) / 1000) if times else 0.0
        self.worker.metrics.oldest.labels(self.endpoint.name).set(age)


class Worker:
    """The delivery process's work: an EndpointLoop per endpoint, started and stopped together."""

    def __init__(
        self,
        redis: Callable[[], Any],
        endpoints: Sequence[Endpoint],
        *,
        keys: DeliveryKeys,
        ring: KeyRing,
        issuer: str,
        policy: Policy,
        timeout: float,
        claim_idle: float,
        guard: bool,
        metrics: Metrics | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.layout = KeyLayout(keys.prefix)
        self.ring = ring
        self.issuer = issuer
        self.policy = policy
        self.claim_idle = claim_idle
        self.sender = Sender(timeout=timeout, guard=guard)
        self.metrics = metrics or Metrics()
        self.stopping = threading.Event()
        # Unique per process: a restarted process is a new consumer, and claims the old one's.
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{random.getrandbits(32):08x}"
        self._lease: Any = None
        self.loops = [EndpointLoop(self, endpoint) for endpoint in endpoints]
        if any(e.format == "set" for e in endpoints) and ring.active.public_jwk is None:
            raise ValueError(
                "an endpoint has format set, but the active signing key is an HMAC secret,"
                " which no receiver can verify from the JWKS: set SESSIONSVC_JWT_KEYS"
            )

    def lease(self, *, keys: list[str], args: list[int]) -> list[str]:
        """Run the LEASE script."""
        if self._lease is None:
            self._lease = self.redis().register_script(LEASE)
        return list(self._lease(keys=keys, args=args))

    def start(self) -> None:
        """Start every endpoint's thread."""
        for loop in self.loops:
            loop.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask every loop to stop after its current request; wait for them."""
        self.stopping.set()
        for loop in self.loops:
            if loop.thread.is_alive():
                loop.thread.join(timeout)
        self.sender.close()

    def ready(self) -> bool:
        """Tell whether every loop runs and reached Redis lately (no endpoint: Redis answers)."""
        if not self.loops:
            try:
                return bool(self.redis().ping())
            except ERRORS:
                return False
        # Not how fast receivers answer: a slow one is its endpoint's business, not the process's.
        return all(loop.thread.is_alive() and loop.healthy for loop in self.loops)
