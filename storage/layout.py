"""Which layout the stored data has, and the move of a store from an earlier one.

Layout 1 is every store written before Parley ran on Redis Cluster; layout 2
(this version) keeps every step on one slot (docs/CLUSTER.md, "Redis Cluster").
What moved between them:

- has-read and cleared-up-to seqs: ``{u:<user>}:reads`` and ``{u:<user>}:cleared``
  (conversation id -> seq) became fields of the conversation's ``{c:<id>}:reads``
  (``<user>``, ``cleared:<user>``);
- the node keys (``node:<id>``, ``nodes``, ``cluster:fingerprint``) moved under
  ``{n:<id>}`` and ``{cluster}``: they only describe running nodes, and none of
  layout 1 may run during the move.

What layout 2 adds and layout 1 lacks is filled in as it is used: a
conversation's ``:entered`` set and a single chat's ``:gate`` are rebuilt from
the users' keys on the first send, and a joined-group record without its group
revision reads as revision 0.

The layout is recorded in ``{cluster}:layout``. A node starting on a store
without it moves the layout-1 keys it finds (a ``SCAN`` of the prefix, once per
store), then records layout 2; several nodes may do it at once (every write raises
a seq to the larger value, and a key is deleted once copied). A store of a later
layout, or a layout-1 node still running, stops the start.
"""

from __future__ import annotations

import logging
from typing import cast

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.replies import text
from storage.scripts import Scripts

log = logging.getLogger(__name__)

LAYOUT_VERSION = 2
SCAN_COUNT = 1000


class LayoutRefused(Exception):
    """The store cannot be used by this version: the message says why, in one line."""


class LayoutStore:
    def __init__(
        self, redis: PipelinedRedis, keys: Keys, scripts: Scripts, on_cluster: bool
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._on_cluster = on_cluster

    async def current(self) -> int | None:
        raw = await self._redis.get(self._keys.layout())
        return int(raw) if raw is not None else None

    async def ensure(self) -> int:
        """Bring the store to ``LAYOUT_VERSION`` (``LayoutRefused`` if it cannot be);
        returns how many layout-1 keys were moved."""
        found = await self.current()
        if found == LAYOUT_VERSION:
            return 0
        if found is not None and found > LAYOUT_VERSION:
            raise LayoutRefused(
                f"redis.prefix: the store under {self._keys.prefix!r} has data layout {found},"
                f" written by a later Parley version; this one knows layout {LAYOUT_VERSION}"
            )
        moved = 0
        if not self._on_cluster:  # layout 1 never ran on Redis Cluster
            await self._refuse_running_layout_1_nodes()
            moved = await self._move_read_seqs()
        await self._redis.set(self._keys.layout(), LAYOUT_VERSION)
        if moved:
            log.info(
                "moved the store under %r to data layout %d (%d keys)",
                self._keys.prefix,
                LAYOUT_VERSION,
                moved,
            )
        return moved

    async def _refuse_running_layout_1_nodes(self) -> None:
        prefix = self._keys.prefix
        listed = cast(list[bytes], await self._redis.zrange(f"{prefix}nodes", 0, -1))
        for raw in listed:
            node = text(raw)
            if await self._redis.exists(f"{prefix}node:{node}"):
                raise LayoutRefused(
                    f"redis.prefix: node {node!r} of an earlier Parley version (data layout 1)"
                    f" is running on the store under {prefix!r}; stop every node before"
                    " starting this version (docs/OPERATIONS.md, Rolling upgrade)"
                )

    async def _move_read_seqs(self) -> int:
        moved = 0
        for suffix, field_of in ((":reads", "{}"), (":cleared", "cleared:{}")):
            pattern = f"{_glob_escape(self._keys.prefix)}{{u:*}}{suffix}"
            cursor = 0
            while True:
                reply = await self._redis.scan(cursor, match=pattern, count=SCAN_COUNT)
                cursor, found = int(reply[0]), cast(list[bytes], reply[1])
                for raw_key in found:
                    await self._move_one(text(raw_key), suffix, field_of)
                    moved += 1
                if cursor == 0:
                    break
        return moved

    async def _move_one(self, key: str, suffix: str, field_of: str) -> None:
        user = key[len(self._keys.prefix) + len("{u:") : -len(suffix) - 1]
        seqs = await self._redis.hgetall(key)
        group = self._redis.pipeline(transaction=False)
        for conversation, seq in seqs.items():
            target = f"{self._keys.conversation_tag(text(conversation))}:reads"
            self._scripts.add(group, "layout_raise", [target], [field_of.format(user), seq])
        if seqs:
            await group.execute()
        await self._redis.delete(key)


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
