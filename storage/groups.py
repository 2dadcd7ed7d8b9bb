"""Groups in Redis: info, members, applications, and the two synced lists
(a group's members, a user's joined groups).

Keys of group ``G`` (base ``{prefix}{g:<id>}``):

* ``G:info`` -- the encoded :class:`GroupRecord` (status, owner, mute-all, ...);
* ``G:rev`` -- the group's revision, raised by every change;
* ``G:members`` -- hash user id -> encoded :class:`MemberRecord`;
* ``G:vlog:members`` -- version log of the member list;
* ``G:apps`` / ``G:apps:order`` / ``G:apps:pending`` -- applications by user id,
  their order (by time) and the pending ones.

Keys of user ``U`` (base ``{prefix}{u:<id>}``):

* ``U:groups`` -- sorted set of joined group ids by join time;
* ``U:groups:records`` -- hash group id -> encoded :class:`JoinedRecord`;
* ``U:vlog:groups`` -- version log of the joined-group list;
* ``U:groups:managed`` -- set of groups the user owns or administers;
* ``U:groups:left`` -- group id -> the group conversation's seq when the user left;
* ``U:ga`` / ``U:ga:order`` -- applications about the user, by group id.

Every change is one :class:`GroupStep`. Its primary step, ``lua/group_step.lua`` on
the group's slot, checks the revision the group's actor read (compare-and-set, so
a second node's actor with an older copy gets :class:`StaleRead` and reloads),
writes the group's keys and its member log, and records in the group's outbox
(``G:outbox``) the follow-ups due in each touched user's slot: their joined-group
entry and its log, managed set, side of an application, conversation entry and
notifications (``storage/followups.py``). :meth:`GroupStore.run` applies them
before it returns, so a change is stored everywhere once it is acknowledged; one a
dead node left half-done is replayed by the group's next step or by the node that
replays that node's pending set. Users that must exist, and the conversation's seq
when a member leaves, are read right before the step (other slots).

Methods of :class:`GroupStore` are awaited on the node's trio loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from protocol.conversation_ids import group_conversation_id
from storage.conversations import ConversationRecord, encode_record
from storage.errors import StaleRead, StepRefused
from storage.followups import FollowUpStore
from storage.group_records import (
    MANAGER_ROLE,
    GroupApplicationRecord,
    GroupRecord,
    JoinedRecord,
    MemberRecord,
    decode_application,
    decode_group,
    decode_joined,
    decode_member,
    encode,
    join_order,
)
from storage.keys import Keys
from storage.messages import MessageStore
from storage.pipelined import PipelinedRedis
from storage.replies import text
from storage.scripts import Scripts
from storage.versionlog import Changes, new_version_id, read_changes

GROUP_CHAT = 3
"""The session type of group conversations (as in protocol.messaging)."""


@dataclass(frozen=True)
class LoadedGroup:
    info: GroupRecord
    members: dict[str, MemberRecord]
    rev: int


@dataclass
class GroupStep:
    """The writes of one change to a group: the group's own (made by the primary step
    on the group's slot) and, per user it touches, the follow-ups due in that user's
    slot (ops of ``lua/followup_apply.lua``, in the order they are made).

    ``expected_rev`` is the revision the change was computed from; ``None`` for a
    group being created. ``require_account`` names users that must exist (checked
    before the step)."""

    group_id: str
    expected_rev: int | None
    accounts: list[str] = field(default_factory=list)
    ops: list[Any] = field(default_factory=list)
    follow_ups: dict[str, list[Any]] = field(default_factory=dict)
    """User id -> the tokens of their follow-up."""
    _op_counts: dict[str, int] = field(default_factory=dict)
    notices: list[list[tuple[str, int]]] = field(default_factory=list)
    """Per ``notify``: (user id, index of its ``notify`` op among that user's ops)."""
    leaving: bool = False
    """Some member leaves: their follow-up needs the conversation's seq."""
    info: GroupRecord | None = None
    member_puts: dict[str, MemberRecord] = field(default_factory=dict)
    member_deletes: set[str] = field(default_factory=set)

    @property
    def rev(self) -> int:
        """The group's revision once the step is made (the step's compare-and-set
        checks that it is at ``expected_rev``, a new group at 0)."""
        return (self.expected_rev or 0) + 1

    def _user_op(self, user_id: str, *tokens: Any) -> int:
        """Add an op to the user's follow-up; returns its index there."""
        self.follow_ups.setdefault(user_id, []).extend(tokens)
        index = self._op_counts.get(user_id, 0)
        self._op_counts[user_id] = index + 1
        return index

    def join_seq(self, index: int) -> int:
        """The ``join_seq`` of the ``index``-th member joining in this step: the group's
        revision grows with every step, and a step adds fewer than 1000 members."""
        return (self.expected_rev or 0) * 1000 + index

    def require_account(self, user_id: str) -> None:
        self.accounts.append(user_id)

    def put_info(self, record: GroupRecord) -> None:
        self.info = record
        self.ops += ["info", encode(record)]

    def put_member(self, record: MemberRecord, *, insert: bool) -> None:
        self.member_puts[record.user_id] = record
        self.member_deletes.discard(record.user_id)
        self.ops += ["mput", record.user_id, encode(record), "insert" if insert else "update"]

    def delete_member(self, user_id: str) -> None:
        self.member_puts.pop(user_id, None)
        self.member_deletes.add(user_id)
        self.ops += ["mdel", user_id]

    def _joined(self, member: MemberRecord) -> bytes:
        return encode(JoinedRecord(self.group_id, member.role, member.joined_at, self.rev))

    def put_joined(self, member: MemberRecord, *, insert: bool) -> None:
        """The member's own entry in their joined-group list (its role changed, or new),
        and the managed set; a new member also gets the group's conversation."""
        user, group_id = member.user_id, self.group_id
        self._user_op(user, "hset", ":groups:records", group_id, self._joined(member), _JOINED_LOG)
        self._user_op(user, "zadd", ":groups", member.joined_at, group_id)
        managed = "sadd" if member.role >= MANAGER_ROLE else "srem"
        self._user_op(user, managed, ":groups:managed", group_id)
        if insert:
            conversation_id = group_conversation_id(group_id)
            record = encode_record(ConversationRecord(conversation_id, GROUP_CHAT, "", group_id))
            self._user_op(user, "hdel", ":groups:left", group_id, "")
            self._user_op(user, "hsetnx", ":conv", conversation_id, record, ":vlog:convs")

    def touch_joined(self, members: Iterable[MemberRecord]) -> None:
        """The group's info changed: an update in each member's joined-group log (their
        entry is stamped with the group's new revision)."""
        for member in members:
            self._user_op(
                member.user_id, "hsetxx", ":groups:records", self.group_id,
                self._joined(member), _JOINED_LOG,
            )  # fmt: skip

    def delete_joined(self, user_id: str) -> None:
        """Remove the group from the user's lists, remembering how far its conversation
        went (filled in when the step runs)."""
        self.leaving = True
        group_id = self.group_id
        self._user_op(user_id, "hset", ":groups:left", group_id, _CONVERSATION_SEQ, "")
        self._user_op(user_id, "hdel", ":groups:records", group_id, _JOINED_LOG)
        self._user_op(user_id, "zrem", ":groups", group_id)
        self._user_op(user_id, "srem", ":groups:managed", group_id)

    def put_application(self, record: GroupApplicationRecord) -> None:
        """The application on both sides: the group's, and the applicant's."""
        encoded = encode(record)
        pending = "1" if record.state == 0 else "0"
        self.ops += ["app", record.user_id, encoded, record.created_at, pending]
        self._user_op(record.user_id, "hset", ":ga", self.group_id, encoded, "")
        self._user_op(record.user_id, "zadd", ":ga:order", record.created_at, self.group_id)

    def notify(self, payload: bytes, user_ids: Sequence[str]) -> None:
        """Append ``payload`` to each user's notification log (duplicates dropped)."""
        unique = dict.fromkeys(user_ids)
        self.notices.append([(user, self._user_op(user, "notify", payload)) for user in unique])


_JOINED_LOG = ":vlog:groups"
_CONVERSATION_SEQ = object()
"""Stands, in a follow-up built by the group's actor, for the conversation's seq read
right before the step."""


@dataclass(frozen=True)
class StepResult:
    rev: int
    seqs: list[list[tuple[str, int]]]
    """Per ``notify`` of the step: (user id, seq) for each recipient (0: not stored by
    this call, which only happens when a replay by another node applied it first)."""


class GroupStore:
    def __init__(
        self,
        client: PipelinedRedis,
        keys: Keys,
        scripts: Scripts,
        followups: FollowUpStore,
        messages: MessageStore,
        log_length: int,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self._followups = followups
        self._messages = messages
        self.log_length = log_length

    def base(self, group_id: str) -> str:
        return self._keys.group_tag(group_id)

    def _user(self, user_id: str) -> str:
        return self._keys.user_tag(user_id)

    # -- the group's actor ------------------------------------------------------------

    async def revision(self, group_id: str) -> int:
        return int(cast(bytes | None, await self._redis.get(f"{self.base(group_id)}:rev")) or 0)

    async def load(self, group_id: str) -> LoadedGroup | None:
        """The group's info, members and revision, read together; ``None`` if it never existed."""
        base = self.base(group_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(f"{base}:info")
        pipe.hgetall(f"{base}:members")
        pipe.get(f"{base}:rev")
        info, members, rev = await pipe.execute()
        if info is None:
            return None
        decoded = (decode_member(raw) for raw in members.values())
        ordered = sorted(decoded, key=join_order)
        return LoadedGroup(decode_group(info), {r.user_id: r for r in ordered}, int(rev or 0))

    async def _read_outside(self, step: GroupStep) -> int:
        """What the step needs from other slots, read right before it (see
        ``lua/group_step.lua``): raises :class:`StepRefused` for a user that does not
        exist; returns the group conversation's seq when a member leaves."""
        if step.accounts:
            group = self._redis.pipeline(transaction=False)
            for user_id in step.accounts:
                group.exists(self._keys.account(user_id))
            found = await group.execute()
            for user_id, exists in zip(step.accounts, found, strict=True):
                if not exists:
                    raise StepRefused("USER_NOT_FOUND", user_id)
        if not step.leaving:
            return 0
        [seq] = await self._messages.max_seqs([group_conversation_id(step.group_id)])
        return seq

    async def run(self, step: GroupStep) -> StepResult:
        """Make the step's writes, the group's and the follow-ups in its members' slots;
        raises :class:`StaleRead` or :class:`StepRefused`."""
        conversation_seq = await self._read_outside(step)
        base = self.base(step.group_id)
        follow_ups: list[Any] = []
        for user_id, tokens in step.follow_ups.items():
            follow_ups += [self._user(user_id), len(tokens)]
            follow_ups += [conversation_seq if t is _CONVERSATION_SEQ else t for t in tokens]
        expected = "new" if step.expected_rev is None else str(step.expected_rev)
        group = self._redis.pipeline(transaction=False)
        self._followups.note_pending(group, base)
        self._scripts.add(
            group,
            "group_step",
            [base],
            [expected, new_version_id(), self.log_length, len(step.ops), *step.ops, *follow_ups],
        )
        _, reply = await group.execute()
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status != "OK":
            await self._followups.apply(base, reply[1:], noted=True)
            if status == "RETRY":
                raise StaleRead()
            raise StepRefused(status)
        applied = await self._followups.apply(base, reply[2:], noted=True)
        results = dict(zip(step.follow_ups, applied[-1], strict=True)) if step.follow_ups else {}
        seqs = [
            [(user, int(results[user][index]) if results[user] else 0) for user, index in notice]
            for notice in step.notices
        ]
        return StepResult(int(reply[1]), seqs)

    async def application(self, group_id: str, user_id: str) -> GroupApplicationRecord | None:
        raw = cast(bytes | None, await self._redis.hget(f"{self.base(group_id)}:apps", user_id))
        return None if raw is None else decode_application(raw)

    async def pending_applications(
        self, group_id: str, user_ids: Sequence[str]
    ) -> list[GroupApplicationRecord]:
        """The pending applications of these users (to mark them handled when they join)."""
        if not user_ids:
            return []
        raw = cast(
            list[bytes | None], await self._redis.hmget(f"{self.base(group_id)}:apps", user_ids)
        )
        found = (decode_application(r) for r in raw if r is not None)
        return [a for a in found if a.state == 0]

    async def members_with_version(self, group_id: str) -> tuple[list[bytes], str, int]:
        """Every member record with the member list's version, read together."""
        base = self.base(group_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hvals(f"{base}:members")
        pipe.hmget(f"{base}:vlog:members", "id", "ver")
        records, (version_id, version) = await pipe.execute()
        return list(records), text(version_id), int(version or 0)

    async def sync_members(self, group_id: str, version_id: str, version: int) -> Changes:
        base = self.base(group_id)
        return await read_changes(
            self._scripts, f"{base}:vlog:members", f"{base}:members", version_id, version
        )

    # -- readers on the user's side --------------------------------------------------

    async def infos(self, group_ids: Sequence[str]) -> dict[str, tuple[GroupRecord, int]]:
        """Info and member count of each group that exists."""
        pipe = self._redis.pipeline(transaction=False)
        for group_id in group_ids:
            pipe.get(f"{self.base(group_id)}:info")
            pipe.hlen(f"{self.base(group_id)}:members")
        replies = await pipe.execute()
        found: dict[str, tuple[GroupRecord, int]] = {}
        for n, group_id in enumerate(group_ids):
            raw, count = replies[2 * n], replies[2 * n + 1]
            if raw is not None:
                found[group_id] = (decode_group(raw), int(count))
        return found

    async def membership(self, group_ids: Sequence[str], user_id: str) -> list[bool]:
        pipe = self._redis.pipeline(transaction=False)
        for group_id in group_ids:
            pipe.hexists(f"{self.base(group_id)}:members", user_id)
        return [bool(x) for x in await pipe.execute()]

    async def joined(self, user_id: str, offset: int, limit: int) -> tuple[list[JoinedRecord], int]:
        """A page of the joined-group list in the order joined, and its length."""
        base = self._user(user_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrange(f"{base}:groups", offset, offset + limit - 1)
        pipe.zcard(f"{base}:groups")
        ids, total = await pipe.execute()
        if not ids:
            return [], int(total)
        raw = cast(list[bytes | None], await self._redis.hmget(f"{base}:groups:records", ids))
        return [decode_joined(r) for r in raw if r is not None], int(total)

    async def joined_ids(self, user_id: str) -> tuple[list[str], str, int]:
        base = self._user(user_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrange(f"{base}:groups", 0, -1)
        pipe.hmget(f"{base}:vlog:groups", "id", "ver")
        ids, (version_id, version) = await pipe.execute()
        return [i.decode() for i in ids], text(version_id), int(version or 0)

    async def sync_joined(self, user_id: str, version_id: str, version: int) -> Changes:
        base = self._user(user_id)
        return await read_changes(
            self._scripts, f"{base}:vlog:groups", f"{base}:groups:records", version_id, version
        )

    async def my_applications(
        self, user_id: str, offset: int, limit: int
    ) -> tuple[list[GroupApplicationRecord], int]:
        """Applications about the user, newest first, and how many there are."""
        base = self._user(user_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrevrange(f"{base}:ga:order", offset, offset + limit - 1)
        pipe.zcard(f"{base}:ga:order")
        ids, total = await pipe.execute()
        if not ids:
            return [], int(total)
        raw = cast(list[bytes | None], await self._redis.hmget(f"{base}:ga", ids))
        return [decode_application(r) for r in raw if r is not None], int(total)

    async def managed_applications(
        self, user_id: str, offset: int, limit: int
    ) -> tuple[list[GroupApplicationRecord], int]:
        """Applications to every group the user owns or administers, newest first."""
        managed = sorted(
            m.decode()
            for m in cast(
                set[bytes], await self._redis.smembers(f"{self._user(user_id)}:groups:managed")
            )
        )
        if not managed:
            return [], 0
        pipe = self._redis.pipeline(transaction=False)  # one command per group's slot
        for group_id in managed:
            pipe.zrevrange(f"{self.base(group_id)}:apps:order", 0, offset + limit - 1, True)
            pipe.zcard(f"{self.base(group_id)}:apps:order")
        replies = await pipe.execute()
        entries: list[tuple[float, str, str]] = []
        total = 0
        for n, group_id in enumerate(managed):
            entries += [(score, group_id, u.decode()) for u, score in replies[2 * n]]
            total += int(replies[2 * n + 1])
        entries.sort(key=lambda e: (-e[0], e[1], e[2]))
        page = entries[offset : offset + limit]
        pipe = self._redis.pipeline(transaction=False)
        for _, group_id, applicant in page:
            pipe.hget(f"{self.base(group_id)}:apps", applicant)
        raw = await pipe.execute() if page else []
        return [decode_application(r) for r in raw if r is not None], total
