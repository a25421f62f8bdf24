"""Describe the device of a session from its User-Agent."""

from __future__ import annotations

import re

import ua_parser

from .sessions import UNKNOWN, Device

MAX_USER_AGENT_LENGTH = 512

# Developer and API tools, matched on the lowercased User-Agent: ua-parser knows
# only some of them by family, and the flag must not depend on its rule set's age.
# (Lowercase first: re.IGNORECASE made this search 8 times slower.)
DEV_TOOL_PATTERN = re.compile(
    r"postman|insomnia|curl/|httpie|wget/|python-requests|python-httpx|python-urllib"
    r"|aiohttp|go-http-client|okhttp|axios|node-fetch|undici|got \(|apache-httpclient"
    r"|java/|libwww-perl|guzzlehttp|paw/|bruno|thunder client|hoppscotch|restsharp|dart:io"
)


def _known(value: str | None) -> str:
    return value if value and value != "Other" else UNKNOWN


def parse_device(user_agent: str | None) -> Device:
    """Parse a User-Agent into the API's device fields; unknown parts are ``"unknown"``."""
    user_agent = (user_agent or "")[:MAX_USER_AGENT_LENGTH]
    result = ua_parser.parse(user_agent)
    agent = result.user_agent
    parts = [agent.major, agent.minor, agent.patch, agent.patch_minor] if agent else []
    version = ".".join(part for part in parts if part)
    return Device(
        browser=_known(agent.family if agent else None),
        version=version or UNKNOWN,
        platform=_known(result.device.family if result.device else None),
        os=_known(result.os.family if result.os else None),
        is_dev=not user_agent.strip() or DEV_TOOL_PATTERN.search(user_agent.lower()) is not None,
    )
