"""The rules between layers (setup.cfg's [importlinter] contracts), checked by import-linter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_import_contract_is_kept():
    result = subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def loaded_by(modules: str, *prefixes: str) -> list[str]:
    """Return the modules of ``prefixes`` that loading ``modules`` brings, in a fresh process.

    ``modules`` is what an import statement takes, or a file's path, run as gunicorn reads it.
    """
    load = f"runpy.run_path({modules!r})" if modules.endswith(".py") else f"import {modules}"
    code = (
        f"import json, runpy, sys; {load}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r} "
        f"or m.startswith({prefixes!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("module", ["sessionsvc.config", "gunicorn.conf.py"])
def test_reading_the_settings_loads_no_web_layer(module):
    # gunicorn's master reads gunicorn.conf.py and checks the settings before
    # any worker: that must not import the web layer (create_app imports it,
    # inside the factory; the workers do).
    assert loaded_by(module, "sessionsvc.web", "flask_jwt_extended") == []


@pytest.mark.parametrize("layer", ["sessionsvc.domain", "sessionsvc.store"])
def test_the_domain_and_the_store_load_no_web_framework(layer):
    # The import contracts see direct imports; this sees what loading them brings along.
    modules = [
        f"{layer}.{path.stem}" for path in (ROOT / "src" / Path(*layer.split("."))).glob("*.py")
    ]
    assert loaded_by(", ".join(modules), "flask", "werkzeug", "gunicorn") == []


def test_every_type_ignore_says_why():
    unexplained = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "src").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "# type: ignore" in line and not re.search(r"# type: ignore\[[\w-]+\]  # \S", line)
    ]
    assert unexplained == []
