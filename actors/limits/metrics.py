"""Metrics of the rate limits and of failed logins, kept as plain counters (one
integer increment when a limit refuses) and read by a collector when the node's
registry is scraped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

LIMITS = ("requests", "sends", "connections", "logins")
"""The ``limit`` label: per session, per user, per client address, and failed logins."""
LOGIN_FAILURES = ("unknown_user", "bad_password")
"""The ``kind`` label of failed logins: a user id with no account, or a wrong password."""


class LimitMetrics(Collector):
    """``parley_rate_limited_total{limit}`` and ``parley_login_failures_total{kind}``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.refused: Counter[str] = Counter(dict.fromkeys(LIMITS, 0))
        self.login_failures: Counter[str] = Counter(dict.fromkeys(LOGIN_FAILURES, 0))
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily]:
        refused = CounterMetricFamily(
            "parley_rate_limited",
            "Requests, messages, connections and logins refused by a rate limit",
            labels=["limit"],
        )
        for limit, count in sorted(self.refused.items()):
            refused.add_metric([limit], count)
        failures = CounterMetricFamily(
            "parley_login_failures",
            "Failed password checks (login, change_password)",
            labels=["kind"],
        )
        for kind, count in sorted(self.login_failures.items()):
            failures.add_metric([kind], count)
        yield refused
        yield failures
