"""A token bucket, free of I/O and of any clock: the caller passes the time.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second. Each
request takes one; a request that finds no token is refused and told how long
until one is there. A ``rate`` of 0 disables the bucket (every request passes).
"""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` held; starts full."""

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate = rate
        self._burst = max(burst, 1.0)
        self._tokens = self._burst
        self._updated = now

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, now: float) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be
        (nothing is taken then)."""
        if self._rate <= 0:
            return 0.0
        tokens = self._tokens + (now - self._updated) * self._rate
        tokens = min(tokens, self._burst)
        self._updated = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self._rate

    def full_at(self, now: float) -> bool:
        """Whether the bucket has refilled to ``burst`` by ``now`` (it can be forgotten:
        a new bucket would be the same)."""
        return self._tokens + (now - self._updated) * self._rate >= self._burst


class BucketsByKey:
    """One bucket per key (a client address), made on first use; buckets that have
    refilled are forgotten now and then, so the map stays as small as the set of keys
    seen recently."""

    __slots__ = ("_buckets", "_burst", "_next_sweep", "_rate", "_sweep_every")

    def __init__(self, rate: float, burst: float, sweep_every: float = 60.0) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._sweep_every = sweep_every
        self._next_sweep = 0.0

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """:meth:`TokenBucket.take` on ``key``'s bucket."""
        if self._rate <= 0:
            return 0.0
        if now >= self._next_sweep:
            self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, now)
        return bucket.take(now)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_every
        full = [key for key, bucket in self._buckets.items() if bucket.full_at(now)]
        for key in full:
            del self._buckets[key]
