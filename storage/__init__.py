"""Persistence behind a small interface; Redis is an implementation detail here.

``Storage`` bundles the stores of one node. All its methods block: they run in
actor threads (pykka) or in ``trio.to_thread``, never on the trio event loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from storage.accounts import AccountRecord, AccountStore, CorruptRecordError, PublicProfile
from storage.connections import connection_pool
from storage.conversations import ConversationRecord, ConversationStore
from storage.embedded import EmbeddedRedis, EmbeddedRedisError
from storage.groups import (
    GroupApplicationRecord,
    GroupRecord,
    GroupRefused,
    GroupStep,
    GroupStore,
    JoinedRecord,
    MemberRecord,
    StaleGroup,
)
from storage.keys import Keys
from storage.leases import LeaseStore
from storage.messages import MessageStore, Stored
from storage.notifications import NotificationPage, NotificationStore
from storage.presence import PresenceEntry, PresenceStore
from storage.relations import (
    ApplicationRecord,
    BlackRecord,
    FriendRecord,
    RelationRefused,
    RelationStore,
    StaleRead,
)
from storage.scripts import Scripts
from storage.versionlog import Changes

__all__ = [
    "AccountRecord",
    "AccountStore",
    "ApplicationRecord",
    "BlackRecord",
    "Changes",
    "ConversationRecord",
    "ConversationStore",
    "CorruptRecordError",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "FriendRecord",
    "GroupApplicationRecord",
    "GroupRecord",
    "GroupRefused",
    "GroupStep",
    "GroupStore",
    "JoinedRecord",
    "Keys",
    "LeaseStore",
    "MemberRecord",
    "MessageStore",
    "NotificationPage",
    "NotificationStore",
    "PresenceEntry",
    "PresenceStore",
    "PublicProfile",
    "RelationRefused",
    "RelationStore",
    "StaleGroup",
    "StaleRead",
    "Storage",
    "Stored",
]


class Storage:
    def __init__(
        self,
        url: str,
        prefix: str,
        node_id: str,
        max_connections: int = 64,
        version_log_length: int = 200,
        notifications_kept: int = 1000,
    ) -> None:
        self.url = url
        self.keys = Keys(prefix)
        pool = connection_pool(
            url, max_connections, 5, Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
        )
        self.redis = redis.Redis(connection_pool=pool)
        self.scripts = Scripts(self.redis)
        self.accounts = AccountStore(self.redis, self.keys, self.scripts)
        self.presence = PresenceStore(self.redis, self.keys, self.scripts, node_id)
        self.leases = LeaseStore(self.redis, self.keys, self.scripts, node_id)
        self.relations = RelationStore(
            self.redis, self.keys, self.scripts, version_log_length, notifications_kept
        )
        self.messages = MessageStore(self.redis, self.keys, self.scripts, version_log_length)
        self.conversations = ConversationStore(
            self.redis, self.keys, self.scripts, version_log_length
        )
        self.groups = GroupStore(
            self.redis, self.keys, self.scripts, version_log_length, notifications_kept
        )
        self.notifications = NotificationStore(
            self.redis, self.keys, self.scripts, notifications_kept
        )

    def token_secret(self) -> str:
        """The cluster-wide token signing key, created once by whichever node asks first."""
        key = self.keys.token_secret()
        self.redis.set(key, secrets.token_urlsafe(48), nx=True)
        value = cast(bytes, self.redis.get(key))
        return value.decode()

    def is_group_member(self, group_id: str, user_id: str) -> bool:
        """Whether ``user_id`` is a member of ``group_id`` now (``{g:<id>}:members``)."""
        return bool(self.redis.hexists(f"{self.keys.group_tag(group_id)}:members", user_id))

    def joined_group_ids(self, user_id: str) -> list[str]:
        """The groups ``user_id`` is a member of (the sorted set ``{u:<id>}:groups``)."""
        ids = cast(list[bytes], self.redis.zrange(f"{self.keys.user_tag(user_id)}:groups", 0, -1))
        return [i.decode() for i in ids]

    def left_group_seqs(self, user_id: str, group_ids: Sequence[str]) -> list[int | None]:
        """For each group, the conversation's max seq when ``user_id`` left it (None if
        not recorded)."""
        if not group_ids:
            return []
        raw = cast(
            list[bytes | None],
            self.redis.hmget(f"{self.keys.user_tag(user_id)}:groups:left", list(group_ids)),
        )
        return [None if r is None else int(r) for r in raw]

    def ping(self) -> None:
        self.redis.ping()

    def close(self) -> None:
        self.redis.close()
        self.redis.connection_pool.disconnect()
