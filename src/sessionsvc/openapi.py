"""The OpenAPI 3.1 document of the API, served at ``GET <URL_PREFIX>/openapi.json``.

Operations are declared here, one entry per view endpoint in OPERATIONS; paths
and their parameters come from the app's own URL rules, so ``URL_PREFIX`` and
route changes show up by themselves. tests/test_openapi.py fails when a route
and the document disagree in either direction.

To document a new route, add its endpoint to OPERATIONS; a response many
operations share (say a 429) goes in RESPONSES and is referenced by name.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, current_app

from .auth import REFRESH_TOKEN_PATTERN
from .store import MAX_FIELD_LENGTH, SESSION_ID_PATTERN, USER_ID_PATTERN

bp = Blueprint("openapi", __name__)

JSON = "application/json"
ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
JWT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
REFRESH_TOKEN = f"^{REFRESH_TOKEN_PATTERN.pattern}$"
# The same patterns the views check ids against before they become Redis keys.
USER_ID = {"type": "string", "pattern": f"^{USER_ID_PATTERN.pattern}$"}
SESSION_ID = {"type": "string", "pattern": f"^{SESSION_ID_PATTERN.pattern}$"}

ACCESS = [{"accessToken": []}]
REFRESH = [{"refreshToken": []}]
SERVICE = [{"serviceKey": []}]

# The 401 codes of each kind of credential (see errors.py and auth.py's loaders).
TOKEN_CODES = ("MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED", "TOKEN_REVOKED")
REFRESH_CODES = (*TOKEN_CODES, "REFRESH_TOKEN_REUSED")
SERVICE_KEY_CODES = ("INVALID_SERVICE_KEY",)


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _coded(*codes: str) -> dict[str, Any]:
    """Return the error body's schema, narrowed to the given codes."""
    return {"allOf": [_ref("schemas", "Error")], "properties": {"code": {"enum": list(codes)}}}


def _error(description: str, *codes: str) -> dict[str, Any]:
    """Return an error response answering ``{"code", "error"}`` with one of ``codes``."""
    return {"description": description, "content": {JSON: {"schema": _coded(*codes)}}}


def _ok(
    description: str, schema: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return a 2xx JSON response; ``headers`` maps header names to header components."""
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = {name: _ref("headers", ref) for name, ref in headers.items()}
    return response


def _unauthorized(codes: tuple[str, ...]) -> dict[str, Any]:
    return _error("The credential is missing or not accepted.", *codes)


# Every operation can answer these: the size limits apply before any work.
SIZE_ERRORS = {
    "413": _ref("responses", "TooLarge"),
    "431": _ref("responses", "HeadersTooLarge"),
}
# Every store-backed operation can also answer these.
STORE_ERRORS = {
    **SIZE_ERRORS,
    "500": _ref("responses", "InternalError"),
    "503": _ref("responses", "StoreUnavailable"),
}
# The endpoints that write are rate-limited (ratelimit.limited).
LIMITED = {"429": _ref("responses", "TooManyRequests")}
NO_STORE = {"Cache-Control": "NoStore"}
REVOKED = _ok("The session is revoked.", _coded("SESSION_REVOKED"))
ALL_REVOKED = _ok("The sessions are revoked.", _coded("ALL_SESSIONS_REVOKE"))
SESSION_NOT_FOUND = _error(
    "No such session of this user (SESSION_NOT_FOUND), or the path matches no route (NOT_FOUND).",
    "SESSION_NOT_FOUND",
    "NOT_FOUND",
)
ROUTE_NOT_FOUND = _error("The path matches no route.", "NOT_FOUND")
BAD_USER_ID = _error("The userId in the path is not valid.", "INVALID_REQUEST")
ACCESS_REFUSED = _unauthorized(TOKEN_CODES)
SERVICE_KEY_REFUSED = _unauthorized(SERVICE_KEY_CODES)

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
        "description": "Every error, and the seed's revoke confirmations.",
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
        "description": "A session, in the seed's key order (views.session_json).",
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
            "device": _ref("schemas", "Device"),
            "location": {"type": "string", "maxLength": MAX_FIELD_LENGTH},
            "_id": SESSION_ID,
            "expireAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "createdAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "lastActiveAt": {"type": "string", "format": "date-time", "pattern": ISO_MS},
            "ip": {
                "type": "string",
                "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"const": "unknown"}],
                "description": "`unknown` when the login named none and its request had none.",
            },
            "current": {"type": "boolean", "description": "The session of the asking token."},
        },
        "additionalProperties": False,
    },
    "SessionList": {
        "type": "object",
        "required": ["sessions"],
        "properties": {
            "sessions": {
                "type": "array",
                "description": "Live sessions, newest first.",
                "items": _ref("schemas", "Session"),
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
                "type": "string",
                "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
                "description": "The user's address (no `%zone`); defaults to this request's.",
            },
        },
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
            "session": _ref("schemas", "Session"),
        },
        "additionalProperties": False,
    },
    "JWKS": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid", "alg", "use"],
                    "properties": {
                        "kty": {"enum": ["OKP", "EC", "RSA"]},
                        "kid": {"type": "string"},
                        "alg": {"enum": ["EdDSA", "ES256", "RS256"]},
                        "use": {"const": "sig"},
                    },
                    "not": {"required": ["d"]},
                },
            }
        },
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
        "additionalProperties": False,
    },
    "Verified": {
        "type": "object",
        "required": ["userId", "sessionId"],
        "properties": {
            "userId": USER_ID,
            "sessionId": SESSION_ID,
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
        "description": "A session's refresh token (opaque: rt1.<user>.<session>.<secret>); "
        "single use.",
    },
    "serviceKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Service-Key",
        "description": "The login service's and support staff's shared key (SERVICE_KEY).",
    },
}

PARAMETERS: dict[str, dict[str, Any]] = {
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
}

HEADERS: dict[str, dict[str, Any]] = {
    "RetryAfter": {
        "description": "Seconds until the limit lets a request through again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "NoStore": {
        "description": "Tokens must not be cached.",
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
}

RESPONSES: dict[str, dict[str, Any]] = {
    "InternalError": _error("A bug: logged, never shown.", "INTERNAL_ERROR"),
    "TooLarge": _error("The declared body is over MAX_CONTENT_LENGTH.", "REQUEST_ENTITY_TOO_LARGE"),
    "HeadersTooLarge": _error(
        "The headers are over MAX_HEADER_BYTES.", "REQUEST_HEADER_FIELDS_TOO_LARGE"
    ),
    "TooManyRequests": {
        **_error("Over the per-user or per-IP rate limit.", "TOO_MANY_REQUESTS"),
        "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
    },
    "StoreUnavailable": _error(
        "Redis is unreachable or not answering; never a pass (fail closed).",
        "STORE_UNAVAILABLE",
    ),
}

# Endpoint -> its operations. A new view gets an entry here (the drift test says so).
OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "sessions.create_session": {
        "post": {
            "operationId": "createSession",
            "tags": ["sessions"],
            "summary": "Record a login (called by the trusted login service) and issue its tokens.",
            "security": SERVICE,
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("schemas", "LoginRequest")}},
            },
            "responses": {
                "201": _ok("The session and its tokens.", _ref("schemas", "Login"), NO_STORE)
                | {"links": LOGIN_LINKS},
                "400": _error(
                    "The body is not a JSON object, or userId, userAgent or ip is not valid.",
                    "INVALID_REQUEST",
                ),
                "401": SERVICE_KEY_REFUSED,
                **LIMITED,
                **STORE_ERRORS,
            },
        }
    },
    "sessions.refresh_session": {
        "post": {
            "operationId": "refreshSession",
            "tags": ["sessions"],
            "summary": "Rotate the tokens; a rotated-out refresh token presented again "
            "revokes the session.",
            "security": REFRESH,
            "responses": {
                "200": _ok("A new token pair.", _ref("schemas", "Tokens"), NO_STORE),
                "401": _unauthorized(REFRESH_CODES),
                **LIMITED,
                **STORE_ERRORS,
            },
        }
    },
    "sessions.verify_session": {
        method: {
            "operationId": f"verifySession{method.capitalize()}",
            "tags": ["gateway"],
            "summary": "Answer a gateway's forward-auth: 200 with the caller's ids while its "
            "session is live. Any method, and any path below it (Envoy's ext_authz keeps "
            "both); OPTIONS is refused.",
            "security": ACCESS,
            "responses": {
                "200": _ok(
                    "The session is live.",
                    _ref("schemas", "Verified"),
                    {"X-User-Id": "UserId", "X-Session-Id": "SessionId", **NO_STORE},
                ),
                "401": ACCESS_REFUSED,
                **STORE_ERRORS,
            },
        }
        for method in ("get", "post", "put", "patch", "delete")
    },
    "sessions.list_sessions": {
        "get": {
            "operationId": "listSessions",
            "tags": ["sessions"],
            "summary": "List the caller's live sessions, newest first.",
            "security": ACCESS,
            "responses": {
                "200": _ok("The caller's sessions.", _ref("schemas", "SessionList")),
                "401": ACCESS_REFUSED,
                **STORE_ERRORS,
            },
        }
    },
    "sessions.revoke_all_sessions": {
        "delete": {
            "operationId": "revokeAllSessions",
            "tags": ["sessions"],
            "summary": "Revoke every session of the caller, or all but its own with "
            "`?keep=current`.",
            "security": ACCESS,
            "parameters": [
                {
                    "name": "keep",
                    "in": "query",
                    "required": False,
                    "description": "`current` keeps the caller's own session.",
                    "schema": {"type": "string", "enum": ["current"]},
                }
            ],
            "responses": {
                "200": ALL_REVOKED,
                "400": _error("keep is neither absent nor `current`.", "INVALID_REQUEST"),
                "401": ACCESS_REFUSED,
                **LIMITED,
                **STORE_ERRORS,
            },
        }
    },
    "sessions.revoke_session": {
        "delete": {
            "operationId": "revokeSession",
            "tags": ["sessions"],
            "summary": "Revoke one of the caller's sessions.",
            "security": ACCESS,
            "responses": {
                "200": REVOKED,
                "401": ACCESS_REFUSED,
                "404": SESSION_NOT_FOUND,
                **LIMITED,
                **STORE_ERRORS,
            },
        }
    },
    "admin.list_user_sessions": {
        "get": {
            "operationId": "listUserSessions",
            "tags": ["admin"],
            "summary": "List a user's live sessions, newest first.",
            "security": SERVICE,
            "responses": {
                "200": _ok("The user's sessions.", _ref("schemas", "SessionList")),
                "400": BAD_USER_ID,
                "401": SERVICE_KEY_REFUSED,
                "404": ROUTE_NOT_FOUND,
                **STORE_ERRORS,
            },
        }
    },
    "admin.revoke_user_session": {
        "delete": {
            "operationId": "revokeUserSession",
            "tags": ["admin"],
            "summary": "Revoke one session of a user.",
            "security": SERVICE,
            "responses": {
                "200": REVOKED,
                "400": BAD_USER_ID,
                "401": SERVICE_KEY_REFUSED,
                "404": SESSION_NOT_FOUND,
                **STORE_ERRORS,
            },
        }
    },
    "admin.revoke_user_sessions": {
        "delete": {
            "operationId": "revokeUserSessions",
            "tags": ["admin"],
            "summary": "Revoke every session of a user (after an account compromise).",
            "security": SERVICE,
            "responses": {
                "200": ALL_REVOKED,
                "400": BAD_USER_ID,
                "401": SERVICE_KEY_REFUSED,
                "404": ROUTE_NOT_FOUND,
                **STORE_ERRORS,
            },
        }
    },
    "openapi.openapi_json": {
        "get": {
            "operationId": "getOpenApi",
            "tags": ["meta"],
            "summary": "This document.",
            "security": [],
            "responses": {"200": _ok("The OpenAPI 3.1 document.", {"type": "object"})}
            | SIZE_ERRORS
            | {"500": _ref("responses", "InternalError")},
        }
    },
    "jwks.jwks": {
        "get": {
            "operationId": "jwks",
            "tags": ["gateway"],
            "summary": "The public keys that verify access tokens (a JWK Set): active and "
            "verify-only, never an HMAC secret; cacheable for JWKS_MAX_AGE seconds.",
            "security": [],
            "responses": {"200": _ok("A JWK Set.", _ref("schemas", "JWKS"))} | SIZE_ERRORS,
        }
    },
    "health.healthz": {
        "get": {
            "operationId": "healthz",
            "tags": ["meta"],
            "summary": "Liveness: 200 while the process serves requests; touches nothing else.",
            "security": [],
            "responses": {"200": _ok("Alive.", _ref("schemas", "Status"))} | SIZE_ERRORS,
        }
    },
    "health.readyz": {
        "get": {
            "operationId": "readyz",
            "tags": ["meta"],
            "summary": "Readiness: 200 when Redis answers PING within READY_TIMEOUT.",
            "security": [],
            "responses": {"200": _ok("Ready.", _ref("schemas", "Status"))} | STORE_ERRORS,
        }
    },
    "metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["meta"],
            "summary": "Prometheus metrics (text exposition format), summed over all workers.",
            "security": [],
            "responses": {
                "200": {
                    "description": "The metrics.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            }
            | SIZE_ERRORS,
        }
    },
}

DESCRIPTION = """\
Login sessions, their JWT access and rotating refresh tokens, list and revoke.

Every error is `{"code": "...", "error": "..."}`; each response lists the codes it can carry.
Every route also answers `405 METHOD_NOT_ALLOWED` (with `Allow`) to a method it does not serve,
and a path that matches no route gets `404 NOT_FOUND`.
"""


def build_spec(app: Flask) -> dict[str, Any]:
    """Build the app's OpenAPI document from OPERATIONS and its URL rules."""
    spec = APISpec(
        title="sessionsvc",
        version=version("sessionsvc"),
        openapi_version="3.1.0",
        info={"description": DESCRIPTION},
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, parameter in PARAMETERS.items():
        spec.components.parameter(name, parameter["in"], parameter)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    for name, response in RESPONSES.items():
        spec.components.response(name, response)
    for endpoint, operations in OPERATIONS.items():
        # Every rule of the endpoint (verify has three); an endpoint the app does not
        # serve (say, a blueprint left out) is not documented.
        for rule in app.url_map.iter_rules(endpoint) if endpoint in app.view_functions else ():
            served = {method.lower() for method in rule.methods or ()}
            spec.path(
                path=FlaskPlugin.flaskpath2openapi(rule.rule),
                operations={m: op for m, op in operations.items() if m in served},
                parameters=[_path_parameter(name) for name in sorted(rule.arguments)],
            )
    return spec.to_dict()


def _path_parameter(name: str) -> dict[str, Any] | str:
    """Refer to a documented path parameter, or describe a free one (verify's tail)."""
    known = {"user_id": "UserId", "session_id": "SessionId"}
    if name in known:
        return known[name]
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


@bp.get("/openapi.json")
def openapi_json():
    """Serve the OpenAPI document."""
    return build_spec(current_app)  # the proxy serves: build_spec only reads attributes
