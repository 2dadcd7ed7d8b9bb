"""An app server for the webhook tests: a small Starlette app under hypercorn's trio
worker, on 127.0.0.1 port 0, in the test's nursery. It checks every request's
signature (as docs/WEBHOOKS.md tells receivers to), keeps what it received, and
answers each callback as the test scripted it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from webhooks import signing

SECRET = "test-webhook-secret"

Answer = Callable[["Received"], Awaitable[Response]]


@dataclass
class Received:
    callback: str
    call_id: str
    body: dict[str, Any]
    signature_ok: bool
    at: float


async def allow(_: Received) -> Response:
    return JSONResponse({"allow": True})


def verdict(**fields: Any) -> Answer:
    async def answer(_: Received) -> Response:
        return JSONResponse(fields)

    return answer


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)
    """By callback name; others are allowed at once."""
    handled: dict[str, Received] = field(default_factory=dict)
    """The calls answered with success, by idempotency id: one entry per id, as an app
    that deduplicates would keep them."""
    changed: trio.Event = field(default_factory=trio.Event)

    def of(self, callback: str) -> list[Received]:
        return [r for r in self.received if r.callback == callback]

    def bodies(self, callback: str) -> list[dict[str, Any]]:
        return [r.body for r in self.of(callback)]

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        ok = signing.verify(SECRET.encode(), request.headers, raw, time.time())
        body = json.loads(raw)
        call = Received(
            request.headers.get(signing.CALLBACK_HEADER, ""),
            request.headers.get(signing.ID_HEADER, ""),
            body,
            ok,
            trio.current_time(),
        )
        self.received.append(call)
        self.changed.set()
        self.changed = trio.Event()
        if not ok:
            return Response("bad signature", status_code=401)
        response = await self.answers.get(call.callback, allow)(call)
        if 200 <= response.status_code < 300:
            self.handled.setdefault(call.call_id, call)
        return response

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])


async def start_receiver(nursery: trio.Nursery) -> Receiver:
    receiver = Receiver()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    binds: list[str] = await nursery.start(partial(serve, receiver.app(), config))  # type: ignore[arg-type]
    receiver.url = f"{binds[0]}/hook"
    return receiver


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
