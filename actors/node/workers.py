"""``parley serve --workers N``: N node processes on one port and one store.

The supervising process runs no node itself. It

- **reserves the port**: it binds (without listening) a socket with ``SO_REUSEPORT``
  on ``server.host``/``server.port`` (port 0 picks one), so the port stays this
  service's while workers come and go, and a process that does not ask for
  ``SO_REUSEPORT`` cannot take it. Each worker listens on that port with
  ``server.reuse_port`` set; the kernel spreads incoming connections over the
  listening workers by a hash of the connection, and only over the live ones, so
  while a worker is down its share goes to the others;
- **owns the store**: without ``redis.url`` it starts the embedded Redis (its data
  directory locked by this process) and gives every worker its URL; being the only
  user of that Redis, it first removes the node records an earlier run left there,
  as a single node does;
- **runs the workers**: each is ``server.py serve`` with the same command line plus
  the port, the Redis URL, a node id of its own (``<node_id>-<i>``, ``node_id``
  random when not set) and ``server.reuse_port``; with the HTTP listener on, worker
  ``i`` listens on ``http.port + i - 1`` (each its own). A worker is a full cluster
  node.
  Its node id stays the same across restarts, so a restarted worker holds its
  leases again at once rather than after ``cluster.lease_time``;
- **restarts a worker that dies**, after 0.25 s, doubling up to 30 s while it keeps
  dying (the back-off starts over once a worker has stayed up 30 s);
- **stops them all on SIGTERM or SIGINT**: each worker gets SIGTERM and runs its own
  graceful shutdown; a worker still running after ``STOP_TIMEOUT`` is killed. Then
  the embedded Redis is stopped.

Workers run in sessions of their own (a Ctrl-C at the terminal reaches the
supervisor alone, which stops them in order), and are started with a parent-death
signal, so they end with the supervisor however it ends.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

import trio

from actors.node.startup import parley_version
from settings import Settings
from storage import EmbeddedRedis, Storage
from storage.embedded import die_with_parent, how_it_ended
from storage.urls import redact_url

log = logging.getLogger(__name__)

RESTART_DELAY_FIRST = 0.25
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 30.0
"""A worker that stayed up this long starts the back-off over when it dies."""
STOP_TIMEOUT = 30.0
"""Seconds the workers get, together, for their graceful shutdown (each needs at most
about 15: sessions 3 s, actors and deregistration 12 s)."""
POLL_INTERVAL = 0.05
LISTENING = "parley listening on "
STOPPED = "parley stopped"


class WorkersError(RuntimeError):
    """The workers could not be started (port taken, store not available)."""


@dataclass
class Worker:
    """One worker slot: its node id stays, its process is replaced when it dies."""

    index: int
    node_id: str
    process: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    delay: float = RESTART_DELAY_FIRST
    restarts: int = 0
    listening: threading.Event = field(default_factory=threading.Event)
    """Set by the thread reading the worker's output once it listens."""
    serving: bool = False


class WorkerSupervisor:
    """Run ``count`` workers of ``command`` (the node's own command line) until
    SIGTERM or SIGINT; ``run`` returns the exit status."""

    def __init__(self, settings: Settings, count: int, command: Sequence[str]) -> None:
        self._settings = settings
        self._command = list(command)
        base = settings.server.node_id or f"node-{secrets.token_hex(4)}"
        self.workers = [Worker(i, f"{base}-{i}") for i in range(1, count + 1)]
        self._stop = threading.Event()
        self._redis_url = settings.redis.url
        self._port = 0

    def run(self) -> int:
        """0 when every worker stopped gracefully; 1 when one had to be killed or
        exited with an error. Raises ``WorkersError`` or ``EmbeddedRedisError`` when
        the service cannot start."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        embedded: EmbeddedRedis | None = None
        reservation = self._reserve_port()
        try:
            if not self._redis_url:
                redis_settings = self._settings.redis
                embedded = EmbeddedRedis(redis_settings.data_dir, redis_settings.server_binary)
                embedded.start()
                self._redis_url = embedded.url
                trio.run(_forget_earlier_nodes, self._redis_url, redis_settings.prefix)
            return self._supervise()
        finally:
            try:
                if embedded is not None:
                    embedded.stop()
            finally:
                reservation.close()
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping the workers", signal.Signals(signum).name)
        self._stop.set()

    def _reserve_port(self) -> socket.socket:
        host, port = self._settings.server.host, self._settings.server.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        reservation = socket.socket(family, socket.SOCK_STREAM)
        try:
            reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            reservation.bind((host, port))
        except OSError as exc:
            reservation.close()
            raise WorkersError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._port = reservation.getsockname()[1]
        return reservation

    # -- the workers --------------------------------------------------------------

    def _supervise(self) -> int:
        announced = False
        while not self._stop.is_set():
            now = time.monotonic()
            for worker in self.workers:
                self._tend(worker, now)
            if not announced and all(w.listening.is_set() for w in self.workers):
                self._announce()
                announced = True
            self._stop.wait(POLL_INTERVAL)
        return self._stop_all()

    def _tend(self, worker: Worker, now: float) -> None:
        process = worker.process
        if process is None:
            if now >= worker.restart_at:
                self._start(worker)
            return
        status = process.poll()
        if status is None:
            if worker.listening.is_set() and not worker.serving:
                worker.serving = True
                if worker.restarts:
                    log.warning(
                        "worker %d (node %s, pid %d) serves again (restart %d)",
                        worker.index,
                        worker.node_id,
                        process.pid,
                        worker.restarts,
                    )
            return
        worker.process = None
        worker.serving = False
        worker.listening = threading.Event()  # the old reader thread may still set its own
        if now - worker.started_at >= STABLE_AFTER:
            worker.delay = RESTART_DELAY_FIRST
        worker.restart_at = now + worker.delay
        log.error(
            "worker %d (node %s, pid %d) %s; restarting it in %.2f s",
            worker.index,
            worker.node_id,
            process.pid,
            how_it_ended(status),
            worker.delay,
        )
        worker.delay = min(worker.delay * 2, RESTART_DELAY_MAX)

    def _start(self, worker: Worker) -> None:
        overrides = {
            "server.port": str(self._port),
            "server.node_id": worker.node_id,
            "server.reuse_port": "true",
            "redis.url": self._redis_url,
        }
        http = self._settings.http
        if http.enabled and http.port:
            # One HTTP port per worker, not shared: each worker's /metrics and /ready
            # describe that node, and a scrape must reach the node it names.
            overrides["http.port"] = str(http.port + worker.index - 1)
        # The last --workers and the last --set of a key win over the user's own.
        args = [*self._command, "--workers", "1"]
        for key, value in overrides.items():
            args += ["--set", f"{key}={value}"]
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 (takes no lock: storage.embedded)
        )
        if worker.restart_at:
            worker.restarts += 1
        worker.process = process
        worker.started_at = time.monotonic()
        assert process.stdout is not None
        threading.Thread(
            target=_relay_output,
            args=(process.stdout, worker.listening),
            name=f"worker-{worker.index}-stdout",
            daemon=True,
        ).start()

    def _announce(self) -> None:
        host = self._settings.server.host
        shown = f"[{host}]" if ":" in host else host
        nodes = " ".join(w.node_id for w in self.workers)
        print(
            f"{LISTENING}ws://{shown}:{self._port} "
            f"({len(self.workers)} workers: nodes {nodes}; redis {redact_url(self._redis_url)},"
            f" prefix {self._settings.redis.prefix!r}, version {parley_version()})",
            flush=True,
        )

    def _stop_all(self) -> int:
        running = [w for w in self.workers if w.process is not None]
        for worker in running:
            assert worker.process is not None
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        clean = True
        for worker in running:
            assert worker.process is not None
            try:
                status = worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error(
                    "worker %d (node %s) did not stop; killing it", worker.index, worker.node_id
                )
                worker.process.kill()
                worker.process.wait()
                clean = False
                continue
            if status not in (0, -signal.SIGTERM):  # -SIGTERM: stopped before it served
                log.error(
                    "worker %d (node %s) %s while stopping",
                    worker.index,
                    worker.node_id,
                    how_it_ended(status),
                )
                clean = False
        return 0 if clean else 1


def _relay_output(stream: IO[str], listening: threading.Event) -> None:
    """Read a worker's standard output: its "listening" line marks it as serving; its
    other lines (none but "stopped" today) are passed on."""
    for line in stream:
        if line.startswith(LISTENING):
            listening.set()
        elif not line.startswith(STOPPED):
            sys.stdout.write(line)
            sys.stdout.flush()
    stream.close()


async def _forget_earlier_nodes(redis_url: str, prefix: str) -> None:
    """Deregister the node records in the supervisor's own embedded Redis: no worker
    has started yet, so each one is left by an earlier run that was killed."""
    storage = Storage(redis_url, prefix, "supervisor")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(storage.run)
            for node_id in await storage.presence.live_nodes():
                await storage.followups.replay_node(node_id)
                removed = await storage.presence.forget_node(node_id)
                log.info("forgot node %s of an earlier run (%d sessions)", node_id, removed)
            nursery.cancel_scope.cancel()
    finally:
        storage.close()
