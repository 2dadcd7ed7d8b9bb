"""The server API's route table entries, and how one becomes an endpoint: bearer
check, path parameters and JSON body decoded and validated with msgspec, the handler,
and the reply or typed error as JSON. The same entries generate the OpenAPI document
(``api.openapi``), so the two cannot disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import CHALLENGE, check_bearer
from api.context import ApiContext
from api.errors import error_response, refusal
from protocol.errors import ErrorCode, ProtocolError

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (a batch import of 1,000 users fits easily)."""

Handler = Callable[[ApiContext, Any, dict[str, str]], Awaitable[msgspec.Struct]]
"""(context, decoded body or None, validated path parameters) -> the answer."""


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    """Under ``PREFIX``, with ``{name}`` path parameters (Starlette's and OpenAPI's form)."""
    handler: Handler
    summary: str
    response: type[msgspec.Struct]
    body: type[msgspec.Struct] | None = None
    params: tuple[tuple[str, Any], ...] = ()
    """Each path parameter's name and type (validated like a body field)."""
    status: int = 200
    errors: tuple[ErrorCode, ...] = ()
    """The refusals this route can answer with, besides those every route can."""
    tag: str = ""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


COMMON_ERRORS = (
    ErrorCode.NOT_AUTHENTICATED,
    ErrorCode.BAD_FRAME,
    ErrorCode.INVALID_FIELD,
    ErrorCode.INTERNAL,
    ErrorCode.UNAVAILABLE,
)
"""What any route may answer: no or a wrong secret, an unreadable or invalid body,
and the server's own failures."""


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProtocolError(ErrorCode.BAD_FRAME, f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint(route: ApiRoute, context: ApiContext) -> Callable[[Request], Awaitable[Response]]:
    decoder = msgspec.json.Decoder(route.body) if route.body is not None else None
    encoder = msgspec.json.Encoder()

    async def run(request: Request) -> Response:
        try:
            check_bearer(request, context.api_secrets)
        except ProtocolError as exc:
            return error_response(exc.code, exc.message, CHALLENGE)
        try:
            path: dict[str, str] = {}
            for name, type_ in route.params:
                try:
                    path[name] = msgspec.convert(request.path_params[name], type_)
                except msgspec.ValidationError as exc:
                    raise ProtocolError(ErrorCode.INVALID_FIELD, f"{name}: {exc}") from None
            body = None
            if decoder is not None:
                raw = await _read_body(request)
                try:
                    body = decoder.decode(raw)
                except msgspec.ValidationError as exc:
                    raise ProtocolError(ErrorCode.INVALID_FIELD, str(exc)) from None
                except msgspec.DecodeError as exc:
                    raise ProtocolError(ErrorCode.BAD_FRAME, f"not a JSON body: {exc}") from None
            answer = await route.handler(context, body, path)
        except ProtocolError as exc:
            return refusal(exc)
        return Response(encoder.encode(answer), route.status, media_type="application/json")

    return run


def starlette_routes(table: Sequence[ApiRoute], context: ApiContext) -> list[Route]:
    return [
        Route(PREFIX + r.path, endpoint(r, context), methods=[r.method], name=r.operation_id)
        for r in table
    ]
