"""Signals at login (issue 19 §2): new device, new country, impossible travel, first login."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessionsvc.domain.risk import History, Spot, distance_km, impossible_travel, judge, signals
from tests.support import SERVICE_KEY, auth, login
from tests.test_location import write_mmdb

LONDON = ("81.2.69.160", {"latitude": 51.5142, "longitude": -0.0931})
NEW_YORK = ("216.160.83.56", {"latitude": 40.7128, "longitude": -74.006})
CAMBRIDGE = ("81.2.70.1", {"latitude": 52.2053, "longitude": 0.1218})  # 80 km from London
RECORDS = [
    (
        "81.2.69.0/24",
        {
            "city": {"names": {"en": "London"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "location": LONDON[1],
        },
    ),
    (
        "81.2.70.0/24",
        {
            "city": {"names": {"en": "Cambridge"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "location": CAMBRIDGE[1],
        },
    ),
    (
        "216.160.83.0/24",
        {
            "city": {"names": {"en": "New York"}},
            "country": {"iso_code": "US", "names": {"en": "United States"}},
            "location": NEW_YORK[1],
        },
    ),
]


@pytest.fixture
def geo_client(make_app, tmp_path: Path):
    database = write_mmdb(tmp_path / "GeoLite2-City-coordinates.mmdb", RECORDS)
    return make_app(GEOIP_DATABASE=database).test_client()


def events_of(redis, key_prefix: str, kind: str) -> list[dict[str, str]]:
    return [f for _, f in redis.xrange(f"{key_prefix}events") if f["type"] == kind]


def test_the_first_login_is_only_a_first_login(client, redis, key_prefix):
    body = login(client)

    assert body["risk"] == {"level": "low", "signals": ["first_login"]}
    assert body["session"]["risk"] == body["risk"]
    assert events_of(redis, key_prefix, "session.new_device") == []


def test_a_login_without_the_device_token_is_a_new_device(client, redis, key_prefix):
    login(client)

    second = login(client)

    assert second["risk"] == {"level": "low", "signals": ["new_device"]}
    [event] = events_of(redis, key_prefix, "session.new_device")
    assert event["sessionIds"] == second["session"]["_id"]
    assert event["deviceId"] == second["session"]["deviceId"]
    assert event["signals"] == "new_device"
    assert event["answerMe"].startswith("wa1.") and event["answerNotMe"].startswith("wa1.")


def test_the_device_token_makes_the_device_known(client, redis, key_prefix):
    first = login(client)

    again = login(client, deviceToken=first["deviceToken"])

    assert again["risk"] == {"level": "low", "signals": []}
    assert again["session"]["deviceId"] == first["session"]["deviceId"]
    assert events_of(redis, key_prefix, "session.new_device") == []


@pytest.mark.parametrize(
    "token",
    [
        "dv1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",  # forged tag
        "not a token",
        42,
        None,
        "",
    ],
)
def test_a_forged_or_odd_device_token_is_a_new_device_not_a_failed_login(client, token):
    first = login(client)

    again = login(client, deviceToken=token)

    assert again["session"]["deviceId"] != first["session"]["deviceId"]
    assert "new_device" in again["risk"]["signals"]


def test_another_users_device_token_is_unknown_here(client):
    alice = login(client, "alice")
    login(client, "bob")

    bob = login(client, "bob", deviceToken=alice["deviceToken"])

    assert "new_device" in bob["risk"]["signals"]
    assert bob["session"]["deviceId"] != alice["session"]["deviceId"]


def test_a_new_country_is_medium_and_risky(geo_client, redis, key_prefix):
    first = login(geo_client, ip=LONDON[0])

    later = login(geo_client, ip=NEW_YORK[0], deviceToken=first["deviceToken"])

    # Minutes apart: New York is also out of an airliner's reach.
    assert later["risk"]["signals"] == ["new_country", "impossible_travel"]
    assert later["risk"]["level"] == "high"
    [event] = events_of(redis, key_prefix, "session.risky")
    assert event["riskLevel"] == "high"
    assert event["signals"] == "new_country,impossible_travel"


def test_a_new_country_reachable_in_time_is_not_impossible_travel():
    history = History(
        known_device=True,
        any_device=True,
        countries=frozenset({"GB"}),
        last=Spot(0, "GB", *LONDON[1].values()),
    )
    eight_hours = 8 * 3_600_000

    found = signals(history, Spot(eight_hours, "US", *NEW_YORK[1].values()))

    assert found == ("new_country",)
    assert judge(found, {}).level == "medium"


def test_a_short_hop_is_never_travel(geo_client):
    first = login(geo_client, ip=LONDON[0])

    later = login(geo_client, ip=CAMBRIDGE[0], deviceToken=first["deviceToken"])

    assert later["risk"] == {"level": "low", "signals": []}


@pytest.mark.parametrize(
    ("hours", "impossible"),
    [(0.5, True), (5, True), (6, False), (24, False)],  # London to New York is 5,570 km
)
def test_impossible_travel_is_faster_than_an_airliner(hours, impossible):
    london, new_york = Spot(0, "GB", *LONDON[1].values()), NEW_YORK[1].values()

    assert impossible_travel(london, Spot(int(hours * 3_600_000), "US", *new_york)) is impossible


def test_the_haversine_distance():
    assert distance_km(tuple(LONDON[1].values()), tuple(NEW_YORK[1].values())) == pytest.approx(
        5570, rel=0.01
    )


def test_without_coordinates_there_is_no_travel():
    assert not impossible_travel(Spot(0, "GB"), Spot(1, "US", 40.0, -74.0))


def test_levels_are_configurable(make_app, redis, key_prefix):
    client = make_app(RISK_LEVELS={"new_device": "high"}).test_client()
    login(client)

    second = login(client)

    assert second["risk"] == {"level": "high", "signals": ["new_device"]}
    assert len(events_of(redis, key_prefix, "session.risky")) == 1


def test_the_session_keeps_its_risk(client, redis, key_prefix):
    login(client)
    second = login(client)

    listed = client.get("/api/sessions", headers=auth(second["accessToken"])).json["sessions"]

    assert listed[0]["risk"] == {"level": "low", "signals": ["new_device"]}
    session_key = f"{key_prefix}s:{{alice}}{second['session']['_id']}"
    assert json.loads(redis.hget(session_key, "R")) == ["low", "new_device"]
    assert redis.hget(session_key, "I") == second["session"]["deviceId"]


@pytest.mark.parametrize(
    ("hints", "os_name", "browser"),
    [
        (
            {"Sec-CH-UA-Platform": '"Windows"', "Sec-CH-UA-Platform-Version": '"15.0.0"'},
            "Windows 11",
            "Chrome",
        ),
        (
            {"Sec-CH-UA-Platform": '"Windows"', "Sec-CH-UA-Platform-Version": '"10.0.0"'},
            "Windows 10",
            "Chrome",
        ),
        (
            {
                "sec-ch-ua-platform": '"Windows"',
                "Sec-CH-UA-Platform-Version": '"13.0.0"',
                "Sec-CH-UA-Full-Version-List": '"Not_A Brand";v="8.0.0.0",'
                ' "Chromium";v="120.0.6099.130", "Microsoft Edge";v="120.0.2210.91"',
            },
            "Windows 11",
            "Edge",
        ),
        ({}, "Windows", "Chrome"),
    ],
)
def test_client_hints_tell_windows_11(client, hints, os_name, browser):
    windows = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/120.0.0.0 Safari/537.36"
    )

    body = login(client, user_agent=windows, clientHints=hints)

    assert body["session"]["device"]["os"] == os_name
    assert body["session"]["device"]["browser"] == browser
    devices = client.get("/api/devices", headers=auth(body["accessToken"])).json["devices"]
    assert devices[0]["defaultName"] == f"{browser} on {os_name}"


@pytest.mark.parametrize("hints", [[], "x", {"Sec-CH-UA-Platform": 1}, {"a": "x" * 300}])
def test_bad_client_hints_are_refused(client, hints):
    response = client.post(
        "/api/sessions",
        json={"userId": "alice", "clientHints": hints},
        headers={"X-Service-Key": SERVICE_KEY},
    )

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
