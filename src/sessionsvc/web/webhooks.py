"""The webhook admin API: recent deliveries, dead letters, and replaying them (docs/events.md).

Under ``<URL_PREFIX>/admin`` (so every request needs a service key): reading
needs ``admin:read``, replaying ``admin:write``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.exceptions import NotFound

from ..extension import events_stream, sessionsvc
from ..store.connection import ERRORS
from ..store.errors import StoreUnavailable
from ..webhooks import admin as deliveries
from ..webhooks.keys import DeliveryKeys
from .auth import service_key_required
from .errors import InvalidRequest
from .openapi import operation
from .openapi_components import (
    JSON,
    LIMITED,
    NO_STORE_HEADER,
    ROUTE_NOT_FOUND,
    SERVICE_KEY_FORBIDDEN,
    SERVICE_KEY_REFUSED,
    STORE_ERRORS,
    error,
    ok,
    service_key_scope,
)

bp = Blueprint("webhooks", __name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
STREAM_ID = {"type": "string", "pattern": f"^{deliveries.STREAM_ID.pattern}$"}
_ENTRY: dict[str, Any] = {
    "id": {**STREAM_ID, "description": "The record's own id."},
    "at": {"type": "integer", "description": "When it was recorded (epoch ms)."},
    "endpoint": {"type": "string", "description": "The endpoint's name (WEBHOOKS)."},
    "webhookId": {**STREAM_ID, "description": "The event's id: the webhook-id header."},
    "type": {"type": "string", "description": "The event's type."},
    "status": {"type": "integer", "description": "The receiver's HTTP status; 0 for none."},
    "error": {"type": "string", "description": "Why there was no answer, if so."},
}
DELIVERY = {
    "type": "object",
    "required": [*_ENTRY, "attempt", "outcome"],
    "properties": {
        **_ENTRY,
        "attempt": {"type": "integer", "minimum": 1},
        "outcome": {"type": "string", "enum": ["delivered", "retry", "dead"]},
    },
}
DEAD_LETTER = {
    "type": "object",
    "required": [*_ENTRY, "attempts", "event"],
    "properties": {
        **_ENTRY,
        "attempts": {"type": "integer", "minimum": 1},
        "event": {"type": "object", "description": "The event's type and data, as sent."},
    },
}
REPLAYED = {
    "type": "object",
    "required": ["replayed"],
    "properties": {"replayed": {"type": "integer", "minimum": 0}},
    "additionalProperties": False,
}
LIST_PARAMETERS = [
    {
        "name": "endpoint",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Only this endpoint's (a name in WEBHOOKS; another has none).",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "description": f"How many, newest first (default {DEFAULT_LIMIT}).",
    },
]
BAD_QUERY = error("A bad limit, endpoint, dead letter id or since.", InvalidRequest)


def _admin(scope: str) -> dict[str, Any]:
    return {"tags": ["admin"], **service_key_scope(scope)}


def _keys() -> DeliveryKeys:
    config = current_app.config
    return DeliveryKeys(config["REDIS_KEY_PREFIX"], events_stream(config) or "")


def _names() -> set[str]:
    return {endpoint.name for endpoint in current_app.config["WEBHOOKS"]}


def _endpoint(value: Any) -> str | None:
    """Return the endpoint named (a name not in WEBHOOKS has nothing to list or replay)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("endpoint must be the name of one of WEBHOOKS' endpoints.")
    return value


def _limit() -> int:
    text = request.args.get("limit", str(DEFAULT_LIMIT))
    if not (text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(text)


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except ERRORS as failure:  # answered 503 STORE_UNAVAILABLE, as the store's failures are
        raise StoreUnavailable(f"Redis failed: {type(failure).__name__}") from failure


def _listing(description: str, key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameters": LIST_PARAMETERS,
        "responses": {
            "200": ok(
                description,
                {
                    "type": "object",
                    "required": [key],
                    "properties": {key: {"type": "array", "items": schema}},
                    "additionalProperties": False,
                },
                NO_STORE_HEADER,
            ),
            "400": BAD_QUERY,
            "401": SERVICE_KEY_REFUSED,
            "403": SERVICE_KEY_FORBIDDEN,
            **LIMITED,
            "404": ROUTE_NOT_FOUND,
            **STORE_ERRORS,
        },
    }


@bp.get("/webhooks/deliveries")
@operation(
    "listWebhookDeliveries",
    summary="List recent delivery attempts, newest first.",
    **_listing("The attempts.", "deliveries", DELIVERY),
    **_admin("admin:read"),
)
@service_key_required("admin:read")
def list_deliveries() -> dict[str, Any]:
    """List recent delivery attempts, newest first."""
    endpoint, limit = _endpoint(request.args.get("endpoint")), _limit()
    with _redis_errors():
        found = deliveries.recent(
            sessionsvc().connect(), _keys().deliveries, endpoint=endpoint, count=limit
        )
    return {"deliveries": found}


@bp.get("/webhooks/dead-letters")
@operation(
    "listWebhookDeadLetters",
    summary="List the deliveries given up (dead letters), newest first.",
    **_listing("The dead letters.", "deadLetters", DEAD_LETTER),
    **_admin("admin:read"),
)
@service_key_required("admin:read")
def list_dead_letters() -> dict[str, Any]:
    """List the deliveries given up, newest first."""
    endpoint, limit = _endpoint(request.args.get("endpoint")), _limit()
    with _redis_errors():
        found = deliveries.recent(
            sessionsvc().connect(), _keys().dead, endpoint=endpoint, count=limit
        )
    return {"deadLetters": found}


REPLAY_RESPONSES = {
    "200": ok("Queued for delivery now, with a new retry horizon.", REPLAYED),
    "400": BAD_QUERY,
    "401": SERVICE_KEY_REFUSED,
    "403": SERVICE_KEY_FORBIDDEN,
    **LIMITED,
    **STORE_ERRORS,
}


@bp.post("/webhooks/dead-letters/replay")
@operation(
    "replayWebhookDeadLetter",
    summary="Deliver one dead letter again (the same webhook-id).",
    requestBody={
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {**STREAM_ID, "description": "The dead letter's id."}},
                }
            }
        },
    },
    responses=REPLAY_RESPONSES | {"404": error("No such dead letter, or no such route.", NotFound)},
    **_admin("admin:write"),
)
@service_key_required("admin:write")
def replay_dead_letter() -> dict[str, int]:
    """Deliver one dead letter again."""
    body = request.get_json(silent=True)
    dead_id = body.get("id") if isinstance(body, dict) else None
    if not (isinstance(dead_id, str) and deliveries.is_stream_id(dead_id)):
        raise InvalidRequest('The body must be {"id": "<a dead letter\'s id>"}.')
    with _redis_errors():
        found = deliveries.replay_dead_letter(sessionsvc().connect(), _keys(), dead_id, _names())
    if not found:
        raise NotFound()
    return {"replayed": 1}


LATEST_SINCE = 10**15 - 1  # epoch ms: some 30,000 years


def _since(value: Any) -> int:
    """Return ``since``, epoch ms."""
    if isinstance(value, float) and value.is_integer():  # 1.0 is an integer to JSON Schema
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LATEST_SINCE:
        return value
    raise InvalidRequest("since must be a time in epoch milliseconds.")


@bp.post("/webhooks/replay")
@operation(
    "replayWebhookDeadLetters",
    summary="Deliver again every dead letter since a time (of one endpoint, or all).",
    requestBody={
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "required": ["since"],
                    "properties": {
                        "since": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": LATEST_SINCE,
                            "description": "The oldest dead letter to replay: epoch ms.",
                        },
                        "endpoint": {
                            "type": "string",
                            "description": "Only this endpoint's (a name in WEBHOOKS).",
                        },
                    },
                }
            }
        },
    },
    responses=REPLAY_RESPONSES | {"404": ROUTE_NOT_FOUND},
    **_admin("admin:write"),
)
@service_key_required("admin:write")
def replay_since() -> dict[str, int]:
    """Deliver again every dead letter since a time."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object: {"since": ..., "endpoint": ...}.')
    since, endpoint = _since(body.get("since")), _endpoint(body.get("endpoint"))
    with _redis_errors():
        count = deliveries.replay_since(sessionsvc().connect(), _keys(), since, endpoint, _names())
    return {"replayed": count}
