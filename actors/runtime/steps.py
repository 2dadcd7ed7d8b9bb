"""What every command shares about its storing steps: the clock of the timestamps
they store and send, and how often a step runs again after a stale read."""

from __future__ import annotations

import time

STEP_ATTEMPTS = 8
"""How often a command runs its read-check-write step again when what it read
changed before it wrote (``storage.StaleRead``): another actor, or another node,
wrote in between. Past that the command is refused ``UNAVAILABLE``."""


def now_ms() -> int:
    """Wall-clock time in milliseconds, as stored and sent."""
    return int(time.time() * 1000)
