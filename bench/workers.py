"""Client processes: each runs one event loop driving many sessions.

The loop is trio, or asyncio on uvloop for the picows client (``Loop``); a job
is an async function for that loop, and the link's waits work on either.

The bench process starts the workers, waits until every one is ready, then
signals ``go`` so they start together. Workers report progress counts, *marks*
(a named point every worker must reach, e.g. "all my clients are signed in")
and finally one result dict. The bench process can answer with further signals
(e.g. ``release`` to end an idle hold). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import queue
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.context import SpawnProcess
from typing import Any, Literal

import trio

from bench.progress import ProgressBar
from bench.target import raise_open_file_limit

READY_TIMEOUT_S = 60.0
PROGRESS_FLUSH_S = 0.1
POLL_S = 0.1
JOIN_TIMEOUT_S = 10.0

_context = multiprocessing.get_context("spawn")

Loop = Literal["trio", "asyncio"]
"""The event loop a job runs on: trio, or asyncio (on uvloop where it is installed)."""


class WorkerFailed(RuntimeError):
    """A client process crashed or did not finish in time."""


class WorkerLink:
    """The worker's side: progress, marks and waiting for the bench process's signals."""

    def __init__(
        self,
        worker_id: int,
        outbox: multiprocessing.Queue[tuple[Any, ...]],
        signals: dict[str, multiprocessing.synchronize.Event],
        loop: Loop = "trio",
    ) -> None:
        self.worker_id = worker_id
        self.loop = loop
        self._outbox = outbox
        self._signals = signals
        self._done = 0
        self._reported = 0

    def progress(self, count: int = 1) -> None:
        self._done += count

    def flush_progress(self) -> None:
        if self._done != self._reported:
            self._reported = self._done
            self._outbox.put(("progress", self.worker_id, self._done))

    def mark(self, name: str) -> None:
        self.flush_progress()
        self._outbox.put(("mark", self.worker_id, name))

    async def wait_for(self, signal: str, timeout: float) -> bool:
        """Wait (in a thread) for the bench process's signal; False on timeout."""
        event = self._signals[signal]
        if self.loop == "asyncio":
            return await asyncio.get_running_loop().run_in_executor(None, event.wait, timeout)
        return await trio.to_thread.run_sync(event.wait, timeout, abandon_on_cancel=True)


JobFunction = Callable[[Any, WorkerLink], Awaitable[dict[str, Any]]]
"""A module-level async function (so it can be sent to a spawned process), for the
pool's loop."""


async def _run_job_asyncio(job: JobFunction, payload: Any, link: WorkerLink) -> dict[str, Any]:
    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(PROGRESS_FLUSH_S)
            link.flush_progress()

    flusher = asyncio.create_task(flush_forever())
    try:
        result = await job(payload, link)
    finally:
        flusher.cancel()
    link.flush_progress()
    return result


def _run_asyncio(job: JobFunction, payload: Any, link: WorkerLink) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # the bench extra is not installed: plain asyncio
        return asyncio.run(_run_job_asyncio(job, payload, link))
    return uvloop.run(_run_job_asyncio(job, payload, link))


async def _run_job(job: JobFunction, payload: Any, link: WorkerLink) -> dict[str, Any]:
    async def flush_forever() -> None:
        while True:
            await trio.sleep(PROGRESS_FLUSH_S)
            link.flush_progress()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flush_forever)
        result = await job(payload, link)
        nursery.cancel_scope.cancel()
    link.flush_progress()
    return result


def _process_main(
    job: JobFunction,
    worker_id: int,
    payload: Any,
    outbox: multiprocessing.Queue[tuple[Any, ...]],
    signals: dict[str, multiprocessing.synchronize.Event],
    loop: Loop,
) -> None:
    raise_open_file_limit()
    link = WorkerLink(worker_id, outbox, signals, loop)
    try:
        outbox.put(("ready", worker_id))
        if loop == "asyncio":
            result = _run_asyncio(job, payload, link)
        else:
            result = trio.run(_run_job, job, payload, link)
        outbox.put(("result", worker_id, result))
    except BaseException:
        outbox.put(("error", worker_id, traceback.format_exc()))


class WorkerPool:
    """Start ``len(payloads)`` client processes running ``job`` on ``loop``; use as a
    context manager."""

    def __init__(
        self,
        job: JobFunction,
        payloads: Sequence[Any],
        signals: Sequence[str] = ("go",),
        loop: Loop = "trio",
    ) -> None:
        self._job = job
        self._loop: Loop = loop
        self._payloads = list(payloads)
        self._outbox: multiprocessing.Queue[tuple[Any, ...]] = _context.Queue()
        self._signals = {name: _context.Event() for name in signals}
        self._processes: list[SpawnProcess] = []
        self._early: list[tuple[Any, ...]] = []
        """Messages that came while waiting for the workers to start (a quick worker's
        progress or marks): ``collect`` takes them first."""
        self.signalled_at: dict[str, float] = {}

    def __enter__(self) -> WorkerPool:
        for worker_id, payload in enumerate(self._payloads):
            process = _context.Process(
                target=_process_main,
                args=(self._job, worker_id, payload, self._outbox, self._signals, self._loop),
                name=f"bench-worker-{worker_id}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        for event in self._signals.values():
            event.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for process in self._processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(JOIN_TIMEOUT_S)

    def _wait_ready(self) -> None:
        waiting = set(range(len(self._payloads)))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while waiting:
            message = self._next(deadline, "start")
            if message[0] == "ready":
                waiting.discard(message[1])
            elif message[0] == "error":
                raise WorkerFailed(f"worker {message[1]} failed to start:\n{message[2]}")
            else:
                self._early.append(message)

    def _next(self, deadline: float, stage: str) -> tuple[Any, ...]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerFailed(f"client processes did not {stage} in time")
            try:
                return self._outbox.get(timeout=min(POLL_S, remaining))
            except queue.Empty:
                if not any(p.is_alive() for p in self._processes) and self._outbox.empty():
                    raise WorkerFailed(f"all client processes exited before they {stage}") from None

    def signal(self, name: str) -> float:
        """Send a signal to every worker; returns when (time.monotonic)."""
        now = time.monotonic()
        self.signalled_at[name] = now
        self._signals[name].set()
        return now

    def collect(
        self,
        timeout: float,
        bar: ProgressBar | None = None,
        on_marked: Callable[[str], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        bar_note: Callable[[], str] | None = None,
    ) -> list[dict[str, Any]]:
        """Wait for every worker's result, feeding the progress bar and callbacks.

        ``on_marked(name)`` runs once all workers have reached mark ``name``;
        ``on_tick()`` runs about ten times a second.
        """
        results: dict[int, dict[str, Any]] = {}
        progress: dict[int, int] = {}
        marks: dict[str, set[int]] = {}
        count = len(self._payloads)
        deadline = time.monotonic() + timeout
        while len(results) < count:
            try:
                message = self._early.pop(0) if self._early else self._outbox.get(timeout=POLL_S)
            except queue.Empty:
                message = ("idle",)
                if time.monotonic() > deadline:
                    raise WorkerFailed(
                        f"client processes did not finish in {timeout:.0f} s"
                    ) from None
                if not any(p.is_alive() for p in self._processes) and self._outbox.empty():
                    raise WorkerFailed("client processes exited without a result") from None
            kind = message[0]
            if kind == "progress":
                progress[message[1]] = message[2]
            elif kind == "mark":
                reached = marks.setdefault(message[2], set())
                reached.add(message[1])
                if len(reached) == count and on_marked is not None:
                    on_marked(message[2])
            elif kind == "result":
                results[message[1]] = message[2]
            elif kind == "error":
                raise WorkerFailed(f"client process {message[1]} failed:\n{message[2]}")
            if on_tick is not None:
                on_tick()
            if bar is not None:
                bar.update(sum(progress.values()), bar_note() if bar_note else "")
        if bar is not None:
            bar.update(sum(progress.values()))
        return [results[i] for i in range(count)]


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt into ``parts`` nearly equal slices (some may be empty)."""
    return [list(items[i::parts]) for i in range(parts)]
