"""The OpenAPI 3.1 document, generated from the same endpoint list the router is built from."""

import re
from typing import Any

from aiohttp import web

from core.chats import CHAT_PATTERN
from gateway import keys
from gateway.api import Endpoint
from gateway.errors import STATUS_OF_CODE

API_PREFIX = "/api/v1"
ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
PATH_PARAMETER = re.compile(r"{(\w+)}")
PATH_SCHEMAS = {  # by name; any other path parameter is an id
    "period": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
    "chat": {"type": "string", "pattern": f"^(?:{CHAT_PATTERN.pattern})$",
             "examples": ["telegram:-1001234567890", "discord:123456789012345678"]},
}
ID_SCHEMA = {"type": "integer", "minimum": 1}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": sorted(STATUS_OF_CODE)},
                "message": {"type": "string"},
            },
        }},
    }


def _inline(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's $defs into components and point references there."""
    for name, definition in schema.pop("$defs", {}).items():
        definitions[name] = definition
    return _rewrite_refs(schema)


def _rewrite_refs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else
                    _rewrite_refs(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_refs(v) for v in value]
    return value


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    found = []
    for name in PATH_PARAMETER.findall(endpoint.path):
        found.append({"name": name, "in": "path", "required": True,
                      "schema": PATH_SCHEMAS.get(name, ID_SCHEMA)})
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            if "anyOf" in prop:  # optional: str | None → the string form (absent means None)
                prop = {**next(p for p in prop["anyOf"] if p.get("type") != "null"),
                        **{k: v for k, v in prop.items() if k not in ("anyOf", "default")}}
            found.append({"name": name, "in": "query", "required": name in required,
                          "schema": prop})
    return found


def _operation(endpoint: Endpoint, definitions: dict[str, Any]) -> dict[str, Any]:
    success = {"description": "OK", "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": True}}}}
    responses: dict[str, Any] = {str(endpoint.status): success}
    if endpoint.path == "/flattrs" and endpoint.method == "POST":
        responses["200"] = {**success, "description": "Already flattred this month"}
    if endpoint.path == "/bot/members":
        responses["200"] = {**success, "description": "The identity already has a member"}
    # A route's own codes may answer more (402 `debt_outstanding` where money is spent).
    for status in sorted({*ERROR_STATUSES, *(STATUS_OF_CODE[c] for c in endpoint.errors)}):
        responses[str(status)] = {
            "description": "Error", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__module__.rsplit(".", 1)[-1] + "_"
        + endpoint.handler.__name__,
        "summary": endpoint.summary,
        "parameters": _parameters(endpoint),
        "responses": responses,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.errors:
        operation["x-error-codes"] = list(endpoint.errors)
    if endpoint.scope is not None:
        # Alternatives are a list of requirements, any one of which is enough.
        alternatives = [endpoint.scope] if isinstance(endpoint.scope, str) else endpoint.scope
        operation["security"] = [{"bearer": [scope]} for scope in alternatives]
        operation["x-scope"] = endpoint.scope if isinstance(endpoint.scope, str) \
            else list(alternatives)
        if endpoint.chat_user_may:
            operation["x-chat-user-may"] = True
    if endpoint.money:
        operation["parameters"].append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": "The same key and body replay the first answer; another body is 409.",
        })
    if endpoint.body is not None:
        schema = _inline(endpoint.body.model_json_schema(), definitions)
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schema}}}
    return operation


def openapi_document(app: web.Application) -> dict[str, Any]:
    definitions: dict[str, Any] = {"Error": _error_schema()}
    paths: dict[str, Any] = {}
    for endpoint in app[keys.endpoints_key]:
        operations = paths.setdefault(API_PREFIX + endpoint.path, {})
        operations[endpoint.method.lower()] = _operation(endpoint, definitions)
    currency = app[keys.settings_key].currency
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Flattr API",
            "version": "1",
            "description": "Flattr the things you like; your monthly budget is shared among "
                           f"them. Amounts are decimal strings in {currency}.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
