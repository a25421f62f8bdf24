"""The "Your devices" page shows when each session ends, and support sessions (issue 18 §3 §4)."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.conftest import BROWSER_TEST
from tests.support import SERVICE_KEY
from tests.test_browser import (  # noqa: F401 (console, open_context, serve, service: fixtures)
    COOKIE,
    IPHONE_SAFARI,
    PAGE,
    assert_accessible,
    confirm_dialog,
    console,
    open_context,
    rows,
    serve,
    service,
    sign_in,
)

pytestmark = BROWSER_TEST
SUPPORT = {"actor": "op.jane", "reason": "Ticket #4711: cannot see invoices"}


def test_the_page_shows_support_sessions_and_when_each_session_ends(
    open_context,  # noqa: F811 (the fixtures imported above)
    service,  # noqa: F811
    console,  # noqa: F811
    tmp_path,
):
    client = service.app.test_client()
    support = client.post(
        "/api/admin/users/alice/sessions", json=SUPPORT, headers={"X-Service-Key": SERVICE_KEY}
    ).json
    phone = client.post(
        "/api/sessions",
        json={"userId": "alice", "userAgent": IPHONE_SAFARI, "persistent": False},
        headers={"X-Service-Key": SERVICE_KEY},
    ).json
    page = sign_in(open_context(), service)

    expect(rows(page)).to_have_count(3)
    helped = rows(page).filter(has=page.locator(".badge.support"))
    expect(helped.locator(".badge.support")).to_have_text("Support session")
    expect(helped).to_contain_text("Opened by")
    expect(helped).to_contain_text("Support staff (op.jane)")
    expect(helped).to_contain_text(SUPPORT["reason"])
    expect(helped).to_contain_text(re.compile(r"Ends\s*in (59|60) minutes"))
    forgetful = rows(page).filter(has_text="Mobile Safari 17 on iOS")
    expect(forgetful).to_contain_text("Signed out when the browser closes")
    expect(forgetful).to_contain_text(re.compile(r"at the latest in (13|14) days|in 2 weeks"))
    this = rows(page).first
    expect(this).to_contain_text("Ends")
    expect(this).not_to_contain_text("browser closes")
    assert_accessible(page, screenshot=tmp_path / "devices-support.png")  # to look at

    # The user ends it like any other session.
    helped.get_by_role("button", name=re.compile("^Sign out")).click()
    confirm_dialog(page)
    expect(rows(page)).to_have_count(2)
    expect(page.locator(".badge.support")).to_have_count(0)
    assert service.verify(support["accessToken"]) == 401
    assert service.verify(phone["accessToken"]) == 200
    assert console.unexpected() == []


def test_signing_in_without_remember_me_keeps_the_cookie_for_the_browser_s_life(
    open_context,  # noqa: F811 (the fixtures imported above)
    service,  # noqa: F811
    console,  # noqa: F811
):
    context = open_context()
    page = context.new_page()
    page.goto(f"{service.url}/login/")
    page.get_by_label("User id").fill("alice")
    page.get_by_label("Remember me").uncheck()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.url}{PAGE}")

    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Signed out when the browser closes")
    cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
    assert cookie["expires"] == -1  # a session cookie: gone when the browser closes
    page.reload()  # refreshes with that cookie: re-set as a session cookie again
    expect(rows(page)).to_have_count(1)
    cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
    assert cookie["expires"] == -1
    assert console.unexpected() == []


def test_remember_me_ticked_keeps_the_cookie_until_the_session_ends(
    open_context,  # noqa: F811 (the fixtures imported above)
    service,  # noqa: F811
):
    context = open_context()
    page = sign_in(context, service)

    expect(rows(page).first).not_to_contain_text("browser closes")
    cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
    assert cookie["expires"] > time.time() + 13 * 86_400
