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
an app that would do work on a verify request that the fast path skips (a
decorator, hook, error handler or signal receiver it does not know). An
exception inside the fast path hands the request to Flask too, but is counted
(``sessionsvc_verify_fast_path_fallbacks_total``) and logged, never hidden.
tests/test_hot_paths.py holds both paths to the same bytes.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    before_render_template,
    current_app,
    got_request_exception,
    message_flashed,
    request,
    request_finished,
    request_started,
    request_tearing_down,
    template_rendered,
)
from flask.blueprints import BlueprintSetupState
from flask.json.provider import JSONProvider
from flask_jwt_extended import get_jwt
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import PathConverter

from .. import logs
from ..config import ConfigError
from ..domain.assurance import (
    NO_REQUIREMENTS,
    InvalidAssurance,
    Requirements,
    challenge,
    parse_requirements,
    shortfall,
)
from ..domain.claims import HEADER as CLAIMS_HEADER
from ..domain.claims import decode
from ..domain.sessions import now_ms
from ..extension import get_store, sessionsvc
from ..logs import REQUEST_ID_HEADER, new_request_id, valid_request_id
from ..store import Held, SessionStore, StoreError
from ..tokens.access import verified_payload
from . import auth, errors, metrics, ratelimit
from .auth import decode_settings, session_of, session_required
from .cookies import NO_STORE
from .errors import (
    InsufficientAuthentication,
    InvalidRequest,
    SupportSessionRefused,
    TokenRevoked,
    header_bytes,
    json_response,
    refusal,
    unavailable,
)
from .openapi import operation
from .openapi_components import (
    ACCESS,
    NO_STORE_HEADER,
    STORE_ERRORS,
    TOKEN_ERRORS,
    VERIFY_PARAMETERS,
    ok,
    ref,
    unauthorized,
)
from .openapi_components import error as error_response

log = logging.getLogger(__name__)


class AnyTail(PathConverter):
    """werkzeug's ``path``, newlines too: verify answers for any tail a gateway appends."""

    regex = r"[^/](?s:.*)"


bp = Blueprint("verify", __name__)


@bp.record_once  # before the routes: a converter must be known when a rule using it is added
def add_tail_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("tail", AnyTail)


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


ACR_HEADER, AMR_HEADER, ACTOR_HEADER = "X-Session-Acr", "X-Session-Amr", "X-Session-Actor"


def verified(json: JSONProvider, user_id: str, session_id: str, held: Held) -> Response:
    """Build verify's 200 for a live session with its claims, assurance and actor.

    The claims header is always sent ("{}" for none), and the acr, amr and
    actor ones ("" for none): a gateway that copies them then always replaces
    one a client sent.
    """
    claims_json, assurance = held.claims_json, held.assurance
    headers = {
        "X-User-Id": user_id,
        "X-Session-Id": session_id,
        CLAIMS_HEADER: claims_json or "{}",
        ACR_HEADER: assurance.acr,
        AMR_HEADER: ",".join(assurance.amr),
        ACTOR_HEADER: held.actor,
        **NO_STORE,
    }
    body: dict[str, Any] = {"userId": user_id, "sessionId": session_id}
    if claims_json:
        body["claims"] = decode(claims_json)
    if assurance.acr:
        body["acr"] = assurance.acr
    if assurance.amr:
        body["amr"] = list(assurance.amr)
    if held.actor:
        body["actor"] = held.actor
    return json_response(json, HTTPStatus.OK, body, headers)


def requirements_of(query: str) -> Requirements:
    """Return a verify request's requirements (its query string); InvalidRequest for bad ones."""
    try:
        return parse_requirements(query)
    except InvalidAssurance as error:
        raise InvalidRequest(str(error)) from None


@bp.route("/sessions/verify", **VERIFY)
@bp.route("/sessions/verify/", **VERIFY)
@bp.route("/sessions/verify/<tail:original_path>", **VERIFY)
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
                ACR_HEADER: "SessionAcr",
                AMR_HEADER: "SessionAmr",
                ACTOR_HEADER: "SessionActor",
                **NO_STORE_HEADER,
            },
        ),
        "400": error_response(
            "acr_values, max_age or support is not valid, or given twice.", InvalidRequest
        ),
        "401": unauthorized(
            (*TOKEN_ERRORS, InsufficientAuthentication),
            {"WWW-Authenticate": "StepUpChallenge"},
        ),
        "403": error_response(
            "The route refuses support sessions (support=deny) and this is one.",
            SupportSessionRefused,
        ),
        **STORE_ERRORS,
    },
    parameters=VERIFY_PARAMETERS,
)
@session_required(view_checks_session=True)
def verify_session(original_path: str = "") -> Response:
    """Answer a gateway's forward-auth: 200 with the caller's ids while its session is live.

    The session check (one Redis round trip) is all the work, and brings the
    session's claims along.
    """
    if request.method == "OPTIONS":
        raise MethodNotAllowed(valid_methods=VERIFY_METHODS)
    requirements = requirements_of(request.environ.get("QUERY_STRING", ""))
    levels = current_app.config["ACR_LEVELS"]
    return verified(current_app.json, *live_session(get_store(), get_jwt(), requirements, levels))


def live_session(
    store: SessionStore,
    payload: Mapping[str, Any],
    requirements: Requirements = NO_REQUIREMENTS,
    levels: tuple[str, ...] = (),
) -> tuple[str, str, Held]:
    """Return the (user id, session id, what is held) of a checked access token's live session.

    One Redis round trip, for both of verify's paths; TokenRevoked when the
    session is gone. The route's requirements are checked against the session
    as that round trip read it, never against the token: a step-up counts from
    the next request on, with the same token.
    """
    user_id, session_id = session_of(payload)
    held = store.held(user_id, session_id, token_expiry=payload["exp"])
    if held is None:
        raise TokenRevoked()
    if requirements:
        if requirements.deny_support and held.actor:
            raise SupportSessionRefused()
        assurance = held.assurance
        short = shortfall(requirements, assurance.acr, assurance.auth_time or 0, now_ms(), levels)
        if short:
            raise InsufficientAuthentication(challenge=challenge(requirements, short))
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
        self.levels = tuple(config["ACR_LEVELS"])
        self.fallbacks_logged: set[str] = set()  # the error classes logged by this worker

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            ids = self._live_session(environ)
        except (*REFUSALS, StoreError) as error:
            request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
            # A store failure is answered here: handed on, it would be waited out twice.
            answer = error if isinstance(error, REFUSALS) else unavailable(error)
            errors.note_error(answer, self.metrics, request_id)
            response = repeat_verify_error_code(refusal(answer, self.json))
        except errors.InvalidToken:  # signed, but without our claims: Flask's path says which
            return self.wsgi_app(environ, start_response)
        except InvalidAssurance:  # a bad requirement: Flask's path answers the 400
            return self.wsgi_app(environ, start_response)
        except Exception as error:  # a fault of this path: Flask's answers, and it is seen
            self._note_fallback(error, environ)
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

    def _note_fallback(self, error: Exception, environ: dict[str, Any]) -> None:
        """Count an exception that sent a request to Flask; log its class once per worker.

        The line names the class and where it was raised, never its message,
        which could quote the token.
        """
        kind = type(error)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        self.metrics.verify_fast_path_fallbacks.labels(name).inc()
        if name in self.fallbacks_logged:
            return
        self.fallbacks_logged.add(name)
        where = traceback.extract_tb(error.__traceback__)[-1]
        log.warning(
            "verify's fast path raised %s (%s:%s, in %s) and handed the request to Flask; "
            "logged once per worker, counted in sessionsvc_verify_fast_path_fallbacks_total",
            name,
            where.filename,
            where.lineno,
            where.name,
            extra={"request_id": valid_request_id(environ.get("HTTP_X_REQUEST_ID"))},
        )

    def _live_session(self, environ: dict[str, Any]) -> tuple[str, str, Held] | None:
        """Return the (user id, session id, what is held) of a verify request with a valid token.

        None when this is not such a request; TokenRevoked when its session is not
        live, InsufficientAuthentication or SupportSessionRefused when it falls
        short of the query's requirements, InvalidAssurance for a bad one.
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
        # No query string, no parsing: a route without requirements costs what it did.
        query = environ.get("QUERY_STRING")
        requirements = parse_requirements(query) if query else NO_REQUIREMENTS
        return live_session(self.store, payload, requirements, self.levels)

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


# Where Flask keeps each kind of hook it may run on a verify request: per
# blueprint name (None for the app's), or one list (teardown_appcontext).
# url_defaults functions run only when a URL is built, which verify's Flask
# path does not do today; they are watched all the same, in case it ever does.
HOOKS = {
    "url_value_preprocessor": "url_value_preprocessors",
    "before_request": "before_request_funcs",
    "after_request": "after_request_funcs",
    "teardown_request": "teardown_request_funcs",
    "teardown_appcontext": "teardown_appcontext_funcs",
    "url_defaults": "url_default_functions",
}
# Flask's signals: Flask's path sends the request and app context ones on every
# request (Sentry's integration listens to request_started and
# got_request_exception); the fast path sends none. Template and flash receivers
# would run only if verify rendered or flashed, and are watched all the same.
SIGNALS = (
    request_started,
    request_finished,
    got_request_exception,
    request_tearing_down,
    appcontext_pushed,
    appcontext_popped,
    appcontext_tearing_down,
    before_render_template,
    template_rendered,
    message_flashed,
)
# The app's hooks and receivers that run on a verify request in Flask, and what
# the fast path does instead. Anything else refuses start-up.
KNOWN_HOOKS: dict[str, frozenset[object]] = {
    "url_value_preprocessor": frozenset(),
    "before_request": frozenset(
        {
            logs._assign_request_id,  # the fast path gives the request its id itself,
            metrics._start_timer,  # times it itself,
            errors.refuse_oversized_requests,  # hands an oversized request to Flask,
            ratelimit.limiter,  # and has no limit to check: verify's blueprint is exempt
            auth.admin_paths_need_a_key,  # and is never under <URL_PREFIX>/admin
        }
    ),
    "after_request": frozenset(
        {
            logs._echo_request_id,
            metrics._observe,
            ratelimit.limiter,
            repeat_verify_error_code,
            auth.admin_paths_are_not_stored,  # verify is never under <URL_PREFIX>/admin
        }
    ),
    # flask-limiter's release of its per-request state: exempt, verify never has any.
    "teardown_request": frozenset({ratelimit.limiter}),
    "teardown_appcontext": frozenset(),
    "url_defaults": frozenset(),
    "receiver": frozenset(),  # of any of SIGNALS, for this app or for any sender
}
# The errors the fast path answers itself, as the app's SessionsvcError handler
# (errors.register_error_handlers) does: note_error, then refusal. The error
# handlers known are the ones the app's own setup registers: that module's and
# flask-jwt-extended's (its exceptions, answered through the loaders in ``auth``).
REFUSALS = (TokenRevoked, InsufficientAuthentication, SupportSessionRefused)
ANSWERED_ERRORS = (*REFUSALS, StoreError)


def _probe() -> None:
    """Stand for verify's view in the reference decorator."""


# The one decorator the fast path repeats, with the arguments verify_session has.
_SESSION_CHECK = session_required(view_checks_session=True)(_probe)
_SESSION_CHECK_NAME = "session_required(view_checks_session=True)"


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
    module = function.__globals__.get("__name__", "?")  # type: ignore[attr-defined]  # has __code__
    return f"{module}.{code.co_qualname}"


def _closure(function: Any) -> dict[str, Any] | None:
    """Return the values a Python function closes over, by name; None for anything else."""
    try:
        return dict(inspect.getclosurevars(function).nonlocals)
    except (TypeError, ValueError):  # not a Python function, or a cell not yet filled
        return None


def _differences(
    actual: object,
    expected: object,
    *,
    stand_in: tuple[object, object] | None = None,
    depth: int = 2,
) -> list[str] | None:
    """Name what ``actual`` closes over unlike ``expected`` ([] if nothing); None for other code.

    Functions made by one ``def`` differ only in what they close over (a
    decorator's arguments, a handler's objects). Values are compared by
    equality, functions among them by these rules, ``depth`` deep;
    ``stand_in`` is (a value of expected's, the one that takes its place in actual's).
    """
    if actual is expected:
        return []
    code = getattr(actual, "__code__", None)
    if code is None or code is not getattr(expected, "__code__", None):
        return None
    if getattr(actual, "__self__", None) is not getattr(expected, "__self__", None):
        return None
    mine, theirs = _closure(actual), _closure(expected)
    if mine is None or theirs is None:
        return None
    if stand_in is not None:
        placeholder, replacement = stand_in
        theirs = {name: replacement if v is placeholder else v for name, v in theirs.items()}
    return [name for name, value in theirs.items() if not _same_value(mine[name], value, depth)]


def _same_value(actual: object, expected: object, depth: int) -> bool:
    """Tell whether two closed-over values are the same (see _differences)."""
    if actual is expected:
        return True
    if hasattr(expected, "__code__"):
        return depth > 0 and _differences(actual, expected, depth=depth - 1) == []
    try:
        return bool(actual == expected)
    except Exception:  # an object whose == fails is not the one expected
        return False


def _hook_conflicts(app: Flask) -> list[str]:
    """Name each hook of the app or verify's blueprint, and each signal receiver, not known."""
    conflicts = []
    for kind, attribute in HOOKS.items():
        hooks = getattr(app, attribute)
        if isinstance(hooks, Mapping):
            hooks = [*hooks.get(None, ()), *hooks.get(bp.name, ())]
        conflicts += [
            f"{kind} hook {_name(hook)}" for hook in hooks if _owner(hook) not in KNOWN_HOOKS[kind]
        ]
    for signal in SIGNALS:
        # For this app or for any sender: both are sent Flask's path's signals.
        for receiver in signal.receivers_for(app):
            if _owner(receiver) not in KNOWN_HOOKS["receiver"]:
                conflicts.append(f"{signal.name} receiver {_name(receiver)}")
    return conflicts


def _decorator_conflicts(app: Flask) -> list[str]:
    """Name each decorator of verify's view but the one session check the fast path repeats."""
    conflicts, checks = [], 0
    view, undecorated = app.view_functions[ENDPOINT], inspect.unwrap(verify_session)
    while view is not undecorated:
        wrapped = getattr(view, "__wrapped__", undecorated)  # no __wrapped__: named here
        differing = _differences(view, _SESSION_CHECK, stand_in=(_probe, wrapped))
        if differing == []:
            checks += 1
        elif differing is None:
            conflicts.append(f"decorator {_name(view)} on {ENDPOINT}")
        else:  # the session check's decorator, with other arguments
            values = _closure(view) or {}
            arguments = ", ".join(f"{name}={values[name]!r}" for name in differing)
            conflicts.append(
                f"decorator {_name(view)} on {ENDPOINT} with {arguments}, "
                f"unlike the {_SESSION_CHECK_NAME} the fast path repeats"
            )
            checks += 1  # a session check all the same: named for its arguments
        view = wrapped
    if checks != 1:
        conflicts.append(
            f"{ENDPOINT} with {checks} of {_SESSION_CHECK_NAME}, where the fast path has one"
        )
    return conflicts


def _known_error_handlers(app: Flask) -> Flask:
    """Return a bare app with the error handlers the app's own setup registers on an app."""
    known = Flask(__name__, static_folder=None)
    errors.register_error_handlers(known, sessionsvc(app).metrics)
    auth.jwt.init_app(known)
    return known


def _handler_for(app: Flask, error: type[Exception]) -> Callable[..., Any] | None:
    """Return the handler Flask picks for an error on verify: its blueprint's, else the app's."""
    for scope in (bp.name, None):
        handlers = app.error_handler_spec.get(scope, {}).get(None, {})
        for kind in error.__mro__:
            if kind in handlers:
                return handlers[kind]
    return None


def _error_handler_conflicts(app: Flask) -> list[str]:
    """Name each error handler not known, and any that would answer the fast path's errors."""
    known = _known_error_handlers(app)
    conflicts, named = [], set()
    for scope in (None, bp.name):
        for code, handlers in app.error_handler_spec.get(scope, {}).items():
            for error, handler in handlers.items():
                expected = (
                    known.error_handler_spec[None][code].get(error) if scope is None else None
                )
                differing = None if expected is None else _differences(handler, expected)
                if differing != []:
                    where = "" if scope is None else f" on blueprint {scope}"
                    other = f" closing over another {', '.join(differing)}" if differing else ""
                    conflicts.append(
                        f"error handler {_name(handler)} for {error.__name__}{where}{other}"
                    )
                    named.add(id(handler))
    for answered in ANSWERED_ERRORS:
        picked, shipped = _handler_for(app, answered), _handler_for(known, answered)
        if picked is None:
            conflicts.append(
                f"no error handler for {answered.__name__}, which the fast path answers"
            )
        elif id(picked) not in named and _differences(picked, shipped) != []:
            conflicts.append(
                f"error handler {_name(picked)} for {answered.__name__}, which the fast path "
                f"answers as {_name(shipped)} does"
            )
    return conflicts


def check_fast_path(app: Flask) -> None:
    """Refuse an app whose verify requests run what the fast path does not.

    That is a decorator of the view but the session check, a hook, error handler
    or signal receiver that is not known (KNOWN_HOOKS, and the app's own error
    handlers), or another handler for the errors the fast path answers.
    """
    unknown = [
        *_hook_conflicts(app),
        *_decorator_conflicts(app),
        *_error_handler_conflicts(app),
    ]
    if unknown:
        raise FastPathConflict(
            "verify's fast path (web/verify.py) would skip: "
            + "; ".join(unknown)
            + ". Do that work in VerifyFastPath too and make it known to verify.check_fast_path "
            "(verify.KNOWN_HOOKS), or keep it off verify."
        )


def init_app(app: Flask) -> None:
    """Put the verify fast path in front of the app, once nothing it would skip is registered."""
    check_fast_path(app)
    # Flask's documented way to put WSGI middleware in front; mypy sees a method.
    app.wsgi_app = VerifyFastPath(app, app.wsgi_app)  # type: ignore[method-assign]  # see above
