"""Follow-ups: what a step writes outside its own slot (docs/CLUSTER.md, "Steps that
span entities").

On Redis Cluster one Lua step can only touch the keys of one slot, so a step that
changes several entities (a friend request: both users; a group change: the group
and its members) is split. Its **primary** step, on the slot of the entity whose
actor runs the command, decides everything, writes its own slot and records the
writes due elsewhere as one outbox entry in that same slot, atomically with the
rest (``followups_record`` in ``storage/lua/lib/followups.lua``). The actor then
applies the entry here: one ``followup_apply`` step per other slot, all in one
batch, before it answers the client. So an acknowledged step is applied
everywhere, and its outbox entry is deleted.

An entry left behind (the node died between the primary step and its follow-ups,
or Redis failed in between) is applied again later: by the source's next primary
step (each returns the entries still pending, oldest first, applied before its
own), by the actor that takes the source entity over from a gone node, and through
the node's pending set (``{n:<id>}:pending``: the sources whose steps may have left
entries), by the node itself when it starts again under its id and by the node that
forgets it once it is gone. Follow-ups are states, not increments, and each target
skips an entry not newer than the newest it applied from that source, so applying
one twice, or late, changes nothing.

The same code runs on a single Redis: there every slot is one server and nothing
else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from storage.keys import Keys
from storage.pipelined import CommandGroup, PipelinedRedis
from storage.scripts import Scripts
from storage.versionlog import new_version_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The writes due in one other slot: ``tokens`` are the ops of
    ``storage/lua/followup_apply.lua`` and their arguments, flat."""

    target: str
    tokens: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    revision: int
    follow_ups: tuple[FollowUp, ...]


class MalformedEntry(ValueError):
    """An outbox entry that is not the netstrings ``followups_record`` writes."""


def _netstrings(raw: bytes) -> list[bytes]:
    items: list[bytes] = []
    position = 0
    while position < len(raw):
        colon = raw.find(b":", position)
        if colon < 0:
            raise MalformedEntry(f"no length at byte {position}")
        length = int(raw[position:colon])
        start = colon + 1
        if start + length > len(raw):
            raise MalformedEntry(f"an item of {length} bytes runs past the end")
        items.append(raw[start : start + length])
        position = start + length
    return items


def parse_entry(raw: bytes) -> OutboxEntry:
    """An outbox entry as ``followups_record`` encoded it."""
    items = _netstrings(raw)
    if not items:
        raise MalformedEntry("an empty entry")
    revision = int(items[0])
    follow_ups: list[FollowUp] = []
    position = 1
    while position < len(items):
        if position + 2 > len(items):
            raise MalformedEntry("a target without its ops")
        target = items[position].decode()
        tokens = tuple(_netstrings(items[position + 2]))
        if len(tokens) != int(items[position + 1]):
            raise MalformedEntry(f"the ops of {target} do not match their count")
        follow_ups.append(FollowUp(target, tokens))
        position += 3
    return OutboxEntry(revision, tuple(follow_ups))


Results = list[list[Any]]
"""Per follow-up of an entry, in order: the result of each of its ops, or ``[]``
when its target had applied the entry already."""


class FollowUpStore:
    """Applies and replays outbox entries, on the node's auto-pipelined client."""

    def __init__(
        self,
        redis: PipelinedRedis,
        keys: Keys,
        scripts: Scripts,
        node_id: str,
        version_log_length: int,
        notifications_kept: int,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self.node_id = node_id
        self.log_length = version_log_length
        self.notifications_kept = notifications_kept
        self.before_apply: Callable[[str, OutboxEntry], Awaitable[None]] | None = None
        """Test hook: awaited before an entry's follow-ups are applied (a test stops a
        node there, between a primary step and its follow-ups)."""
        self.applied = 0
        """Follow-ups applied by this node (a target's step each)."""
        self.replayed = 0
        """Entries applied again from an outbox (left behind by a node that died, or
        by a failed batch)."""

    def note_pending(self, group: CommandGroup, source: str) -> None:
        """Put into ``group``, before a primary step of ``source`` that may leave an
        outbox entry, the node's note that ``source`` may have entries pending."""
        group.sadd(self._keys.node_pending(self.node_id), source)

    async def apply(
        self, source: str, raw_entries: Sequence[bytes], noted: bool = False
    ) -> list[Results]:
        """Apply the outbox entries a primary step of ``source`` returned (the pending
        ones first, its own last; ``b""`` for none), then delete them; returns each
        entry's results. ``noted``: the step was preceded by ``note_pending``, whose
        note is removed once everything is applied.
        On a Redis error the entries stay in the outbox (and the note in the node's
        pending set) and the error is raised: the step is not acknowledged."""
        entries = [parse_entry(raw) for raw in raw_entries if raw]
        pending_key = self._keys.node_pending(self.node_id)
        if not entries:
            if noted:
                self._redis.send_detached("SREM", pending_key, source)
            return [[] for _ in raw_entries]
        if self.before_apply is not None:
            for entry in entries:
                await self.before_apply(source, entry)
        group = self._redis.pipeline(transaction=False)
        for entry in entries:
            self._add_apply(group, source, entry)
        replies = await group.execute()
        results = self._results(entries, replies)
        self.applied += sum(len(entry.follow_ups) for entry in entries)
        self._redis.send_detached("HDEL", f"{source}:outbox", *(e.revision for e in entries))
        if noted:
            self._redis.send_detached("SREM", pending_key, source)
        found = iter(results)
        return [next(found) if raw else [] for raw in raw_entries]

    def _add_apply(self, group: CommandGroup, source: str, entry: OutboxEntry) -> None:
        for follow_up in entry.follow_ups:
            self._scripts.add(
                group,
                "followup_apply",
                [follow_up.target],
                [
                    source,
                    entry.revision,
                    new_version_id(),
                    self.log_length,
                    self.notifications_kept,
                    *follow_up.tokens,
                ],
            )

    @staticmethod
    def _results(entries: Sequence[OutboxEntry], replies: Sequence[Any]) -> list[Results]:
        found = iter(replies)
        out: list[Results] = []
        for entry in entries:
            mine: Results = []
            for _ in entry.follow_ups:
                reply = next(found)
                status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
                mine.append([] if status == "SKIPPED" else list(reply[1:]))
            out.append(mine)
        return out

    async def replay_source(self, source: str) -> int:
        """Apply every entry ``source``'s outbox still holds, oldest first; returns how
        many there were."""
        flat = cast(dict[bytes, bytes], await self._redis.hgetall(f"{source}:outbox"))
        if not flat:
            return 0
        raws = [flat[revision] for revision in sorted(flat, key=int)]
        for raw in raws:  # one at a time: a target applies a source's entries in order
            await self.apply(source, [raw])
        self.replayed += len(raws)
        return len(raws)

    async def replay_node(self, node_id: str) -> int:
        """Replay the outboxes of every source the node noted as pending, then clear
        its note; returns how many entries were applied again."""
        pending_key = self._keys.node_pending(node_id)
        sources = await self._redis.smembers(pending_key)
        total = 0
        for raw_source in sorted(sources):
            source = raw_source.decode() if isinstance(raw_source, bytes) else str(raw_source)
            try:
                total += await self.replay_source(source)
            except MalformedEntry as exc:
                log.error("the outbox of %s holds an entry that cannot be read: %s", source, exc)
                continue
            await self._redis.srem(pending_key, raw_source)
        if total:
            log.info("replayed %d follow-up entries of node %s", total, node_id)
        return total
