"""Describe the device of a session from its User-Agent."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

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


# --- Devices a user recognises (issue 19) ------------------------------------------------------

DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 random bytes, base64url
MAX_DEVICE_NAME = 64  # characters of a name the user gives a device
# A name a user gives a device: no control characters, line breaks or
# direction overrides (a name that reorders the page's text spoofs it), and
# no space at either end. Written for Python and for the OpenAPI document alike.
_NOT_IN_NAMES = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
DEVICE_NAME_PATTERN = f"^[^ {_NOT_IN_NAMES}]([^{_NOT_IN_NAMES}]*[^ {_NOT_IN_NAMES}])?$"
_DEVICE_NAME = re.compile(DEVICE_NAME_PATTERN)
# Client Hints a login page forwards (``clientHints``): the ones read, and their longest value.
CLIENT_HINTS = (
    "Sec-CH-UA",
    "Sec-CH-UA-Full-Version-List",
    "Sec-CH-UA-Mobile",
    "Sec-CH-UA-Model",
    "Sec-CH-UA-Platform",
    "Sec-CH-UA-Platform-Version",
)
MAX_HINT_LENGTH = 256
# Windows reports its build's major platform version: 13 and above is Windows 11
# (https://learn.microsoft.com/microsoft-edge/web-platform/how-to-detect-win11).
WINDOWS_11_PLATFORM_VERSION = 13
# Brands a browser adds to its list so that no one matches on the list's order.
_GREASE = re.compile(r"not.a.brand|chromium", re.IGNORECASE)
_BRAND = re.compile(r'"([^"]*)"\s*;\s*v\s*=\s*"([^"]*)"')


def new_device_id() -> str:
    """Return a fresh opaque device id (128 random bits)."""
    return secrets.token_urlsafe(16)


def is_valid_device_id(device_id: object) -> bool:
    """Tell whether a value is a device id this service could have made."""
    return isinstance(device_id, str) and DEVICE_ID_PATTERN.fullmatch(device_id) is not None


def is_valid_device_name(name: object) -> bool:
    """Tell whether a value is a name a user may give a device (1-64 characters, see above)."""
    return (
        isinstance(name, str)
        and 1 <= len(name) <= MAX_DEVICE_NAME
        and _DEVICE_NAME.fullmatch(name) is not None
        and _encodes(name)
    )


def _encodes(text: str) -> bool:
    """Tell whether text is UTF-8 encodable (JSON can carry lone surrogates; Redis cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unquote(value: str) -> str:
    return value.strip().strip('"').strip()


def with_client_hints(device: Device, hints: dict[str, str]) -> Device:
    """Return the device as the Client Hints tell it better than the User-Agent.

    A frozen User-Agent says "Windows NT 10.0" on Windows 11 and an old
    version on Android; the hints, when the login page forwards them, do not.
    """
    platform = _unquote(hints.get("Sec-CH-UA-Platform", ""))
    os_name = device.os
    if platform:
        os_name = {"macOS": "Mac OS X"}.get(platform, platform)
    if os_name == "Windows":
        major = _unquote(hints.get("Sec-CH-UA-Platform-Version", "")).split(".")[0]
        if major.isdigit():
            os_name = "Windows 11" if int(major) >= WINDOWS_11_PLATFORM_VERSION else "Windows 10"
    browser, version = device.browser, device.version
    brands = _BRAND.findall(hints.get("Sec-CH-UA-Full-Version-List", "")) or _BRAND.findall(
        hints.get("Sec-CH-UA", "")
    )
    named = [(brand, v) for brand, v in brands if not _GREASE.search(brand)]
    if named:
        browser, version = named[0]
        browser = {"Google Chrome": "Chrome", "Microsoft Edge": "Edge"}.get(browser, browser)
    model = _unquote(hints.get("Sec-CH-UA-Model", ""))
    return Device(
        browser=browser[:MAX_DEVICE_NAME] or UNKNOWN,
        version=version[:MAX_DEVICE_NAME] or UNKNOWN,
        platform=model[:MAX_DEVICE_NAME] or device.platform,
        os=os_name[:MAX_DEVICE_NAME] or UNKNOWN,
        is_dev=device.is_dev,
    )


def default_device_name(device: Device) -> str:
    """Return the name a device has until its user gives it one: "Chrome on Windows"."""
    os_name = {"Mac OS X": "macOS"}.get(device.os, device.os)
    if device.browser != UNKNOWN and os_name != UNKNOWN:
        return f"{device.browser} on {os_name}"[:MAX_DEVICE_NAME]
    if device.browser != UNKNOWN:
        return device.browser[:MAX_DEVICE_NAME]
    if os_name != UNKNOWN:
        return f"A device on {os_name}"[:MAX_DEVICE_NAME]
    return "Unknown device"


@dataclass(frozen=True)
class KnownDevice:
    """One of a user's known devices."""

    id: str
    name: str  # the default, from its User-Agent and Client Hints
    own_name: str  # the user's own name for it; "" none
    first_seen: int  # ms since the epoch
    last_seen: int
    location: str  # where it last signed in
    trusted: bool  # its user answered "Was this you?" with "me"
    session_ids: tuple[str, ...] = ()  # its live sessions

    @property
    def display_name(self) -> str:
        """Return the name to show: the user's own, else the default."""
        return self.own_name or self.name or "Unknown device"
