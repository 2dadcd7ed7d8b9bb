"""What a storing step answers instead of storing: the two refusals every store shares,
and which Redis errors mean "storage unavailable, retry" rather than a bug."""

from __future__ import annotations

import redis
from redis.exceptions import AskError, ClusterDownError, ReadOnlyError, TryAgainError

_UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterDownError,  # a slot without a master, until a replica is promoted
    TryAgainError,  # a multi-key command during a slot's migration
    AskError,  # MOVED/ASK still, after the router's redirects
    ReadOnlyError,  # a master demoted to replica that has not told its clients yet
)


def storage_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says that Redis could not take the command for now (a lost
    connection, a failover under way, too few replicas for ``min-replicas-to-write``):
    the client may retry. Anything else raised by Redis is a bug."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("NOREPLICAS")


class StepRefused(Exception):
    """A check of a storing step failed and nothing was written. ``reason`` names the
    check (``ALREADY_FRIENDS``, ``BLOCKED_BY_PEER``, ``GROUP_EXISTS``,
    ``USER_NOT_FOUND``, ...); ``user_id`` names the user it was about, where a step
    checks several."""

    def __init__(self, reason: str, user_id: str = "") -> None:
        super().__init__(reason, user_id)
        self.reason = reason
        self.user_id = user_id


class StaleRead(Exception):
    """What the step was given as read (a record, a group's revision) changed before it
    wrote, and nothing was written: read again and retry."""
