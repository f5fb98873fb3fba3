"""The OpenAPI 3.1 document of every HTTP route the function app serves.

`OPERATIONS` is the single list; `tests/contract/test_function_index.py` checks it against the function
index, so a route cannot be added or changed without its documentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

Json = dict[str, Any]
ROUTE_PREFIX: Final = "/api"


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR: Final = ref("Error")


@dataclass(frozen=True)
class Operation:
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    route: str  # as declared on the function, without the /api prefix
    operation_id: str
    summary: str
    auth: Literal["anonymous", "function", "console"]
    responses: dict[int, tuple[str, Json | None]]
    request: Json | None = None
    query: tuple[tuple[str, str, Json], ...] = ()
    tags: tuple[str, ...] = ()
    request_media: str = "application/json"
    response_media: dict[int, str] = field(default_factory=dict)


OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "health",
        "getHealth",
        "The connector's version and whether storage and Key Vault answer.",
        "anonymous",
        {200: ("Healthy.", ref("Health")), 503: ("A dependency does not answer.", ref("Health"))},
        tags=("meta",),
    ),
    Operation(
        "GET",
        "openapi.json",
        "getOpenApi",
        "This document.",
        "anonymous",
        {200: ("The OpenAPI 3.1 document.", {"type": "object"})},
        tags=("meta",),
    ),
)

SCHEMAS: Final[Json] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_input"]},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The request field at fault, if any."},
                },
            }
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "version", "checks"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "version": {"type": "string"},
            "checks": {
                "type": "object",
                "properties": {"storage": {"type": "string"}, "key_vault": {"type": "string"}},
            },
        },
    },
}


def _path_parameters(route: str) -> list[Json]:
    names = [part[1:-1].split(":")[0] for part in route.split("/") if part.startswith("{")]
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]


def _operation_json(op: Operation) -> Json:
    body: Json = {"operationId": op.operation_id, "summary": op.summary, "tags": list(op.tags)}
    parameters = _path_parameters(op.route) + [
        {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
        for name, text, schema in op.query
    ]
    if parameters:
        body["parameters"] = parameters
    if op.request is not None:
        body["requestBody"] = {"required": True, "content": {op.request_media: {"schema": op.request}}}
    responses: Json = {}
    for status, (text, schema) in sorted(op.responses.items()):
        response: Json = {"description": text}
        if schema is not None:
            media = op.response_media.get(status, "application/json")
            response["content"] = {media: {"schema": schema}}
        responses[str(status)] = response
    body["responses"] = responses
    if op.auth == "function":
        body["security"] = [{"functionKey": []}, {"functionKeyQuery": []}]
    elif op.auth == "console":
        body["security"] = [{"consoleToken": []}, {"functionKey": []}]
    else:
        body["security"] = []
    return body


@cache
def openapi_document() -> Json:
    paths: Json = {}
    for op in OPERATIONS:
        paths.setdefault(f"{ROUTE_PREFIX}/{op.route}", {})[op.method.lower()] = _operation_json(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Microsoft 365 calendar connector",
            "version": "1",
            "description": (
                "The host API of the connector: tenants, staff, appointments, tasks, mail, availability and "
                "the change feed. Host API routes take a function key (`x-functions-key` header or `code` "
                "query parameter). Bad input is answered with a 4xx whose JSON body names the field."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "consoleToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def documented_routes() -> set[tuple[str, str]]:
    """(METHOD, route) pairs, for the index contract test."""
    return {(op.method, op.route) for op in OPERATIONS}
