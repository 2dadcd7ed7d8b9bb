"""How durable a write must be before its command's result is released to the loop.

With ``redis.durability`` asking for more than Redis gives by itself (an external
Redis: its writes on its disk, or on replicas), the Redis executor ends each batch
with one wait command, ``WAITAOF numlocal numreplicas timeout`` (Redis or Valkey
>= 7.2) or ``WAIT numreplicas timeout``, and releases the batch's results only
once the wait confirms them. One wait per batch, not per command: under load a
batch carries about ninety commands, and they share it.

Redis counts a wait from the connection's last write (its replication offset
after it), so the wait of a batch covers every write made on that connection
before it, those of earlier batches included.

A wait that times out or fails does not undo anything: the batch's writes are in
Redis, and may be lost in the crash they were to be protected from. Their
commands fail with :class:`NotDurable` (a ``redis.TimeoutError``, answered
``UNAVAILABLE``), so nothing is acknowledged that was not confirmed; a resend with
the same client message id finds the stored message and returns its seq once a
later wait confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import redis

Durability = Literal["", "everysec", "always", "replicas", "always_and_replicas"]
"""What an acknowledged write survives (README.md, docs/CLUSTER.md "Durability");
``""`` is the default: ``always`` for the embedded Redis, ``everysec`` for an
external one (whose own ``appendfsync`` then decides)."""


class NotDurable(redis.TimeoutError):
    """The write was applied by Redis but not confirmed durable in time: it may be
    kept or lost. Retry (a send with the same client message id)."""


class DurabilityUnsupported(Exception):
    """The Redis server cannot give the configured durability (checked at start)."""


@dataclass(frozen=True, slots=True)
class DurabilityWait:
    """The wait command sent after each batch, and how to read its reply."""

    local: int
    """``1``: the write must be in the Redis server's AOF on its disk (fsynced)."""
    replicas: int
    """Replicas that must have the write (in their AOF on disk too, with ``local``)."""
    timeout: float
    """Seconds Redis waits before answering with what it has."""

    @property
    def command(self) -> tuple[Any, ...]:
        milliseconds = max(1, round(self.timeout * 1000))
        if self.local:
            return ("WAITAOF", self.local, self.replicas, milliseconds)
        return ("WAIT", self.replicas, milliseconds)

    @property
    def inline(self) -> bool:
        """Whether the wait may travel in the batch's own pipeline. ``WAITAOF`` with
        replicas may not: sent in the same read as the writes, Valkey 9.1 answered it
        only after the replica's next periodic acknowledgement (~1 s later, always);
        sent once the batch's replies are back, in 0.5 ms."""
        return not (self.local and self.replicas)

    def shortfall(self, reply: Any) -> str | None:
        """None if ``reply`` (the wait's answer, or its error) confirms the write;
        else what was missing."""
        if isinstance(reply, Exception):
            return f"{self.command[0]} failed: {reply}"
        if self.local:
            local, replicas = (int(n) for n in reply)
        else:
            local, replicas = 0, int(reply)
        if local < self.local:
            return f"not fsynced to the AOF within {self.timeout:g} s"
        if replicas < self.replicas:
            return (
                f"{replicas} of {self.replicas} replicas confirmed the write "
                f"within {self.timeout:g} s"
            )
        return None


def embedded_appendfsync(durability: Durability) -> str:
    """The embedded Redis' ``appendfsync`` for ``durability``."""
    return "everysec" if durability == "everysec" else "always"


def durability_wait(
    durability: Durability, replicas: int, timeout: float, embedded: bool
) -> DurabilityWait | None:
    """The wait for ``durability``; None where Redis needs none (``everysec``, the
    default, and ``always`` on the embedded Redis, which then runs with
    ``appendfsync always``)."""
    if durability in ("", "everysec") or (durability == "always" and embedded):
        return None
    if durability == "always":
        return DurabilityWait(1, 0, timeout)
    if durability == "replicas":
        return DurabilityWait(0, replicas, timeout)
    return DurabilityWait(1, replicas, timeout)


def check_server(client: redis.Redis, wait: DurabilityWait) -> None:
    """Run the wait once on ``client``: raise :class:`DurabilityUnsupported`, saying
    why, if the server cannot give what it asks for (no ``WAITAOF`` before Redis
    7.2, the AOF off, too few replicas connected). Blocking."""
    try:
        reply = client.execute_command(*wait.command)  # type: ignore[no-untyped-call]
    except redis.ResponseError as exc:
        text = str(exc)
        if "unknown command" in text.lower():
            version = _version(client)
            raise DurabilityUnsupported(
                f"redis.durability needs {wait.command[0]}, which this Redis ({version}) "
                "does not have: it needs Redis or Valkey 7.2 or later. With an older "
                "Redis, set 'appendfsync always' on it and keep redis.durability = "
                "'everysec' (Parley cannot check it then)"
            ) from None
        raise DurabilityUnsupported(
            f"redis.durability: {wait.command[0]} refused: {text}"
        ) from None
    missing = wait.shortfall(reply)
    if missing is not None:
        raise DurabilityUnsupported(
            f"redis.durability: the first {wait.command[0]} failed: {missing}; "
            "start the node once the Redis server can confirm writes"
        )


def _version(client: redis.Redis) -> str:
    try:
        info = client.info("server")
    except redis.RedisError:
        return "version unknown"
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    return f"Redis {info.get('redis_version', 'unknown')}"
