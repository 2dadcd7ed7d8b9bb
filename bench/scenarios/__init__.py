"""The benchmark scenarios, by name."""

from __future__ import annotations

from bench.scenarios.base import NeedsMessaging, Scenario
from bench.scenarios.cluster import SCENARIO as CLUSTER
from bench.scenarios.connect import SCENARIO as CONNECT
from bench.scenarios.group import SCENARIO as GROUP
from bench.scenarios.pairs import SCENARIO as PAIRS
from bench.scenarios.sync import SCENARIO as SYNC

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (CONNECT, SYNC, PAIRS, GROUP, CLUSTER)}

__all__ = ["SCENARIOS", "NeedsMessaging", "Scenario"]
