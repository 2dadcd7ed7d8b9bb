"""What every scenario provides to ``bench/load.py``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from bench.summary import Result
from bench.target import Target


class NeedsMessaging(Exception):
    """The scenario measures chat messages, which the server cannot send yet."""


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the scenario's own options (sizes) to its sub-command."""
    run: Callable[[argparse.Namespace, Target], Result]
    """Runs against a started (or given) server and returns the figures."""
    available: bool = True
    """False for scenarios waiting for a server feature; ``run`` raises ``NeedsMessaging``."""
    needs_redis: bool = False
    """True when set-up writes to Redis directly (needs ``--redis-url`` with ``--url``)."""
    own_servers: bool = False
    """True when the scenario starts (and stops) its own server processes; ``run`` then
    gets a placeholder target and ``--url`` is refused."""
