"""The "Your devices" page and its client in a real Chromium, against the real service.

The service runs in a thread on a real socket; a login service (examples/login_service.py)
shares its site the way it would behind the gateway. `make test-browser` runs these.
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from tests.conftest import BROWSER_TEST, CLUSTER
from tests.support import POSTMAN, ROOT, SERVICE_KEY, auth, free_port


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create_login_service = _load_example("login_service").create_app
pytestmark = BROWSER_TEST

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
PAGE = "/api/account/sessions"
COOKIE = "__Secure-sessionsvc-refresh"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
# What Chromium itself logs for an answer the page expects (signed out, unavailable).
HTTP_STATUS_LOG = re.compile(r"^Failed to load resource: the server responded with a status of")


# Chromium logs a blocked load itself; this also names the directive, whatever was blocked.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


class Service:
    """sessionsvc and the login service on one site (one host and port), in a thread."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.refreshing = 0  # refresh requests in flight now, and the most ever at once
        self.most_refreshing = 0
        self._lock = threading.Lock()
        login = create_login_service(self.url, SERVICE_KEY, PAGE)
        site = DispatcherMiddleware(self._counting(app.wsgi_app), {"/login": login.wsgi_app})
        self.server = make_server(host, self.port, site, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _counting(self, wsgi_app):
        def counted(environ, start_response):
            if not environ["PATH_INFO"].endswith("/sessions/refresh"):
                return wsgi_app(environ, start_response)
            with self._lock:
                self.refreshing += 1
                self.most_refreshing = max(self.most_refreshing, self.refreshing)
            try:
                return list(wsgi_app(environ, start_response))
            finally:
                with self._lock:
                    self.refreshing -= 1

        return counted

    def login(self, user_agent: str, user_id: str = "alice") -> dict[str, Any]:
        """Create a session as the login service does (another device of the user)."""
        response = self.app.test_client().post(
            "/api/sessions",
            json={"userId": user_id, "userAgent": user_agent},
            headers={"X-Service-Key": SERVICE_KEY},
        )
        assert response.status_code == 201, response.json
        return response.json

    def verify(self, access_token: str) -> int:
        return (
            self.app.test_client()
            .get("/api/sessions/verify", headers=auth(access_token))
            .status_code
        )


@pytest.fixture
def serve(make_app) -> Iterator[Callable[..., Service]]:
    """Return a starter of the service (cookie mode, config overrides as keywords)."""
    started: list[Service] = []

    def start(**overrides: Any) -> Service:
        service = Service(make_app(REFRESH_TOKEN_TRANSPORT="cookie", **overrides))
        service.thread.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.server.shutdown()
        service.server.server_close()


@pytest.fixture
def service(serve) -> Service:
    return serve()


class Console:
    """Every console error of a context's pages; CSP violations are among them."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        return page

    def unexpected(self, *, http_statuses_expected: bool = False) -> list[str]:
        return [e for e in self.errors if not (http_statuses_expected and HTTP_STATUS_LOG.match(e))]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_context(browser: Browser, console: Console) -> Iterator[Callable[..., BrowserContext]]:
    """Return a maker of browser contexts whose pages report their console errors."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**{"user_agent": CHROME_WINDOWS, **options})
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        context.on("page", console.watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def sign_in(context: BrowserContext, service: Service, user_id: str = "alice") -> Page:
    """Sign in through the login service's form; return the devices page it leads to."""
    page = context.new_page()
    page.goto(f"{service.url}/login/")
    page.get_by_label("User id").fill(user_id)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.url}{PAGE}")
    expect(page.locator("#app")).to_have_attribute("data-state", "list")
    return page


def rows(page: Page):
    return page.locator("#sessions > li")


def refresh_cookie(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == COOKIE), None)


def assert_accessible(page: Page, screenshot: Path | None = None) -> None:
    """No serious or critical axe-core violation on the page as it is now; save how it looks."""
    if screenshot is not None:
        page.screenshot(path=screenshot, full_page=True)
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], results.generate_report()


def confirm_dialog(page: Page) -> None:
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#confirm-ok").click()


def three_devices(context: BrowserContext, service: Service) -> tuple[Page, dict, dict]:
    """Sign this browser in as Chrome on Windows, beside an iPhone and Postman."""
    iphone = service.login(IPHONE_SAFARI)
    postman = service.login(POSTMAN)
    return sign_in(context, service), iphone, postman


def test_the_list_shows_each_device_with_this_one_first(open_context, service, console):
    page, iphone, postman = three_devices(open_context(), service)

    expect(rows(page)).to_have_count(3)
    ids = rows(page).evaluate_all("rows => rows.map(row => row.dataset.sessionId)")
    assert set(ids[1:]) == {iphone["session"]["_id"], postman["session"]["_id"]}
    first = rows(page).first
    expect(first).to_contain_text("Chrome 120 on Windows")
    expect(first.locator(".badge.current")).to_have_text("This device")
    # "Sign out everywhere" is for it (it has Rename only: tests/test_browser_devices.py).
    expect(first.get_by_role("button", name=re.compile("^(Sign out|Forget)"))).to_have_count(0)
    phone = rows(page).filter(has_text="Mobile Safari 17 on iOS")
    expect(phone).to_contain_text("iPhone")
    expect(phone.get_by_role("button", name="Sign out Mobile Safari 17 on iOS")).to_be_visible()
    tool = rows(page).filter(has_text="PostmanRuntime 7")
    expect(tool.locator(".badge.dev")).to_have_text("Developer tool")
    expect(page.locator("time").first).to_have_text(re.compile(r"now|second|minute"))
    assert_accessible(page)
    assert console.unexpected() == []


def test_signing_out_another_device_removes_it_and_kills_its_token(open_context, service, console):
    page, iphone, postman = three_devices(open_context(), service)
    assert service.verify(iphone["accessToken"]) == 200

    page.get_by_role("button", name=re.compile("^Sign out Mobile Safari 17 on iOS")).click()
    assert_accessible(page)  # with the confirmation open
    confirm_dialog(page)

    expect(rows(page)).to_have_count(2)
    expect(page.locator("#sessions")).not_to_contain_text("Safari")
    assert service.verify(iphone["accessToken"]) == 401
    assert service.verify(postman["accessToken"]) == 200
    # The focus went to the next row's button, not to the top of the page.
    expect(page.get_by_role("button", name=re.compile("^Sign out PostmanRuntime"))).to_be_focused()
    expect(page.get_by_role("status")).to_have_text(
        re.compile("Signed out Mobile Safari 17 on iOS")
    )
    assert console.unexpected() == []


def test_cancelling_the_confirmation_signs_nothing_out(open_context, service):
    page, iphone, _ = three_devices(open_context(), service)

    page.get_by_role("button", name=re.compile("^Sign out Mobile Safari")).click()
    page.keyboard.press("Escape")

    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(rows(page)).to_have_count(3)
    assert service.verify(iphone["accessToken"]) == 200


def test_the_keyboard_alone_signs_a_device_out(open_context, service, console):
    page, iphone, _ = three_devices(open_context(), service)
    target = page.get_by_role("button", name=re.compile("^Sign out Mobile Safari"))

    first_time = page.locator("time").first
    page.keyboard.press("Tab")  # the first focusable thing: the first row's time
    expect(first_time).to_be_focused()
    shown = first_time.evaluate("t => getComputedStyle(t, '::after').content")
    assert first_time.get_attribute("data-exact") in shown  # the exact time, on focus
    for _ in range(20):
        if target.evaluate("b => b === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(target).to_be_focused()
    assert target.evaluate("b => getComputedStyle(b).outlineStyle") != "none"  # visible focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(rows(page)).to_have_count(2)
    assert service.verify(iphone["accessToken"]) == 401
    assert console.unexpected() == []


def test_the_console_check_sees_a_csp_violation(open_context, service, console):
    page = sign_in(open_context(), service)

    inline_style = "Object.assign(document.createElement('style'), {textContent: 'p {}'})"
    page.evaluate(f"document.head.append({inline_style})")

    for _ in range(100):
        if any(e.startswith("CSP violation: style-src") for e in console.errors):
            break
        page.wait_for_timeout(20)
    assert any(e.startswith("CSP violation: style-src") for e in console.errors), console.errors


def test_signing_out_all_other_devices_keeps_this_one(open_context, service, console):
    context = open_context()
    page, iphone, postman = three_devices(context, service)

    page.get_by_role("button", name="Sign out of all other devices").click()
    confirm_dialog(page)

    expect(rows(page)).to_have_count(1)
    expect(page.locator("#only-this")).to_be_visible()  # the empty state
    expect(page.get_by_role("button", name="Sign out of all other devices")).to_be_hidden()
    assert [service.verify(d["accessToken"]) for d in (iphone, postman)] == [401, 401]
    assert_accessible(page)
    page.reload()
    expect(rows(page)).to_have_count(1)  # this device is still signed in
    assert console.unexpected() == []


def test_signing_out_everywhere_shows_the_signed_out_state(
    open_context, service, console, output_path
):
    context = open_context()
    page, iphone, _ = three_devices(context, service)

    page.get_by_role("button", name="Sign out everywhere").click()
    confirm_dialog(page)

    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_have_attribute("href", "/login")
    assert refresh_cookie(context) is None  # cleared by the same answer
    assert service.verify(iphone["accessToken"]) == 401
    assert_accessible(page, Path(output_path) / "signed-out.png")
    page.reload()  # no cookie: signed out for good
    expect(page.locator("#app")).to_have_attribute("data-state", "signed-out")
    assert console.unexpected(http_statuses_expected=True) == []


def test_an_expiring_access_token_is_refreshed_without_a_visible_error(
    open_context, serve, console
):
    service = serve(JWT_ACCESS_TOKEN_EXPIRES=2)
    refreshes: list[int] = []
    context = open_context()
    context.on(
        "response", lambda r: r.url.endswith("/sessions/refresh") and refreshes.append(r.status)
    )
    page, iphone, _ = three_devices(context, service)

    page.wait_for_timeout(3500)  # the first access token has expired by now
    page.get_by_role("button", name=re.compile("^Sign out Mobile Safari")).click()
    confirm_dialog(page)

    expect(rows(page)).to_have_count(2)
    expect(page.locator("#action-error")).to_be_hidden()
    assert service.verify(iphone["accessToken"]) == 401
    assert len(refreshes) >= 2 and set(refreshes) == {200}
    assert console.unexpected() == []


def test_two_tabs_refreshing_at_once_both_keep_working(open_context, serve, console):
    # No grace: a refresh token presented twice would revoke the session (theft).
    service = serve(JWT_ACCESS_TOKEN_EXPIRES=2, REFRESH_REUSE_GRACE=0)
    context = open_context()
    first, iphone, postman = three_devices(context, service)
    second = context.new_page()
    second.goto(f"{service.url}{PAGE}")
    expect(rows(second)).to_have_count(3)

    first.wait_for_timeout(4500)  # both tabs' timers refresh, around the same moments
    for page, device in ((first, "Mobile Safari"), (second, "PostmanRuntime")):
        page.get_by_role("button", name=re.compile(f"^Sign out {device}")).click()
        confirm_dialog(page)
        expect(page.locator(f"#sessions >> text={device}")).to_have_count(0)

    assert service.most_refreshing == 1  # one refresh at a time across the tabs
    assert [service.verify(d["accessToken"]) for d in (iphone, postman)] == [401, 401]
    for page in (first, second):
        page.reload()
        expect(rows(page)).to_have_count(1)  # neither tab signed the other out
    assert console.unexpected() == []


def test_the_refresh_token_is_never_visible_to_javascript(open_context, service):
    context = open_context()
    page = sign_in(context, service)
    token = refresh_cookie(context)
    assert token

    page.reload()  # another refresh: a rotated cookie
    expect(page.locator("#app")).to_have_attribute("data-state", "list")

    assert refresh_cookie(context) not in (None, token)
    assert page.evaluate("document.cookie") == ""
    html = page.content()
    assert token not in html and refresh_cookie(context) not in html


@pytest.mark.parametrize(
    "attacker_host", ["127.0.0.2", "127.0.0.1"], ids=["cross-site", "same-site"]
)
def test_a_cross_origin_page_cannot_refresh_or_sign_out(open_context, service, attacker_host):
    context = open_context()
    page, iphone, _ = three_devices(context, service)
    cookie = refresh_cookie(context)
    attacker = AttackerPage(attacker_host, service.url)
    answers: list[tuple[str, int]] = []
    context.on("response", lambda r: answers.append((r.request.method, r.status)))
    try:
        evil = context.new_page()
        evil.goto(attacker.url)
        expect(evil).to_have_title("done", timeout=10_000)
        evil.locator("form").evaluate("form => form.submit()")
        evil.wait_for_load_state()
    finally:
        attacker.close()

    assert refresh_cookie(context) == cookie  # nothing rotated
    refused = [status for method, status in answers if method == "POST"]
    assert refused and all(status in (401, 403) for status in refused), answers
    assert service.verify(iphone["accessToken"]) == 200  # nothing revoked
    page.reload()
    expect(rows(page)).to_have_count(3)


class AttackerPage:
    """Another origin's page that tries the refresh and sign-out endpoints."""

    HTML = """<!doctype html><title>working</title>
<form method="post" action="{api}/sessions/refresh"><input name="x" value="1"></form>
<script>
const api = "{api}";
const attempts = [
  fetch(api + "/sessions/refresh", {{method: "POST", credentials: "include", mode: "no-cors"}}),
  fetch(api + "/sessions/refresh", {{method: "POST", credentials: "include",
    headers: {{"X-Requested-With": "sessionsvc"}}}}),
  fetch(api + "/sessions", {{method: "DELETE", credentials: "include"}}),
];
Promise.allSettled(attempts).then(() => {{ document.title = "done"; }});
</script>"""

    def __init__(self, host: str, service_url: str) -> None:
        body = self.HTML.format(api=f"{service_url}/api").encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.skipif(CLUSTER, reason="runs a standalone server of its own")
def test_the_page_shows_the_store_unavailable_and_recovers(
    open_context, serve, own_valkey, console, output_path
):
    service = serve(REDIS_URL=own_valkey.connection_url, REDIS_SOCKET_TIMEOUT=0.3, REDIS_RETRIES=0)
    page = sign_in(open_context(), service)
    pid = own_valkey._process.pid

    os.kill(pid, signal.SIGSTOP)  # Redis stops answering
    try:
        page.reload()
        expect(
            page.get_by_role("heading", name="We can't show your devices right now")
        ).to_be_visible()
        expect(page.locator("body")).not_to_contain_text("STORE_UNAVAILABLE")  # no raw JSON
        assert_accessible(page, Path(output_path) / "unavailable.png")
    finally:
        os.kill(pid, signal.SIGCONT)

    page.get_by_role("button", name="Try again").click()
    expect(rows(page)).to_have_count(1)
    assert console.unexpected(http_statuses_expected=True) == []


def test_the_page_says_when_to_try_again_once_rate_limited(
    open_context, serve, console, output_path
):
    service = serve(RATELIMIT_ENABLED=True, RATE_LIMIT_PER_USER="2 per minute")
    page = sign_in(open_context(), service)  # one refresh
    page.reload()  # two
    # Wait for the list: a reload before this one's refresh is sent would cancel it.
    expect(page.locator("#app")).to_have_attribute("data-state", "list")

    page.reload()  # three: over the limit

    expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    expect(page.locator("#rate-limited-when")).to_contain_text(
        re.compile(r"in \d+ (second|minute)")
    )
    assert_accessible(page, Path(output_path) / "rate-limited.png")
    assert console.unexpected(http_statuses_expected=True) == []


def test_the_loading_state_is_accessible(open_context, service, console):
    context = open_context()
    sign_in(context, service).close()
    held = []
    context.route("**/api/sessions", lambda route: held.append(route))  # held until let go

    page = context.new_page()
    page.goto(f"{service.url}{PAGE}")
    page.wait_for_function("document.querySelector('#app').dataset.state === 'loading'")
    while not held:
        page.wait_for_timeout(20)
    expect(page.get_by_text("Loading your devices")).to_be_visible()
    assert_accessible(page)
    held[0].continue_()

    expect(rows(page)).to_have_count(1)
    assert console.unexpected() == []


def test_the_development_sign_in_lets_a_person_try_the_page(open_context, service, console):
    page = open_context().new_page()
    page.goto(f"{service.url}{PAGE}")
    expect(page.locator("#app")).to_have_attribute("data-state", "signed-out")
    assert_accessible(page)

    page.get_by_text("Development: sign in as a device").click()
    page.get_by_label("User id").fill("bob")
    page.get_by_label("Device", exact=True).select_option(label="Safari on iPhone")
    page.get_by_role("button", name="Sign in as this device").click()

    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Mobile Safari 17 on iOS")
    expect(rows(page).first.locator(".badge.current")).to_be_visible()
    assert console.unexpected(http_statuses_expected=True) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_fit_the_width_and_pass_axe(
    open_context, service, console, output_path, scheme, size
):
    context = open_context(viewport=size, color_scheme=scheme)
    page, _, _ = three_devices(context, service)

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], "the page scrolls sideways"
    assert_accessible(page)  # colour contrast in this scheme, among the rest
    page.screenshot(
        path=Path(output_path) / f"devices-{size['width']}-{scheme}.png", full_page=True
    )
    assert console.unexpected() == []


def test_a_session_hand_off_puts_no_token_in_a_url(open_context, service):
    context = open_context()
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))

    sign_in(context, service)

    token = refresh_cookie(context)
    assert token and not [url for url in urls if "eyJ" in url or token in url]


def test_the_page_says_whose_account_it_is(open_context, service, console):
    page = sign_in(open_context(), service, "alice")

    expect(page.locator("#account")).to_have_text("Signed in as alice")
    expect(page.locator("#account")).to_be_visible()
    assert_accessible(page)
    assert console.unexpected() == []


def test_a_browser_signed_in_to_another_account_is_told_whose_it_is(open_context, service):
    # A login CSRF: a page on another port sets the attacker's cookie at the
    # victim's own path, which replaces the victim's (cookies know no ports).
    # The service cannot tell, but the page shows whose account it lists: the
    # user id too, whatever display name the attacker's account has.
    context = open_context()
    page = sign_in(context, service, "alice")
    mallory = service.app.test_client().post(
        "/api/sessions",
        json={"userId": "mallory", "claims": {"name": "Alice Smith"}},
        headers={"X-Service-Key": SERVICE_KEY},
    )
    token = mallory.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    plant(context, f"{COOKIE}={token}; Path=/api/sessions/refresh; Secure")

    page.reload()

    expect(page.locator("#account")).to_have_text("Signed in as Alice Smith (mallory)")


def plant(context: BrowserContext, set_cookie: str) -> None:
    """Visit a page on another port of the service's host that sets this cookie."""
    planter = CookiePlanter("127.0.0.1", set_cookie)
    try:
        page = context.new_page()
        page.goto(planter.url)
        expect(page).to_have_title("planted")
        page.close()
    finally:
        planter.close()


class CookiePlanter:
    """A page on another port of the service's host that sets a refresh cookie of its own."""

    def __init__(self, host: str, set_cookie: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Set-Cookie", set_cookie)
                self.end_headers()
                self.wfile.write(b"<!doctype html><title>planted</title>")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("path", ["/api", "/"])
def test_a_refresh_cookie_planted_by_another_port_is_refused_and_cleared(
    open_context, service, console, path
):
    context = open_context()
    page = sign_in(context, service, "alice")
    mallory = service.app.test_client().post(
        "/api/sessions", json={"userId": "mallory"}, headers={"X-Service-Key": SERVICE_KEY}
    )
    token = mallory.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    # Another port of the same host (cookies know no ports), another path: a
    # second cookie of the same name, which the browser sends with the victim's.
    plant(context, f"{COOKIE}={token}; Path={path}; Secure")
    assert len([c for c in context.cookies() if c["name"] == COOKIE]) == 2

    page.reload()

    expect(page.locator("#app")).to_have_attribute("data-state", "signed-out")
    assert refresh_cookie(context) is None  # both cleared: neither account is shown
    assert console.unexpected(http_statuses_expected=True) == []
