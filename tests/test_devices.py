"""Known devices (issue 19 §1): the device token and cookie, listing, renaming, forgetting."""

from __future__ import annotations

import importlib.util
import threading
from http.cookies import SimpleCookie

import pytest
from werkzeug.serving import make_server

from tests.support import ROOT, SERVICE_KEY, auth, free_port, login

ADMIN = {"X-Service-Key": SERVICE_KEY}
DEVICE_COOKIE = "__Host-sessionsvc-device"


def devices(client, token: str) -> list[dict]:
    response = client.get("/api/devices", headers=auth(token))
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    return response.json["devices"]


def test_sessions_name_their_device_and_devices_their_sessions(client):
    first = login(client)
    again = login(client, deviceToken=first["deviceToken"])
    other = login(client)

    listed = devices(client, again["accessToken"])

    assert [d["id"] for d in listed] == [
        other["session"]["deviceId"],
        first["session"]["deviceId"],
    ]
    assert set(listed[1]["sessionIds"]) == {first["session"]["_id"], again["session"]["_id"]}
    assert [d["current"] for d in listed] == [False, True]
    assert listed[1]["name"] == listed[1]["defaultName"] == "Chrome on Linux"
    assert listed[1]["ownName"] == "" and listed[1]["trusted"] is False
    sessions = client.get("/api/sessions", headers=auth(again["accessToken"])).json["sessions"]
    assert {s["deviceId"] for s in sessions} == {d["id"] for d in listed}


def test_a_user_sees_only_their_own_devices(client):
    login(client, "bob")
    alice = login(client, "alice")

    assert [d["id"] for d in devices(client, alice["accessToken"])] == [
        alice["session"]["deviceId"]
    ]


def test_the_user_renames_a_device(client):
    body = login(client)
    device_id = body["session"]["deviceId"]

    response = client.patch(
        f"/api/devices/{device_id}",
        json={"name": "Anna's laptop ✨"},
        headers=auth(body["accessToken"]),
    )

    assert response.status_code == 200
    assert response.json["name"] == response.json["ownName"] == "Anna's laptop ✨"
    assert devices(client, body["accessToken"])[0]["name"] == "Anna's laptop ✨"
    # A later login on it keeps the user's name.
    login(client, deviceToken=body["deviceToken"])
    assert devices(client, body["accessToken"])[0]["ownName"] == "Anna's laptop ✨"


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 65},
        {"name": "tab\there"},
        {"name": "line\nbreak"},
        {"name": " padded "},
        {"name": "evil\u202egnp.exe"},  # a direction override
        {"name": "\u0085next line"},
        {"name": "lone \ud800 surrogate"},
        {"name": 42},
        {},
        ["name"],
    ],
)
def test_a_bad_name_is_refused(client, body):
    login_body = login(client)

    response = client.patch(
        f"/api/devices/{login_body['session']['deviceId']}",
        json=body,
        headers=auth(login_body["accessToken"]),
    )

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("device_id", ["AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "~l", "~c"])
def test_unknown_or_invalid_devices_are_not_found(client, device_id):
    body = login(client)

    renamed = client.patch(
        f"/api/devices/{device_id}", json={"name": "x"}, headers=auth(body["accessToken"])
    )
    forgotten = client.delete(f"/api/devices/{device_id}", headers=auth(body["accessToken"]))

    assert (renamed.status_code, renamed.json["code"]) == (404, "DEVICE_NOT_FOUND")
    assert (forgotten.status_code, forgotten.json["code"]) == (404, "DEVICE_NOT_FOUND")


def test_another_users_device_is_not_found(client):
    bob = login(client, "bob")
    alice = login(client, "alice")

    response = client.delete(
        f"/api/devices/{bob['session']['deviceId']}", headers=auth(alice["accessToken"])
    )

    assert response.status_code == 404
    assert client.get("/api/sessions", headers=auth(bob["accessToken"])).status_code == 200


def test_forgetting_a_device_signs_out_its_sessions(client):
    phone = login(client)
    phone_again = login(client, deviceToken=phone["deviceToken"])
    laptop = login(client)

    response = client.delete(
        f"/api/devices/{phone['session']['deviceId']}", headers=auth(laptop["accessToken"])
    )

    assert response.status_code == 200
    assert set(response.json["sessionIds"]) == {
        phone["session"]["_id"],
        phone_again["session"]["_id"],
    }
    assert client.get("/api/sessions", headers=auth(phone["accessToken"])).status_code == 401
    assert [d["id"] for d in devices(client, laptop["accessToken"])] == [
        laptop["session"]["deviceId"]
    ]
    # Its token now names a device this user does not know: a new one.
    back = login(client, deviceToken=phone["deviceToken"])
    assert "new_device" in back["risk"]["signals"]
    assert back["session"]["deviceId"] != phone["session"]["deviceId"]


def test_devices_are_bounded_per_user_forgetting_the_unused_oldest(make_app, redis, key_prefix):
    client = make_app(MAX_DEVICES_PER_USER=3).test_client()
    kept = login(client)
    others = [login(client) for _ in range(3)]
    client.delete("/api/sessions", headers=auth(others[0]["accessToken"]))  # all signed out
    kept = login(client, deviceToken=kept["deviceToken"])  # in use and seen last...
    newest = login(client)  # ...so the oldest unused ones go

    listed = {d["id"] for d in devices(client, newest["accessToken"])}

    assert len(listed) == 3
    assert kept["session"]["deviceId"] in listed and newest["session"]["deviceId"] in listed
    assert listed == {
        kept["session"]["deviceId"],
        others[2]["session"]["deviceId"],
        newest["session"]["deviceId"],
    }
    assert redis.hlen(f"{key_prefix}dv:{{alice}}") == 3 + 1  # and ~l (no country known here)
    assert redis.pttl(f"{key_prefix}dv:{{alice}}") > 0


def test_the_devices_key_has_a_ttl_and_the_users_tag(client, redis, key_prefix):
    login(client)

    assert redis.pttl(f"{key_prefix}dv:{{alice}}") > 300 * 86_400_000


# --- Admin -----------------------------------------------------------------------------------


def test_admin_lists_renames_and_forgets_a_users_devices(client):
    body = login(client)
    device_id = body["session"]["deviceId"]

    listed = client.get("/api/admin/users/alice/devices", headers=ADMIN)
    renamed = client.patch(
        f"/api/admin/users/alice/devices/{device_id}", json={"name": "Desk"}, headers=ADMIN
    )
    forgotten = client.delete(f"/api/admin/users/alice/devices/{device_id}", headers=ADMIN)

    assert [d["id"] for d in listed.json["devices"]] == [device_id]
    assert listed.json["devices"][0]["current"] is False
    assert listed.headers["Cache-Control"] == "no-store"
    assert renamed.json["name"] == "Desk"
    assert forgotten.json == {"sessionIds": [body["session"]["_id"]]}
    assert client.get("/api/admin/users/alice/devices", headers=ADMIN).json == {"devices": []}


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/api/admin/users/alice/devices", "admin:read"),
        ("patch", "/api/admin/users/alice/devices/AAAAAAAAAAAAAAAAAAAAAA", "admin:write"),
        ("delete", "/api/admin/users/alice/devices/AAAAAAAAAAAAAAAAAAAAAA", "admin:write"),
    ],
)
def test_admin_device_routes_need_their_scope(make_app, method, path, scope):
    keys = [
        {"name": "reader", "key": "r" * 32, "scopes": ["admin:read"]},
        {"name": "login", "key": "l" * 32, "scopes": ["sessions:create"]},
    ]
    client = make_app(SERVICE_KEYS=keys).test_client()

    without = getattr(client, method)(path, json={"name": "x"})
    wrong = getattr(client, method)(path, json={"name": "x"}, headers={"X-Service-Key": "l" * 32})
    reader = getattr(client, method)(path, json={"name": "x"}, headers={"X-Service-Key": "r" * 32})

    assert without.status_code == 401
    assert wrong.status_code == 403
    assert reader.status_code == (200 if scope == "admin:read" else 403)


def test_admin_rejects_a_bad_user_id(client):
    response = client.get("/api/admin/users/a{b}/devices", headers=ADMIN)

    assert (response.status_code, response.json["code"]) == (400, "INVALID_REQUEST")


# --- The cookie --------------------------------------------------------------------------------


def device_cookie(response) -> dict[str, str] | None:
    for line in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie(line)
        if DEVICE_COOKIE in parsed:
            morsel = parsed[DEVICE_COOKIE]
            return {"value": morsel.value, **{k: v for k, v in morsel.items() if v}}
    return None


def test_cookie_mode_sets_the_device_cookie_with_its_flags(make_app):
    client = make_app(REFRESH_TOKEN_TRANSPORT="cookie").test_client()

    response = client.post("/api/sessions", json={"userId": "alice"}, headers=ADMIN)

    cookie = device_cookie(response)
    assert cookie is not None
    assert cookie["value"] == response.json["deviceToken"]
    assert cookie["path"] == "/"
    assert cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert "domain" not in cookie  # __Host-: this host only
    assert int(cookie["max-age"]) == 400 * 86_400


def test_body_mode_sets_no_device_cookie(client):
    response = client.post("/api/sessions", json={"userId": "alice"}, headers=ADMIN)

    assert device_cookie(response) is None
    assert response.json["deviceToken"].startswith("dv1.")


# --- The login service example ---------------------------------------------------------------


def _load_login_service():
    spec = importlib.util.spec_from_file_location(
        "login_service", ROOT / "examples" / "login_service.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_login_service_passes_the_device_token_and_hints_on(make_app):
    app = make_app(REFRESH_TOKEN_TRANSPORT="cookie")
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        example = _load_login_service()
        service = example.create_app(f"http://127.0.0.1:{port}", SERVICE_KEY).test_client()
        form = service.get("/")
        assert "Sec-CH-UA-Platform-Version" in form.headers["Accept-CH"]
        windows_hints = {
            "Sec-CH-UA-Platform": '"Windows"',
            "Sec-CH-UA-Platform-Version": '"15.0.0"',
        }

        first = service.post("/", data={"user": "alice"}, headers=windows_hints)
        cookie = device_cookie(first)
        assert cookie is not None
        # The browser sends the cookie back with the next sign-in (the test client keeps it).
        second = service.post("/", data={"user": "alice"}, headers=windows_hints)
        assert device_cookie(second)["value"] == cookie["value"]
    finally:
        server.shutdown()
        thread.join()

    with app.app_context():
        from sessionsvc.extension import get_store

        known = get_store().devices("alice")
        sessions = get_store().list_sessions("alice")
    assert len(known) == 1 and len(known[0].session_ids) == 2
    assert known[0].name.endswith("on Windows 11")
    assert [s.risk[1:] for s in sessions] == [(), ("first_login",)]
