"""Rate-limit buckets kept in Redis, for limits that hold across nodes (the messages
a user sends, whichever nodes the user's sessions are on)."""

from __future__ import annotations

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts


class RateLimitStore:
    def __init__(self, redis: PipelinedRedis, keys: Keys, scripts: Scripts) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts

    async def take_send_tokens(
        self, user_id: str, rate: float, burst: int, wanted: int
    ) -> tuple[int, int]:
        """Take up to ``wanted`` tokens from the bucket of the messages ``user_id``
        sends: (tokens granted, milliseconds until the next token if none is left)."""
        granted, wait_ms = await self._scripts.run(
            "take_tokens", [self._keys.send_bucket(user_id)], [rate, burst, wanted]
        )
        return int(granted), int(wait_ms)
