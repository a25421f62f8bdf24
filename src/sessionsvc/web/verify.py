"""Verify: a gateway's forward-auth check, answered by a Flask view and by a WSGI layer in front.

A gateway asks verify on every request of every user, so its 200 is the
service's hottest answer, and Flask's request cycle (contexts, hooks, routing)
cost more than the check itself (docs/benchmarks.md). ``VerifyFastPath``
answers a valid access token with the same checks and the same response as the
view: 200 while its session is live, 401 ``TOKEN_REVOKED`` once it is not, 503
``STORE_UNAVAILABLE`` when Redis fails (status, body, headers, request id,
metrics, logs and access-log line). Every other case and every doubt (no or odd
Authorization header, a body, too many header bytes, an expired, invalid or
refresh token) goes to the Flask app untouched. Both build their answers with
``errors.json_response`` and ``errors.refusal`` (Flask's own JSON response, as
the error handler's), and ``check_fast_path`` refuses to start
an app whose verify view or request hooks do work the fast path would skip.
tests/test_hot_paths.py holds both paths to the same bytes.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.json.provider import JSONProvider
from flask_jwt_extended import get_jwt
from werkzeug.exceptions import MethodNotAllowed

from .. import logs
from ..config import ConfigError
from ..domain.claims import HEADER as CLAIMS_HEADER
from ..domain.claims import decode
from ..extension import get_store, sessionsvc
from ..logs import REQUEST_ID_HEADER, new_request_id
from ..store import SessionStore, StoreError
from ..tokens.access import verified_payload
from . import errors, metrics, ratelimit
from .auth import decode_settings, session_of, session_required
from .cookies import NO_STORE
from .errors import TokenRevoked, header_bytes, json_response, refusal, unavailable
from .openapi import operation
from .openapi_components import ACCESS, ACCESS_REFUSED, NO_STORE_HEADER, STORE_ERRORS, ok, ref

bp = Blueprint("verify", __name__)
# Never limited, even by RATELIMIT_DEFAULT/_APPLICATION: the fast path could not be.
ratelimit.limiter.exempt(bp)
ENDPOINT = "verify.verify_session"  # the view's endpoint: the fast path counts under it too

# nginx and Traefik call verify with GET; Envoy's ext_authz (HTTP) keeps the
# original request's method and appends its path to the configured path prefix.
# OPTIONS is routed here only to be refused: flask-jwt-extended checks no token
# on OPTIONS, and any automatic OPTIONS answer is a 200 a gateway takes for a pass.
VERIFY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
VERIFY = {"methods": [*VERIFY_METHODS, "OPTIONS"], "provide_automatic_options": False}

# A compact JWS: three base64url parts. Anything else in the header is Flask's to judge.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def verified(json: JSONProvider, user_id: str, session_id: str, claims_json: str) -> Response:
    """Build verify's 200 for a live session with its claims (JSON, '' for none).

    The claims header is always sent ("{}" for none): a gateway that copies it
    then always replaces one a client sent.
    """
    headers = {
        "X-User-Id": user_id,
        "X-Session-Id": session_id,
        CLAIMS_HEADER: claims_json or "{}",
        **NO_STORE,
    }
    body: dict[str, Any] = {"userId": user_id, "sessionId": session_id}
    if claims_json:
        body["claims"] = decode(claims_json)
    return json_response(json, HTTPStatus.OK, body, headers)


@bp.route("/sessions/verify", **VERIFY)
@bp.route("/sessions/verify/", **VERIFY)
@bp.route("/sessions/verify/<path:original_path>", **VERIFY)
@operation(
    "verifySession{method}",
    tags=["gateway"],
    summary="Answer a gateway's forward-auth: 200 with the caller's ids while its session is "
    "live. Any method, and any path below it (Envoy's ext_authz keeps both); OPTIONS is refused.",
    security=ACCESS,
    responses={
        "200": ok(
            "The session is live.",
            ref("schemas", "Verified"),
            {
                "X-User-Id": "UserId",
                "X-Session-Id": "SessionId",
                CLAIMS_HEADER: "SessionClaims",
                **NO_STORE_HEADER,
            },
        ),
        "401": ACCESS_REFUSED,
        **STORE_ERRORS,
    },
)
@session_required(view_checks_session=True)
def verify_session(original_path: str = "") -> Response:
    """Answer a gateway's forward-auth: 200 with the caller's ids while its session is live.

    The session check (one Redis round trip) is all the work, and brings the
    session's claims along.
    """
    if request.method == "OPTIONS":
        raise MethodNotAllowed(valid_methods=VERIFY_METHODS)
    return verified(current_app.json, *live_session(get_store(), get_jwt()))


def live_session(store: SessionStore, payload: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return the (user id, session id, claims JSON) of a checked access token's live session.

    One Redis round trip, for both of verify's paths; TokenRevoked when the session is gone.
    """
    user_id, session_id = session_of(payload)
    held = store.check(user_id, session_id, token_expiry=payload["exp"])
    if held is None:
        raise TokenRevoked()
    return user_id, session_id, held


@bp.after_request
def repeat_verify_error_code(response: Response) -> Response:
    """Repeat a verify error's code in ``X-Error-Code``: nginx's auth_request drops the body."""
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            response.headers["X-Error-Code"] = body["code"]
    return response


class VerifyFastPath:
    """Answer verify for a valid access token without Flask; hand anything else to ``wsgi_app``."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app
        self.json = app.json
        self.metrics = sessionsvc(app).metrics
        self.store = sessionsvc(app).store
        config = app.config
        self.path = f"{config['URL_PREFIX']}/sessions/verify"
        self.max_header_bytes = config["MAX_HEADER_BYTES"]
        self.methods = frozenset(VERIFY_METHODS)
        self.header_key = "HTTP_" + config["JWT_HEADER_NAME"].upper().replace("-", "_")
        self.header_type = config["JWT_HEADER_TYPE"]
        # The app's settings are fixed once it is created, as Flask expects of its config.
        self.settings = decode_settings(app)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            ids = self._live_session(environ)
        except (TokenRevoked, StoreError) as error:
            request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
            # A store failure is answered here: handed on, it would be waited out twice.
            answer = error if isinstance(error, TokenRevoked) else unavailable(error)
            errors.note_error(answer, self.metrics, request_id)
            response = repeat_verify_error_code(refusal(answer, self.json))
        except Exception:  # Flask's path answers what this one cannot, errors included
            return self.wsgi_app(environ, start_response)
        else:
            if ids is None:
                return self.wsgi_app(environ, start_response)
            request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
            response = verified(self.json, *ids)
        # What the app's hooks add to every answer: the request id, the metrics.
        response.headers[REQUEST_ID_HEADER] = request_id
        self.metrics.observe(ENDPOINT, response.status_code, time.perf_counter() - started)
        return response(environ, start_response)

    def _live_session(self, environ: dict[str, Any]) -> tuple[str, str, str] | None:
        """Return the (user id, session id, claims JSON) of a verify request with a valid token.

        None when this is not such a request; TokenRevoked when its session is not live.
        """
        if environ.get("REQUEST_METHOD") not in self.methods:
            return None
        path = environ.get("PATH_INFO", "")
        # The verify routes, without a repeated slash (Flask's 404, merge_slashes is off).
        if not path.startswith(self.path) or "//" in path:
            return None
        rest = path[len(self.path) :]
        if rest and rest[0] != "/":
            return None
        # A body, even an empty chunked one, is Flask's to size up (413).
        if environ.get("CONTENT_LENGTH") or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        if header_bytes(environ) > self.max_header_bytes:
            return None
        token = self._bearer_token(environ.get(self.header_key))
        if token is None:
            return None
        payload = verified_payload(token, self.settings)
        if payload is None or payload.get("type") != "access":
            return None
        return live_session(self.store, payload)

    def _bearer_token(self, header: str | None) -> str | None:
        """Return the token of exactly ``<type> <token>``, else None."""
        if not header or not self.header_type:
            return None
        kind, _, token = header.partition(" ")
        if kind != self.header_type or not TOKEN_PATTERN.fullmatch(token):
            return None
        return token


class FastPathConflict(ConfigError):
    """The app does work on verify requests that the fast path would skip."""


# The hooks that run on a verify request in Flask, and what the fast path does instead:
# the request id and the metrics it adds itself, an oversized request it hands to
# Flask, the rate limiter has nothing to do (verify's blueprint is exempt),
# and the error code it repeats with the same function.
KNOWN_HOOKS: dict[str, frozenset[object]] = {
    "before_request": frozenset(
        {
            logs._assign_request_id,
            metrics._start_timer,
            errors.refuse_oversized_requests,
            ratelimit.limiter,
        }
    ),
    "after_request": frozenset(
        {logs._echo_request_id, metrics._observe, ratelimit.limiter, repeat_verify_error_code}
    ),
}
# The one decorator the fast path repeats: session_required's token and session check.
_SESSION_REQUIRED = session_required()(lambda: None).__code__


def _owner(hook: Callable[..., Any]) -> object:
    """Return the function a hook runs, or the object whose method it runs (flask-limiter's)."""
    if isinstance(hook, functools.partial) and hook.args:
        return hook.args[0]
    return getattr(hook, "__self__", hook)


def _name(function: object) -> str:
    """Name a hook or decorator by where its code is (functools.wraps copies the view's name)."""
    function = getattr(function, "__func__", getattr(function, "func", function))
    code = getattr(function, "__code__", None)
    if code is None:
        return repr(function)
    return f"{function.__globals__.get('__name__', '?')}.{code.co_qualname}"  # type: ignore[attr-defined]


def check_fast_path(app: Flask) -> None:
    """Refuse an app whose verify requests run a hook or decorator the fast path does not."""
    unknown = []
    for kind, known in KNOWN_HOOKS.items():
        hooks = getattr(app, f"{kind}_funcs")
        for hook in [*hooks.get(None, ()), *hooks.get(bp.name, ())]:
            if _owner(hook) not in known:
                unknown.append(f"{kind} hook {_name(hook)}")
    view = app.view_functions[ENDPOINT]
    while view is not verify_session:
        if getattr(view, "__code__", None) is not _SESSION_REQUIRED:
            unknown.append(f"decorator {_name(view)} on {ENDPOINT}")
        view = getattr(view, "__wrapped__", verify_session)  # no __wrapped__: named above
    if unknown:
        raise FastPathConflict(
            "verify's fast path (web/verify.py) would skip: "
            + "; ".join(unknown)
            + ". Do that work in VerifyFastPath too and add it to verify.KNOWN_HOOKS, "
            "or keep it off verify."
        )


def init_app(app: Flask) -> None:
    """Put the verify fast path in front of the app, once nothing it would skip is registered."""
    check_fast_path(app)
    app.wsgi_app = VerifyFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
