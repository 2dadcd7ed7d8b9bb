"""Percentiles and latency summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile of sorted values, interpolating between ranks."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] * (1.0 - weight) + ordered[upper] * weight


def latency_summary(seconds: Iterable[float], prefix: str = "") -> dict[str, float | None]:
    """``{prefix}p50_ms``, ``p95_ms``, ``p99_ms`` and ``max_ms`` of durations in seconds;
    None for each when there are none."""
    ordered = sorted(seconds)
    names = ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    if not ordered:
        return {f"{prefix}{name}": None for name in names}
    fractions = (0.50, 0.95, 0.99, 1.0)
    return {
        f"{prefix}{name}": round(percentile(ordered, q) * 1000.0, 3)
        for name, q in zip(names, fractions, strict=True)
    }


def rate(count: int, seconds: float) -> float | None:
    """Events per second, or None when no time passed."""
    return round(count / seconds, 1) if seconds > 0 else None
