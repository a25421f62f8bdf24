"""Clients generated from the served OpenAPI document run the whole session flow.

Teams generate their clients from ``/api/openapi.json``. These tests do what such a
team does, against gunicorn on a real socket: openapi-python-client, and
openapi-typescript with openapi-fetch, each generate a client from the document the
server serves; clients/python/flow.py and clients/typescript/flow.ts type-check
against it (mypy --strict, tsc --strict) and run login, list, verify, refresh, the
admin list and a claims update, revoke one, an error answer parsed as the error
type, and revoke all. `make test-clients` runs them (docs/clients.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICE_KEY, Gunicorn

BIN = Path(sys.executable).parent
CLIENTS = ROOT / "clients"
# The TypeScript check's own files; node_modules, generated/ and dist/ are made in a copy.
TYPESCRIPT_FILES = ("package.json", "package-lock.json", ".npmrc", "tsconfig.json", "flow.ts")
NPM = shutil.which("npm")
PACKAGE = "sessionsvc_client"  # the name clients/python/flow.py imports the generated code by
# What openapi-python-client prints when it left a piece out (a schema it could not read).
GENERATOR_WARNING = "Warning(s) encountered while generating"

pytestmark = pytest.mark.clients


def run(args: Sequence[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    """Run a command to its end; fail the test with its output unless it exits 0."""
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{output}"
    return output


@pytest.fixture
def server(gunicorn) -> Gunicorn:
    """The service under gunicorn, tokens in bodies (the API clients' transport)."""
    return gunicorn()


def flow_env(server: Gunicorn) -> dict[str, str]:
    return {"SESSIONSVC_URL": server.url, "SESSIONSVC_SERVICE_KEY": SERVICE_KEY}


def test_a_generated_python_client_runs_the_whole_flow(server, tmp_path):
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff post-hooks
    generated = run(
        [
            BIN / "openapi-python-client",
            "generate",
            "--url",
            f"{server.url}/api/openapi.json",
            "--meta",
            "none",
            "--output-path",
            tmp_path / PACKAGE,
        ],
        tmp_path,
        env,
    )
    assert GENERATOR_WARNING not in generated, generated
    flow = CLIENTS / "python" / "flow.py"
    # The types the document gives are the ones the flow reads: mypy checks them against
    # the generated package (whose own code is not ours to check).
    run(
        [
            BIN / "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-incremental",
            "--config-file",
            os.devnull,
            flow,
        ],
        tmp_path,
        env | {"MYPYPATH": str(tmp_path)},
    )

    output = run([sys.executable, flow], tmp_path, flow_env(server) | {"PYTHONPATH": str(tmp_path)})

    assert "the Python client's flow passed" in output, output


@pytest.mark.skipif(
    NPM is None,
    reason="node and npm are not installed: `make test-clients` installs Debian's (.ci/run does)",
)
def test_a_generated_typescript_client_runs_the_whole_flow(server, tmp_path):
    project = tmp_path / "typescript"
    project.mkdir()
    for name in TYPESCRIPT_FILES:
        shutil.copy(CLIENTS / "typescript" / name, project / name)
    env = flow_env(server)
    run([NPM, "ci"], project, env)  # the lockfile's versions, nothing newer
    run([NPM, "run", "generate"], project, env)  # openapi-typescript, from the served document
    run([NPM, "run", "check"], project, env)  # tsc --strict: the flow against those types

    output = run([NPM, "run", "flow"], project, env)

    assert "the TypeScript client's flow passed" in output, output
