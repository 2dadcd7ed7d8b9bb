"""Serving the HTTP app with hypercorn's trio worker, in the node's nursery and on its
event loop (the API's handlers tell actors directly, as sessions do)."""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import Framework

GRACEFUL_TIMEOUT_S = 2.0
"""How long requests in progress get to finish when the listener stops."""

_server_log = logging.getLogger("api.hypercorn")
# hypercorn logs "Running on ... (CTRL + C to quit)" at info; the node prints its own line.
_server_log.setLevel(logging.WARNING)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_http(
    app: Framework,
    host: str,
    port: int,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on host:port until ``stop`` is set, then let requests in progress
    finish (at most ``GRACEFUL_TIMEOUT_S``). ``task_status`` gets the bound URL, e.g.
    ``http://127.0.0.1:8081`` (port 0 picks a free port)."""
    config = Config()
    config.bind = [_bind(host, port)]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = None
    config.errorlog = _server_log
    config.include_server_header = False
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(
                app, config, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        task_status.started(binds[0])
