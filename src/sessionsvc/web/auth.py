"""Credentials on a request: access tokens (flask-jwt-extended), refresh tokens, service keys.

flask-jwt-extended is used through its public API: its key, header and
revocation loaders, ``jwt_required`` and ``get_jwt``. Its refusals are
answered in the API's one error shape.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jwt as pyjwt
from flask import Flask, Response, current_app, g, request
from flask_jwt_extended import JWTManager, jwt_required

from ..config.service_keys import SCOPES, ServiceKey, matching
from ..domain.sessions import SessionRef
from ..extension import get_keys, get_store, sessionsvc
from ..logs import SERVICE_KEY_ENVIRON
from ..tokens.access import MISSING_CLAIM, DecodeSettings, session_ref
from ..tokens.refresh import PresentedRefresh, read_refresh_token
from . import cookies
from .errors import (
    InvalidServiceKey,
    InvalidToken,
    MissingToken,
    ServiceKeyForbidden,
    SessionsvcError,
    TokenExpired,
    TokenRevoked,
    refusal,
)
from .ratelimit import count_service_key_failure, refuse_service_key_guessing

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

SERVICE_KEY_HEADER = "X-Service-Key"
ADMIN_PATH = "/admin"  # the admin blueprint's, under URL_PREFIX

jwt = JWTManager()


def init_app(app: Flask) -> None:
    """Set flask-jwt-extended up on the app's key ring: headers only, iss and aud."""
    ring = sessionsvc(app).keys
    config = app.config
    config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM=ring.active.alg,
        JWT_DECODE_ALGORITHMS=ring.algorithms,
        JWT_ENCODE_ISSUER=config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=config["JWT_ISSUER"],
        JWT_ENCODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_DECODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_ENCODE_NBF=False,
        JWT_COOKIE_CSRF_PROTECT=False,  # tokens travel in headers only: no csrf claim
    )
    jwt.init_app(app)


def decode_settings(app: Flask) -> DecodeSettings:
    """Return what the app verifies access tokens against (its ring, iss, aud, leeway)."""
    return DecodeSettings(
        ring=sessionsvc(app).keys,
        issuer=app.config["JWT_ISSUER"],
        audience=app.config["JWT_AUDIENCE"],
        leeway=app.config.get("JWT_DECODE_LEEWAY", 0),
    )


def session_required(*, view_checks_session: bool = False) -> Callable[[F], F]:
    """Require a valid access token whose session is live.

    With ``view_checks_session``, the view checks the session itself, in the same
    Redis round trip as its own work (list, revoke): one round trip, not two.
    """
    return jwt_required(skip_revocation_check=view_checks_session)


def session_of(payload: Mapping[str, Any]) -> SessionRef:
    """Return the session an access token's payload names, refusing a token without our claims."""
    session = session_ref(payload)
    if session is None:
        raise InvalidToken(MISSING_CLAIM)
    return session


def service_key() -> ServiceKey:
    """Return the service key the request carries; refuse a missing or wrong one (401).

    Every key is compared, in constant time (config.service_keys.matching).
    Wrong keys are counted per client address; once too many, 429 to every try.
    The key's name, never its value, goes to the access log (``SERVICE_KEY_ENVIRON``).
    """
    known: ServiceKey | None = g.get("sessionsvc_service_key")
    if known is not None:  # checked already, for the admin paths (admin_paths_need_a_key)
        return known
    refuse_service_key_guessing()
    key = matching(sessionsvc().service_keys, request.headers.get(SERVICE_KEY_HEADER, ""))
    if key is None:
        count_service_key_failure()
        raise InvalidServiceKey()
    g.sessionsvc_service_key = key
    request.environ[SERVICE_KEY_ENVIRON] = key.name
    return key


def require_service_key(scope: str) -> ServiceKey:
    """Refuse the request unless it carries a service key (401) with ``scope`` (403)."""
    key = service_key()
    if scope not in key.scopes:
        log.warning("service key %s lacks the scope %s", key.name, scope)
        raise ServiceKeyForbidden(f"This service key lacks the scope {scope}.")
    return key


def service_key_required(scope: str) -> Callable[[F], F]:
    """Decorate a view only a caller whose service key has ``scope`` may call."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_service_key(scope)
            return view(*args, **kwargs)

        wrapper.service_key_scope = scope  # type: ignore[attr-defined]  # read by the tests and docs
        return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature

    return decorate


def admin_paths_need_a_key() -> None:
    """Refuse any request under ``<URL_PREFIX>/admin`` without a valid service key (401).

    Routes or not, every method: a missing and a wrong key get the same answer,
    so a caller without a key cannot tell the admin routes from other paths
    (a 404 or 405 would). Each view then checks its scope.
    """
    if _under_admin():
        service_key()


def admin_paths_are_not_stored(response: Response) -> Response:
    """Mark every answer under ``<URL_PREFIX>/admin`` no-store, a route's or not.

    Users' IP addresses and locations; and the same headers on a 401 for a
    route and for any other path there.
    """
    if _under_admin():
        response.headers.update(cookies.NO_STORE)
    return response


def _under_admin() -> bool:
    base = current_app.config["URL_PREFIX"] + ADMIN_PATH
    path = request.path
    return path == base or path.startswith(base + "/")


def refresh_token_required(view: F) -> F:
    """Read the request's refresh token before the view (and its rate limits); refuse a bad one.

    A browser's comes in the refresh cookie (``cookies``), anyone else's as a
    Bearer header. Nothing in it is trusted yet: the store compares its secret
    with the session's.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = cookies.presented_refresh_token() or _bearer_token()
        config = current_app.config
        g.sessionsvc_refresh = read_refresh_token(
            token,
            tag_secret=sessionsvc().refresh_secret,
            ring=get_keys(),
            issuer=config["JWT_ISSUER"],
            audience=config["JWT_AUDIENCE"],
        )
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def presented_refresh() -> PresentedRefresh:
    """Return the refresh token ``refresh_token_required`` read."""
    return g.sessionsvc_refresh


def _bearer_token() -> str:
    config = current_app.config
    header = request.headers.get(config["JWT_HEADER_NAME"], "")
    kind, _, token = header.partition(" ")
    if kind != config["JWT_HEADER_TYPE"]:
        raise MissingToken(f"A Bearer token is required (missing {config['JWT_HEADER_NAME']}).")
    return token


def reply(error: type[SessionsvcError], message: str | None = None) -> Response:
    """Answer one of flask-jwt-extended's refusals (its loaders return one) with our error."""
    return refusal(error(message))


@jwt.encode_key_loader
def signing_key(_identity: Any) -> Any:
    """Sign with the ring's active key."""
    return get_keys().active.signing


@jwt.additional_headers_loader
def key_id_header(_identity: Any) -> dict[str, str]:
    """Name the active key in the token's header."""
    return {"kid": get_keys().active.kid}


@jwt.decode_key_loader
def verifying_key(header: dict, payload: dict) -> Any:
    """Return the key the token's kid names; refuse an unknown kid, another alg, or no access token.

    Only access tokens come this way (refresh tokens are opaque). The library
    itself refuses only a refresh token where an access token is due: any type
    but access is refused here, before the signature or the session is checked.
    """
    if payload.get("type", "access") != "access":  # the library's default: access
        raise pyjwt.InvalidTokenError("not an access token")
    return get_keys().key_for(header).verifying


@jwt.token_in_blocklist_loader
def session_is_revoked(_header: dict, payload: dict) -> bool:
    """Tell flask-jwt-extended whether the token's session is gone (one round trip)."""
    session = session_of(payload)
    return not get_store().is_live(*session, token_expiry=payload["exp"])


@jwt.unauthorized_loader
def missing_token(reason: str) -> Response:
    return reply(MissingToken, f"A Bearer token is required ({reason}).")


@jwt.invalid_token_loader
def invalid_token(reason: str) -> Response:
    return reply(InvalidToken, f"The token is not valid ({reason}).")


@jwt.expired_token_loader
def expired_token(_header: dict, _data: dict) -> Response:
    return reply(TokenExpired)


@jwt.revoked_token_loader
def revoked_token(_header: dict, _data: dict) -> Response:
    return reply(TokenRevoked)
