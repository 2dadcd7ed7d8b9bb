"""Answering a command: its reply, or its typed error. Shared by every actor kind;
every function runs in the calling actor's task."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from actors.runtime.messages import Command
from actors.runtime.metrics import OK, ActorMetrics
from protocol import messages as m
from protocol.codec import encode_server_message
from protocol.errors import ErrorCode, ProtocolError
from storage.durability import NotDurable
from storage.errors import storage_unavailable

log = logging.getLogger(__name__)

Handler = Callable[[Command], Awaitable[m.Reply | None]]


def error_frame(
    rid: int,
    code: ErrorCode,
    message: str,
    app_code: int = 0,
    app_message: str = "",
    retry_after_ms: int | None = None,
) -> bytes:
    return encode_server_message(
        m.Error(
            rid=rid,
            code=int(code),
            name=code.name,
            message=message,
            app_code=app_code,
            app_message=app_message,
            retry_after_ms=retry_after_ms,
        )
    )


def is_sign_in(request: m.Request) -> bool:
    return isinstance(request, m.Login | m.TokenLogin)


def refuse(
    command: Command,
    code: ErrorCode,
    message: str,
    app_code: int = 0,
    app_message: str = "",
    retry_after_ms: int | None = None,
) -> None:
    """Answer ``command`` with a typed error."""
    request = command.request
    frame = error_frame(request.rid, code, message, app_code, app_message, retry_after_ms)
    command.session.outbox.reply(request.rid, frame, is_sign_in(request))


async def answer(
    command: Command,
    handler: Handler | None,
    on_failure: Callable[[], None] | None = None,
    metrics: ActorMetrics | None = None,
) -> bool:
    """Run a command's handler and send its reply or typed error; returns whether the
    command succeeded (False: it was answered with a typed error). ``on_failure`` runs
    when storage was unreachable or the handler failed unexpectedly (e.g. to drop
    state the actor holds, so it is reloaded). ``metrics`` counts the command by its
    result and how long it took."""
    request = command.request
    started = time.perf_counter()
    result = OK
    try:
        if handler is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_COMMAND, f"{type(request).__name__} is not handled here"
            )
        reply = await handler(command)
    except ProtocolError as exc:
        result = exc.code.name
        refuse(command, exc.code, exc.message, exc.app_code, exc.app_message, exc.retry_after_ms)
    except NotDurable as exc:
        result = ErrorCode.UNAVAILABLE.name
        log.warning("%s not confirmed durable: %s", type(request).__name__, exc)
        if on_failure is not None:
            on_failure()
        refuse(
            command,
            ErrorCode.UNAVAILABLE,
            "storage did not confirm the write in time; it may have taken effect: "
            "retry (a send with the same client_msg_id)",
        )
    except Exception as exc:
        if on_failure is not None:
            on_failure()
        if storage_unavailable(exc):
            result = ErrorCode.UNAVAILABLE.name
            log.warning("storage unavailable for %s: %s", type(request).__name__, exc)
            refuse(command, ErrorCode.UNAVAILABLE, "storage temporarily unavailable")
        else:
            result = ErrorCode.INTERNAL.name
            log.exception("%s failed", type(request).__name__)
            refuse(command, ErrorCode.INTERNAL, "internal server error")
    else:
        if reply is not None:
            command.session.outbox.reply(request.rid, encode_server_message(reply))
    if metrics is not None:
        metrics.handled(type(request), result, time.perf_counter() - started)
    return result is OK
