"""The webhooks' metrics, in the node's own registry: calls by callback and outcome,
their latency, the after-call queue's length and what was dropped from it.

Only calls made are counted (a callback that is off costs nothing here); a call costs
an HTTP round trip, so a locking ``Counter.inc()`` per call is negligible."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OK = "ok"
REFUSED = "refused"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
BAD_STATUS = "bad_status"
BAD_ANSWER = "bad_answer"

QUEUE_FULL = "queue_full"
GAVE_UP = "gave_up"


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry, queue_length: Callable[[], float]) -> None:
        self.calls = Counter(
            "parley_webhook_calls",
            "Webhook calls (each attempt) by callback and outcome",
            ["callback", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "parley_webhook_latency_seconds",
            "Seconds from sending a webhook call to its answer (or failure)",
            ["callback"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.dropped = Counter(
            "parley_webhook_dropped",
            "After-calls given up: the queue was full, or every attempt failed",
            ["callback", "reason"],
            registry=registry,
        )
        queue = Gauge(
            "parley_webhook_queue_length", "After-calls waiting to be made", registry=registry
        )
        queue.set_function(queue_length)

    def call(self, callback: str, outcome: str, seconds: float) -> None:
        self.calls.labels(callback, outcome).inc()
        self.latency.labels(callback).observe(seconds)
