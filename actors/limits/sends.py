"""The limit on the messages a user sends, over all of the user's sessions on all
nodes.

A send is handled by the actor that owns its conversation (the single chat's
owner user, or the group), not by the sender's own actor, so the bucket is kept
in Redis (``storage.limits``, on the Redis server's clock) where every node
takes from the same one. A node takes tokens in chunks of up to ``CHUNK`` and
spends them locally, so most sends cost a dictionary lookup, not a Redis step;
the price is that a user sending from several nodes at once may exceed the
burst by up to ``CHUNK - 1`` messages per node. Unspent tokens are dropped after
``CREDIT_TTL_S`` (which only makes the limit stricter).
"""

from __future__ import annotations

import time

from actors.limits.metrics import LimitMetrics
from protocol.errors import ErrorCode, ProtocolError
from settings import LimitSettings
from storage import RateLimitStore

CHUNK = 10
"""Most tokens a node takes from a user's bucket at once."""
CREDIT_TTL_S = 10.0


class SendLimiter:
    """Used by the actors that handle sends, on the node's event loop."""

    def __init__(
        self, store: RateLimitStore, settings: LimitSettings, metrics: LimitMetrics
    ) -> None:
        self._store = store
        self._rate = settings.messages_per_second
        self._burst = settings.message_burst
        self._chunk = max(1, min(CHUNK, self._burst // 20))
        self._metrics = metrics
        self._credits: dict[str, tuple[int, float]] = {}
        """User id -> (tokens taken from Redis and not spent yet, when taken)."""
        self._next_sweep = 0.0

    async def take(self, user_id: str) -> None:
        """Spend one of ``user_id``'s tokens, or raise ``RATE_LIMITED`` with the wait."""
        if self._rate <= 0:
            return
        now = time.monotonic()
        credit = self._credits.get(user_id)
        if credit is not None and credit[0] > 0 and now - credit[1] < CREDIT_TTL_S:
            self._credits[user_id] = (credit[0] - 1, credit[1])
            return
        if now >= self._next_sweep:
            self._sweep(now)
        granted, wait_ms = await self._store.take_send_tokens(
            user_id, self._rate, self._burst, self._chunk
        )
        if granted == 0:
            self._metrics.refused["sends"] += 1
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many messages: at most {self._rate:g} per second"
                f" (bursts of {self._burst}) per user",
                retry_after_ms=max(1, wait_ms),
            )
        # Another actor may have taken a chunk for the same user meanwhile: keep both.
        current = self._credits.get(user_id)
        left = current[0] if current is not None and current is not credit else 0
        self._credits[user_id] = (left + granted - 1, now)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + CREDIT_TTL_S
        stale = [user for user, (_, taken) in self._credits.items() if now - taken >= CREDIT_TTL_S]
        for user in stale:
            del self._credits[user]
