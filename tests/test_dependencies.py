"""The code uses its dependencies through their public names only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).parent.parent / "src" / "sessionsvc").rglob("*.py"))


def is_private(name: str) -> bool:
    """Tell whether a name is private by convention: a leading underscore, not a dunder."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str) -> list[str]:
    """Return every private name of another package the source imports or reads."""
    tree = ast.parse(source)
    imported: set[str] = set()  # local names bound to another package's modules or objects
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(is_private(part) for part in alias.name.split(".")):
                    found.append(f"import {alias.name}")
                imported.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if any(is_private(part) for part in module.split(".")):
                found.append(f"from {module} import ...")
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"from {module} import {alias.name}")
                imported.add(alias.asname or alias.name)
    for node in ast.walk(tree):
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
            and is_private(node.args[1].value)
        ):
            owner = node.args[0]
        # The root of a.b.c._d: a name bound by an import is another package's.
        while isinstance(owner, ast.Attribute):
            owner = owner.value
        if isinstance(owner, ast.Name) and owner.id in imported:
            found.append(f"{ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_no_private_name_of_a_dependency_is_used(path):
    assert private_uses(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from flask_jwt_extended.tokens import _decode_jwt",
        "from flask_jwt_extended import _private",
        "import flask_jwt_extended._internal",
        "from flask import g\ng._jwt_extended_jwt = None",
        "import jwt\njwt.api_jws._jws_global_obj",
        "from flask import g\ngetattr(g, '_jwt_extended_jwt')",
    ],
)
def test_the_check_sees_each_kind_of_private_use(source):
    assert private_uses(source)
