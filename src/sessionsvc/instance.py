"""Files in the instance folder that every worker must agree on: written once, by one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_once(path: Path, make: Callable[[], Any]) -> bool:
    """Write ``make()`` as JSON to ``path`` (0600) unless it exists; tell whether this call did.

    Atomic: the file appears whole or not at all, and when workers race, one
    wins and every one of them reads the winner's.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")  # created 0600
    with os.fdopen(fd, "w") as handle:
        json.dump(make(), handle)
    # link() fails if another worker won the race; then everyone reads the winner's.
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True
