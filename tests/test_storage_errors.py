"""Which Redis errors are answered UNAVAILABLE (retry) rather than INTERNAL: those of
a lost connection and those a Redis Cluster gives during a failover or a slot's
migration (storage.errors.storage_unavailable)."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    TryAgainError,
)

from storage.errors import storage_unavailable


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Connection refused"),
        redis.TimeoutError("Timeout reading from socket"),
        ClusterDownError("The cluster is down"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        MovedError("3999 127.0.0.1:6381"),
        AskError("3999 127.0.0.1:6381"),
        ReadOnlyError("You can't write against a read only replica."),
        redis.ResponseError("NOREPLICAS Not enough good replicas to write."),
    ],
)
def test_a_failover_or_a_lost_connection_is_unavailable(error: Exception) -> None:
    assert storage_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
        redis.ResponseError("ERR Error running script: user_script:3: bad argument"),
        NoScriptError("No matching script."),
        ValueError("not a Redis error"),
    ],
)
def test_a_wrong_command_is_not(error: Exception) -> None:
    assert not storage_unavailable(error)
