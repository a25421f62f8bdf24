"""The OpenAPI 3.1 document, built from the app's views: ``@operation`` and ``build_spec``.

Each view declares its operation where it is defined, with ``@operation``;
paths and their parameters come from the app's own URL rules, so ``URL_PREFIX``
and route changes show up by themselves, and a view without a declaration is
left out (tests/test_openapi.py fails when a route and the document disagree).
The parts operations share are in ``openapi_components``; ``docs`` serves the
document and a page showing it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any, TypeVar

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Flask
from werkzeug.routing import Rule

from .logins import idle_timeout_bounds, support_lifetime_cap
from .openapi_components import (
    DESCRIPTION,
    HEADERS,
    PARAMETERS,
    RESPONSES,
    SCHEMAS,
    SECURITY_SCHEMES,
    TAGS,
)

F = TypeVar("F", bound=Callable[..., Any])

# The methods an operation can be declared for, in the document's order; a route's
# HEAD and OPTIONS are Flask's own, and verify's OPTIONS is only refused.
METHODS = ("get", "post", "put", "patch", "delete")


def operation(
    operation_id: str,
    *,
    summary: str,
    tags: list[str],
    security: list[dict[str, list[str]]],
    responses: dict[str, Any],
    **fields: Any,
) -> Callable[[F], F]:
    """Declare the view's OpenAPI operation, for each method its routes serve.

    ``{method}`` in operation_id stands for the method, capitalized (verify serves
    five); fields are further operation fields (``requestBody``, ``parameters``).
    The view is returned as it is: only ``openapi_operation`` is set on it.
    """
    declared = {
        "operationId": operation_id,
        "tags": tags,
        "summary": summary,
        "security": security,
        **fields,
        "responses": responses,
    }

    def declare(view: F) -> F:
        view.openapi_operation = declared  # type: ignore[attr-defined]  # a function's own attribute
        return view

    return declare


def build_spec(app: Flask) -> dict[str, Any]:
    """Build the app's OpenAPI document from its views' operations and its URL rules."""
    spec = APISpec(
        title="sessionsvc",
        version=version("sessionsvc"),
        openapi_version="3.1.0",
        info={"description": DESCRIPTION},
    )
    for name, schema in _configured(SCHEMAS, app.config).items():
        spec.components.schema(name, schema)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, parameter in PARAMETERS.items():
        spec.components.parameter(name, parameter["in"], parameter)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    for name, response in RESPONSES.items():
        spec.components.response(name, response)
    # Every rule of a declared view (verify has three); an undeclared one is left out.
    declared_rules = [
        (rule, declared)
        for rule in app.url_map.iter_rules()
        if (declared := getattr(app.view_functions[rule.endpoint], "openapi_operation", None))
    ]
    # An endpoint's shortest rule is its own path (verify's /sessions/verify):
    # documented first, under the declared operationId. operationIds are unique
    # in a document, so each further rule adds what tells it apart.
    shortest: dict[str, Rule] = {}
    for rule, _ in declared_rules:
        if len(rule.rule) < len(shortest.setdefault(rule.endpoint, rule).rule):
            shortest[rule.endpoint] = rule
    declared_rules.sort(  # stable: else as routed
        key=lambda item: (TAGS.index(item[1]["tags"][0]), item[0] is not shortest[item[0].endpoint])
    )
    for rule, declared in declared_rules:
        suffix = "" if rule is shortest[rule.endpoint] else _rule_suffix(rule)
        operation_id = declared["operationId"] + suffix
        operations = {
            method: declared | {"operationId": operation_id.format(method=method.title())}
            for method in METHODS
            if method.upper() in (rule.methods or ())
        }
        spec.path(
            path=FlaskPlugin.flaskpath2openapi(rule.rule),
            operations=operations,
            parameters=[_path_parameter(name) for name in sorted(rule.arguments)],
        )
    return spec.to_dict()


def _configured(schemas: dict[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the schemas with this app's bounds: lifetimes and idle timeouts (settings)."""
    schemas = copy.deepcopy(schemas)
    login = schemas["LoginRequest"]["properties"]
    login["lifetime"]["maximum"] = config["SESSION_LIFETIME"]
    low, high = idle_timeout_bounds(config)
    login["idleTimeout"] |= {"minimum": low, "maximum": high}
    support = schemas["SupportSessionRequest"]["properties"]
    support["lifetime"]["maximum"] = support_lifetime_cap(config)
    return schemas


def _rule_suffix(rule: Rule) -> str:
    """Name what a further rule of a view adds: its path arguments, or a trailing slash."""
    if rule.arguments:
        return "".join(name.title().replace("_", "") for name in sorted(rule.arguments))
    return "TrailingSlash" if rule.rule.endswith("/") else "Alias"


def _path_parameter(name: str) -> Any:
    """Refer to a documented path parameter, or describe a free one (verify's tail)."""
    known = {"user_id": "UserId", "session_id": "SessionId", "device_id": "DeviceId"}
    if name in known:
        return known[name]
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
