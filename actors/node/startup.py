"""What an operator reads when a node cannot start: one line naming the cause and
the setting to look at, instead of a traceback (``log.level = "debug"`` shows the
traceback too)."""

from __future__ import annotations

import errno
import importlib.metadata
import socket
import tomllib
from pathlib import Path

import redis

from actors.cluster.identity import NodeRefused
from actors.node.tls import TlsSetupError
from settings import Settings
from storage import DurabilityUnsupported, EmbeddedRedisError
from storage.urls import redact_url

_NO_PASSWORD = ("NOAUTH", "Authentication required", "must be called with the client already")
"""What Redis answers a client that sent no password to a server that wants one."""


def describe_failure(exc: BaseException, settings: Settings) -> str | None:
    """One line for a failure to start, or None for one that is not an operator's to
    fix (a bug: its traceback is shown)."""
    server = settings.server
    redis_url = redact_url(settings.redis.url) if settings.redis.url else "the embedded Redis"
    if isinstance(exc, NodeRefused | EmbeddedRedisError | DurabilityUnsupported | TlsSetupError):
        return str(exc)
    if isinstance(exc, redis.RedisError) and any(sign in str(exc) for sign in _NO_PASSWORD):
        return f"redis.url: {redis_url} requires a password, and the URL gives none"
    if isinstance(exc, redis.AuthenticationError) or (
        isinstance(exc, redis.ResponseError)
        and str(exc).split(" ", 1)[0] in ("NOAUTH", "WRONGPASS", "NOPERM")
    ):
        return f"redis.url: {redis_url} refused this node's credentials: {exc}"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"redis.url: cannot reach {redis_url}: {exc}"
    if isinstance(exc, redis.RedisError):
        return f"redis.url: {redis_url} refused the node's first commands: {exc}"
    where = f"{server.host}:{server.port}"
    if isinstance(exc, socket.gaierror):
        return f"server.host: cannot listen on {where}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.filename is None:
        if exc.errno == errno.EADDRINUSE:
            return f"server.port: cannot listen on {where}: the address is already in use"
        if exc.errno == errno.EACCES:
            return f"server.port: cannot listen on {where}: permission denied"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"server.host: cannot listen on {where}: no such address on this machine"
    if isinstance(exc, OSError) and exc.filename is not None:
        return (
            f"redis.data_dir: cannot use {settings.redis.data_dir!r}:"
            f" {exc.strerror or exc} ({exc.filename})"
        )
    return None


def startup_failure(
    exc: BaseException, settings: Settings
) -> tuple[str | None, BaseException | None]:
    """The one-line description of the first failure in ``exc`` (a group, as trio
    raises them) that an operator can fix, with that failure."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            message, leaf = startup_failure(inner, settings)
            if message is not None:
                return message, leaf
        return None, None
    return describe_failure(exc, settings), exc


def parley_version() -> str:
    try:
        return importlib.metadata.version("parley")
    except importlib.metadata.PackageNotFoundError:  # run from the checkout
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
