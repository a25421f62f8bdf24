"""The rules between layers (setup.cfg's [importlinter] contracts), checked by import-linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_import_contract_is_kept():
    result = subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_importing_the_package_loads_no_app():
    # gunicorn's master reads and checks the settings before any worker: that
    # must not import the web layer (create_app imports it, inside the factory).
    code = (
        "import sys, sessionsvc.config; "
        "print(sorted(m for m in sys.modules if m.startswith(('sessionsvc.web', 'flask_jwt'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
