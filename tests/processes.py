"""Server nodes as real processes, for tests of signals, restarts and clusters."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class NodeProcess:
    """``python server.py serve`` on 127.0.0.1, port 0; ``url`` once it listens."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        environment["PARLEY_AUTH_ARGON2_MEMORY_KIB"] = "1024"
        environment["PARLEY_AUTH_ARGON2_TIME_COST"] = "1"
        environment["PARLEY_LOG_LEVEL"] = "warning"
        environment.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "server.py", "serve", "--port=0", *args],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        # One node: "(node ID, redis URL)"; a --workers supervisor: "(N workers: nodes ID ID; ...".
        found = re.search(
            r"listening on (ws://\S+) \((?:node (\S+),|\d+ workers: nodes ([^;]+);)", line
        )
        if not found:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise AssertionError(f"server did not start: {line!r} {err}")
        self.url = found.group(1)
        self.node_ids = (found.group(2) or found.group(3)).split()
        self.node_id = self.node_ids[0]
        # Keep reading stderr so a chatty node never blocks on a full pipe.
        self.stderr_lines: list[str] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        """Signal the node and wait; (exit status, what it printed on stdout)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        assert self.process.stdout is not None
        return self.process.returncode, self.process.stdout.read()

    def kill(self) -> None:
        """SIGKILL: the node stops at once, without any clean-up."""
        self.process.kill()
        self.process.wait(timeout=10)


def start_nodes(count: int, *args: str) -> list[NodeProcess]:
    """``count`` nodes started side by side (each takes a few seconds to import)."""
    with ThreadPoolExecutor(count) as pool:
        started = [pool.submit(NodeProcess, *args) for _ in range(count)]
    nodes = [f.result() for f in started if f.exception() is None]
    failed = next((f.exception() for f in started if f.exception() is not None), None)
    if failed is not None:
        stop_all(nodes)
        raise failed
    return nodes


def stop_all(nodes: Sequence[NodeProcess]) -> None:
    """Stop the nodes side by side (SIGTERM, up to 20 s each, then SIGKILL)."""
    running = [node for node in nodes if node.process.poll() is None]
    with ThreadPoolExecutor(max(1, len(running))) as pool:
        for future in [pool.submit(node.stop, timeout=20) for node in running]:
            future.result()


def refused(*args: str, timeout: float = 60) -> str:
    """Run a node that must not start; its one line on stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    result = subprocess.run(
        [sys.executable, "server.py", "serve", "--port=0", *args],
        check=False,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "listening" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("parley: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0]
