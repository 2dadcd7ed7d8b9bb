"""A histogram without a lock: a list of bucket counts and a sum, updated on the
node's event loop (one thread) and read at scrape time. ``prometheus_client``'s own
``Histogram`` takes a lock and walks its buckets per observation; this costs one
``bisect`` and two additions."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client.core import HistogramMetricFamily

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds for durations on the loop: from half a millisecond to ten seconds."""


class Buckets:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """Observations per bucket (not cumulative); the last is above every bound."""
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """(``le``, count at or below it) for each bound and ``+Inf``."""
        running = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


def histogram_family(
    name: str,
    documentation: str,
    labels: Sequence[str],
    series: Iterable[tuple[Sequence[str], Buckets]],
) -> HistogramMetricFamily:
    """One Prometheus histogram family from (label values, ``Buckets``) pairs."""
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for values, buckets in series:
        family.add_metric(list(values), buckets.cumulative(), buckets.total)
    return family
