"""docs/configuration.md's table of settings, written from ``SETTINGS`` (``make config-doc``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .kinds import DURATION_UNITS
from .settings import SETTINGS, WHOLE_SECONDS, WHOLE_SECONDS_ABOVE_ZERO

# --- The documentation's table -------------------------------------------------------------------

DOC_PATH = "docs/configuration.md"
DOC_START = "<!-- settings: written by `make config-doc` from config.SETTINGS; edit them there -->"
DOC_END = "<!-- end of settings -->"
# Read from the environment only (instance_path()), not a setting of the app.
ENVIRONMENT_ONLY_ROWS = (
    "| `SESSIONSVC_INSTANCE_PATH` | a path | `./var` | the instance folder: development secrets"
    " and the embedded Valkey's socket and data. Read from the environment only, not a config"
    " key |",
)


def _shown(value: Any) -> str:
    """Write a default as an operator would set it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _human(amount: int) -> str:
    """Write whole seconds in the largest unit that divides them: 1209600 -> 14d."""
    for unit in ("d", "h", "m"):
        size = int(DURATION_UNITS[unit])
        if amount and amount % size == 0:
            return f"{amount // size}{unit}"
    return f"{amount}s"


def doc_table() -> str:
    """Return the settings' Markdown table, as docs/configuration.md holds it."""
    rows = [
        "| variable | takes | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        default = setting.shown_default
        if default is None and setting.default is None:
            default = "none"
        elif default is None:
            default = f"`{_shown(setting.default)}`"
            if setting.kind in (WHOLE_SECONDS, WHOLE_SECONDS_ABOVE_ZERO) and setting.default:
                default += f" ({_human(setting.default)})"
        what = setting.kind.what.replace("|", "\\|")
        rows.append(f"| `{setting.variable}` | {what} | {default} | {setting.meaning} |")
    rows += ENVIRONMENT_ONLY_ROWS
    return "\n".join(rows)


def with_doc_table(document: str) -> str:
    """Return docs/configuration.md's text with the table between its markers rewritten."""
    head, start, rest = document.partition(DOC_START)
    _, end, tail = rest.partition(DOC_END)
    if not (start and end):
        raise ValueError(f"the markers {DOC_START!r} and {DOC_END!r} are missing")
    return f"{head}{DOC_START}\n\n{doc_table()}\n\n{DOC_END}{tail}"


def write_doc(path: str = DOC_PATH) -> None:
    """Rewrite the settings' table in docs/configuration.md (``make config-doc``)."""
    document = Path(path)
    document.write_text(with_doc_table(document.read_text()))
