"""The "Your devices" page in Chromium: navigation to a rendered list of 50 sessions.

Each round opens the page in a fresh tab of one browser signed in as a user with
50 sessions, served by the service under gunicorn (cookie mode), and reads two
marks of the same navigation: DOMContentLoaded (the HTML, the CSS and both
modules loaded: the baseline) and the page's own ``sessions-rendered`` mark
(refreshed, listed, 50 rows in the DOM). It also counts what the page asks of
the service: one refresh, one list and the history, never a call per row.
"""

from __future__ import annotations

import http.client
import json
import statistics
from collections import Counter
from http.cookies import SimpleCookie
from pathlib import Path

from bench.load import Bench
from bench.seed import user_agent
from bench.servers import SERVICE_KEY, start_gunicorn

CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright's own download is out of reach
PAGE = "/api/account/sessions"
COOKIE = "__Secure-sessionsvc-refresh"
SESSIONS = 50
ROUNDS = 20


def sign_in(server, sessions: int) -> str:
    """Create the user's sessions as the login service does; return the last one's cookie."""
    for i in range(sessions - 1):
        status, _, body = server.call(
            "POST",
            "/api/sessions",
            {"X-Service-Key": SERVICE_KEY},
            {"userId": "page-bench", "userAgent": user_agent(i)},
        )
        assert status == 201, body
    # The last by hand: its answer sets two cookies (the device's too), and
    # server.call keeps one header of a name.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        login = {"userId": "page-bench", "userAgent": user_agent(sessions - 1)}
        headers = {"X-Service-Key": SERVICE_KEY, "Content-Type": "application/json"}
        connection.request("POST", "/api/sessions", body=json.dumps(login), headers=headers)
        response = connection.getresponse()
        assert response.status == 201, response.read()
        cookies = SimpleCookie()
        for value in response.msg.get_all("Set-Cookie") or []:
            cookies.load(value)
        return cookies[COOKIE].value
    finally:
        connection.close()


def measure(url: str, cookie: str, rounds: int) -> tuple[list[float], list[float], Counter]:
    """Return each round's DOMContentLoaded and rendered times (ms), and the API calls made."""
    from playwright.sync_api import sync_playwright  # the test extra: only for this section

    loaded, rendered, calls = [], [], Counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context()
        context.add_cookies(
            [
                {
                    "name": COOKIE,
                    "value": cookie,
                    "domain": "127.0.0.1",
                    "path": "/api/sessions/refresh",
                    "secure": True,
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )
        for i in range(rounds + 1):  # the first round warms up and is not counted
            page = context.new_page()
            seen: list[str] = []
            page.on("request", lambda r, seen=seen: seen.append(f"{r.method} {r.url}"))
            page.goto(f"{url}{PAGE}")
            page.wait_for_selector("#app[data-state=list]")
            dom_loaded, listed, rows = page.evaluate(
                """() => [
                    performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
                    performance.getEntriesByName("sessions-rendered")[0].startTime,
                    document.querySelectorAll("#sessions > li").length,
                ]"""
            )
            page.close()
            assert rows == SESSIONS, f"{rows} rows rendered"
            if i:
                loaded.append(dom_loaded)
                rendered.append(listed)
                calls.update(call.replace(url, "") for call in seen if "/api/sessions" in call)
        browser.close()
    return loaded, rendered, calls


def page_table(bench: Bench, rounds: int = ROUNDS) -> list[str]:
    """Measure the page under gunicorn on the bench's Valkey; return the section's lines."""
    if not CHROMIUM.exists():
        return [f"Not measured: {CHROMIUM} is missing (apt-get install chromium)."]
    env = bench.env | {"SESSIONSVC_REFRESH_TOKEN_TRANSPORT": "cookie"}
    server = start_gunicorn("wsgi:app", env, bench.tmp)
    try:
        loaded, rendered, calls = measure(server.url, sign_in(server, SESSIONS), rounds)
    finally:
        server.stop()
    base, full = statistics.median(loaded), statistics.median(rendered)
    per_load = ", ".join(f"`{call}` x{count / rounds:g}" for call, count in sorted(calls.items()))
    return [
        f'Navigation to the rendered list of {SESSIONS} sessions ("Your devices", `{PAGE}`), '
        f"in Debian's chromium driven by Playwright: {rounds} loads in fresh tabs of one "
        "signed-in browser, the service under gunicorn as above with "
        "`REFRESH_TOKEN_TRANSPORT=cookie`. Medians; the baseline is the same navigation's "
        "DOMContentLoaded (the HTML, the CSS and both modules loaded).",
        "",
        "| | ms | vs baseline |",
        "| --- | ---: | ---: |",
        f"| DOMContentLoaded (baseline) | {base:.1f} | 1.00 |",
        f"| list rendered (refresh + list + {SESSIONS} rows) | {full:.1f} | {full / base:.2f} |",
        "",
        f"Requests to the API per load: {per_load}; none per row.",
    ]
