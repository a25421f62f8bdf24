"""What is sent: a Standard Webhooks JSON body, or Security Event Tokens (RFC 8417)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from ..tokens.keyring import KeyRing

# CAEP event types (OpenID Continuous Access Evaluation Profile 1.0).
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CLAIMS_CHANGE = (  # an event type
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
)
SET_TYPE = "secevent+jwt"  # RFC 8417 §2.3
SET_CONTENT_TYPE = "application/secevent+jwt"  # RFC 8935 §2
# Which of our events become which CAEP event, and who started it (CAEP initiating_entity).
CAEP_EVENTS: dict[str, tuple[str, str | None]] = {
    "session.revoked": (SESSION_REVOKED, None),
    "sessions.revoked_all": (SESSION_REVOKED, None),
    "session.evicted": (SESSION_REVOKED, "policy"),
    "session.theft_detected": (SESSION_REVOKED, "system"),
    "session.claims_changed": (CLAIMS_CHANGE, None),
}
# Fields of a stream entry that are numbers (epoch ms) or lists; any other is passed as it is,
# so the event types other parts of the service add arrive with their fields.
_MILLISECONDS = ("at", "expireAt")


@dataclass(frozen=True)
class Event:
    """One entry of the events stream: its id (the webhook-id) and fields."""

    id: str
    fields: dict[str, str]

    @property
    def type(self) -> str:
        """The event's type, such as ``session.revoked``."""
        return self.fields.get("type", "")

    @property
    def at(self) -> int:
        """When it happened (epoch ms): its ``at``, else the stream id's time."""
        at = self.fields.get("at", "")
        return int(at) if at.isdigit() else int(self.id.partition("-")[0])

    @property
    def session_ids(self) -> list[str]:
        """The sessions it names."""
        return [s for s in self.fields.get("sessionIds", "").split(",") if s]

    def data(self) -> dict[str, Any]:
        """Return its fields as the body's ``data``: numbers as numbers, sessionIds a list."""
        data: dict[str, Any] = {}
        for name, value in self.fields.items():
            if name == "type":
                continue
            if name == "sessionIds":
                data[name] = self.session_ids
            elif name in _MILLISECONDS:
                data[name] = int(value) if value.isdigit() else None
            else:
                data[name] = value
        return data

    def to_json(self) -> str:
        """Return it as stored in a retry or a dead letter."""
        return json.dumps({"id": self.id, "fields": self.fields}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Event:
        """Read one stored by to_json."""
        stored = json.loads(text)
        return cls(stored["id"], dict(stored["fields"]))


def json_body(event: Event) -> bytes:
    """Return the Standard Webhooks body: ``{type, timestamp, data}``."""
    timestamp = datetime.fromtimestamp(event.at / 1000, UTC).isoformat(timespec="milliseconds")
    body = {"type": event.type, "timestamp": timestamp.replace("+00:00", "Z"), "data": event.data()}
    return json.dumps(body, separators=(",", ":")).encode()


def security_event_tokens(
    event: Event,
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    claims: dict[str, Any] | None = None,
    now: float | None = None,
) -> list[tuple[str, str]]:
    """Return ``(jti, SET)`` for each session the event names; none for a type CAEP lacks.

    One SET per session: a SET's subject is one session (RFC 9493's ``complex``
    subject of user and session). The jti is stable across retries.
    """
    mapped = CAEP_EVENTS.get(event.type)
    if mapped is None:
        return []
    event_type, initiator = mapped
    key = ring.active
    issued = int(time.time() if now is None else now)
    user_id = event.fields.get("userId", "")
    tokens = []
    for session_id in event.session_ids:
        detail: dict[str, Any] = {"event_timestamp": event.at // 1000}
        if initiator:
            detail["initiating_entity"] = initiator
        if event_type == CLAIMS_CHANGE:
            detail["claims"] = claims or {}
        jti = f"{event.id}.{session_id}"
        payload = {
            "iss": issuer,
            "aud": audience,
            "iat": issued,
            "jti": jti,
            "txn": event.id,
            "sub_id": {
                "format": "complex",
                "user": {"format": "opaque", "id": user_id},
                "session": {"format": "opaque", "id": session_id},
            },
            "events": {event_type: detail},
        }
        headers = {"kid": key.kid, "typ": SET_TYPE}
        tokens.append((jti, jwt.encode(payload, key.signing, algorithm=key.alg, headers=headers)))
    return tokens
