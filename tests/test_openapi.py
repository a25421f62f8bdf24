"""The OpenAPI document: it matches the app's routes, and the app keeps to it under fuzzing."""

from __future__ import annotations

import re
from typing import Any

import jwt
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sessionsvc import create_app
from sessionsvc.domain import claims as session_claims
from sessionsvc.web.docs import DOCS
from sessionsvc.web.errors import SessionsvcError
from sessionsvc.web.openapi import build_spec
from tests.conftest import app_config
from tests.support import POSTMAN, SERVICE_KEY, auth, login

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def served(app: Flask) -> set[tuple[str, str]]:
    """Return (OpenAPI path, method) of every route the app serves."""
    return {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        # Swagger UI's page and files show the document, the devices page's files are files:
        # no operations of the API.
        if rule.endpoint not in ("static", "browser.static")
        and not rule.endpoint.startswith(f"{DOCS}.")
        for method in rule.methods - IGNORED_METHODS
    }


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Return (path, method) of every operation in the document."""
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"  # the path's own parameters, not an operation
    }


def test_document_and_routes_agree(app, client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    assert response.content_type == "application/json"
    document = response.json
    assert document["openapi"] == "3.1.0"
    assert served(app) - documented(document) == set(), "routes missing from the document"
    assert documented(document) - served(app) == set(), "documented operations not served"


def test_drift_check_sees_a_new_route(make_app):
    app = make_app()
    app.add_url_rule("/api/extra", "extra", lambda: {}, methods=["GET", "PUT"])

    document = app.test_client().get("/api/openapi.json").json

    assert served(app) - documented(document) == {("/api/extra", "get"), ("/api/extra", "put")}


def test_document_is_valid_openapi(app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)

    schema.validate()  # against the OpenAPI 3.1 meta-schema; raises when invalid
    assert all(result.ok() for result in schema.get_all_operations())  # .ok() raises on an error


def test_every_operation_id_is_unique(client):
    """As the specification requires; verify's one view is served on three paths."""
    document = client.get("/api/openapi.json").json
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    ]

    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"verifySessionGet", "verifySessionGetTrailingSlash"} <= set(ids)
    assert "verifySessionGetOriginalPath" in ids


def test_document_follows_the_url_prefix(make_app):
    app = make_app(URL_PREFIX="/v2")

    document = app.test_client().get("/v2/openapi.json").json

    assert {path for path, _ in documented(document)} == {path for path, _ in served(app)}
    root = {"/healthz", "/readyz", "/metrics"}  # probes and metrics stay at the root
    assert all(path.startswith("/v2/") for path in set(document["paths"]) - root)


def test_document_describes_security_and_headers(client):
    document = client.get("/api/openapi.json").json
    schemes = document["components"]["securitySchemes"]
    paths = document["paths"]

    service_key = {key: schemes["serviceKey"][key] for key in ("type", "in", "name")}
    assert service_key == {"type": "apiKey", "in": "header", "name": "X-Service-Key"}
    assert {schemes[name]["scheme"] for name in ("accessToken", "refreshToken")} == {"bearer"}
    assert paths["/api/sessions"]["post"]["security"] == [{"serviceKey": []}]
    assert paths["/api/sessions/refresh"]["post"]["security"] == [
        {"refreshToken": []},
        {"refreshCookie": []},
    ]
    cookie = {key: schemes["refreshCookie"][key] for key in ("type", "in", "name")}
    assert cookie == {"type": "apiKey", "in": "cookie", "name": "__Secure-sessionsvc-refresh"}
    assert paths["/api/sessions"]["get"]["security"] == [{"accessToken": []}]
    verify_headers = paths["/api/sessions/verify"]["get"]["responses"]["200"]["headers"]
    assert set(verify_headers) == {
        *("X-User-Id", "X-Session-Id", "X-Session-Claims", "Cache-Control"),
        *("X-Session-Acr", "X-Session-Amr", "X-Session-Actor"),
    }


def response_codes(node: Any) -> set[str]:
    """Return every code an error body in the document is narrowed to."""
    if isinstance(node, list):
        return set().union(*map(response_codes, node))
    if not isinstance(node, dict):
        return set()
    found = set(node.get("properties", {}).get("code", {}).get("enum", []))
    return found.union(*map(response_codes, node.values()))


def test_every_error_code_is_documented(client):
    document = client.get("/api/openapi.json").json
    errors, ours = [SessionsvcError], set()
    while errors:  # every subclass, at any depth
        error = errors.pop()
        ours.add(error.code)
        errors += error.__subclasses__()

    assert ours | {"NOT_FOUND", "REQUEST_ENTITY_TOO_LARGE"} <= response_codes(document)
    # A method a route does not serve is no operation's response; the description says it.
    assert "405 METHOD_NOT_ALLOWED" in document["info"]["description"]


def generator_traps(node: Any, where: str = "#") -> list[str]:
    """Return where the document has a schema that client generators misread.

    openapi-typescript reads an alternative with no type of its own (a bare
    ``{"format": "ipv4"}``) as ``unknown``; openapi-python-client reads a ``const``
    among alternatives as "must be that value", and a type list not at all well;
    openapi-typescript makes a property with a ``default`` required, in request
    bodies too. tests/test_clients.py generates both clients; this finds the traps in make test.
    """
    if isinstance(node, list):
        return [
            trap for i, item in enumerate(node) for trap in generator_traps(item, f"{where}/{i}")
        ]
    if not isinstance(node, dict):
        return []
    traps = []
    for combinator in ("anyOf", "oneOf", "allOf"):
        for i, alternative in enumerate(node.get(combinator, [])):
            if not ({"type", "$ref"} & set(alternative)):
                traps.append(f"{where}/{combinator}/{i}: an alternative without a type")
            if combinator != "allOf" and "const" in alternative:
                traps.append(f"{where}/{combinator}/{i}: a const among alternatives")
    if isinstance(node.get("type"), list):
        traps.append(f"{where}: a list of types")
    if ({"enum", "const"} & set(node)) and "type" not in node:
        traps.append(f"{where}: an enum or const without a type")
    if "default" in node and isinstance(node.get("type"), str):
        traps.append(f"{where}: a default (say it in the description)")
    return traps + [
        trap for key, value in node.items() for trap in generator_traps(value, f"{where}/{key}")
    ]


def test_every_schema_is_one_client_generators_read(client):
    document = client.get("/api/openapi.json").json

    assert generator_traps(document) == []


@pytest.mark.parametrize(
    ("schema", "trap"),
    [
        ({"anyOf": [{"format": "ipv4"}]}, "#/anyOf/0: an alternative without a type"),
        ({"oneOf": [{"type": "string", "const": "x"}]}, "#/oneOf/0: a const among alternatives"),
        ({"type": ["string", "null"]}, "#: a list of types"),
        ({"properties": {"a": {"const": "ok"}}}, "#/properties/a: an enum or const without a type"),
        (
            {"properties": {"a": {"type": "boolean", "default": True}}},
            "#/properties/a: a default (say it in the description)",
        ),
    ],
)
def test_the_generator_trap_check_sees_each_trap(schema, trap):
    assert generator_traps(schema) == [trap]


@pytest.mark.parametrize("prefix", ["/api", "/v2"])
def test_docs_page_shows_the_document_from_its_own_files(make_app, prefix):
    client = make_app(URL_PREFIX=prefix).test_client()

    response = client.get(f"{prefix}/docs", follow_redirects=True)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert f'"url": "{prefix}/openapi.json"' in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    }
    for asset in assets:  # all served here, none from another host: it works offline
        assert asset.startswith(f"{prefix}/docs/"), asset
        with client.get(asset) as served_asset:  # a file: closed when read
            assert (served_asset.status_code, asset) == (200, asset)
            assert len(served_asset.get_data()) > 100


def test_docs_page_has_no_file_outside_its_own(client):
    response = client.get("/api/docs/..%2F..%2Fsetup.cfg")

    assert (response.status_code, response.json["code"]) == (404, "NOT_FOUND")


# --- Fuzzing: schemathesis drives the app in-process with real credentials. ---


class Credentials:
    """Give each case a fresh credential of the kind its operation's security asks for.

    A fresh session per case: a case that revokes its own session (or rotates its
    refresh token) must not spoil the next one.
    """

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> dict | None:
        requirements = context.operation.definition.raw.get("security", [])
        schemes = {name for requirement in requirements for name in requirement}
        if "serviceKey" in schemes:
            return {"X-Service-Key": SERVICE_KEY}
        if schemes & {"accessToken", "refreshToken"}:
            tokens = login(context.app.test_client(), "fuzz", user_agent=POSTMAN)
            kind = "refreshToken" if "refreshToken" in schemes else "accessToken"
            return auth(tokens[kind])
        return None

    def set(self, case: schemathesis.Case, data: dict, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), **data}
        # Every case of an operation with a credential passes here, the state machine's too.
        meta = case.meta
        if meta is not None and meta.generation.mode is GenerationMode.POSITIVE:
            within_what_a_schema_can_say(case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    positive_data_acceptance,  # valid input gets a 2xx (404 for ids that are not there)
    negative_data_rejection,  # invalid input gets a 4xx
    ignored_auth,  # a 2xx again without, and with a wrong, credential gets only 401/403
]
# Valid input from an authenticated caller never gets a 401: the credentials are real.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404"]}},
        "phases": {
            "stateful": {
                # Only the document's own links: an inferred POST /sessions -> DELETE
                # /sessions/{id} would use the fuzzing user's token on another user's
                # session, a rightful 404.
                "inference": {"algorithms": []},
                # It reads DELETE /users/{id}/sessions (revoke all) as freeing GET
                # /users/{id}/sessions (the list, now empty). test_revoked_session_is_gone
                # checks reuse after a DELETE instead.
                "checks": {"use_after_free": {"enabled": False}},
            }
        },
    }
)
# Every operation in the document (verify's view has one on each of its three paths).
OPERATIONS = {
    operation["operationId"]: operation
    for item in build_spec(create_app(app_config()))["paths"].values()
    for method, operation in item.items()
    if method != "parameters"
}
# Operations whose credential is a field of the body (a "Was this you?" token): a
# schema-valid body holds a forged one, rightly a 401 (tests/test_answers.py has real ones).
CREDENTIAL_IN_BODY = {"answerSecurityQuestion"}
# Operations that take no input at all: there is nothing to spoil.
NO_INPUT = {"getOpenApi", "healthz", "readyz", "metrics", "getDevicesPage", "jwks"}
# Every operation with each kind of input.
CASES = [
    (op["operationId"], mode)
    for op in OPERATIONS.values()
    for mode in GenerationMode
    if not (op["operationId"] in NO_INPUT and mode is GenerationMode.NEGATIVE)
]


def within_what_a_schema_can_say(case: schemathesis.Case) -> None:
    """Keep a valid case to what passes now, which a schema cannot say (docs/assurance.md).

    An authTime must not be in the future; the fuzzing session has no acr and
    was just made, so verify's acr_values and max_age are rightly refused with
    401 (tests/test_assurance.py tests them).
    """
    if isinstance(case.body, dict) and "authTime" in case.body:
        case.body["authTime"] = "2020-01-01T00:00:00Z"
    # Nor can it say the claims' size as compact JSON (domain.claims.MAX_BYTES).
    if not within_claims_bound(case.body):
        case.body["claims"] = {}
    if case.query:
        case.query.pop("acr_values", None)
        case.query.pop("max_age", None)


def within_claims_bound(body: object) -> bool:
    """Whether a body's claims keep to the bound the document states in words only.

    JSON Schema cannot say "at most MAX_BYTES bytes as compact JSON", so a
    schema-valid body may hold larger claims, rightly refused (400).
    """
    if not (isinstance(body, dict) and isinstance(body.get("claims"), dict)):
        return True
    return len(session_claims.encode(body["claims"])) <= session_claims.MAX_BYTES


@pytest.fixture
def api_schema(app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=CONFIG)
    schema.auth(refresh_interval=None)(Credentials)  # no caching: a fresh session every case

    return schema


@pytest.mark.parametrize(("operation_id", "mode"), CASES, ids=[f"{o}-{m}" for o, m in CASES])
def test_api_keeps_to_its_document(api_schema, operation_id, mode):
    operation = api_schema.find_operation_by_id(operation_id)
    strategy = operation.as_strategy(generation_mode=mode, auth_storage=api_schema.auth)

    checks = CHECKS
    if operation_id in CREDENTIAL_IN_BODY:
        checks = [check for check in CHECKS if check is not positive_data_acceptance]

    # Bounded and reproducible: a fixed number of cases from a derandomized seed.
    @settings(
        max_examples=20,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call_and_validate(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            assume(within_claims_bound(case.body))
        case.call_and_validate(checks=checks)

    call_and_validate()


def test_links_from_a_login_drive_the_admin_api(api_schema):
    """Run schemathesis' state machine: login, then the admin calls its links lead to."""
    machine = api_schema.as_state_machine()

    machine.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


@pytest.mark.parametrize(
    ("revoke", "query"),
    [
        ("revokeSession", None),
        ("revokeAllSessions", {"keep": "current"}),
        ("revokeUserSession", None),
        ("revokeUserSessions", None),
    ],
)
def test_revoked_session_is_gone_on_reuse(api_schema, client, revoke, query):
    victim, caller = login(client, "alice"), login(client, "alice")
    ids = {"user_id": "alice", "session_id": victim["session"]["_id"]}
    admin = revoke.startswith("revokeUser")
    credential = {"X-Service-Key": SERVICE_KEY} if admin else auth(caller["accessToken"])

    def call(operation_id: str, **kwargs: Any) -> schemathesis.Response:
        """Call an operation on the victim's ids; check the answer against the document."""
        operation = api_schema.find_operation_by_id(operation_id)
        path = {name: value for name, value in ids.items() if name in operation.path_parameters}
        case = operation.Case(path_parameters=path, headers=credential, **kwargs)
        return case.call_and_validate(checks=CHECKS)

    assert call(revoke, query=query).status_code == 200

    # Reused: the id is unknown, and neither of the session's tokens works any more.
    response = call("revokeUserSession" if admin else "revokeSession")
    assert (response.status_code, response.json()["code"]) == (404, "SESSION_NOT_FOUND")
    listed = client.get("/api/sessions", headers=auth(victim["accessToken"]))
    assert (listed.status_code, listed.json["code"]) == (401, "TOKEN_REVOKED")
    refreshed = client.post("/api/sessions/refresh", headers=auth(victim["refreshToken"]))
    assert (refreshed.status_code, refreshed.json["code"]) == (401, "TOKEN_REVOKED")


# Per security scheme: every credential it must refuse.
WRONG_CREDENTIALS = {
    "accessToken": ["none", "refreshToken", "serviceKey", "forged"],
    "refreshToken": ["none", "accessToken", "serviceKey", "forged"],
    "serviceKey": ["none", "wrongKey", "accessToken"],
    "refreshCookie": ["accessCookie", "forgedCookie"],  # with the CSRF header: else a 403
}
AUTH_CASES = [
    (op["operationId"], wrong)
    for op in OPERATIONS.values()
    for requirement in op["security"]
    for scheme in requirement
    for wrong in WRONG_CREDENTIALS[scheme]
]


def credential(kind: str, tokens: dict[str, str]) -> dict[str, str]:
    """Return the headers of one kind of credential (of this session's, where it has one)."""
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-key-" + "y" * 32, algorithm="HS256")
    return {
        "none": {},
        "accessToken": auth(tokens["accessToken"]),
        "refreshToken": auth(tokens["refreshToken"]),
        "forged": auth(forged),
        "serviceKey": {"X-Service-Key": SERVICE_KEY},
        "wrongKey": {"X-Service-Key": SERVICE_KEY + "-not"},
        "accessCookie": browser_cookie(tokens["accessToken"]),
        "forgedCookie": browser_cookie(forged),
    }[kind]


def browser_cookie(token: str) -> dict[str, str]:
    """Return the headers of a browser presenting token as its refresh cookie."""
    return {"Cookie": f"__Secure-sessionsvc-refresh={token}", "X-Requested-With": "sessionsvc"}


@pytest.mark.parametrize(
    ("operation_id", "wrong"), AUTH_CASES, ids=[f"{o}-{w}" for o, w in AUTH_CASES]
)
def test_a_wrong_credential_gets_a_documented_401(
    api_schema, client, snapshot, operation_id, wrong
):
    tokens = login(client, "alice")
    operation = api_schema.find_operation_by_id(operation_id)
    ids = {
        "user_id": "alice",
        "session_id": tokens["session"]["_id"],
        "device_id": tokens["session"]["deviceId"],
        "original_path": "orders/42",  # verify's path below it, as Envoy sends
    }
    case = operation.Case(
        path_parameters={
            name: value for name, value in ids.items() if name in operation.path_parameters
        },
        headers=credential(wrong, tokens),
        **(
            {"body": {"userId": "alice"}, "media_type": "application/json"}
            if operation.body
            else {}
        ),
    )
    before = snapshot()

    response = case.call_and_validate(checks=CHECKS)

    assert response.status_code == 401
    assert snapshot() == before


def test_an_oversized_login_is_a_documented_413(api_schema, snapshot):
    create = api_schema.find_operation_by_id("createSession")
    case = create.Case(
        body={"userId": "alice", "userAgent": "x" * 20_000},
        media_type="application/json",
        headers={"X-Service-Key": SERVICE_KEY},
    )

    response = case.call_and_validate(checks=CHECKS)

    assert (response.status_code, response.json()["code"]) == (413, "REQUEST_ENTITY_TOO_LARGE")
    assert snapshot() == {}
