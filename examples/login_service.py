"""A login service's half of the browser hand-off (docs/browser.md), as a tiny Flask app.

It runs on the same site as the app and sessionsvc (one host behind the gateway,
sessionsvc under /api, this under /login) with REFRESH_TOKEN_TRANSPORT=cookie:

1. The browser posts the sign-in form here.
2. Having checked the password (your code), this service creates the session:
   POST /api/sessions with its X-Service-Key, the user id, and the browser's
   User-Agent and address. Give it a key of its own, with only the scope
   sessions:create (SERVICE_KEYS, docs/keys.md#service-keys): it can then log
   people in, and not list or revoke anyone's sessions.
3. It passes sessionsvc's Set-Cookie line (the HttpOnly refresh cookie) on to
   the browser and redirects to the app; no token is ever put in a URL.
4. The app's page gets its access token with one refresh (the client does it).
5. The device: sessionsvc's answer also sets the __Host-sessionsvc-device cookie
   (a signed device id, docs/devices.md); the next sign-in passes it back as
   deviceToken, with the User-Agent Client Hints this form asked for (Accept-CH),
   so sessionsvc knows the browser and can tell the user of a new one.

    SESSIONSVC_URL=http://127.0.0.1:8000 SERVICE_KEY=... flask --app examples/login_service run
"""

from __future__ import annotations

import json
import os
import urllib.request
from http import HTTPStatus

from flask import Flask, Response, redirect, request

DEVICE_COOKIE = "__Host-sessionsvc-device"
# The Client Hints sessionsvc reads (docs/devices.md#client-hints): the browser
# sends them with the form's POST once this page asked for them.
CLIENT_HINTS = (
    "Sec-CH-UA",
    "Sec-CH-UA-Full-Version-List",
    "Sec-CH-UA-Mobile",
    "Sec-CH-UA-Model",
    "Sec-CH-UA-Platform",
    "Sec-CH-UA-Platform-Version",
)
FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title>
<link rel="icon" href="data:,"></head>
<body><main><h1>Sign in</h1><form method="post">
<label for="user">User id</label> <input id="user" name="user" required>
<label for="password">Password</label> <input id="password" name="password" type="password">
<label><input type="checkbox" name="remember" checked> Remember me</label>
<button>Sign in</button></form></main></body></html>"""


def create_app(
    sessionsvc_url: str | None = None,
    service_key: str | None = None,
    after_login: str = "/api/account/sessions",
) -> Flask:
    """Return the login service: GET shows the form, POST signs in and hands over the cookie."""
    sessionsvc_url = sessionsvc_url or os.environ.get("SESSIONSVC_URL", "http://127.0.0.1:8000")
    service_key = service_key or os.environ["SERVICE_KEY"]
    app = Flask(__name__)

    @app.get("/")
    def form() -> Response:
        response = Response(FORM, mimetype="text/html")
        response.headers["Accept-CH"] = ", ".join(CLIENT_HINTS)
        return response

    @app.post("/")
    def sign_in() -> Response:
        user_id = request.form.get("user", "")
        # Check the password here; this example accepts anyone.
        created = urllib.request.Request(  # noqa: S310 (our configured URL)
            f"{sessionsvc_url}/api/sessions",
            method="POST",
            data=json.dumps(
                {
                    "userId": user_id,
                    "userAgent": request.user_agent.string,
                    "ip": request.remote_addr,
                    # Missing, or not sessionsvc's: it starts a new device, it fails nothing.
                    "deviceToken": request.cookies.get(DEVICE_COOKIE),
                    "clientHints": {
                        name: request.headers[name]
                        for name in CLIENT_HINTS
                        if name in request.headers
                    },
                    # Unticked: the cookie ends with the browser (docs/sessions-lifetime.md).
                    "persistent": "remember" in request.form,
                }
            ).encode(),
            headers={"Content-Type": "application/json", "X-Service-Key": service_key},
        )
        with urllib.request.urlopen(created, timeout=10) as answer:  # noqa: S310
            set_cookie = answer.headers.get_all("Set-Cookie") or []
        response = redirect(after_login, HTTPStatus.SEE_OTHER)
        for line in set_cookie:
            response.headers.add("Set-Cookie", line)
        return response

    return app
