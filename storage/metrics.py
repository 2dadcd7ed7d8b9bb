"""Metrics of the node's Redis client: how its commands are pipelined (read from the
``PipelinedRedis`` counters at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from metrics.histogram import histogram_family
from storage.pipelined import PipelinedRedis


class PipelineCollector(Collector):
    def __init__(self, redis: PipelinedRedis) -> None:
        self._redis = redis

    def collect(self) -> Iterator[Metric]:
        redis = self._redis
        yield CounterMetricFamily(
            "parley_redis_batches", "Pipelines sent to Redis", value=redis.batches
        )
        yield CounterMetricFamily(
            "parley_redis_commands", "Commands sent to Redis", value=redis.commands
        )
        yield CounterMetricFamily(
            "parley_redis_detached_failures",
            "Commands nobody waited for (publishes) that failed",
            value=redis.detached_failures,
        )
        yield histogram_family(
            "parley_redis_batch_commands",
            "Commands per pipeline sent to Redis",
            (),
            [((), redis.batch_sizes)],
        )
        yield histogram_family(
            "parley_redis_batch_seconds",
            "Round trip of a pipeline: sent to the Redis thread until its results are back"
            " on the event loop",
            (),
            [((), redis.round_trips)],
        )
