"""``cluster --store cluster --replicas 1 --failover-at S``: S seconds into the load,
SIGKILL the master holding the most keys (``bench.stores.ClusterStore``), and time
until its replica serves its slots (``cluster-node-timeout`` 2 s, then the election).
Then the killed master is started again on its directory, as a supervisor
(systemd) would, and rejoins as the new master's replica: until then a master
has no replica, and with ``redis.durability = "replicas"`` (WAIT 1) no write to
its slots can be confirmed. With ``--store redis`` the one Redis is SIGKILLed and
its supervisor starts it again on its AOF: the time until it answers.

The kill and the wait run in a thread, so the bench keeps reading its client
processes meanwhile; what happened is in ``report()``: seconds counted from go,
``outage_s`` from the kill until the killed master's slots are served again (by
the promoted replica, or by the Redis started again).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.stores import Killed, Store

PROMOTION_TIMEOUT_S = 60.0


class Failover:
    def __init__(self, store: Store, at_s: float) -> None:
        self.store = store
        self.at_s = at_s
        self._thread: threading.Thread | None = None
        self._killed: Killed | None = None
        self._killed_at: float | None = None
        self._promoted_at: float | None = None
        self._rejoined_at: float | None = None
        self._error: str | None = None
        self._go_mono = 0.0

    def tick(self, since_go: float) -> None:
        """Called during the load (``Deployment.on_tick``): starts the failover once due."""
        if self._thread is None and since_go >= self.at_s:
            self._go_mono = time.monotonic() - since_go
            self._thread = threading.Thread(target=self._run, name="failover", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._killed = self.store.kill_busiest_master()
            self._killed_at = time.monotonic() - self._go_mono
            self.store.await_failover(self._killed, PROMOTION_TIMEOUT_S)
            self._promoted_at = time.monotonic() - self._go_mono
            self.store.restart(self._killed, PROMOTION_TIMEOUT_S)
            self._rejoined_at = time.monotonic() - self._go_mono
        except Exception as exc:  # reported; the run counts it as a failure
            self._error = f"{type(exc).__name__}: {exc}"

    def report(self) -> dict[str, Any]:
        """What was killed and when; waits (bounded) for a failover still under way."""
        if self._thread is not None:
            self._thread.join(PROMOTION_TIMEOUT_S)
        killed = self._killed
        return {
            "at_s": self.at_s,
            "happened": killed is not None and self._promoted_at is not None,
            "killed_master": killed.address if killed else None,
            "killed_master_keys": killed.keys if killed else None,
            "keys_by_master": killed.keys_by_master if killed else None,
            "killed_unwritten_aof_bytes": killed.unwritten_aof_bytes if killed else None,
            "killed_at_s": _round(self._killed_at),
            "serving_again_at_s": _round(self._promoted_at),
            "rejoined_at_s": _round(self._rejoined_at),
            "outage_s": _round(
                self._promoted_at - self._killed_at
                if self._promoted_at is not None and self._killed_at is not None
                else None
            ),
            "error": self._error
            or (None if self._thread else "the load ended before --failover-at"),
        }


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
