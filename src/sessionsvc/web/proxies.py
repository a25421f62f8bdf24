"""The client address behind trusted proxies: ``X-Forwarded-For`` read only from them.

werkzeug's ProxyFix trusts a number of hops, whoever sends the header: a
client reaching gunicorn directly would pick its own address. Here the header
counts only when the direct peer is one of ``TRUSTED_PROXIES`` (addresses or
networks), and it is walked from its right end past every entry that is a
trusted proxy too: the first one that is not is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Where the direct peer's own address is kept once REMOTE_ADDR is the client's.
PEER_KEY = "sessionsvc.proxy_peer"


def parse_address(text: str | None) -> IPAddress | None:
    """Return an address (an IPv4-mapped IPv6 one as IPv4), or None for anything else."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client named by the trusted proxies."""

    def __init__(self, app: WSGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(network) for network in trusted]

    def is_trusted(self, address: IPAddress) -> bool:
        """Tell whether an address is one of the trusted proxies'."""
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str) -> str | None:
        """Return the client address the peer and X-Forwarded-For give, or None to keep the peer."""
        hop = parse_address(peer)
        if hop is None or not self.is_trusted(hop):
            return None  # the header is the caller's own word
        for entry in reversed(forwarded_for.split(",")):
            if not self.is_trusted(hop):
                break
            named = parse_address(entry)
            if named is None:
                break  # not an address: the trusted hop that passed it on is the last known
            hop = named
        return str(hop)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR")
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded_for and (client := self.client(peer, forwarded_for)) is not None:
            environ[PEER_KEY] = peer
            environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)
