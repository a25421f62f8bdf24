"""The refresh cookie: a browser's refresh token, out of JavaScript's reach."""

from __future__ import annotations

import ipaddress
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from flask import Response, after_this_request, current_app, g, make_response, request

from .errors import CsrfRejected, DuplicateRefreshCookie

# __Secure-: the browser keeps it only if it came over HTTPS with Secure. (__Host-
# would also pin it to Path=/, where every request of the site would carry it.)
COOKIE_NAME = "__Secure-sessionsvc-refresh"
# The device cookie (docs/devices.md): __Host- pins it to this host and Path=/,
# where the login page (on this site) reads it; it identifies, it authenticates nothing.
DEVICE_COOKIE = "__Host-sessionsvc-device"
DEVICE_COOKIE_MAX_AGE = 400 * 86_400  # the longest browsers keep a cookie
# A header a cross-site form cannot send, and fetch() only after a CORS preflight
# that only CORS_ORIGINS pass: its presence (any value) proves the request came from the app.
CSRF_HEADER = "X-Requested-With"
NO_STORE = {"Cache-Control": "no-store"}


def refresh_path() -> str:
    """Return the one path the cookie is sent to: the refresh endpoint."""
    return f"{current_app.config['URL_PREFIX']}/sessions/refresh"


def presented_refresh_token() -> str | None:
    """Return the refresh token of the request's cookie, or None to read the header.

    An Authorization header wins. A cookie, which the browser sends on its own,
    counts only with the CSRF header.
    """
    if "Authorization" in request.headers:
        return None
    tokens = request.cookies.getlist(COOKIE_NAME)  # every one the Cookie header holds
    if not tokens:
        return None
    require_csrf_header()
    if len(tokens) > 1:
        # Cookie tossing: a page of the same site (another port, a sibling
        # subdomain) planted one of its own beside ours, at another path or
        # domain. Which is ours cannot be told (a browser sends neither), and
        # taking the planted one signs the victim in as the attacker: refuse,
        # and clear both (docs/browser.md#cookie-tossing).
        after_this_request(clear_every_refresh_cookie)
        raise DuplicateRefreshCookie()
    g.sessionsvc_refresh_cookie = True
    after_this_request(_clear_if_refused)
    return tokens[0]


def require_csrf_header() -> None:
    """Refuse (403) a request the browser could have sent on its own: no CSRF header."""
    if CSRF_HEADER not in request.headers:
        raise CsrfRejected()


def _clear_if_refused(response: Response) -> Response:
    """Drop a refused cookie (revoked, reused, expired): it is of no use to keep."""
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        clear_refresh_cookie(response)
    return response


def came_in_cookie() -> bool:
    """Tell whether this request's refresh token came in the cookie."""
    return g.get("sessionsvc_refresh_cookie", False)


def token_response(
    tokens: dict[str, Any],
    status: HTTPStatus,
    *,
    cookie: bool,
    expire_at: int,
    persistent: bool = True,
) -> Response:
    """Answer with tokens, no-store; with ``cookie``, the refresh token as the cookie only.

    ``expire_at`` is the session's end (ms), when the cookie expires too; not
    ``persistent``, the cookie ends with the browser instead.
    """
    body = dict(tokens)
    refresh_token = body.pop("refreshToken") if cookie else None
    response = make_response(body, status, NO_STORE)
    if refresh_token is not None:
        set_refresh_cookie(response, refresh_token, expire_at, persistent=persistent)
        # The device cookie outlives a session not persistent too: it names the
        # browser (docs/devices.md), not a login, and holds no credential.
        if "deviceToken" in body:
            response.set_cookie(
                DEVICE_COOKIE,
                body["deviceToken"],
                max_age=DEVICE_COOKIE_MAX_AGE,
                path="/",
                secure=True,
                httponly=True,
                samesite="Lax",
            )
    return response


def set_refresh_cookie(
    response: Response, refresh_token: str, expire_at: int, *, persistent: bool = True
) -> None:
    """Set the cookie to the refresh token, expiring when its session does (``expire_at``, ms).

    Not ``persistent`` ("remember me" unticked): a session cookie, without
    Max-Age or Expires, which the browser forgets when it closes; the session
    still ends at ``expire_at`` on the server (docs/sessions-lifetime.md).
    """
    response.set_cookie(
        COOKIE_NAME,
        refresh_token,
        max_age=max(0, expire_at // 1000 - int(time.time())) if persistent else None,
        path=refresh_path(),
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def clear_refresh_cookie(response: Response) -> Response:
    """Tell the browser to drop the cookie."""
    response.delete_cookie(
        COOKIE_NAME, path=refresh_path(), secure=True, httponly=True, samesite="Strict"
    )
    return response


def tossed_cookie_paths() -> list[str]:
    """Return every path a cookie sent to the refresh endpoint can have: its prefixes."""
    path = refresh_path()
    paths = ["/"]
    for end in range(1, len(path)):
        if path[end] == "/":
            paths += [path[:end], path[: end + 1]]  # /api and /api/ are two cookies
    return [*paths, path]


def tossed_cookie_domains() -> list[str | None]:
    """Return every domain a cookie sent to this host can have: none (host-only), then its own.

    A sibling subdomain can set one for a parent domain (Domain=example.com); a
    public suffix is refused by browsers, and a clearing of one with it too.
    """
    host = urlsplit(f"//{request.host}").hostname or ""  # no port, no IPv6 brackets
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return [None, *(".".join(labels[i:]) for i in range(len(labels) - 1))]
    return [None]  # an address: no cookie names a domain


def clear_every_refresh_cookie(response: Response) -> Response:
    """Tell the browser to drop every refresh cookie it may send here, planted ones included.

    A cookie is cleared only by its name, path and domain: those are all the
    ones the browser could have sent to the refresh endpoint, for this host
    and its parent domains. One set for another host, or that another path
    leaves unsent, is not here to be cleared, and does no harm here.
    """
    for domain in tossed_cookie_domains():
        for path in tossed_cookie_paths():
            response.delete_cookie(
                COOKIE_NAME,
                path=path,
                domain=domain,
                secure=True,
                httponly=True,
                samesite="Strict",
            )
    return response


def signed_out() -> None:
    """Clear the cookie in this response: the caller's own session is gone.

    Only for browsers (the cookie mode, or our client's CSRF header): API
    clients' answers stay as they were.
    """
    if creates_cookie() or CSRF_HEADER in request.headers:
        after_this_request(clear_refresh_cookie)


def creates_cookie() -> bool:
    """Tell whether create hands out the refresh token as a cookie (REFRESH_TOKEN_TRANSPORT)."""
    return current_app.config["REFRESH_TOKEN_TRANSPORT"] == "cookie"  # noqa: S105 (a mode)
