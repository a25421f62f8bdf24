"""The JS client's fetch() handing the access token to any URL it is given.

Attack: an app calls ``client.fetch(url)`` with a URL it did not write itself (a link
from a user's profile, an image proxy, a redirect target, a relative path under a
``<base>`` an injection set) and the browser client attaches ``Authorization: Bearer
<access token>`` to it: another origin now holds a live token of the user's session.
Defence: fetch() attaches the token only to the page's own origin, the API's and the
``origins`` it was configured with; any other URL is fetched as given, with no token.
The other origin here is a real server on another port that records what arrives,
and lets every CORS preflight pass, so a token sent would be seen.
"""

from __future__ import annotations

import html
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from tests.conftest import BROWSER_TEST
from tests.support import auth, free_port, login

pytestmark = BROWSER_TEST

PAGE = "/client-check"  # a page of the test's on the service's origin, without a CSP


def client_check_page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Serve an empty page, with ``<base href>`` set to the ``base`` query parameter if any."""
    base = parse_qs(environ.get("QUERY_STRING", "")).get("base", [""])[0]
    head = f'<base href="{html.escape(base)}">' if base else ""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [f"<!doctype html>{head}<title>client check</title>".encode()]


class Recorder:
    """Another origin: answers any request 200 and keeps each one's method and headers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append((self.command, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                # Every preflight passes: were a token sent, it would arrive here.
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE")
                self.send_header(
                    "Access-Control-Allow-Headers",
                    self.headers.get("Access-Control-Request-Headers", "*"),
                )
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_DELETE = do_OPTIONS = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self, method: str) -> list[dict[str, str]]:
        return [headers for seen_method, headers in self.seen if seen_method == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service(app) -> Iterator[str]:
    """The service on a real socket, in a thread; its URL."""
    port = free_port()
    # A page served from loopback itself: Chromium lets only such a page reach loopback ports.
    site = DispatcherMiddleware(app.wsgi_app, {PAGE: client_check_page})
    server = make_server("127.0.0.1", port, site, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    """Two other origins: a foreign one, and a partner the client is told of."""
    foreign, partner = Recorder(), Recorder()
    yield foreign, partner
    foreign.close()
    partner.close()


@pytest.fixture
def token(client) -> str:
    return login(client, "alice")["accessToken"]


@pytest.fixture
def client_page(browser: Browser, service: str) -> Iterator[Callable[..., Page]]:
    """Return an opener of a page on the service's origin, with a <base> if given, and no CSP."""
    contexts: list[BrowserContext] = []

    def open_page(base: str | None = None) -> Page:
        contexts.append(context := browser.new_context())
        page = context.new_page()
        page.goto(f"{service}{PAGE}" + (f"?{urlencode({'base': base})}" if base else ""))
        return page

    yield open_page
    for context in contexts:
        context.close()


# The page imports the client from the service, signs it in with the token, and fetches url
# (as a Request when asked); it answers the status, or the error's name and message.
FETCH = """
async ({ module, api, origins, token, url, asRequest }) => {
  const { SessionsClient } = await import(module);
  let client;
  try {
    client = new SessionsClient({ api, origins });
    client.signedIn(token);
    const response = await client.fetch(asRequest ? new Request(url) : url);
    return response.status;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  } finally {
    client?.close();
  }
}
"""


def fetch_in_page(
    page: Page,
    service: str,
    token: str,
    url: str,
    *,
    origins: list[str] | None = None,
    as_request: bool = False,
) -> Any:
    return page.evaluate(
        FETCH,
        {
            "module": f"{service}/api/ui/sessionsvc-client.js",
            "api": f"{service}/api",
            "origins": origins or [],
            "token": token,
            "url": url,
            "asRequest": as_request,
        },
    )


@pytest.mark.parametrize(
    "how",
    ["absolute", "request", "relative"],
    ids=["an-absolute-url", "a-request-object", "a-relative-url-under-a-foreign-base"],
)
def test_another_origin_gets_no_token(client_page, service, recorders, token, how):
    foreign, partner = recorders
    # A relative URL resolves against the page's <base>, here on the other origin.
    page = client_page(base=f"{foreign.origin}/" if how == "relative" else None)
    url = "probe" if how == "relative" else f"{foreign.origin}/probe"

    status = fetch_in_page(
        page, service, token, url, origins=[partner.origin], as_request=how == "request"
    )

    assert status == 200, foreign.seen
    gets = foreign.requests("GET")
    assert len(gets) == 1, foreign.seen
    assert "authorization" not in gets[0]
    assert token not in str(foreign.seen)
    # Sent as given: no preflight for a header the client would have added.
    assert foreign.requests("OPTIONS") == []


def test_the_token_goes_to_its_own_origin_and_the_configured_ones(
    client_page, service, recorders, token
):
    foreign, partner = recorders
    page = client_page()

    own = fetch_in_page(page, service, token, "/api/sessions/verify")
    configured = fetch_in_page(
        page, service, token, f"{partner.origin}/orders", origins=[f"{partner.origin}/any/path"]
    )

    assert own == 200  # a relative URL on the page's origin: verify saw the token
    assert configured == 200
    assert [get["authorization"] for get in partner.requests("GET")] == [
        auth(token)["Authorization"]
    ]
    assert foreign.seen == []


def test_a_relative_configured_origin_is_refused(client_page, service, token):
    page = client_page()

    outcome = fetch_in_page(page, service, token, "/api/sessions/verify", origins=["/orders"])

    assert outcome.startswith("TypeError: "), outcome
