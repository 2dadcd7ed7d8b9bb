"""Metrics of the actors: commands handled (by command and result), how long the
owning actor took, messages stored, and the actors alive. Updated with plain
additions on the event loop and turned into Prometheus metrics at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.runtime.supervisor import Supervisor
from metrics.histogram import LATENCY_BUCKETS_S, Buckets, histogram_family

OK = "OK"
"""The result label of a command that succeeded; others carry their error code's name."""


RequestType = type[msgspec.Struct] | None
"""A request's type; None for a frame that could not be decoded."""


def command_name(request_type: RequestType) -> str:
    """The wire tag of a request type (``send_message``), or ``invalid``."""
    return "invalid" if request_type is None else str(request_type.__struct_config__.tag)


class ActorMetrics:
    """Plain counters, one set per node (``NodeServices.metrics``). Keys are request
    types, named only at scrape time."""

    def __init__(self) -> None:
        self.results: Counter[tuple[RequestType, str]] = Counter()
        """(request type, ``OK`` or error code name) -> commands."""
        self.durations: dict[RequestType, Buckets] = {}
        self.messages_stored = 0
        """Chat messages stored (typing, which is not stored, and retried sends that
        returned the first result, not counted)."""

    def handled(self, request_type: RequestType, result: str, seconds: float) -> None:
        self.results[request_type, result] += 1
        buckets = self.durations.get(request_type)
        if buckets is None:
            buckets = self.durations[request_type] = Buckets(LATENCY_BUCKETS_S)
        buckets.observe(seconds)

    def refused(self, request_type: RequestType, result: str) -> None:
        """A request its session refused before any actor saw it (not signed in, too
        many pending, undecodable: ``request_type`` None)."""
        self.results[request_type, result] += 1


class ActorCollector(Collector):
    def __init__(self, metrics: ActorMetrics, supervisor: Supervisor) -> None:
        self._metrics = metrics
        self._supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "parley_requests",
            "Requests answered, by command and result (OK or the error code's name)",
            labels=["command", "result"],
        )
        named = sorted(((command_name(t), r), n) for (t, r), n in metrics.results.items())
        for labels, count in named:
            requests.add_metric(list(labels), count)
        yield requests
        yield histogram_family(
            "parley_request_duration_seconds",
            "Time the owning actor took to handle a command, from its start to its answer",
            ("command",),
            sorted(((command_name(t),), b) for t, b in metrics.durations.items()),
        )
        yield CounterMetricFamily(
            "parley_messages_stored", "Chat messages stored", value=metrics.messages_stored
        )
        supervisor = self._supervisor
        actors = GaugeMetricFamily(
            "parley_actors", "Actors running on this node, by kind", labels=["kind"]
        )
        for kind, count in sorted(supervisor.live_by_kind().items()):
            actors.add_metric([kind], count)
        yield actors
        yield CounterMetricFamily(
            "parley_actor_restarts",
            "Actors made afresh after an exception",
            value=supervisor.restarts,
        )
        yield CounterMetricFamily(
            "parley_actor_activations", "Actors started", value=supervisor.activations
        )
