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
* ``U:ga`` / ``U:ga:order`` -- applications about the user, by group id.

Every change is one :class:`GroupStep` run by ``lua/group_step.lua``: it
checks the revision the group's actor read (compare-and-set, so a second node's
actor with an older copy gets :class:`StaleRead` and reloads), then makes the
writes, the version-log entries and the notifications together.

Methods of :class:`GroupStore` are awaited on the node's trio loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from protocol.conversation_ids import group_conversation_id
from storage.conversations import ConversationRecord, encode_record
from storage.errors import StaleRead, StepRefused
from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts
from storage.versionlog import Changes, new_version_id, read_changes

GROUP_CHAT = 3
"""The session type of group conversations (as in protocol.messaging)."""


class GroupRecord(msgspec.Struct, frozen=True, array_like=True):
    group_id: str
    name: str
    face_url: str
    intro: str
    notification: str
    ex: str
    owner_user_id: str
    creator_user_id: str
    join_policy: str
    status: str
    mute_all: bool
    created_at: int
    notification_updated_at: int
    notification_user_id: str


class MemberRecord(msgspec.Struct, frozen=True, array_like=True):
    user_id: str
    role: int
    nickname: str
    face_url: str
    ex: str
    joined_at: int
    join_source: int
    inviter_user_id: str
    muted_until_ms: int
    join_seq: int = 0
    """Orders the members as they joined (see :meth:`GroupStep.join_seq`)."""


class JoinedRecord(msgspec.Struct, frozen=True, array_like=True):
    group_id: str
    role: int
    joined_at: int


class GroupApplicationRecord(msgspec.Struct, frozen=True, array_like=True):
    group_id: str
    user_id: str
    inviter_user_id: str
    message: str
    state: int
    handler_user_id: str
    handle_message: str
    created_at: int
    handled_at: int


_encode = msgspec.msgpack.Encoder().encode
_group = msgspec.msgpack.Decoder(GroupRecord)
_member = msgspec.msgpack.Decoder(MemberRecord)
_joined = msgspec.msgpack.Decoder(JoinedRecord)
_application = msgspec.msgpack.Decoder(GroupApplicationRecord)

MANAGER_ROLE = 60


def join_order(record: MemberRecord) -> tuple[int, str]:
    """Members are listed in the order they joined (those who joined together in the
    order they were listed)."""
    return record.join_seq, record.user_id


def decode_member(raw: bytes) -> MemberRecord:
    return _member.decode(raw)


def decode_joined(raw: bytes) -> JoinedRecord:
    return _joined.decode(raw)


@dataclass(frozen=True)
class LoadedGroup:
    info: GroupRecord
    members: dict[str, MemberRecord]
    rev: int


@dataclass
class GroupStep:
    """The writes of one change to a group, in the order they are made.

    ``expected_rev`` is the revision the change was computed from; ``None`` for a
    group being created. Checks (``require_account``) run before any write."""

    group_id: str
    expected_rev: int | None
    users: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    checks: list[Any] = field(default_factory=list)
    ops: list[Any] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    """The users of each ``notify``, in order."""
    info: GroupRecord | None = None
    member_puts: dict[str, MemberRecord] = field(default_factory=dict)
    member_deletes: set[str] = field(default_factory=set)

    def _key(self, user_id: str) -> int:
        """The user's index in KEYS (1 is the group)."""
        index = self._index.get(user_id)
        if index is None:
            self.users.append(user_id)
            index = self._index[user_id] = len(self.users) + 1
        return index

    def join_seq(self, index: int) -> int:
        """The ``join_seq`` of the ``index``-th member joining in this step: the group's
        revision grows with every step, and a step adds fewer than 1000 members."""
        return (self.expected_rev or 0) * 1000 + index

    def require_account(self, user_id: str) -> None:
        self.checks += ["account", self._key(user_id)]

    def put_info(self, record: GroupRecord) -> None:
        self.info = record
        self.ops += ["info", _encode(record)]

    def put_member(self, record: MemberRecord, *, insert: bool) -> None:
        self.member_puts[record.user_id] = record
        self.member_deletes.discard(record.user_id)
        self.ops += ["mput", record.user_id, _encode(record), "insert" if insert else "update"]

    def delete_member(self, user_id: str) -> None:
        self.member_puts.pop(user_id, None)
        self.member_deletes.add(user_id)
        self.ops += ["mdel", user_id]

    def put_joined(self, member: MemberRecord, *, insert: bool) -> None:
        """The member's own entry in their joined-group list (its role changed, or new)."""
        record = JoinedRecord(self.group_id, member.role, member.joined_at)
        self.ops += [
            "jput", self._key(member.user_id), _encode(record),
            "insert" if insert else "update", member.joined_at,
            "1" if member.role >= MANAGER_ROLE else "0",
        ]  # fmt: skip
        if insert:
            conversation = ConversationRecord(
                group_conversation_id(self.group_id), GROUP_CHAT, "", self.group_id
            )
            self.ops += ["conv", self._key(member.user_id), encode_record(conversation)]

    def touch_joined(self, user_ids: Sequence[str]) -> None:
        """The group's info changed: an update in each user's joined-group log."""
        for user_id in user_ids:
            self.ops += ["jtouch", self._key(user_id)]

    def delete_joined(self, user_id: str) -> None:
        self.ops += ["jdel", self._key(user_id)]

    def put_application(self, record: GroupApplicationRecord) -> None:
        self.ops += [
            "app", record.user_id, _encode(record), record.created_at,
            "1" if record.state == 0 else "0", self._key(record.user_id),
        ]  # fmt: skip

    def notify(self, payload: bytes, user_ids: Sequence[str]) -> None:
        """Append ``payload`` to each user's notification log (duplicates dropped)."""
        unique = list(dict.fromkeys(user_ids))
        self.recipients.append(unique)
        self.ops += ["ntf", payload, len(unique), *(self._key(u) for u in unique)]


@dataclass(frozen=True)
class StepResult:
    rev: int
    seqs: list[list[tuple[str, int]]]
    """Per ``notify`` of the step: (user id, seq) for each recipient."""


class GroupStore:
    def __init__(
        self, client: PipelinedRedis, keys: Keys, scripts: Scripts, log_length: int, keep: int
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.log_length = log_length
        self.notifications_kept = keep

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
        decoded = (_member.decode(raw) for raw in members.values())
        ordered = sorted(decoded, key=join_order)
        return LoadedGroup(_group.decode(info), {r.user_id: r for r in ordered}, int(rev or 0))

    async def run(self, step: GroupStep) -> StepResult:
        """Make the step's writes; raises :class:`StaleRead` or :class:`StepRefused`."""
        keys = [self.base(step.group_id), *(self._user(u) for u in step.users)]
        expected = "new" if step.expected_rev is None else str(step.expected_rev)
        args = [
            expected, step.group_id, new_version_id(), self.log_length,
            self.notifications_kept, *step.checks, *step.ops,
        ]  # fmt: skip
        reply = await self._scripts.run("group_step", keys, args)
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status == "RETRY":
            raise StaleRead()
        if status == "USER_NOT_FOUND":
            raise StepRefused(status, step.users[int(reply[1]) - 2])
        if status != "OK":
            raise StepRefused(status)
        flat = iter(int(s) for s in reply[2:])
        seqs = [[(user, next(flat)) for user in users] for users in step.recipients]
        return StepResult(int(reply[1]), seqs)

    async def application(self, group_id: str, user_id: str) -> GroupApplicationRecord | None:
        raw = cast(bytes | None, await self._redis.hget(f"{self.base(group_id)}:apps", user_id))
        return None if raw is None else _application.decode(raw)

    async def pending_applications(
        self, group_id: str, user_ids: Sequence[str]
    ) -> list[GroupApplicationRecord]:
        """The pending applications of these users (to mark them handled when they join)."""
        if not user_ids:
            return []
        raw = cast(
            list[bytes | None], await self._redis.hmget(f"{self.base(group_id)}:apps", user_ids)
        )
        found = (_application.decode(r) for r in raw if r is not None)
        return [a for a in found if a.state == 0]

    async def members_with_version(self, group_id: str) -> tuple[list[bytes], str, int]:
        """Every member record with the member list's version, read together."""
        base = self.base(group_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hvals(f"{base}:members")
        pipe.hmget(f"{base}:vlog:members", "id", "ver")
        records, (version_id, version) = await pipe.execute()
        return list(records), _text(version_id), int(version or 0)

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
                found[group_id] = (_group.decode(raw), int(count))
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
        return [_joined.decode(r) for r in raw if r is not None], int(total)

    async def joined_ids(self, user_id: str) -> tuple[list[str], str, int]:
        base = self._user(user_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrange(f"{base}:groups", 0, -1)
        pipe.hmget(f"{base}:vlog:groups", "id", "ver")
        ids, (version_id, version) = await pipe.execute()
        return [i.decode() for i in ids], _text(version_id), int(version or 0)

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
        return [_application.decode(r) for r in raw if r is not None], int(total)

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
        pipe = self._redis.pipeline(transaction=True)
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
        return [_application.decode(r) for r in raw if r is not None], total


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
