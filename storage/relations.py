"""Friends, friend applications and blacklists in Redis.

Records are msgspec Structs stored as msgpack. Each change is one Lua step
that checks its preconditions, changes both users' data, writes the version
log and appends the notifications, so a change and its notifications are
stored together or not at all. Steps that rewrite a record read it first and
pass it back as the expected value (compare-and-set); a step that finds it
changed answers ``RETRY``.

Methods are awaited on the node's trio loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import msgspec

from storage.errors import StaleRead, StepRefused
from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts
from storage.versionlog import Changes, new_version_id, read_changes


class FriendRecord(msgspec.Struct, frozen=True, array_like=True):
    user_id: str
    remark: str
    ex: str
    created_at: int


class ApplicationRecord(msgspec.Struct, frozen=True, array_like=True):
    from_user_id: str
    to_user_id: str
    message: str
    state: int
    handle_message: str
    created_at: int
    handled_at: int


class BlackRecord(msgspec.Struct, frozen=True, array_like=True):
    user_id: str
    ex: str
    created_at: int


_encode = msgspec.msgpack.Encoder().encode
_friend = msgspec.msgpack.Decoder(FriendRecord)
_application = msgspec.msgpack.Decoder(ApplicationRecord)
_black = msgspec.msgpack.Decoder(BlackRecord)


@dataclass(frozen=True)
class ResponseSeqs:
    responder_result: int
    applicant_result: int
    responder_added: int
    applicant_added: int


def _outcome(reply: list[Any]) -> list[int]:
    status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    if status == "RETRY":
        raise StaleRead()
    if status != "OK":
        raise StepRefused(status)
    return [int(x) for x in reply[1:]]


class RelationStore:
    def __init__(
        self, client: PipelinedRedis, keys: Keys, scripts: Scripts, log_length: int, keep: int
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.log_length = log_length
        self.notifications_kept = keep

    def _base(self, user_id: str) -> str:
        return self._keys.user_tag(user_id)

    async def _run(self, script: str, users: list[str], args: list[Any]) -> list[int]:
        keys = [self._base(u) for u in users]
        return _outcome(await self._scripts.run(script, keys, args))

    # -- applications -------------------------------------------------------------

    async def apply(self, application: ApplicationRecord, notification: bytes) -> tuple[int, int]:
        """Store (or renew) an application; returns the notification seqs (target, applicant)."""
        a, b = application.from_user_id, application.to_user_id
        seqs = await self._run(
            "friend_apply",
            [a, b],
            [a, b, _encode(application), application.created_at, notification,
             self.notifications_kept],
        )  # fmt: skip
        return seqs[0], seqs[1]

    async def received_application(
        self, owner: str, from_user_id: str
    ) -> tuple[bytes, ApplicationRecord] | None:
        raw = cast(bytes | None, await self._redis.hget(f"{self._base(owner)}:fa:in", from_user_id))
        return None if raw is None else (raw, _application.decode(raw))

    async def respond(
        self,
        read: bytes,
        handled: ApplicationRecord,
        now: int,
        responder_entry: FriendRecord,
        applicant_entry: FriendRecord,
        result_notification: bytes,
        responder_added: bytes,
        applicant_added: bytes,
    ) -> ResponseSeqs:
        responder, applicant = handled.to_user_id, handled.from_user_id
        seqs = await self._run(
            "friend_respond",
            [responder, applicant],
            [
                responder, applicant, read, _encode(handled), "1" if handled.state == 1 else "0",
                now, _encode(responder_entry), _encode(applicant_entry), new_version_id(),
                new_version_id(), self.log_length, self.notifications_kept,
                result_notification, responder_added, applicant_added,
            ],
        )  # fmt: skip
        return ResponseSeqs(*seqs)

    async def _page(
        self, order_key: str, records_key: str, offset: int, limit: int, newest_first: bool
    ) -> tuple[list[bytes], int]:
        """Records in the order of a sorted set, one page of them, and how many there are."""
        pipe = self._redis.pipeline(transaction=True)
        if newest_first:
            pipe.zrevrange(order_key, offset, offset + limit - 1)
        else:
            pipe.zrange(order_key, offset, offset + limit - 1)
        pipe.zcard(order_key)
        ids, total = await pipe.execute()
        if not ids:
            return [], int(total)
        raw = cast(list[bytes | None], await self._redis.hmget(records_key, ids))
        return [r for r in raw if r is not None], int(total)

    async def applications(
        self, owner: str, direction: Literal["received", "sent"], offset: int, limit: int
    ) -> tuple[list[ApplicationRecord], int]:
        """A page of applications, newest first, and how many there are."""
        base = f"{self._base(owner)}:fa:{'in' if direction == 'received' else 'out'}"
        raw, total = await self._page(f"{base}:order", base, offset, limit, newest_first=True)
        return [_application.decode(r) for r in raw], total

    async def count_pending(self, owner: str) -> int:
        return int(await self._redis.scard(f"{self._base(owner)}:fa:in:pending"))

    # -- friends -------------------------------------------------------------------

    async def delete_friend(
        self, owner: str, friend: str, both_sides: bool, owner_note: bytes, friend_note: bytes
    ) -> tuple[int, int]:
        seqs = await self._run(
            "friend_delete",
            [owner, friend],
            [owner, friend, "1" if both_sides else "0", new_version_id(), new_version_id(),
             self.log_length, self.notifications_kept, owner_note, friend_note],
        )  # fmt: skip
        return seqs[0], seqs[1]

    async def friend_entry(self, owner: str, friend: str) -> tuple[bytes, FriendRecord] | None:
        raw = cast(bytes | None, await self._redis.hget(f"{self._base(owner)}:friends", friend))
        return None if raw is None else (raw, _friend.decode(raw))

    async def update_friend(
        self, owner: str, read: bytes, entry: FriendRecord, notification: bytes
    ) -> int:
        seqs = await self._run(
            "friend_update",
            [owner],
            [entry.user_id, read, _encode(entry), new_version_id(), self.log_length,
             self.notifications_kept, notification],
        )  # fmt: skip
        return seqs[0]

    async def friends(self, owner: str, offset: int, limit: int) -> tuple[list[FriendRecord], int]:
        """A page of the friend list in the order friends were added, and its length."""
        base = f"{self._base(owner)}:friends"
        raw, total = await self._page(f"{base}:order", base, offset, limit, newest_first=False)
        return [_friend.decode(r) for r in raw], total

    async def friends_by_id(self, owner: str, user_ids: list[str]) -> list[FriendRecord]:
        if not user_ids:
            return []
        raw = cast(
            list[bytes | None], await self._redis.hmget(f"{self._base(owner)}:friends", user_ids)
        )
        return [_friend.decode(r) for r in raw if r is not None]

    async def friendship(self, a: str, b: str) -> tuple[bool, bool]:
        """(b is in a's list, a is in b's list)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hexists(f"{self._base(a)}:friends", b)
        pipe.hexists(f"{self._base(b)}:friends", a)
        a_has_b, b_has_a = await pipe.execute()
        return bool(a_has_b), bool(b_has_a)

    async def friend_ids(self, owner: str) -> tuple[list[str], str, int]:
        """Every friend id (in the order added) with the list's version, read together."""
        base = self._base(owner)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrange(f"{base}:friends:order", 0, -1)
        pipe.hmget(f"{base}:vlog:friends", "id", "ver")
        ids, (version_id, version) = await pipe.execute()
        return (
            [i.decode() for i in ids],
            version_id.decode() if version_id else "",
            int(version or 0),
        )

    async def sync_friends(self, owner: str, version_id: str, version: int) -> Changes:
        base = self._base(owner)
        return await read_changes(
            self._scripts, f"{base}:vlog:friends", f"{base}:friends", version_id, version
        )

    @staticmethod
    def decode_friend(raw: bytes) -> FriendRecord:
        return _friend.decode(raw)

    async def followers(self, user_id: str) -> list[str]:
        """Users who have ``user_id`` in their friend list."""
        members = cast(set[bytes], await self._redis.smembers(f"{self._base(user_id)}:friend_of"))
        return sorted(m.decode() for m in members)

    # -- blacklist -----------------------------------------------------------------

    async def add_black(self, owner: str, entry: BlackRecord, notification: bytes) -> int:
        seqs = await self._run(
            "black_add",
            [owner, entry.user_id],
            [entry.user_id, _encode(entry), entry.created_at, self.notifications_kept,
             notification],
        )  # fmt: skip
        return seqs[0]

    async def remove_black(self, owner: str, user_id: str, notification: bytes) -> int:
        seqs = await self._run(
            "black_remove", [owner], [user_id, self.notifications_kept, notification]
        )
        return seqs[0]

    async def blacks(self, owner: str, offset: int, limit: int) -> tuple[list[BlackRecord], int]:
        """A page of the blacklist, most recently added first, and its length."""
        base = f"{self._base(owner)}:black"
        raw, total = await self._page(f"{base}:order", base, offset, limit, newest_first=True)
        return [_black.decode(r) for r in raw], total

    async def is_blocked(self, owner: str, user_id: str) -> bool:
        """Whether ``owner`` has put ``user_id`` on their blacklist."""
        return bool(await self._redis.hexists(f"{self._base(owner)}:black", user_id))
