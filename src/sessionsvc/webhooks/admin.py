"""What the admin API reads and does: recent deliveries, dead letters, replays."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .keys import DeliveryKeys
from .payloads import Event

# A stream id, <ms>-<seq>: 19 digits at most each, so below 2**64 as Redis needs.
STREAM_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")


def is_stream_id(text: str) -> bool:
    """Tell whether ``text`` is a stream entry id Redis takes (``<ms>-<seq>``)."""
    return STREAM_ID.fullmatch(text) is not None


def _entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": entry_id, "at": int(entry_id.partition("-")[0])}
    for name, value in fields.items():
        if name in ("attempt", "attempts", "status"):
            entry[name] = int(value) if value.isdigit() else 0
        elif name == "event":
            entry[name] = Event.from_json(value).data() | {"type": fields.get("type", "")}
        else:
            entry[name] = value
    return entry


def recent(
    redis: Any, stream: str, *, endpoint: str | None, count: int, before: str | None = None
) -> list[dict[str, Any]]:
    """Return up to ``count`` entries of a stream, newest first (of one endpoint, if named)."""
    found: list[dict[str, Any]] = []
    end = f"({before}" if before else "+"
    while len(found) < count:
        page = redis.xrevrange(stream, end, "-", count=max(count, 100))
        if not page:
            break
        for entry_id, fields in page:
            if endpoint is None or fields.get("endpoint") == endpoint:
                found.append(_entry(entry_id, fields))
        end = f"({page[-1][0]}"
        if endpoint is None:
            break
    return found[:count]


def _requeue(redis: Any, keys: DeliveryKeys, dead_id: str, fields: dict[str, str]) -> None:
    event = Event.from_json(fields["event"])
    retry = {"id": event.id, "fields": event.fields, "attempt": 0, "first": time.time()}
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(keys.retries(fields["endpoint"]), {json.dumps(retry): time.time() * 1000})
    pipe.xdel(keys.dead, dead_id)
    pipe.execute()


def replay_dead_letter(redis: Any, keys: DeliveryKeys, dead_id: str, endpoints: set[str]) -> bool:
    """Queue a dead letter for delivery now (a new horizon); False if there is no such one."""
    found = redis.xrange(keys.dead, dead_id, dead_id)
    if not found or found[0][1].get("endpoint") not in endpoints:
        return False
    _requeue(redis, keys, dead_id, found[0][1])
    return True


def replay_since(
    redis: Any, keys: DeliveryKeys, since_ms: int, endpoint: str | None, endpoints: set[str]
) -> int:
    """Queue every dead letter since ``since_ms`` (of one endpoint, if named); return how many."""
    count, start = 0, f"{since_ms}-0"
    while True:
        page = redis.xrange(keys.dead, start, "+", count=500)
        for dead_id, fields in page:
            wanted = fields.get("endpoint") in endpoints
            if wanted and (endpoint is None or fields.get("endpoint") == endpoint):
                _requeue(redis, keys, dead_id, fields)
                count += 1
        if len(page) < 500:
            return count
        start = f"({page[-1][0]}"
