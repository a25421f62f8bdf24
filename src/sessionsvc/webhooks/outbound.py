"""Sending one request to a receiver: timeouts, no redirects, and the address guard.

The guard (production, unless ``WEBHOOK_ALLOW_PRIVATE``) resolves the host
itself, refuses a private, loopback or link-local address, and connects to
the address it checked (the URL's host stays the Host header and the TLS
server name): a name that resolves to a public address when checked and to
an inside one when connected (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..config.webhooks import is_public_address

USER_AGENT = "sessionsvc-webhooks/1"


class AddressRefused(Exception):
    """The receiver's host resolves to an address the guard refuses."""


@dataclass(frozen=True)
class Answer:
    """How a receiver answered: its status (0: none), or why there was no answer."""

    status: int
    error: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the receiver took it (2xx)."""
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Tell whether trying again may help: all but a 4xx other than 408 and 429."""
        if self.error == "address refused":
            return False
        return not (400 <= self.status < 500) or self.status in (408, 429)


def resolve(host: str, port: int) -> list[str]:
    """Return the addresses a host name resolves to (an address: itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Sender:
    """Posts to receivers over one HTTP client; thread-safe (httpx.Client is)."""

    def __init__(self, *, timeout: float, guard: bool) -> None:
        self.guard = guard
        # trust_env=False: no proxy from the environment, which would connect elsewhere.
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def post(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        """Post ``body``; return the answer (never raises for the receiver's faults)."""
        try:
            request_url, extensions, host_header = self._target(url)
        except AddressRefused:
            return Answer(0, "address refused")
        except OSError as error:
            return Answer(0, f"cannot resolve: {type(error).__name__}")
        if host_header:
            headers = {**headers, "Host": host_header}
        try:
            # Only the status is read: the body is closed unread.
            with self.client.stream(
                "POST", request_url, headers=headers, content=body, extensions=extensions
            ) as response:
                return Answer(response.status_code)
        except httpx.TimeoutException:
            return Answer(0, "timeout")
        except httpx.HTTPError as error:
            return Answer(0, type(error).__name__)

    def _target(self, url: str) -> tuple[str | httpx.URL, dict[str, str], str]:
        """Return the URL to connect to, its extensions and the Host header to send."""
        if not self.guard:
            return url, {}, ""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(host, port)
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise AddressRefused(host)
        pinned = httpx.URL(url).copy_with(host=addresses[0])
        # The TLS name and certificate check stay the URL's host (httpcore's sni_hostname).
        return pinned, {"sni_hostname": host}, parts.netloc
