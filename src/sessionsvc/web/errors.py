"""One JSON error shape for every failure: ``{"code": "...", "error": "..."}``."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask.json.provider import JSONProvider as AnyJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response as WerkzeugResponse

from ..domain.claims import InvalidClaims
from ..store.connection import ERRORS
from ..store.errors import RevokeNotDurable, StoreError, StoreNotDurable, StoreTooOld
from ..telemetry import Metrics
from ..tokens.refresh import InvalidRefreshToken

log = logging.getLogger(__name__)


class SessionsvcError(Exception):
    """Base of every error the API reports; subclasses set the status, code and message."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    code: str = "INTERNAL_ERROR"
    message: str = "Internal server error."
    headers: dict[str, str] = {}  # noqa: RUF012 (read only)

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class InvalidRequest(SessionsvcError):
    status = HTTPStatus.BAD_REQUEST
    code = "INVALID_REQUEST"
    message = "The request is not valid."


class InvalidServiceKey(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "INVALID_SERVICE_KEY"
    message = "A valid X-Service-Key header is required."


class ServiceKeyForbidden(SessionsvcError):
    """A valid service key without the scope the route needs (config.service_keys.SCOPES)."""

    status = HTTPStatus.FORBIDDEN
    code = "FORBIDDEN"
    message = "This service key lacks the scope this route needs."


class MissingToken(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "MISSING_TOKEN"
    message = "A Bearer token is required."


class InvalidToken(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "INVALID_TOKEN"
    message = "The token is not valid."


class TokenExpired(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "TOKEN_EXPIRED"
    message = "The token has expired."


class TokenRevoked(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "TOKEN_REVOKED"
    message = "The session of this token has been revoked or has expired."


class RefreshTokenReused(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "REFRESH_TOKEN_REUSED"
    message = "This refresh token was already used; the session has been revoked."


class DuplicateRefreshCookie(SessionsvcError):
    status = HTTPStatus.UNAUTHORIZED
    code = "DUPLICATE_REFRESH_COOKIE"
    message = (
        "The request carries more than one refresh cookie (another page of the site may have"
        " planted one): all are cleared; sign in again."
    )


class CsrfRejected(SessionsvcError):
    status = HTTPStatus.FORBIDDEN
    code = "CSRF_REJECTED"
    message = "A request authenticated by a cookie must carry the X-Requested-With header."


class InsufficientAuthentication(SessionsvcError):
    """The session falls short of a route's acr_values or max_age (RFC 9470): step up."""

    status = HTTPStatus.UNAUTHORIZED
    code = "INSUFFICIENT_AUTHENTICATION"
    message = "This route needs a stronger or more recent authentication."

    def __init__(self, message: str | None = None, challenge: str = "") -> None:
        super().__init__(message)
        # RFC 9470's challenge, for the client (a gateway passes it on).
        self.headers = {"WWW-Authenticate": challenge} if challenge else {}


class SupportSessionRefused(SessionsvcError):
    """A route refuses support sessions (verify's ``support=deny``) and this is one."""

    status = HTTPStatus.FORBIDDEN
    code = "SUPPORT_SESSION_REFUSED"
    message = "This route does not accept a support session opened on the user's behalf."


class SessionNotFound(SessionsvcError):
    status = HTTPStatus.NOT_FOUND
    code = "SESSION_NOT_FOUND"
    message = "Session not found."


class DeviceNotFound(SessionsvcError):
    status = HTTPStatus.NOT_FOUND
    code = "DEVICE_NOT_FOUND"
    message = "Device not found."


class InvalidAnswerToken(SessionsvcError):
    """A "Was this you?" token that is malformed or forged (docs/devices.md)."""

    status = HTTPStatus.UNAUTHORIZED
    code = "INVALID_ANSWER_TOKEN"
    message = "The answer token is not valid."


class AnswerTokenExpired(SessionsvcError):
    """A "Was this you?" token of ours, past its 7 days."""

    status = HTTPStatus.UNAUTHORIZED
    code = "ANSWER_TOKEN_EXPIRED"
    message = "The answer token has expired: sign in and review your devices instead."


class AnswerAlreadyGiven(SessionsvcError):
    """A "Was this you?" pair answered before: nothing changes."""

    status = HTTPStatus.CONFLICT
    code = "ANSWER_ALREADY_GIVEN"
    message = "This question has been answered already."


class RequestTooLarge(SessionsvcError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "REQUEST_ENTITY_TOO_LARGE"
    message = "The request body is too large."


class HeadersTooLarge(SessionsvcError):
    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    code = "REQUEST_HEADER_FIELDS_TOO_LARGE"
    message = "The request headers are too large."


class ServiceUnavailable(SessionsvcError):
    """The store failed (``store.StoreError``, or Redis itself outside the store): 503."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "STORE_UNAVAILABLE"
    message = "The session store is unavailable; try again shortly."
    # A hung Redis is probed by one request at a time (store.connection.CircuitBreaker):
    # a second later is soon enough to try again.
    headers = {"Retry-After": "1"}  # noqa: RUF012 (read only)


class StoreVersionUnsupported(ServiceUnavailable):
    """The server is older than the store's scripts need; the message says which it is."""

    code = "STORE_VERSION_UNSUPPORTED"
    message = "The session store's server is too old: sessionsvc needs Redis 7.0 or newer."
    headers = {}  # noqa: RUF012 (read only): trying again soon changes nothing


class StoreNotDurableError(ServiceUnavailable):
    """REDIS_WAIT_AOF is set and the server cannot confirm writes on disk; the message says why."""

    code = "STORE_NOT_DURABLE"
    message = "The session store cannot confirm writes on disk, as REDIS_WAIT_AOF requires."
    headers = {}  # noqa: RUF012 (read only): trying again soon changes nothing


class RevokeNotDurableError(ServiceUnavailable):
    """A revoke was applied, but not confirmed on disk in time (REDIS_WAIT_AOF)."""

    code = "STORE_NOT_DURABLE"
    message = (
        "The revoke was applied, but the session store did not confirm it on disk in time:"
        " a crash of the store now could undo it."
    )


def unavailable(error: Exception) -> ServiceUnavailable:
    """Return the 503 for a store or Redis failure, keeping what went wrong as its cause."""
    answer: ServiceUnavailable
    if isinstance(error, StoreTooOld):
        answer = StoreVersionUnsupported(str(error))
    elif isinstance(error, StoreNotDurable):
        answer = StoreNotDurableError(str(error))
    elif isinstance(error, RevokeNotDurable):
        answer = RevokeNotDurableError()
    else:
        answer = ServiceUnavailable()
    answer.__cause__ = (error.__cause__ or error) if isinstance(error, StoreError) else error
    return answer


def error_body(code: str, message: str) -> dict[str, str]:
    """Return the API's one error shape."""
    return {"code": code, "error": message}


def json_response(
    json: AnyJSONProvider, status: int, body: dict[str, Any], headers: Mapping[str, str]
) -> Response:
    """Build an answer as Flask builds a view's ``(body, status, headers)``.

    ``json`` is the app's provider: verify's fast path, outside any app context,
    passes it in.
    """
    response: Response = json.response(body)  # type: ignore[assignment]  # the app's Response class
    response.status_code = status
    response.headers.update(headers)
    return response


def refusal(error: SessionsvcError, json: AnyJSONProvider | None = None) -> Response:
    """Build an error's answer: its status, the one JSON shape, its headers (Retry-After)."""
    body = error_body(error.code, error.message)
    return json_response(json or current_app.json, error.status, body, error.headers)


def http_error_code(http_error: HTTPException | type[HTTPException]) -> str:
    """Return the code a werkzeug error (or error class) is answered with: ``NOT_FOUND``."""
    # HTTPException.name is the status's name, per instance.
    return status_code(http_error.code or 0)


def status_code(status: int) -> str:
    """Return the code of an HTTP status without one of ours: 431 -> ``REQUEST_HEADER_...``."""
    # "Method Not Allowed" -> "METHOD_NOT_ALLOWED"
    name = HTTP_STATUS_CODES.get(status, "Unknown Error")
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a body nested too deeply for the parser taken as invalid JSON."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:  # so get_json(silent=True) gives None, not a 500
            raise ValueError("JSON nested too deeply") from error


def refuse_oversized_requests() -> None:
    """Refuse a request whose headers or body exceed the limits, before any work."""
    config = current_app.config
    if (request.content_length or 0) > config["MAX_CONTENT_LENGTH"]:
        raise RequestTooLarge()
    # A chunked body: werkzeug stops reading at MAX_CONTENT_LENGTH without a word,
    # and the truncated JSON would be called invalid (400) where it is too large.
    if (
        request.content_length is None
        and "HTTP_TRANSFER_ENCODING" in request.environ
        and len(chunked_body()) >= config["MAX_CONTENT_LENGTH"]
    ):
        raise RequestTooLarge()
    if header_bytes(request.environ) > config["MAX_HEADER_BYTES"]:
        raise HeadersTooLarge()


def chunked_body() -> bytes:
    """Read a chunked body whole, once (cached); 400 if it is no chunked body."""
    try:
        return request.get_data(cache=True)
    except HTTPException:
        raise  # werkzeug's own (a client gone): already an answer
    except Exception as error:
        # The server decodes the chunks as the app reads them, and raises its own
        # error for bytes that are none (gunicorn: a chunk size of "ZZ", a chunk
        # without its CRLF): the client's fault, whatever the server calls it.
        raise InvalidRequest("The request body could not be read.") from error


def header_bytes(environ: dict[str, Any]) -> int:
    """Add up the headers' names and values as ``request.headers`` lists them.

    Read from the WSGI environ directly: werkzeug's header view rebuilds every
    name, a tenth of a token check's cost on every request (docs/benchmarks.md).
    """
    size = 0
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key not in _BODY_HEADERS_AS_HTTP:
                size += len(key) - len("HTTP_") + len(value)  # HTTP_USER_AGENT: User-Agent
        elif key in _BODY_HEADERS and value:
            size += len(key) + len(value)
    return size


_BODY_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_BODY_HEADERS_AS_HTTP = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})


def note_error(error: SessionsvcError, metrics: Metrics, request_id: str | None = None) -> None:
    """Log a failure of ours (a 5xx) and count a store outage, as every answer of one does."""
    if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        # Outside a request context (verify's fast path), the caller knows the request's id.
        extra = {} if request_id is None else {"request_id": request_id}
        log.error("%s: %s", error.code, error.__cause__.__class__.__name__, extra=extra)
    if isinstance(error, ServiceUnavailable):
        metrics.store_errors.inc()


def register_error_handlers(app: Flask, metrics: Metrics) -> None:
    """Answer every error, ours or Werkzeug's, with the JSON shape and never a traceback."""
    app.before_request(refuse_oversized_requests)

    @app.errorhandler(SessionsvcError)
    def handle_sessionsvc_error(error: SessionsvcError) -> Response:
        note_error(error, metrics)
        return refusal(error)

    def handle_store_error(error: Exception) -> Response:
        # The store's own, or Redis's raised outside the store (the rate limiter,
        # /readyz): fail closed all the same.
        return handle_sessionsvc_error(unavailable(error))

    for store_error in (StoreError, *ERRORS):
        app.register_error_handler(store_error, handle_store_error)

    @app.errorhandler(InvalidClaims)
    @app.errorhandler(InvalidRefreshToken)
    def handle_invalid_input(error: ValueError) -> Response:
        # The domain's and the tokens' own refusals, worded for the caller.
        answer = InvalidToken if isinstance(error, InvalidRefreshToken) else InvalidRequest
        return handle_sessionsvc_error(answer(str(error)))

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> WerkzeugResponse:
        # Keep Werkzeug's headers (Allow on 405, Retry-After on 429); replace only the body.
        response = error.get_response()
        response.data = json.dumps(
            error_body(http_error_code(error), error.description or error.name),
            separators=(",", ":"),
        )
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def handle_unexpected_error(error: Exception) -> Response:
        log.exception("unhandled error")
        return refusal(SessionsvcError())
