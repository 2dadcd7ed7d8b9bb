"""Redis commands from every task of the loop, sent to Redis as one pipeline per tick.

Tasks on the node's trio loop call :class:`PipelinedRedis` as they would redis-py
(``await redis.hget(key, field)``: it has redis-py's command methods). Each call
queues its command and parks the task. Once per loop tick, after every task that
was runnable has had its turn, the queued commands go as one batch to the
:class:`RedisExecutor`, a pykka ``ThreadingActor`` that owns the Redis connection
and runs the batch as one redis-py pipeline (not a ``MULTI``). The results come
back to the loop in one callback, which wakes each task with its own result.

Why: a blocking call per command cost a thread hop and a round trip each, half
of every message's CPU (docs/ARCHITECTURE.md, docs/BENCHMARKS.md); under load a batch
carries about ninety commands, for one round trip and one hand-back.

- A command refused by Redis (a Lua error, a wrong type) fails alone: the others
  of its batch get their own results.
- A batch that fails as a whole (the connection was lost and redis-py's retries
  gave up) fails every command in it with that error, a ``redis.ConnectionError``
  or ``redis.TimeoutError`` that callers map to ``UNAVAILABLE``.
- At most one batch is with the executor at a time: commands queued meanwhile
  make the next one, so batches grow with load instead of queueing up.
- ``pipeline()`` groups commands that must travel together; with
  ``transaction=True`` they run as one ``MULTI``/``EXEC`` after the batch's plain
  commands.
- With a durability wait (``storage.durability``: ``WAITAOF`` or ``WAIT``), the
  batch ends with it, in the same pipeline when the batch has no transaction (and
  the wait allows it, ``DurabilityWait.inline``), and
  its results are released only once the wait confirms them; if it does not, every
  command of the batch that succeeded fails with ``NotDurable`` instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import outcome
import pykka
import redis
import trio
from redis.commands.core import CoreCommands
from redis.exceptions import NoScriptError

from metrics.histogram import LATENCY_BUCKETS_S, Buckets
from storage.durability import DurabilityWait, NotDurable

log = logging.getLogger(__name__)

_Command = tuple[tuple[Any, ...], dict[str, Any]]
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_STOPPED = "the pipelined Redis client is not running"


@dataclass(eq=False, slots=True)
class _Pending:
    """One caller's commands: one command, or a group from ``pipeline()``."""

    commands: list[_Command]
    transaction: bool
    single: bool
    task: trio.lowlevel.Task | None = None
    result: outcome.Outcome[Any] | None = None
    on_error: Callable[[Exception], None] | None = None
    """For a detached command: what to tell of its failure."""


@dataclass(frozen=True, eq=False, slots=True)
class _Batch:
    items: list[_Pending]
    done: Any
    """Called on the loop, through the trio token, once every item has its result."""


class BatchClient(Protocol):
    """What the executor needs of its client: a ``redis.Redis`` (one server) or a
    ``storage.cluster.ClusterRouter`` (a Redis Cluster, a pipeline per master)."""

    def pipeline(self, transaction: bool = ...) -> Any: ...

    def close(self) -> None: ...


class RedisExecutor(pykka.ThreadingActor):
    """Owns the Redis connection; runs each batch it is told as one pipeline, in its
    own thread, and hands the results back to the loop."""

    use_daemon_thread = True

    def __init__(
        self,
        client: BatchClient,
        trio_token: trio.lowlevel.TrioToken,
        scripts: Sequence[str] = (),
        wait: DurabilityWait | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._token = trio_token
        self._scripts = tuple(scripts)
        self._wait = wait
        self.script_loads = 0
        """How often the scripts were loaded into Redis (at start, after a restart of
        Redis made it forget them)."""
        self.unconfirmed_batches = 0
        """Batches whose durability wait did not confirm their writes."""

    def on_receive(self, message: Any) -> None:
        batch: _Batch = message
        plain = [item for item in batch.items if not item.transaction]
        transactions = [item for item in batch.items if item.transaction]
        shortfall: str | None = None
        waited = False
        if plain:
            inline = self._wait if self._wait and self._wait.inline and not transactions else None
            waited, shortfall = self._run_plain(plain, inline)
        for item in transactions:
            self._run_transaction(item)
        if self._wait is not None and not waited:
            shortfall = self._wait_alone(self._wait)
        if shortfall is not None:
            self._unconfirmed(batch.items, shortfall)
        with contextlib.suppress(trio.RunFinishedError):  # else nobody waits for them
            self._token.run_sync_soon(batch.done)

    def _run_plain(
        self, items: list[_Pending], wait: DurabilityWait | None
    ) -> tuple[bool, str | None]:
        """Run the items' commands as one pipeline, ``wait`` last. Returns whether the
        wait ran after every write of the items, and what it found missing."""
        sent = [command for item in items for command in item.commands]
        pipe = self._client.pipeline(transaction=False)
        for args, options in sent:
            pipe.execute_command(*args, **options)
        if wait is not None:
            pipe.execute_command(*wait.command)
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            for item in items:
                item.result = outcome.Error(exc)
            return wait is not None, None  # nothing to release, nothing to confirm
        shortfall = None if wait is None else wait.shortfall(results.pop())
        forgotten = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        rerun = False
        if forgotten:
            rerun = self._after_scripts_were_forgotten(items, sent, results, forgotten)
        position = 0
        for item in items:
            mine = results[position : position + len(item.commands)]
            position += len(item.commands)
            item.result = _outcome_of(mine, item.single)
        # Commands run again came after the wait: they need one of their own.
        return wait is not None and not rerun, shortfall

    def _wait_alone(self, wait: DurabilityWait) -> str | None:
        pipe = self._client.pipeline(transaction=False)
        pipe.execute_command(*wait.command)
        try:
            reply = pipe.execute(raise_on_error=False)[0]
        except redis.RedisError as exc:
            reply = exc
        return wait.shortfall(reply)

    def _unconfirmed(self, items: list[_Pending], shortfall: str) -> None:
        """The wait did not confirm the batch: what succeeded fails with NotDurable."""
        self.unconfirmed_batches += 1
        log.warning("a batch of writes was not confirmed durable: %s", shortfall)
        error = NotDurable(
            f"the write was not confirmed durable ({shortfall}); it may have been stored"
        )
        for item in items:
            if isinstance(item.result, outcome.Value):
                item.result = outcome.Error(error)

    def _after_scripts_were_forgotten(
        self, items: list[_Pending], sent: list[_Command], results: list[Any], forgotten: list[int]
    ) -> bool:
        """Redis answered ``NOSCRIPT``: its scripts were flushed (a restarted Redis is
        handled by the connections, which load them on connect). Load every script;
        run again the commands that were alone in their item (Redis ran none of
        them). A command of a group fails with the error instead: running it again
        after the rest of its group would change the group's order. Returns whether
        commands were run again."""
        try:
            self.load_scripts()
        except redis.RedisError as exc:
            log.warning("could not load the scripts again: %s", exc)
            return False
        singles: list[int] = []
        position = 0
        for item in items:
            if item.single and position in forgotten:
                singles.append(position)
            position += len(item.commands)
        if not singles:
            return False
        again = self._client.pipeline(transaction=False)
        for index in singles:
            args, options = sent[index]
            again.execute_command(*args, **options)
        try:
            rerun = again.execute(raise_on_error=False)
        except redis.RedisError as exc:
            rerun = [exc] * len(singles)
        for index, result in zip(singles, rerun, strict=True):
            results[index] = result
        return True

    def load_scripts(self) -> None:
        """Load every script (``SCRIPT LOAD``), in one pipeline."""
        if not self._scripts:
            return
        pipe = self._client.pipeline(transaction=False)
        for text in self._scripts:
            pipe.script_load(text)
        pipe.execute()
        self.script_loads += 1

    def _run_transaction(self, item: _Pending) -> None:
        pipe = self._client.pipeline(transaction=True)
        for args, options in item.commands:
            pipe.execute_command(*args, **options)
        try:
            item.result = outcome.Value(pipe.execute())
        except redis.RedisError as exc:
            item.result = outcome.Error(exc)


def _outcome_of(results: list[Any], single: bool) -> outcome.Outcome[Any]:
    if single:
        value = results[0]
        return outcome.Error(value) if isinstance(value, Exception) else outcome.Value(value)
    for value in results:
        if isinstance(value, Exception):
            return outcome.Error(value)  # as redis-py's pipeline raises the first error
    return outcome.Value(results)


class PipelinedRedis(CoreCommands):
    """redis-py's commands as awaitables, auto-pipelined. Used on the trio loop only.

    ``run`` must be running (in the node's nursery) for any command to be sent:
    commands awaited before it starts wait for it; once it has ended, queued and
    later commands fail with ``redis.ConnectionError`` instead of waiting forever.
    The executor is given here or to ``run`` (``storage.Storage`` builds its stores
    before the loop runs and starts the executor in its own ``run``).
    """

    _event_dispatcher: Any = None
    _is_async_client: Literal[True] = True
    """Selects redis-py's awaitable overloads of each command for type checking."""

    def __init__(self, executor: pykka.ActorRef[RedisExecutor] | None = None) -> None:
        self._executor = executor
        self._queue: list[_Pending] = []
        self._in_flight = False
        self._stopped = False
        self._flusher: trio.lowlevel.Task | None = None
        self._flusher_parked = False
        self.batches = 0
        """Batches sent to the executor so far."""
        self.commands = 0
        """Commands sent so far."""
        self.detached_failures = 0
        """Commands of ``send_detached`` that failed."""
        self.batch_sizes = Buckets(BATCH_SIZE_BUCKETS)
        """Commands per batch."""
        self.round_trips = Buckets(LATENCY_BUCKETS_S)
        """Seconds from handing a batch to the executor until its results are back on
        the loop (Redis' round trip, the executor thread's work and the hand-back)."""
        self._sent_at = 0.0

    # -- what callers use ----------------------------------------------------------

    def execute_command(self, *args: Any, **options: Any) -> Awaitable[Any]:
        """Queue one command; what redis-py's command methods call."""
        return self._submit(_Pending([(args, options)], transaction=False, single=True))

    def send_detached(
        self, *args: Any, on_error: Callable[[Exception], None] | None = None
    ) -> None:
        """Queue one command that nobody waits for (a publish whose loss the protocol
        tolerates). A failure is counted in ``detached_failures`` and given to
        ``on_error`` (on the loop), or else logged."""
        self._enqueue(_Pending([(args, {})], transaction=False, single=True, on_error=on_error))

    def pipeline(self, transaction: bool = False) -> CommandGroup:
        """Commands that travel together; ``await group.execute()`` runs them."""
        return CommandGroup(self, transaction)

    # -- the loop side -------------------------------------------------------------

    async def run(
        self,
        executor: pykka.ActorRef[RedisExecutor] | None = None,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Send queued commands to the executor (``executor``, else the constructor's),
        a batch per tick; runs until cancelled."""
        if executor is not None:
            self._executor = executor
        if self._executor is None:
            raise ValueError("PipelinedRedis.run needs an executor")
        self._stopped = False
        self._flusher = trio.lowlevel.current_task()
        task_status.started()
        try:
            while True:
                if not self._queue or self._in_flight:
                    self._flusher_parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._abort_parked)
                    continue
                # Let every task made runnable in this tick queue its commands first.
                await trio.lowlevel.cancel_shielded_checkpoint()
                items, self._queue = self._queue, []
                self._in_flight = True
                self.batches += 1
                size = sum(len(item.commands) for item in items)
                self.commands += size
                self.batch_sizes.observe(size)
                self._sent_at = time.perf_counter()
                self._executor.tell(_Batch(items, functools.partial(self._deliver, items)))
        finally:
            self._flusher = None
            self._flusher_parked = False
            self._stopped = True
            items, self._queue = self._queue, []
            for item in items:
                self._fail(item, redis.ConnectionError(_STOPPED))

    def _submit(self, item: _Pending) -> Awaitable[Any]:
        return _Wait(self, item)

    def _enqueue(self, item: _Pending) -> None:
        if self._stopped:  # only a detached command gets here: a waiter checked first
            self._fail(item, redis.ConnectionError(_STOPPED))
            return
        self._queue.append(item)
        self._wake_flusher()

    def _fail(self, item: _Pending, error: Exception) -> None:
        """Fail an item that will never be sent (``run`` has ended)."""
        task, item.task = item.task, None
        if task is not None:
            trio.lowlevel.reschedule(task, outcome.Error(error))
            return
        self.detached_failures += 1
        if item.on_error is not None:
            item.on_error(error)
        else:
            log.warning("%s failed: %s", item.commands[0][0][0], error)

    def _wake_flusher(self) -> None:
        if self._flusher_parked and self._flusher is not None:
            self._flusher_parked = False
            trio.lowlevel.reschedule(self._flusher)

    def _abort_parked(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        # Cancelled: trio reschedules the flusher itself, so nothing may wake it too.
        self._flusher_parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    def _deliver(self, items: list[_Pending]) -> None:
        self._in_flight = False
        self.round_trips.observe(time.perf_counter() - self._sent_at)
        for item in items:
            task, item.task = item.task, None
            if task is not None:
                assert item.result is not None
                trio.lowlevel.reschedule(task, item.result)
            elif isinstance(item.result, outcome.Error):
                self.detached_failures += 1
                error = item.result.error
                if item.on_error is not None and isinstance(error, Exception):
                    item.on_error(error)
                else:
                    log.warning("%s failed: %s", item.commands[0][0][0], error)
        if self._queue:
            self._wake_flusher()


@dataclass(eq=False, slots=True)
class _Wait:
    """The awaitable a command returns: queues it when awaited, parks the task until
    its result comes back. A cancelled waiter leaves its command to run; the result
    is dropped."""

    redis: PipelinedRedis
    item: _Pending

    def __await__(self) -> Generator[Any, None, Any]:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        item = self.item
        if self.redis._stopped:
            await trio.lowlevel.checkpoint()
            raise redis.ConnectionError(_STOPPED)
        item.task = trio.lowlevel.current_task()
        self.redis._enqueue(item)

        def abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
            item.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)


class CommandGroup(CoreCommands):
    """Commands collected to run together (``PipelinedRedis.pipeline()``): in order and
    contiguous in one batch, or as a ``MULTI``/``EXEC`` with ``transaction``. Command
    methods only record; their results come from ``execute``."""

    _event_dispatcher: Any = None
    _is_async_client: Literal[False] = False

    def __init__(self, redis: PipelinedRedis, transaction: bool) -> None:
        self.redis = redis
        self.transaction = transaction
        self._commands: list[_Command] = []

    def execute_command(self, *args: Any, **options: Any) -> CommandGroup:
        self._commands.append((args, options))
        return self

    def __len__(self) -> int:
        return len(self._commands)

    async def execute(self) -> list[Any]:
        """Every command's result, in order; raises the first command error."""
        if not self._commands:
            return []
        commands, self._commands = self._commands, []
        result: list[Any] = await self.redis._submit(
            _Pending(commands, transaction=self.transaction, single=False)
        )
        return result


def start_executor(
    client: BatchClient,
    trio_token: trio.lowlevel.TrioToken,
    scripts: Sequence[str] = (),
    wait: DurabilityWait | None = None,
) -> pykka.ActorRef[RedisExecutor]:
    """Start the executor actor (its own thread) for ``client``; ``scripts`` are the
    Lua texts that callers run by SHA1 (``EVALSHA``), loaded again whenever Redis has
    forgotten them; ``wait`` ends every batch (``storage.durability``)."""
    return RedisExecutor.start(client, trio_token, scripts, wait)
