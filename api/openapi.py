"""The OpenAPI 3 document of the server API, generated from the route table
(``api.routes.TABLE``) and the msgspec schemas of its bodies: served at
``/api/v1/openapi.json``."""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError, status_of
from api.routing import COMMON_ERRORS, PREFIX, ApiRoute
from protocol.errors import ErrorCode

REF = "#/components/schemas/{name}"
JSON = "application/json"


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _errors(route: ApiRoute) -> dict[str, Any]:
    by_status: dict[int, list[ErrorCode]] = defaultdict(list)
    for code in dict.fromkeys((*COMMON_ERRORS, *route.errors)):
        by_status[status_of(code)].append(code)
    error_schema = {"$ref": REF.format(name=ApiError.__name__)}
    return {
        str(status): {
            "description": ", ".join(f"{c.name} ({int(c)})" for c in codes),
            "content": _content(error_schema),
        }
        for status, codes in sorted(by_status.items())
    }


def document(table: Sequence[ApiRoute]) -> dict[str, Any]:
    types: list[Any] = [ApiError]
    for route in table:
        types.append(route.response)
        if route.body is not None:
            types.append(route.body)
    types = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    ref_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for route in table:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "description": inspect.getdoc(route.handler) or "",
            "tags": [route.tag] if route.tag else [],
            "security": [{"bearer": []}],
            "responses": {
                str(route.status): {
                    "description": route.summary,
                    "content": _content(ref_of[route.response]),
                },
                **_errors(route),
            },
        }
        if route.params:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": msgspec.json.schema(t)}
                for name, t in route.params
            ]
        if route.body is not None:
            operation["requestBody"] = {"required": True, "content": _content(ref_of[route.body])}
        paths[PREFIX + route.path][route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Parley server API",
            "version": "1",
            "description": "For app backends: users, tokens, sessions, messages and groups"
            " (docs/SERVER_API.md). Errors carry the wire protocol's error codes.",
        },
        "paths": dict(paths),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the secrets of http.api_secrets",
                }
            },
        },
    }


def openapi_endpoint(table: Sequence[ApiRoute]) -> Any:
    body = msgspec.json.encode(document(table))

    async def openapi(request: Request) -> Response:
        return Response(body, 200, media_type=JSON)

    return openapi
