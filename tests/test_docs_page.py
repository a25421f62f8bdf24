"""The API's page at <URL_PREFIX>/docs, in a real browser: it shows the document, offline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, Route, expect
from werkzeug.serving import make_server

from tests.conftest import BROWSER_TEST

pytestmark = BROWSER_TEST


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page of pytest-playwright's browser: Debian's chromium (conftest launches it)."""
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """Serve the app on a free local port in a thread; return its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_docs_page_shows_every_operation_without_the_network(page: Page, live_url, tmp_path):
    elsewhere = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).netloc == urlsplit(live_url).netloc:
            route.continue_()
        else:  # the page must need nothing from another host
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{live_url}/api/docs")

    expect(page.locator(".info .title")).to_contain_text("sessionsvc")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths = set(operations.all_inner_texts())
    page.screenshot(path=tmp_path / "docs.png", full_page=True)
    assert {"/api/sessions", "/api/sessions/verify", "/healthz"} <= {
        path.replace("\u200b", "") for path in paths
    }
    assert elsewhere == []
