"""Location from the client IP: a MaxMind database, the iptocc fallback, trusted proxies."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from sessionsvc.config import ConfigError
from sessionsvc.domain.locations import MAX_LOCATION_BYTES, Locator, country_name
from sessionsvc.extension import get_locator, sessionsvc
from tests.support import SERVICE_KEY, auth, login

LONG_CITY = "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch North"

EVERYWHERE = {"country": {"iso_code": "AQ", "names": {"en": "Everywhere"}}}
# Made-up records on public ranges; the two halves of the address space (IPv4 lies
# in ::/96) catch everything else, private ranges included, so only the locator's own
# filter can make those "unknown".
RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("::/1", EVERYWHERE),
    ("8000::/1", EVERYWHERE),
    (
        "81.2.69.0/24",
        {
            "city": {"names": {"en": "London", "de": "London"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        },
    ),
    ("89.160.20.0/24", {"country": {"iso_code": "SE", "names": {"en": "Sweden"}}}),
    ("2001:218::/32", {"country": {"iso_code": "JP", "names": {"en": "Japan"}}}),
    ("217.65.48.0/24", {"country": {"iso_code": "DE"}}),  # a code, no names
    ("1.128.0.0/16", {"registered_country": {"iso_code": "AU", "names": {"en": "Australia"}}}),
    (
        "175.16.199.0/24",
        {
            "city": {"names": {"en": LONG_CITY}},
            "country": {"iso_code": "CN", "names": {"en": "China"}},
        },
    ),
    (
        "2.125.160.0/24",
        {
            "city": {"names": {"en": "São Paulo"}},
            "country": {"iso_code": "BR", "names": {"en": "Brazil"}},
        },
    ),
    ("67.43.156.0/24", {"city": {"names": {"en": "Nowhere City"}}}),  # no country
]

NOT_LOCATABLE = [
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared (carrier-grade NAT)
    "127.0.0.1",  # loopback
    "169.254.10.20",  # link-local
    "0.0.0.0",  # noqa: S104 (unspecified, not a bind)
    "224.0.0.251",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",  # unique local
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "::ffff:10.1.2.3",  # IPv4-mapped private
    "::ffff:127.0.0.1",
    "not-an-ip",
    "",
    "81.2.69.160/24",
]


def write_mmdb(path: Path, records: list[tuple[str, dict[str, Any]]], ip_version: int = 6) -> str:
    """Write a MaxMind-format City database with the given records; return its path."""
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type="GeoLite2-City",
        languages=["en", "de"],
        description="sessionsvc test data",
    )
    for network, record in records:
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return str(path)


@pytest.fixture
def geoip_database(tmp_path: Path) -> str:
    return write_mmdb(tmp_path / "GeoLite2-City-test.mmdb", RECORDS)


@pytest.fixture
def mmdb_locator(geoip_database: str) -> Iterator[Locator]:
    locator = Locator(geoip_database)
    yield locator
    locator.close()


@pytest.fixture
def geo_app(make_app: Callable[..., Flask], geoip_database: str) -> Callable[..., Flask]:
    """Return a factory of apps reading the test database (make_app closes them)."""
    return functools.partial(make_app, GEOIP_DATABASE=geoip_database)


@pytest.mark.parametrize(
    ("ip", "location"),
    [
        ("81.2.69.160", "London, United Kingdom"),
        ("::ffff:81.2.69.160", "London, United Kingdom"),
        ("89.160.20.112", "Sweden"),
        ("2001:218:1::7", "Japan"),
        ("217.65.48.9", "Germany"),
        ("1.128.0.1", "Australia"),
        ("2.125.160.216", "São Paulo, Brazil"),
        ("175.16.199.1", "China"),
        ("67.43.156.1", "unknown"),
        ("8.8.8.8", "Everywhere"),
    ],
)
def test_mmdb_gives_city_and_country(mmdb_locator: Locator, ip: str, location: str):
    assert mmdb_locator.locate(ip) == location


def test_a_city_that_does_not_fit_leaves_the_country(mmdb_locator: Locator):
    assert len(f"{LONG_CITY}, China".encode()) > MAX_LOCATION_BYTES
    assert mmdb_locator.locate("175.16.199.1") == "China"


def test_ipv6_in_an_ipv4_database_is_unknown(tmp_path: Path):
    records = [("81.2.69.0/24", {"country": {"iso_code": "GB", "names": {"en": "UK"}}})]
    locator = Locator(write_mmdb(tmp_path / "v4.mmdb", records, ip_version=4))

    assert locator.locate("81.2.69.1") == "UK"
    assert locator.locate("2001:218::1") == "unknown"
    locator.close()


@pytest.mark.parametrize("ip", NOT_LOCATABLE)
def test_unroutable_and_bad_addresses_are_unknown(mmdb_locator: Locator, ip: str):
    assert mmdb_locator.locate(ip) == "unknown"
    assert Locator().locate(ip) == "unknown"


@pytest.mark.parametrize(
    ("ip", "location"),
    [
        # Registry allocations that have not moved in decades.
        ("8.8.8.8", "United States"),
        ("2001:4860:4860::8888", "United States"),
        ("::ffff:8.8.8.8", "United States"),
        ("193.0.6.139", "Netherlands"),  # RIPE NCC
        ("81.2.69.160", "United Kingdom"),
    ],
)
def test_fallback_without_a_database_gives_the_country(ip: str, location: str):
    assert Locator().locate(ip) == location


@pytest.mark.parametrize(
    ("code", "name"),
    [("DE", "Germany"), ("US", "United States"), ("KR", "South Korea"), ("EU", None), (None, None)],
)
def test_country_names(code: str | None, name: str | None):
    assert country_name(code) == name


@pytest.mark.parametrize("database", ["missing.mmdb", "not-a-database.mmdb"])
def test_an_unusable_database_refuses_to_start(make_app, tmp_path: Path, database: str):
    (tmp_path / "not-a-database.mmdb").write_text("just text")

    with pytest.raises(ConfigError, match="GEOIP_DATABASE"):
        make_app(GEOIP_DATABASE=str(tmp_path / database))


@pytest.mark.parametrize("proxies", [-1, 1, "1", 1.5, True, "gateway", "10.0.0.1/8", [1]])
def test_trusted_proxies_must_be_addresses_or_networks(make_app, proxies: object):
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        make_app(TRUSTED_PROXIES=proxies)


def test_the_database_is_opened_once_per_app(geo_app):
    app = geo_app()
    with app.app_context():
        first = get_locator()
    with app.app_context():
        assert get_locator() is first
    assert sessionsvc(geo_app()).locator is not first


GATEWAY = ["127.0.0.1"]  # the test client's own address: the trusted gateway


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "ip", "location"),
    [
        # No trusted proxy: X-Forwarded-For is the client's word, ignored.
        ([], "81.2.69.160", "127.0.0.1", "unknown"),
        ([], "89.160.20.5, 81.2.69.160", "127.0.0.1", "unknown"),
        # The trusted gateway: only the entry it appended (the last) counts.
        (GATEWAY, "81.2.69.160", "81.2.69.160", "London, United Kingdom"),
        (GATEWAY, "89.160.20.5, 81.2.69.160", "81.2.69.160", "London, United Kingdom"),
        (GATEWAY, "127.0.0.1, 10.0.0.1, 81.2.69.160", "81.2.69.160", "London, United Kingdom"),
        (GATEWAY, None, "127.0.0.1", "unknown"),
        # A CDN in 10.0.0.0/8, then the gateway: the entry before the CDN's.
        (
            [*GATEWAY, "10.0.0.0/8"],
            "89.160.20.5, 81.2.69.160, 10.0.0.2",
            "81.2.69.160",
            "London, United Kingdom",
        ),
        # The gateway's peer is not one listed: it is the client.
        (["10.0.0.1"], "81.2.69.160", "127.0.0.1", "unknown"),
    ],
)
def test_client_ip_behind_trusted_proxies(
    geo_app, trusted: list[str], forwarded_for: str | None, ip: str, location: str
):
    client = geo_app(TRUSTED_PROXIES=trusted).test_client()
    headers = {"X-Service-Key": SERVICE_KEY}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for

    # No "ip" in the body: the request's own address is recorded.
    response = client.post("/api/sessions", json={"userId": "alice"}, headers=headers)

    assert response.status_code == 201, response.json
    assert response.json["session"]["ip"] == ip
    assert response.json["session"]["location"] == location


def test_the_login_services_ip_wins_over_the_request_address(geo_app):
    client = geo_app(TRUSTED_PROXIES=GATEWAY).test_client()

    response = client.post(
        "/api/sessions",
        json={"userId": "alice", "ip": "89.160.20.112"},
        headers={"X-Service-Key": SERVICE_KEY, "X-Forwarded-For": "81.2.69.160"},
    )

    assert response.status_code == 201, response.json
    assert response.json["session"]["ip"] == "89.160.20.112"
    assert response.json["session"]["location"] == "Sweden"


def test_a_login_lists_its_location(geo_app):
    client = geo_app().test_client()
    london = login(client, ip="81.2.69.160")
    login(client, ip="::ffff:89.160.20.112")
    login(client, ip="192.168.1.20")

    listed = client.get("/api/sessions", headers=auth(london["accessToken"])).json["sessions"]

    assert {(ip_address(item["ip"]), item["location"]) for item in listed} == {
        (ip_address("192.168.1.20"), "unknown"),
        (ip_address("::ffff:89.160.20.112"), "Sweden"),
        (ip_address("81.2.69.160"), "London, United Kingdom"),
    }


def test_a_login_lists_its_country_without_a_database(client):
    token = login(client, ip="8.8.8.8")["accessToken"]

    listed = client.get("/api/sessions", headers=auth(token)).json["sessions"]

    assert [(item["ip"], item["location"]) for item in listed] == [("8.8.8.8", "United States")]
