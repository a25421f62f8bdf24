"""The devices page with every part at once, in Chromium: known devices with their own
names (Rename, Forget), when each session ends, a support session, and Recent activity
naming a device as its user does. Strict CSP, no console error, axe clean, screenshots
at 375 and 1280 px, light and dark."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests import test_browser as base
from tests.conftest import BROWSER_TEST
from tests.support import SERVICE_KEY
from tests.test_browser import (
    DESKTOP,
    IPHONE_SAFARI,
    PHONE,
    Service,
    assert_accessible,
    confirm_dialog,
    rows,
    sign_in,
)

# test_browser.py's fixtures, shared rather than copied.
console, open_context, serve, service = base.console, base.open_context, base.serve, base.service
pytestmark = BROWSER_TEST

KEY = {"X-Service-Key": SERVICE_KEY}
SUPPORT = {"actor": "op.jane", "reason": "Ticket #4711: cannot see invoices"}


def activity(page: Page):
    return page.locator("#history > li")


def everything(service: Service) -> dict[str, str]:
    """Give alice an iPhone she calls "Anna's phone" (not remembered), an ended session
    on it (an admin's sign-out), and a support session; return the phone's ids."""
    client = service.app.test_client()

    def login(**body):
        response = client.post(
            "/api/sessions",
            json={"userId": "alice", "userAgent": IPHONE_SAFARI, **body},
            headers=KEY,
        )
        assert response.status_code == 201, response.json
        return response.json

    phone = login(persistent=False)
    earlier = login(deviceToken=phone["deviceToken"])  # the same phone, once before
    device_id = phone["session"]["deviceId"]
    assert earlier["session"]["deviceId"] == device_id
    ended = client.delete(
        f"/api/admin/users/alice/sessions/{earlier['session']['_id']}", headers=KEY
    )
    assert ended.status_code == 200
    renamed = client.patch(
        f"/api/admin/users/alice/devices/{device_id}", json={"name": "Anna's phone"}, headers=KEY
    )
    assert renamed.status_code == 200
    support = client.post("/api/admin/users/alice/sessions", json=SUPPORT, headers=KEY)
    assert support.status_code == 201, support.json
    return {"session": phone["session"]["_id"], "device": device_id}


def test_every_part_of_the_page_shows_at_once(open_context, service, console):
    phone = everything(service)
    page = sign_in(open_context(), service)

    expect(rows(page)).to_have_count(3)
    this = rows(page).first
    expect(this.get_by_role("button", name="Rename")).to_be_visible()
    expect(this.get_by_role("button", name="Forget", exact=False)).to_have_count(0)
    anna = page.locator(f'#sessions > li[data-session-id="{phone["session"]}"]')
    expect(anna.locator("h3")).to_have_text("Anna's phone")
    expect(anna).to_contain_text("Mobile Safari 17 on iOS")
    expect(anna).to_contain_text("Signed out when the browser closes")
    expect(anna.get_by_role("button", name="Forget Anna's phone")).to_be_visible()
    helped = rows(page).filter(has=page.locator(".badge.support"))
    expect(helped).to_contain_text("Support staff (op.jane)")
    expect(helped.get_by_role("button", name="Rename")).to_have_count(0)  # no device of hers
    # The ended session on the phone is named as alice names the phone.
    expect(activity(page)).to_have_count(1)
    expect(activity(page).first.locator("h3")).to_have_text("Anna's phone")
    expect(activity(page).first).to_contain_text("Signed out by an administrator")

    anna.get_by_role("button", name="Forget Anna's phone").click()
    confirm_dialog(page)

    expect(rows(page)).to_have_count(2)
    expect(activity(page)).to_have_count(2)  # the page's own forget is recorded too
    expect(activity(page).first).to_contain_text("Signed out from another device")
    assert_accessible(page)
    assert console.unexpected() == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_whole_page_fits_the_width_and_passes_axe(
    open_context, service, console, output_path, scheme, size
):
    everything(service)
    page = sign_in(open_context(viewport=size, color_scheme=scheme), service)
    expect(rows(page)).to_have_count(3)
    expect(activity(page)).to_have_count(1)

    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    assert_accessible(page, Path(output_path) / f"together-{size['width']}-{scheme}.png")
    assert console.unexpected() == []
