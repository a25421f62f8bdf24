"""The JS client's step-up: one stepuprequired event across tabs, then the requests retried."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import BROWSER_TEST
from tests.support import POSTMAN, SERVICE_KEY
from tests.test_browser import (  # noqa: F401 (the fixtures, for pytest)
    console,
    open_context,
    serve,
    service,
    sign_in,
)

pytestmark = BROWSER_TEST
DEMANDING = "/api/sessions/verify?acr_values=aal2&max_age=600"
START = """async (url) => {
  const { SessionsClient } = await import("/api/ui/sessionsvc-client.js");
  const client = new SessionsClient();
  window.stepUps = [];
  client.addEventListener("stepuprequired", (event) => window.stepUps.push(event.detail));
  window.client = client;
  await client.refresh();
  window.answered = null;
  client.fetch(url).then((response) => { window.answered = response.status; });
}"""


def wait_until(page, expression: str, timeout_ms: int = 5000) -> None:
    """Poll ``expression`` through page.evaluate until it holds.

    Not page.wait_for_function: it evaluates its string with eval(), which the
    page's CSP (no 'unsafe-eval') refuses; page.evaluate goes through DevTools.
    """
    for _ in range(timeout_ms // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{expression} did not hold within {timeout_ms} ms")


def test_a_challenge_is_one_event_across_tabs_and_the_requests_are_retried(
    open_context,  # noqa: F811 (the fixture)
    service,  # noqa: F811
    console,  # noqa: F811
):
    context = open_context()
    first = sign_in(context, service)
    second = context.new_page()
    second.goto(first.url)
    tabs = (first, second)
    for tab in tabs:
        tab.evaluate(START, DEMANDING)
    asked: list = []
    for _ in range(50):  # the first tab's event; the other tab waits on the lock, unasked
        first.wait_for_timeout(100)
        asked = [tab for tab in tabs for _ in tab.evaluate("window.stepUps")]
        if asked:
            break
    first.wait_for_timeout(300)  # time enough for a second event, were there one
    asked = [tab for tab in tabs for _ in tab.evaluate("window.stepUps")]
    assert len(asked) == 1  # once across the tabs
    detail = asked[0].evaluate("window.stepUps[0]")
    assert (detail["acrValues"], detail["maxAge"]) == (["aal2"], 600)
    assert all(tab.evaluate("window.answered") is None for tab in tabs)  # waiting

    admin = service.app.test_client()
    key = {"X-Service-Key": SERVICE_KEY}
    (session,) = admin.get("/api/admin/users/alice/sessions", headers=key).json["sessions"]
    stepped = admin.post(
        f"/api/admin/users/alice/sessions/{session['_id']}/step-up",
        json={"acr": "aal2", "amr": ["pwd", "otp"]},
        headers=key,
    )
    assert stepped.status_code == 200
    asked[0].evaluate("window.client.stepUpDone()")

    for tab in tabs:
        wait_until(tab, "window.answered !== null")
        assert tab.evaluate("window.answered") == 200  # retried, and passed
    assert sum(len(tab.evaluate("window.stepUps")) for tab in tabs) == 1
    assert console.unexpected(http_statuses_expected=True) == []


def test_a_step_up_given_up_leaves_the_401(open_context, service):  # noqa: F811
    context = open_context()
    page = sign_in(context, service)
    page.evaluate(START, DEMANDING)
    wait_until(page, "window.stepUps.length === 1")
    page.evaluate("window.client.stepUpFailed()")
    wait_until(page, "window.answered !== null")
    assert page.evaluate("window.answered") == 401


def test_the_page_says_in_words_how_each_device_signed_in(open_context, service, console):  # noqa: F811
    service.app.test_client().post(
        "/api/sessions",
        json={"userId": "alice", "userAgent": POSTMAN, "acr": "aal2", "amr": ["pwd", "otp"]},
        headers={"X-Service-Key": SERVICE_KEY},
    )
    page = sign_in(open_context(), service)

    other = page.locator("#sessions li", has_text="PostmanRuntime")
    expect(other).to_contain_text("Signed in with")
    expect(other).to_contain_text("Password and authenticator app")
    this = page.locator("#sessions li", has=page.locator(".badge.current"))
    expect(this).not_to_contain_text("Signed in with")  # a login that did not say
    assert console.unexpected() == []


def test_the_page_shows_assurance_beside_support_lifetime_and_history(
    open_context,  # noqa: F811 (the fixture)
    service,  # noqa: F811
    console,  # noqa: F811
):
    admin = service.app.test_client()
    key = {"X-Service-Key": SERVICE_KEY}
    # A support session (issue 18 §4), stepped up by its operator (§2).
    support = admin.post(
        "/api/admin/users/alice/sessions",
        json={"actor": "op-7", "reason": "Ticket #1: cannot sign in", "userAgent": POSTMAN},
        headers=key,
    ).json
    stepped = admin.post(
        f"/api/admin/users/alice/sessions/{support['session']['_id']}/step-up",
        json={"acr": "aal2", "amr": ["otp"]},
        headers=key,
    )
    assert stepped.status_code == 200, stepped.json
    # A login not remembered (§3) with a second factor (§1); then one ended (issue 19 §4).
    admin.post(
        "/api/sessions",
        json={"userId": "alice", "userAgent": POSTMAN, "persistent": False, "amr": ["pwd", "hwk"]},
        headers=key,
    )
    ended = admin.post("/api/sessions", json={"userId": "alice"}, headers=key).json
    revoked = admin.delete(
        f"/api/admin/users/alice/sessions/{ended['session']['_id']}", headers=key
    )
    assert revoked.status_code == 200
    page = sign_in(open_context(), service)

    row = page.locator(f'#sessions > li[data-session-id="{support["session"]["_id"]}"]')
    expect(row).to_contain_text("Support session")
    expect(row).to_contain_text("Support staff (op-7)")
    expect(row).to_contain_text("Signed in with")
    expect(row).to_contain_text("Authenticator app")
    remembered = page.locator("#sessions > li", has_text="Password and security key")
    expect(remembered).to_contain_text("Signed out when the browser closes")
    expect(page.locator("#history > li")).to_have_count(1)
    expect(page.locator("#history > li").first).to_contain_text("Signed out by an administrator")
    assert console.unexpected() == []
