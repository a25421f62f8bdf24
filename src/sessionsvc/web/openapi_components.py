"""The OpenAPI document's shared parts: schemas, parameters, headers, responses, security.

Each view declares its own operation where it is defined (``openapi.operation``),
from these parts; ``openapi`` puts them together. A response many operations
share (say a 429) goes in RESPONSES and is referenced by name. Error codes come
from the error classes (``errors``, or werkzeug's for routing), never typed again.
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import HTTPException, NotFound, TooManyRequests

from ..config.service_keys import SCOPES
from ..domain.assurance import ACR_PATTERN, ACR_RULE, AMR_PATTERN, AMR_RULE, MAX_AMR
from ..domain.claims import MAX_BYTES as MAX_CLAIMS_BYTES
from ..domain.claims import NAME_PATTERN, NAME_RULE, RESERVED, TOKEN_CLAIM
from ..domain.devices import (
    CLIENT_HINTS,
    DEVICE_ID_PATTERN,
    DEVICE_NAME_PATTERN,
    MAX_DEVICE_NAME,
    MAX_HINT_LENGTH,
)
from ..domain.history import ActorKind, EndReason
from ..domain.risk import LEVELS, SIGNALS
from ..domain.sessions import (
    SESSION_ID_PATTERN,
    SUPPORT_REASON_PATTERN,
    SUPPORT_REASON_RULE,
    USER_ID_PATTERN,
)
from ..store.encoding import MAX_FIELD_LENGTH
from ..tokens.refresh import REFRESH_TOKEN_PATTERN
from .errors import (
    DuplicateRefreshCookie,
    HeadersTooLarge,
    InvalidRequest,
    InvalidServiceKey,
    InvalidToken,
    MissingToken,
    RefreshTokenReused,
    RequestTooLarge,
    ServiceKeyForbidden,
    ServiceUnavailable,
    SessionNotFound,
    SessionsvcError,
    StoreNotDurableError,
    StoreVersionUnsupported,
    TokenExpired,
    TokenRevoked,
    http_error_code,
)

JSON = "application/json"
ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
JWT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
REFRESH_TOKEN = f"^{REFRESH_TOKEN_PATTERN.pattern}$"
# The same patterns the views check ids against before they become Redis keys.
USER_ID = {"type": "string", "pattern": f"^{USER_ID_PATTERN.pattern}$"}
# Each alternative typed on its own: a bare ``{"format": ...}`` or a ``const`` in an
# anyOf is read as "any value" or "must be the const" by client generators
# (openapi-typescript, openapi-python-client; docs/clients.md).
IPV4 = {"type": "string", "format": "ipv4"}
IPV6 = {"type": "string", "format": "ipv6"}
UNKNOWN_ADDRESS = {"type": "string", "enum": ["unknown"], "title": "UnknownAddress"}
SESSION_ID = {"type": "string", "pattern": f"^{SESSION_ID_PATTERN.pattern}$"}
DEVICE_ID = {"type": "string", "pattern": f"^{DEVICE_ID_PATTERN.pattern}$"}
DEVICE_TOKEN = {
    "type": "string",
    "description": "Names the device (signed, long-lived): pass it in the next login's body."
    " In cookie mode also set as the __Host-sessionsvc-device cookie. Absent for a support"
    " session (no device of the user's).",
}
TIME = {"type": "string", "format": "date-time", "pattern": ISO_MS}
NULL = {"type": "null"}  # an alternative of its own: generators misread a list of types

Security = list[dict[str, list[str]]]
ACCESS: Security = [{"accessToken": []}]
REFRESH: Security = [{"refreshToken": []}, {"refreshCookie": []}]  # a header, or a browser's cookie
SERVICE: Security = [{"serviceKey": []}]

# The 401s of each kind of credential (see auth.py's loaders).
TOKEN_ERRORS = (MissingToken, InvalidToken, TokenExpired, TokenRevoked)
REFRESH_ERRORS = (*TOKEN_ERRORS, RefreshTokenReused, DuplicateRefreshCookie)
SERVICE_KEY_ERRORS = (InvalidServiceKey,)

Error = type[SessionsvcError] | type[HTTPException]


def ref(kind: str, name: str) -> dict[str, str]:
    """Refer to a shared component, e.g. ``ref("schemas", "Session")``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def coded(*codes: str) -> dict[str, Any]:
    """Return the error body's schema, narrowed to the given codes."""
    return {
        "allOf": [ref("schemas", "Error")],
        "properties": {"code": {"type": "string", "enum": list(codes)}},
    }


def error(description: str, *errors: Error) -> dict[str, Any]:
    """Return an error response answering ``{"code", "error"}`` with the code of one of errors."""
    codes = [e.code if issubclass(e, SessionsvcError) else http_error_code(e) for e in errors]
    return {"description": description, "content": {JSON: {"schema": coded(*codes)}}}


def one_of(*schemas: str) -> dict[str, Any]:
    """Return a schema that is exactly one of the named schemas."""
    return {"oneOf": [ref("schemas", name) for name in schemas]}


def ok(
    description: str, schema: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return a 2xx JSON response; ``headers`` maps header names to header components."""
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = {name: ref("headers", header) for name, header in headers.items()}
    return response


def unauthorized(
    errors: tuple[Error, ...], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = error("The credential is missing or not accepted.", *errors)
    if headers:
        response["headers"] = {name: ref("headers", header) for name, header in headers.items()}
    return response


ACR = {
    "type": "string",
    "pattern": f"^{ACR_PATTERN.pattern}$",
    "description": f"An acr: {ACR_RULE}.",
}
AMR = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_AMR,
    "uniqueItems": True,
    "items": {"type": "string", "pattern": f"^{AMR_PATTERN.pattern}$"},
    "description": f"The methods (amr): {AMR_RULE}.",
}
AUTH_TIME_IN = {
    "type": "string",
    "format": "date-time",
    "description": "When the user authenticated: ISO-8601 with an offset, not in the future"
    " (a minute ahead is taken as now); default: now.",
}
# Verify's requirements, set by the gateway per route (domain.assurance.parse_requirements).
VERIFY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "acr_values",
        "in": "query",
        "required": False,
        "description": "Acceptable assurance levels, separated by spaces or commas: the session's"
        " acr must be one of them or above one in ACR_LEVELS, else 401"
        " INSUFFICIENT_AUTHENTICATION with RFC 9470's challenge. Given twice: 400.",
        "schema": {"type": "string"},
    },
    {
        "name": "max_age",
        "in": "query",
        "required": False,
        "description": "The most seconds since the session's authTime (its creation when the"
        " login gave none), else 401 INSUFFICIENT_AUTHENTICATION. Given twice: 400.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 9999999999},
    },
    {
        "name": "support",
        "in": "query",
        "required": False,
        "description": "`deny` refuses support sessions opened on a user's behalf (403"
        " SUPPORT_SESSION_REFUSED); `allow`, the default, takes them.",
        "schema": {"type": "string", "enum": ["allow", "deny"]},
    },
]


# The operations' groups, in the order the document (and the page) lists them.
TAGS = ("sessions", "gateway", "admin", "browser", "meta")
# The service's own routes: no credential.
META: dict[str, Any] = {"tags": ["meta"], "security": []}
# Every operation can answer these: the size limits apply before any work.
SIZE_ERRORS = {
    "413": ref("responses", "TooLarge"),
    "431": ref("responses", "HeadersTooLarge"),
}
# Every store-backed operation can also answer these.
STORE_ERRORS = {
    **SIZE_ERRORS,
    "500": ref("responses", "InternalError"),
    "503": ref("responses", "ServiceUnavailable"),
}
# The endpoints that write are rate-limited (ratelimit.limited).
LIMITED = {"429": ref("responses", "TooManyRequests")}
NO_STORE_HEADER = {"Cache-Control": "NoStore"}  # header name -> its component
SESSION_NOT_FOUND = error(
    "No such session of this user (SESSION_NOT_FOUND), or the path matches no route (NOT_FOUND).",
    SessionNotFound,
    NotFound,
)
ROUTE_NOT_FOUND = error("The path matches no route.", NotFound)
BAD_USER_ID = error("The userId in the path is not valid.", InvalidRequest)
HISTORY_LIMIT_MAX = 10_000  # HISTORY_MAX_PER_USER's bound: a larger limit would be all of it
HISTORY_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "At most this many, the latest ended first (default: all kept).",
    "schema": {"type": "integer", "minimum": 1, "maximum": HISTORY_LIMIT_MAX},
}
ACCESS_REFUSED = unauthorized(TOKEN_ERRORS)
SERVICE_KEY_REFUSED = unauthorized(SERVICE_KEY_ERRORS)
SERVICE_KEY_FORBIDDEN = error(
    "The service key is valid but lacks the scope this operation needs (its description).",
    ServiceKeyForbidden,
)


def service_key_scope(scope: str) -> dict[str, Any]:
    """Return the fields of an operation that needs a service key with ``scope``.

    OpenAPI's apiKey schemes have no scopes: the description says which.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {
        "security": SERVICE,
        "description": f"Needs a service key (X-Service-Key) with the scope `{scope}`:"
        " without one, 401; with a key lacking the scope, 403.",
    }


# What a client (or a stateful fuzzer) can do next with a new session.
LOGIN_LINKS = {
    "ListUserSessions": {
        "operationId": "listUserSessions",
        "parameters": {"user_id": "$request.body#/userId"},
    },
    "RevokeUserSession": {
        "operationId": "revokeUserSession",
        "parameters": {
            "user_id": "$request.body#/userId",
            "session_id": "$response.body#/session/_id",
        },
    },
    "RevokeUserSessions": {
        "operationId": "revokeUserSessions",
        "parameters": {"user_id": "$request.body#/userId"},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every error, and the revoke confirmations.",
        "required": ["code", "error"],
        "properties": {
            "code": {"type": "string", "description": "Stable, machine-readable."},
            "error": {"type": "string", "description": "For humans; may change."},
        },
        "additionalProperties": False,
    },
    "Device": {
        "type": "object",
        "description": "Parsed from the User-Agent; `unknown` where it says nothing.",
        "required": ["browser", "version", "platform", "os", "isDev"],
        "properties": {
            "browser": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "version": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "platform": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "os": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "isDev": {"type": "boolean", "description": "A developer or API tool."},
        },
        "additionalProperties": False,
    },
    "Session": {
        "type": "object",
        "description": "A session, with its fields in this order.",
        "required": [
            "device",
            "location",
            "_id",
            "expireAt",
            "createdAt",
            "lastActiveAt",
            "ip",
            "current",
        ],
        "properties": {
            "device": ref("schemas", "Device"),
            "location": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "_id": SESSION_ID,
            "expireAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "createdAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "lastActiveAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "ip": {
                "anyOf": [IPV4, IPV6, UNKNOWN_ADDRESS],
                "description": "`unknown` when the login named none and its request had none.",
            },
            "current": {"type": "boolean", "description": "The session of the asking token."},
            "acr": ACR
            | {"description": "The assurance level, when the login or a step-up gave one."},
            "amr": AMR | {"description": "The methods the user signed in with, when given."},
            "authTime": {
                "type": "string",
                "format": "date-time",
                "pattern": ISO_MS,
                "description": "When the user last authenticated; present with acr or amr.",
            },
            "deviceId": {
                **DEVICE_ID,
                "description": "The known device it is on (docs/devices.md); absent for a"
                " session from before devices.",
            },
            "risk": ref("schemas", "Risk"),
            "persistent": {
                "type": "boolean",
                "const": False,
                "description": "Present (false) only for a session whose login asked for"
                " `persistent: false`: its refresh cookie ends with the browser, and an app"
                " keeps its refresh token in memory only (docs/sessions-lifetime.md).",
            },
            "idleTimeout": {
                "type": "integer",
                "minimum": 1,
                "description": "Present only when the login gave the session its own idle"
                " timeout (seconds).",
            },
            "support": ref("schemas", "SupportInfo"),
        },
        "additionalProperties": False,
    },
    "Risk": {
        "type": "object",
        "description": "How the login was judged against the user's history"
        " (docs/devices.md#signals); RISK_LEVELS sets each signal's level.",
        "required": ["level", "signals"],
        "properties": {
            "level": {"type": "string", "enum": list(LEVELS)},
            "signals": {"type": "array", "items": {"type": "string", "enum": list(SIGNALS)}},
        },
        "additionalProperties": False,
    },
    "KnownDevice": {
        "type": "object",
        "description": "One of the user's known devices (a browser profile or an app install).",
        "required": [
            "id",
            "name",
            "defaultName",
            "ownName",
            "firstSeenAt",
            "lastSeenAt",
            "location",
            "trusted",
            "sessionIds",
            "current",
        ],
        "properties": {
            "id": DEVICE_ID,
            "name": {"type": "string", "description": "The user's own name, else the default."},
            "defaultName": {
                "type": "string",
                "description": 'From its User-Agent: "Chrome on Windows".',
            },
            "ownName": {
                "type": "string",
                "maxLength": MAX_DEVICE_NAME,
                "description": "The user's own name for it; empty for none.",
            },
            "firstSeenAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "lastSeenAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "location": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "trusted": {
                "type": "boolean",
                "description": 'Its user answered "Was this you?" with "me".',
            },
            "sessionIds": {"type": "array", "items": SESSION_ID},
            "current": {"type": "boolean", "description": "The asking session is on it."},
        },
        "additionalProperties": False,
    },
    "DeviceList": {
        "type": "object",
        "required": ["devices"],
        "properties": {
            "devices": {
                "type": "array",
                "description": "Known devices, the one last seen first.",
                "items": ref("schemas", "KnownDevice"),
            }
        },
        "additionalProperties": False,
    },
    "DeviceRename": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_DEVICE_NAME,
                "pattern": DEVICE_NAME_PATTERN,
                "description": "1-64 printable characters (no control characters, line breaks"
                " or direction overrides), no space at either end.",
            }
        },
    },
    "SecurityAnswer": {
        "type": "object",
        "required": ["token", "answer"],
        "properties": {
            "token": {
                "type": "string",
                "description": "One of an event's answer tokens (answerMe or answerNotMe): the"
                " credential. Its answer must be the one below.",
            },
            "answer": {"type": "string", "enum": ["me", "not_me"]},
            "signOutEverywhere": {
                "type": "boolean",
                "description": "With not_me: sign out every session of the user.",
            },
        },
    },
    "SecurityAnswered": {
        "type": "object",
        "required": ["answer", "sessionIds", "deviceId"],
        "properties": {
            "answer": {"type": "string", "enum": ["me", "not_me"]},
            "deviceId": DEVICE_ID,
            "sessionIds": {
                "type": "array",
                "description": "The sessions signed out (none for me).",
                "items": SESSION_ID,
            },
        },
        "additionalProperties": False,
    },
    "SupportInfo": {
        "type": "object",
        "description": "Present only on a support session: the operator who opened it on the"
        " user's behalf, and why (docs/support-sessions.md).",
        "required": ["actor", "reason"],
        "properties": {
            "actor": USER_ID | {"description": "The operator's id (tokens' `act.sub`)."},
            "reason": {"type": "string", "pattern": f"^{SUPPORT_REASON_PATTERN.pattern}$"},
        },
        "additionalProperties": False,
    },
    "SupportSessionRequest": {
        "type": "object",
        "required": ["actor", "reason"],
        "properties": {
            "actor": USER_ID | {"description": "The operator's id, by the rules of a user id."},
            "reason": {
                "type": "string",
                "pattern": f"^{SUPPORT_REASON_PATTERN.pattern}$",
                "description": f"Why (a ticket, ...): {SUPPORT_REASON_RULE}; shown to the user.",
            },
            "lifetime": {
                "type": "integer",
                "minimum": 1,
                "description": "Seconds; at most, and by default, SUPPORT_SESSION_LIFETIME"
                " (and never past SESSION_LIFETIME).",
            },
            "userAgent": {
                "type": "string",
                "description": "The operator's tool's User-Agent; defaults to this request's.",
            },
            "ip": {
                "anyOf": [IPV4, IPV6],
                "description": "The operator's address; defaults to this request's.",
            },
        },
    },
    "SessionList": {
        "type": "object",
        "required": ["sessions"],
        "properties": {
            "sessions": {
                "type": "array",
                "description": "Live sessions, newest first.",
                "items": ref("schemas", "Session"),
            }
        },
        "additionalProperties": False,
    },
    "EndedSession": {
        "type": "object",
        "description": "A session that ended, in the security activity (docs/history.md). A"
        " session the service found `expired` kept nothing but its id and end: device,"
        " location, ip, createdAt and lastActiveAt are null then.",
        "required": [
            "_id",
            "reason",
            "endedBy",
            "endedAt",
            "createdAt",
            "lastActiveAt",
            "device",
            "location",
            "ip",
        ],
        "properties": {
            "_id": SESSION_ID,
            "reason": {
                "type": "string",
                "enum": [reason.value for reason in EndReason],
                "description": "Why it ended (docs/history.md has the table).",
            },
            "endedBy": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": [kind.value for kind in ActorKind]},
                    "name": {
                        "type": "string",
                        "description": "The service key's name, for an admin; only in the"
                        " admin API's answer.",
                    },
                },
                "additionalProperties": False,
            },
            "endedAt": TIME,
            "createdAt": {"anyOf": [TIME, NULL]},
            "lastActiveAt": {"anyOf": [TIME, NULL]},
            "device": {"anyOf": [ref("schemas", "Device"), NULL]},
            "location": {"anyOf": [{"type": "string", "maxLength": MAX_FIELD_LENGTH}, NULL]},
            "ip": {"anyOf": [IPV4, IPV6, UNKNOWN_ADDRESS, NULL]},
            "deviceId": {"type": "string", "description": "The known device it was on."},
        },
        "additionalProperties": False,
    },
    "SessionHistory": {
        "type": "object",
        "required": ["sessions"],
        "properties": {
            "sessions": {
                "type": "array",
                "description": "Sessions ended in the last HISTORY_DAYS, the latest ended first.",
                "items": ref("schemas", "EndedSession"),
            }
        },
        "additionalProperties": False,
    },
    "LoginRequest": {
        "type": "object",
        "required": ["userId"],
        "properties": {
            "userId": USER_ID,
            "userAgent": {
                "type": "string",
                "description": "The user's User-Agent; defaults to this request's.",
            },
            "ip": {
                "anyOf": [IPV4, IPV6],
                "description": "The user's address (no `%zone`); defaults to this request's.",
            },
            "claims": ref("schemas", "Claims"),
            "acr": ACR,
            "amr": AMR,
            "authTime": AUTH_TIME_IN,
            "deviceToken": {
                "type": "string",
                "description": "The deviceToken of the user's previous login on this device"
                " (or the __Host-sessionsvc-device cookie's value). Missing, forged or"
                " unknown: a new device, never a refused login.",
            },
            "clientHints": {
                "type": "object",
                "description": "User-Agent Client Hints the login page received, by header name"
                " (" + ", ".join(CLIENT_HINTS) + "); others are ignored"
                " (docs/devices.md#client-hints).",
                "additionalProperties": {"type": "string", "maxLength": MAX_HINT_LENGTH},
            },
            "lifetime": {
                "type": "integer",
                "minimum": 1,
                "description": "The session's life in seconds (remember-me); at most, and by"
                " default, SESSION_LIFETIME.",
            },
            "persistent": {
                "type": "boolean",
                # No "default": openapi-typescript makes a property with one required.
                "description": "true when absent. false: the refresh cookie has no Max-Age or"
                " Expires (the browser forgets it when it closes); the session still ends at its"
                " expireAt.",
            },
            "idleTimeout": {
                "type": "integer",
                "minimum": 1,
                "description": "The session's own idle timeout in seconds: at least 60 (unless"
                " the highest allowed is lower), at most SESSION_IDLE_TIMEOUT when that is on,"
                " else the session's lifetime.",
            },
        },
    },
    "StepUpRequest": {
        "type": "object",
        "required": ["acr", "amr"],
        "properties": {
            "acr": ACR
            | {"description": f"The level reached: {ACR_RULE}. Only raised (ACR_LEVELS)."},
            "amr": AMR | {"description": "The methods of the session from now on (all of them)."},
            "authTime": AUTH_TIME_IN,
        },
    },
    "SteppedUp": {
        "type": "object",
        "required": ["accessToken"],
        "properties": {"accessToken": {"type": "string", "pattern": JWT}},
        "additionalProperties": False,
    },
    "Claims": {
        "type": "object",
        "description": "What the login service says of the session (a role, a tenant, ...): "
        f"at most {MAX_CLAIMS_BYTES} bytes as compact JSON, names {NAME_RULE}, none of "
        f"{', '.join(sorted(RESERVED))}. In every access token under `{TOKEN_CLAIM}`.",
        "propertyNames": {
            "pattern": f"^{NAME_PATTERN.pattern}$",
            "not": {"type": "string", "enum": sorted(RESERVED)},
        },
        "additionalProperties": {
            "anyOf": [
                {"type": "string"},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "items": {"type": "string"}},
            ]
        },
    },
    "ClaimsUpdate": {
        "type": "object",
        "description": "The claims to put in place of a session's ({} for none).",
        "required": ["claims"],
        "properties": {"claims": ref("schemas", "Claims")},
    },
    "ClaimsUpdated": {
        "type": "object",
        "required": ["sessionIds"],
        "properties": {
            "sessionIds": {
                "type": "array",
                "description": "The live sessions whose claims were replaced.",
                "items": SESSION_ID,
            }
        },
        "additionalProperties": False,
    },
    "Tokens": {
        "type": "object",
        "required": ["accessToken", "refreshToken"],
        "properties": {
            "accessToken": {"type": "string", "pattern": JWT},
            "refreshToken": {"type": "string", "pattern": REFRESH_TOKEN},
        },
        "additionalProperties": False,
    },
    "Login": {
        "type": "object",
        "required": ["accessToken", "refreshToken", "session"],
        "properties": {
            "accessToken": {"type": "string", "pattern": JWT},
            "refreshToken": {"type": "string", "pattern": REFRESH_TOKEN},
            "session": ref("schemas", "Session"),
            "deviceToken": DEVICE_TOKEN,
            "risk": ref("schemas", "Risk"),
        },
        "additionalProperties": False,
    },
    "AccessToken": {
        "type": "object",
        "description": "With the refresh cookie: the refresh token is in Set-Cookie only.",
        "required": ["accessToken"],
        "properties": {"accessToken": {"type": "string", "pattern": JWT}},
        "additionalProperties": False,
    },
    "BrowserLogin": {
        "type": "object",
        "description": "A login in cookie mode: the refresh token is in Set-Cookie only.",
        "required": ["accessToken", "session"],
        "properties": {
            "accessToken": {"type": "string", "pattern": JWT},
            "session": ref("schemas", "Session"),
            "deviceToken": DEVICE_TOKEN,
            "risk": ref("schemas", "Risk"),
        },
        "additionalProperties": False,
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "const": "ok"}},
        "additionalProperties": False,
    },
    "Verified": {
        "type": "object",
        "required": ["userId", "sessionId"],
        "properties": {
            "userId": USER_ID,
            "sessionId": SESSION_ID,
            "claims": ref("schemas", "Claims"),  # present when the session has claims
            "acr": ACR,  # these three present when the session has them
            "amr": AMR,
            "actor": {"type": "string", "description": "A support session's operator."},
        },
        "additionalProperties": False,
    },
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "accessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A session's access token (a JWT of type access, signed with the "
        "active key; its kid names a key of /.well-known/jwks.json).",
    },
    "refreshToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A session's refresh token (opaque: "
        "rt1.<user>.<session>.<secret>.<tag>); single use.",
    },
    "refreshCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Secure-sessionsvc-refresh",
        "description": "A browser's refresh token, HttpOnly; needs the X-Requested-With header.",
    },
    "serviceKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Service-Key",
        "description": "A calling service's key (SERVICE_KEYS, or SERVICE_KEY: every scope)."
        " Each operation needs one scope: "
        + "; ".join(f"`{scope}`: {meaning}" for scope, meaning in SCOPES.items())
        + ". Any path under /admin answers 401 without a valid key.",
    },
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "CsrfHeader": {
        "name": "X-Requested-With",
        "in": "header",
        "required": True,
        "description": "Any value: proof the request came from the app (docs/browser.md#csrf).",
        "schema": {"type": "string"},
    },
    "UserId": {
        "name": "user_id",
        "in": "path",
        "required": True,
        "schema": USER_ID,
    },
    "SessionId": {
        "name": "session_id",
        "in": "path",
        "required": True,
        "schema": SESSION_ID,
    },
    "DeviceId": {
        "name": "device_id",
        "in": "path",
        "required": True,
        "schema": DEVICE_ID,
    },
}

HEADERS: dict[str, dict[str, Any]] = {
    "RetryAfter": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "NoStore": {
        "description": "Tokens and personal data (IP addresses, locations) must not be cached.",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"]},
    },
    "UserId": {
        "description": "The token's user, for the gateway to forward.",
        "required": True,
        "schema": USER_ID,
    },
    "SessionId": {
        "description": "The token's session, for the gateway to forward.",
        "required": True,
        "schema": SESSION_ID,
    },
    "SessionClaims": {
        "description": "The session's claims as one line of ASCII JSON ({} for none), read "
        "with the session: a claim changed by the admin API shows on the next verify.",
        "required": True,
        "schema": {"type": "string"},
    },
    "SessionAcr": {
        "description": "The session's assurance level as stored (a step-up shows on the next"
        " verify); empty for none, so a gateway copying it replaces a client's.",
        "required": True,
        "schema": {"type": "string"},
    },
    "SessionAmr": {
        "description": "The session's methods (amr), separated by commas; empty for none.",
        "required": True,
        "schema": {"type": "string"},
    },
    "SessionActor": {
        "description": "The operator of a support session opened on the user's behalf; empty"
        " for the user's own session.",
        "required": True,
        "schema": {"type": "string"},
    },
    "StepUpChallenge": {
        "description": "With INSUFFICIENT_AUTHENTICATION only: RFC 9470's challenge, e.g."
        ' `Bearer error="insufficient_user_authentication", error_description="...",'
        ' acr_values="aal2", max_age=600` (the route\'s requirements).',
        "required": False,
        "schema": {"type": "string"},
    },
}

RESPONSES: dict[str, dict[str, Any]] = {
    "InternalError": error("A bug: logged, never shown.", SessionsvcError),
    "TooLarge": error("The declared body is over MAX_CONTENT_LENGTH.", RequestTooLarge),
    "HeadersTooLarge": error("The headers are over MAX_HEADER_BYTES.", HeadersTooLarge),
    "TooManyRequests": {
        **error(
            "Over the per-user or per-IP rate limit, or too many wrong service keys from"
            " this address.",
            TooManyRequests,
        ),
        "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
    },
    "ServiceUnavailable": {
        **error(
            "Redis is unreachable or not answering, or older than 7.0"
            " (STORE_VERSION_UNSUPPORTED), or with REDIS_WAIT_AOF cannot confirm a write"
            " on disk (STORE_NOT_DURABLE); never a pass (fail closed).",
            ServiceUnavailable,
            StoreVersionUnsupported,
            StoreNotDurableError,
        ),
        "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
    },
}

DESCRIPTION = """\
Login sessions, their JWT access and rotating refresh tokens, list and revoke.

Every error is `{"code": "...", "error": "..."}`; each response lists the codes it can carry.
Every route also answers `405 METHOD_NOT_ALLOWED` (with `Allow`) to a method it does not serve,
and a path that matches no route gets `404 NOT_FOUND`; under `/admin`, only with a valid
`X-Service-Key`: without one, every path and method there gets `401 INVALID_SERVICE_KEY`.
"""
