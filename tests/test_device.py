"""Device descriptions parsed from User-Agents."""

from __future__ import annotations

import pytest

from sessionsvc.domain.devices import MAX_USER_AGENT_LENGTH, parse_device
from sessionsvc.domain.sessions import Device
from tests.support import CHROME_LINUX, POSTMAN

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (CHROME_LINUX, Device("Chrome", "87.0.4280.88", "unknown", "Linux", False)),
        (POSTMAN, Device("PostmanRuntime", "7.26.8", "unknown", "unknown", True)),
        (IPHONE, Device("Mobile Safari", "17.1", "iPhone", "iOS", False)),
        (FIREFOX_WINDOWS, Device("Firefox", "120.0", "unknown", "Windows", False)),
        ("", Device("unknown", "unknown", "unknown", "unknown", True)),
        (None, Device("unknown", "unknown", "unknown", "unknown", True)),
        ("something nobody knows", Device("unknown", "unknown", "unknown", "unknown", False)),
    ],
)
def test_parse_device(user_agent, expected):
    assert parse_device(user_agent) == expected


@pytest.mark.parametrize(
    "user_agent",
    [
        "curl/8.4.0",
        "insomnia/2023.5.8",
        "HTTPie/3.2.2",
        "Wget/1.21.3",
        "python-requests/2.31.0",
        "python-httpx/0.27.0",
        "Go-http-client/1.1",
        "okhttp/4.12.0",
        "axios/1.6.2",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "PostmanRuntime/7.36.0",
    ],
)
def test_developer_tools_are_flagged(user_agent):
    assert parse_device(user_agent).is_dev is True


def test_a_huge_user_agent_is_capped_before_parsing():
    device = parse_device("Mozilla/5.0 " + "x" * (MAX_USER_AGENT_LENGTH * 100) + " curl/8.0")

    # the dev-tool marker lies past the cap, so it was never looked at
    assert device.is_dev is False
