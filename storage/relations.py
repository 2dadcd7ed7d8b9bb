"""Friends, friend applications and blacklists in Redis.

Records are msgspec Structs stored as msgpack. Each change is a **primary** Lua
step on the slot of the acting user (docs/CLUSTER.md, "Steps that span
entities"): it checks the preconditions, writes the acting user's keys (their
list, its version log, their side of the application, their notification) and
records the writes due elsewhere as follow-ups (``storage/followups.py``): the
other user's entry, side of the application, version log and notification, and
the pair's single-chat gate (``{c:si_<low>_<high>}:gate``: ``black:<id>`` and
``friend:<id>``, '1' or '0', read by the send step). The follow-ups are applied
before a method returns, so a change that returned is stored everywhere. The
checks on the other user's keys (they blocked me, they have me as a friend, their
account exists) are read right before the primary step and passed in; each
script's header says why that is correct. Steps that rewrite a record read it
first and pass it back as the expected value (compare-and-set); a step that finds
it changed answers ``RETRY`` (``StaleRead``).

Methods are awaited on the node's trio loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import msgspec

from protocol.conversation_ids import single_conversation_id
from storage.errors import StaleRead, StepRefused
from storage.followups import FollowUpStore, Results
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


def _flag(value: object) -> str:
    return "1" if value else "0"


@dataclass(frozen=True)
class ResponseSeqs:
    responder_result: int
    applicant_result: int
    responder_added: int
    applicant_added: int


def _seq(results: Results, target: int, op: int) -> int:
    """The seq an op ``notify`` of the entry's follow-up ``target`` gave (0: none, or
    the target had applied the entry already)."""
    ops = results[target]
    return int(ops[op]) if ops else 0


class RelationStore:
    def __init__(
        self,
        client: PipelinedRedis,
        keys: Keys,
        scripts: Scripts,
        followups: FollowUpStore,
        log_length: int,
        keep: int,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self._followups = followups
        self.log_length = log_length
        self.notifications_kept = keep

    def _base(self, user_id: str) -> str:
        return self._keys.user_tag(user_id)

    def _gate(self, a: str, b: str) -> str:
        """Base of the pair's conversation, whose ``:gate`` the steps keep."""
        return self._keys.conversation_tag(single_conversation_id(a, b))

    async def _step(
        self, script: str, owner: str, args: list[Any], values: int
    ) -> tuple[list[int], Results]:
        """Run the primary step ``script`` on ``owner``'s slot (noted as pending, in
        the same batch), apply the follow-ups it returned (those a previous step left
        first), then answer: its ``values`` own-slot seqs and its follow-ups' results;
        raises ``StaleRead`` on ``RETRY``, ``StepRefused`` on a refusal."""
        source = self._base(owner)
        group = self._redis.pipeline(transaction=False)
        self._followups.note_pending(group, source)
        self._scripts.add(group, script, [source], args)
        _, reply = await group.execute()
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        count = values if status == "OK" else 0
        results = await self._followups.apply(source, reply[1 + count :], noted=True)
        if status == "RETRY":
            raise StaleRead()
        if status != "OK":
            raise StepRefused(status)
        return [int(x) for x in reply[1 : 1 + count]], results[-1]

    # -- applications -------------------------------------------------------------

    async def apply(self, application: ApplicationRecord, notification: bytes) -> tuple[int, int]:
        """Store (or renew) an application; returns the notification seqs (target, applicant)."""
        a, b = application.from_user_id, application.to_user_id
        target = self._base(b)
        reads = self._redis.pipeline(transaction=False)
        reads.exists(self._keys.account(b))
        reads.hexists(f"{target}:black", a)
        reads.hexists(f"{target}:friends", a)
        exists, blocks_me, has_me = await reads.execute()
        [seq_a], results = await self._step(
            "friend_apply",
            a,
            [a, b, target, _encode(application), application.created_at, notification,
             self.notifications_kept, _flag(exists), _flag(blocks_me), _flag(has_me)],
            1,
        )  # fmt: skip
        return _seq(results, 0, 3), seq_a

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
        accept = handled.state == 1
        applicant_base = self._base(applicant)
        blocks_me = await self._redis.hexists(f"{applicant_base}:black", responder)
        [responder_result, responder_added_seq, sent], results = await self._step(
            "friend_respond",
            responder,
            [
                responder, applicant, applicant_base, self._gate(responder, applicant), read,
                _encode(handled), _flag(accept), now, _encode(responder_entry),
                _encode(applicant_entry), new_version_id(), self.log_length,
                self.notifications_kept, result_notification, responder_added,
                applicant_added, _flag(blocks_me),
            ],
            3,
        )  # fmt: skip
        # the applicant's ops: hsetif fa:out [, sadd friend_of [, hsetnx friends, when,
        # zadd, notify added]], notify result
        return ResponseSeqs(
            responder_result,
            _seq(results, 0, -1),
            responder_added_seq,
            _seq(results, 0, 5) if sent else 0,
        )

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
        [seq_owner, sent], results = await self._step(
            "friend_delete",
            owner,
            [owner, friend, self._base(friend), self._gate(owner, friend), _flag(both_sides),
             new_version_id(), self.log_length, self.notifications_kept, owner_note,
             friend_note],
            2,
        )  # fmt: skip
        # the friend's ops: srem friend_of [, hdel friends, when, zrem, notify]
        return seq_owner, _seq(results, 0, 4) if sent else 0

    async def friend_entry(self, owner: str, friend: str) -> tuple[bytes, FriendRecord] | None:
        raw = cast(bytes | None, await self._redis.hget(f"{self._base(owner)}:friends", friend))
        return None if raw is None else (raw, _friend.decode(raw))

    async def update_friend(
        self, owner: str, read: bytes, entry: FriendRecord, notification: bytes
    ) -> int:
        reply = await self._scripts.run(
            "friend_update",
            [self._base(owner)],
            [entry.user_id, read, _encode(entry), new_version_id(), self.log_length,
             self.notifications_kept, notification],
        )  # fmt: skip
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status == "RETRY":
            raise StaleRead()
        if status != "OK":
            raise StepRefused(status)
        return int(reply[1])

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
        exists = await self._redis.exists(self._keys.account(entry.user_id))
        [seq], _ = await self._step(
            "black_add",
            owner,
            [entry.user_id, _encode(entry), entry.created_at, self.notifications_kept,
             notification, owner, self._gate(owner, entry.user_id), _flag(exists)],
            1,
        )  # fmt: skip
        return seq

    async def remove_black(self, owner: str, user_id: str, notification: bytes) -> int:
        [seq], _ = await self._step(
            "black_remove",
            owner,
            [user_id, self.notifications_kept, notification, owner, self._gate(owner, user_id)],
            1,
        )
        return seq

    async def blacks(self, owner: str, offset: int, limit: int) -> tuple[list[BlackRecord], int]:
        """A page of the blacklist, most recently added first, and its length."""
        base = f"{self._base(owner)}:black"
        raw, total = await self._page(f"{base}:order", base, offset, limit, newest_first=True)
        return [_black.decode(r) for r in raw], total

    async def is_blocked(self, owner: str, user_id: str) -> bool:
        """Whether ``owner`` has put ``user_id`` on their blacklist."""
        return bool(await self._redis.hexists(f"{self._base(owner)}:black", user_id))
