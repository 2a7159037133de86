"""The OpenAPI document: valid OpenAPI 3.1, and in step with the routes actually served.

The document does not depend on the storage, so these tests use SQLite only (the `backend`
fixture is overridden below); the schemathesis run in test_schemathesis.py covers both.
"""

import copy
import re
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web

from gateway.errors import STATUS_OF_CODE
from gateway.openapi import API_PREFIX

OPENAPI_PATH = API_PREFIX + "/openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PATH_TEMPLATE = re.compile(r"{([^{}]+)}")

Operation = tuple[str, str]  # (METHOD, path template), e.g. ("GET", "/api/v1/flattrs/{id}")


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def document(client) -> dict[str, Any]:
    response = await client.get(OPENAPI_PATH)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def served_operations(app: web.Application) -> set[Operation]:
    """Every (METHOD, path) the router serves under the API prefix.

    Left out: HEAD routes, which aiohttp adds by itself beside each add_get (they are not
    endpoints of ours), and the document's own route: /api/v1/openapi.json describes the
    API, it is not an operation of it. Documenting it would also make every client generated
    from the document grow a meaningless `get_openapi` call, and schemathesis would fuzz it.
    """
    return {
        (route.method.upper(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(API_PREFIX + "/")
        and route.method.upper() != "HEAD"
        and route.resource.canonical != OPENAPI_PATH
    }


def documented_operations(document: dict[str, Any]) -> set[Operation]:
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    }


def route_differences(
    served: set[Operation], document: dict[str, Any]
) -> tuple[set[Operation], set[Operation]]:
    """(served but undocumented, documented but not served)."""
    documented = documented_operations(document)
    return served - documented, documented - served


def operations_of(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected, got {ref}"
    found: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(found, dict) and part in found, f"{ref} does not resolve"
        found = found[part]
    return found


def refs_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


def schemas_in(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON Schema the document holds, with where it is (for the failure message)."""
    found = [(f"components.schemas.{name}", schema)
             for name, schema in document["components"]["schemas"].items()]
    for method, path, operation in operations_of(document):
        where = f"{method.upper()} {path}"
        found += [(f"{where} parameter {p['name']}", p["schema"])
                  for p in operation.get("parameters", [])]
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            found.append((f"{where} request body {media_type}", content["schema"]))
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                found.append((f"{where} response {status} {media_type}", content["schema"]))
    return found


async def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    # The OpenAPI 3.1 meta-schema (the official one, shipped inside schemathesis).
    schemathesis.openapi.from_dict(copy.deepcopy(document)).validate()
    # That meta-schema does not look inside the JSON Schemas; check them as 2020-12 schemas.
    for where, schema in schemas_in(document):
        assert jsonschema_rs.meta.is_valid(schema), (where, schema)
    for ref in refs_in(document):
        resolve(document, ref)
    operation_ids = [op["operationId"] for _, _, op in operations_of(document)]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    schemes = document["components"]["securitySchemes"]
    for method, path, operation in operations_of(document):
        where = f"{method.upper()} {path}"
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(PATH_TEMPLATE.findall(path)), where
        assert operation["responses"], where
        assert any(status.startswith("2") for status in operation["responses"]), where
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes), where


async def test_every_served_route_is_documented_and_every_documented_one_is_served(
    client, document
):
    served = served_operations(client.app)
    assert len(served) > 20  # the filter above did not throw the API away
    undocumented, phantom = route_differences(served, document)
    assert undocumented == set(), f"served but missing from the document: {undocumented}"
    assert phantom == set(), f"documented but not served: {phantom}"
    # One operation per endpoint: a second endpoint on the same method and path would
    # silently replace the first in the document.
    assert len(documented_operations(document)) == len(operations_of(document))


async def test_the_route_comparison_notices_a_doctored_document(client, document):
    served = served_operations(client.app)
    assert route_differences(served, document) == (set(), set())

    missing = copy.deepcopy(document)
    del missing["paths"][API_PREFIX + "/flattrs"]["post"]
    assert route_differences(served, missing) == ({("POST", API_PREFIX + "/flattrs")}, set())

    invented = copy.deepcopy(document)
    invented["paths"][API_PREFIX + "/flattrs"]["patch"] = {"responses": {}}
    invented["paths"][API_PREFIX + "/nowhere"] = {"get": {"responses": {}}}
    assert route_differences(served, invented) == (
        set(), {("PATCH", API_PREFIX + "/flattrs"), ("GET", API_PREFIX + "/nowhere")})

    renamed = copy.deepcopy(document)
    item = renamed["paths"].pop(API_PREFIX + "/flattrs/{id}")
    renamed["paths"][API_PREFIX + "/flattrs/{flattr_id}"] = item
    undocumented, phantom = route_differences(served, renamed)
    assert undocumented == {("DELETE", API_PREFIX + "/flattrs/{id}")}
    assert phantom == {("DELETE", API_PREFIX + "/flattrs/{flattr_id}")}


async def test_documented_error_codes_are_in_the_error_schema_with_a_documented_status(
    document
):
    error = document["components"]["schemas"]["Error"]
    enum = set(error["properties"]["error"]["properties"]["code"]["enum"])
    assert enum == set(STATUS_OF_CODE)
    with_codes = [(m, p, op) for m, p, op in operations_of(document) if "x-error-codes" in op]
    assert with_codes  # the check below is not vacuous
    for method, path, operation in with_codes:
        where = f"{method.upper()} {path}"
        codes = operation["x-error-codes"]
        assert isinstance(codes, list) and codes, where
        assert set(codes) <= enum, (where, set(codes) - enum)
        for code in codes:
            status = str(STATUS_OF_CODE[code])
            assert status in operation["responses"], (where, code, status)
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (where, status)


async def test_every_route_that_spends_documents_the_debt_that_blocks_it(document):
    """A member who owes after a refund or dispute gets 402 where money would be spent."""
    spending = {("post", "/api/v1/flattrs"), ("post", "/api/v1/subscriptions")}
    found = {(m, p): op for m, p, op in operations_of(document) if (m, p) in spending}
    assert set(found) == spending
    for where, operation in found.items():
        assert "debt_outstanding" in operation["x-error-codes"], where
        assert "402" in operation["responses"], where
