"""The "Recent activity" section of the devices page (issue 19 §4), in a real Chromium.

Reuses test_browser.py's service, contexts and helpers; `make test-browser` runs these.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sessionsvc.domain.history import USER, EndReason
from sessionsvc.extension import get_store
from tests import test_browser
from tests.conftest import BROWSER_TEST
from tests.support import SERVICE_KEY
from tests.test_browser import (
    DESKTOP,
    IPHONE_SAFARI,
    PHONE,
    Service,
    assert_accessible,
    confirm_dialog,
    sign_in,
    three_devices,
)

# test_browser.py's fixtures, used here by name: the service, contexts and console.
console = test_browser.console
open_context = test_browser.open_context
serve = test_browser.serve
service = test_browser.service

pytestmark = BROWSER_TEST


def activity(page: Page):
    return page.locator("#history > li")


def end(service: Service, session_id: str, reason: EndReason) -> None:
    """End a session as the service would for ``reason`` (the user's own flows aside)."""
    with service.app.app_context():
        get_store().revoke("alice", session_id, reason=reason, by=USER)


def test_recent_activity_says_why_each_device_was_signed_out(open_context, service, console):
    page, iphone, postman = three_devices(open_context(), service)
    expect(page.locator("#history-empty")).to_be_visible()

    phone_row = page.locator(f'#sessions > li[data-session-id="{iphone["session"]["_id"]}"]')
    phone_row.get_by_role("button", name="Sign out").click()
    confirm_dialog(page)

    expect(activity(page)).to_have_count(1)
    expect(activity(page).first).to_contain_text("Signed out from another device")
    expect(page.locator("#history-empty")).to_be_hidden()

    admin = service.app.test_client().delete(
        f"/api/admin/users/alice/sessions/{postman['session']['_id']}",
        headers={"X-Service-Key": SERVICE_KEY},
    )
    assert admin.status_code == 200
    page.reload()

    expect(activity(page)).to_have_count(2)
    expect(activity(page).first).to_contain_text("Postman")
    expect(activity(page).first).to_contain_text("Signed out by an administrator")
    assert console.unexpected(http_statuses_expected=True) == []


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (EndReason.SIGNED_OUT_EVERYWHERE, "Signed out everywhere"),
        (EndReason.EVICTED_BY_CAP, "Ended because too many devices were signed in"),
        (EndReason.REFRESH_TOKEN_REUSED, "Ended because its refresh token was reused"),
        (EndReason.REPORTED_NOT_ME, "Ended because you said the sign-in was not you"),
        (EndReason.IDLE, "Ended after a time without use"),
    ],
    ids=str,
)
def test_each_reason_is_said_in_words(open_context, service, reason, words):
    iphone = service.login(IPHONE_SAFARI)
    end(service, iphone["session"]["_id"], reason)

    page = sign_in(open_context(), service)

    expect(activity(page)).to_have_count(1)
    expect(activity(page).first).to_contain_text("on iOS")
    expect(activity(page).first).to_contain_text(words)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_activity_screenshots_fit_the_width_and_pass_axe(
    open_context, service, console, output_path, scheme, size
):
    context = open_context(viewport=size, color_scheme=scheme)
    for reason in (EndReason.REFRESH_TOKEN_REUSED, EndReason.SIGNED_OUT_EVERYWHERE):
        end(service, service.login(IPHONE_SAFARI)["session"]["_id"], reason)
    page, _, _ = three_devices(context, service)
    expect(activity(page)).to_have_count(2)

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], "the page scrolls sideways"
    assert_accessible(page)
    page.screenshot(
        path=Path(output_path) / f"activity-{size['width']}-{scheme}.png", full_page=True
    )
    assert console.unexpected() == []
