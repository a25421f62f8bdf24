"""gunicorn's own refusals (a bad request line, headers too large) in the API's JSON shape."""

from __future__ import annotations

import json
import socket

from ..web.errors import error_body, status_code


def write_raw_error(sock: socket.socket, status: int, reason: str, _detail: str) -> None:
    """Answer on a bare socket in the API's JSON shape (gunicorn's own refusals).

    Takes ``gunicorn.util.write_error``'s arguments; the detail, which may quote
    the request, is left out.
    """
    body = json.dumps(error_body(status_code(status), f"{reason}."), separators=(",", ":"))
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    # As gunicorn's own writer: never wait on a client that reads nothing.
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        sock.sendall((head + body).encode("latin-1"))
    finally:
        sock.settimeout(timeout)
