"""The devices page's own names (Rename, Forget this device) and the "Was this you?" page,
in Chromium: strict CSP, no console error, axe clean, screenshots at 375 and 1280 px."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import test_browser as base
from tests.conftest import BROWSER_TEST
from tests.support import auth
from tests.test_browser import (
    CHROME_WINDOWS,
    DESKTOP,
    IPHONE_SAFARI,
    PHONE,
    assert_accessible,
    confirm_dialog,
    rows,
    sign_in,
)

# test_browser.py's fixtures, shared rather than copied.
console, open_context, serve, service = base.console, base.open_context, base.serve, base.service
pytestmark = BROWSER_TEST

ANSWER_PAGE = "/api/account/security/answer"


def new_device_event(service, user_id: str = "alice") -> dict[str, str]:
    """Log the user in from a new iPhone; return its session.new_device event."""
    redis = service.app.extensions["sessionsvc"].store.redis
    stream = service.app.extensions["sessionsvc"].store.events_stream
    service.login(CHROME_WINDOWS, user_id)
    body = service.login(IPHONE_SAFARI, user_id)
    events = [f for _, f in redis.xrange(stream) if f["type"] == "session.new_device"]
    event = next(e for e in events if e["sessionIds"] == body["session"]["_id"])
    return event | {"accessToken": body["accessToken"]}


def test_a_device_is_renamed_and_named_so(open_context, service, console):
    page = sign_in(open_context(), service)
    this = rows(page).first

    this.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename this device")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Your name for it").fill("Work laptop")
    dialog.get_by_role("button", name="Save").click()

    expect(rows(page).first.locator("h3")).to_contain_text("Work laptop")
    expect(rows(page).first).to_contain_text("Chrome 120 on Windows")  # still told
    expect(page.locator("#announce")).to_have_text("Renamed to Work laptop.")
    page.reload()
    expect(rows(page).first.locator("h3")).to_contain_text("Work laptop")
    assert_accessible(page)
    assert console.unexpected() == []


def test_forgetting_another_device_signs_it_out(open_context, service, console):
    iphone = service.login(IPHONE_SAFARI)
    page = sign_in(open_context(), service)
    phone = rows(page).filter(has_text="Mobile Safari 17 on iOS")

    phone.get_by_role("button", name="Forget Mobile Safari 17 on iOS").click()
    confirm_dialog(page)

    expect(rows(page)).to_have_count(1)
    expect(page.locator("#announce")).to_contain_text("Forgot")
    listed = service.app.test_client().get("/api/sessions", headers=auth(iphone["accessToken"]))
    assert listed.status_code == 401
    assert console.unexpected() == []


def test_the_answer_page_asks_and_a_button_answers(open_context, service, console):
    event = new_device_event(service)
    page = open_context().new_page()

    page.goto(f"{service.url}{ANSWER_PAGE}?token={event['answerNotMe']}")
    expect(page.get_by_role("heading", name="Was this you?")).to_be_visible()
    expect(page.locator("#what-device")).to_have_text("Mobile Safari on iOS")
    assert_accessible(page)
    page.get_by_role("button", name="No, sign that device out").click()

    expect(page.get_by_role("status")).to_have_text(
        "That device is signed out. Change your password now."
    )
    listed = service.app.test_client().get("/api/sessions", headers=auth(event["accessToken"]))
    assert listed.status_code == 401
    page.reload()  # the pair is used: the page says so, and offers nothing to press
    expect(page.get_by_role("status")).to_contain_text("answered already")
    expect(page.get_by_role("button")).to_have_count(0)
    assert console.unexpected() == []


def test_opening_the_answer_page_changes_nothing(open_context, service, console):
    event = new_device_event(service)
    page = open_context().new_page()

    page.goto(f"{service.url}{ANSWER_PAGE}?token={event['answerNotMe']}")
    expect(page.get_by_role("button", name="No, sign out everywhere")).to_be_visible()

    listed = service.app.test_client().get("/api/sessions", headers=auth(event["accessToken"]))
    assert listed.status_code == 200
    assert console.unexpected() == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_answer_and_named_device_screenshots_fit_and_pass_axe(
    open_context, service, console, output_path, scheme, size
):
    event = new_device_event(service)
    context = open_context(viewport=size, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{service.url}{ANSWER_PAGE}?token={event['answerMe']}")
    expect(page.get_by_role("button", name="Yes, it was me")).to_be_visible()

    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    assert_accessible(page, Path(output_path) / f"answer-{size['width']}-{scheme}.png")

    devices = sign_in(context, service)
    devices.get_by_role("button", name="Rename").first.click()
    devices.get_by_label("Your name for it").fill("Anna's phone")
    devices.get_by_role("button", name="Save").click()
    expect(devices.locator("#announce")).to_contain_text("Renamed")
    assert devices.evaluate("document.documentElement.scrollWidth") <= size["width"]
    assert_accessible(devices, Path(output_path) / f"devices-named-{size['width']}-{scheme}.png")
    assert console.unexpected() == []
