"""The friend and blacklist steps (storage/relations.py) on a Redis Cluster: each is
a primary step on the acting user's slot plus follow-ups for the other user and the
pair's single-chat gate, so every one runs on ``slot_checking_redis`` (which refuses
a step whose keys span slots). Also: a refusal changes nothing, a step stopped
between its primary and its follow-ups is completed exactly once by the replay, and
the races of two users acting on each other at once leave both users' data agreeing
(each list with the other's ``:friend_of``, the gate, the application's two sides,
exact incremental sync)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis
import trio
from msgspec.structs import replace

from actors.user.relations import friend_sync_reply
from client import FriendListCopy
from protocol.conversation_ids import single_conversation_id
from protocol.relations import ACCEPTED, PENDING, REFUSED
from storage import (
    ApplicationRecord,
    BlackRecord,
    FriendRecord,
    StaleRead,
    StepRefused,
    Storage,
)
from storage.followups import OutboxEntry
from storage.relations import ResponseSeqs

NODE = "node-r"
NOW = 1_700_000_000_000


class Pair:
    """Two users' steps on one storage, and what they left in Redis."""

    def __init__(self, storage: Storage, client: redis.Redis) -> None:
        self.storage = storage
        self.client: Any = client  # its replies are bytes (no decode_responses)
        self.relations = storage.relations
        self.clock = NOW

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def base(self, user: str) -> str:
        return self.storage.keys.user_tag(user)

    def account(self, *users: str) -> None:
        for user in users:
            self.client.hset(self.storage.keys.account(user), "name", user)

    async def apply(self, a: str, b: str, message: str = "hi") -> tuple[int, int]:
        application = ApplicationRecord(a, b, message, PENDING, "", self.tick(), 0)
        return await self.relations.apply(application, f"apply {a}>{b} {message}".encode())

    async def respond(self, r: str, a: str, accept: bool = True) -> ResponseSeqs:
        found = await self.relations.received_application(r, a)
        assert found is not None
        read, application = found
        return await self.respond_to(read, application, accept)

    async def respond_to(
        self, read: bytes, application: ApplicationRecord, accept: bool = True
    ) -> ResponseSeqs:
        r, a = application.to_user_id, application.from_user_id
        now = self.tick()
        handled = replace(application, state=ACCEPTED if accept else REFUSED, handled_at=now)
        return await self.relations.respond(
            read,
            handled,
            now,
            FriendRecord(a, "", "", now),
            FriendRecord(r, "", "", now),
            f"result {a}>{r}".encode(),
            f"added {a} to {r}".encode(),
            f"added {r} to {a}".encode(),
        )

    async def delete(self, owner: str, friend: str, both: bool = False) -> tuple[int, int]:
        return await self.relations.delete_friend(
            owner, friend, both, f"deleted {friend}".encode(), f"deleted by {owner}".encode()
        )

    async def block(self, owner: str, user: str) -> int:
        entry = BlackRecord(user, "", self.tick())
        return await self.relations.add_black(owner, entry, f"block {user}".encode())

    async def unblock(self, owner: str, user: str) -> int:
        return await self.relations.remove_black(owner, user, f"unblock {user}".encode())

    async def dies_before_follow_ups(self, step: Awaitable[Any]) -> None:
        """Run ``step`` as if its node died between its primary step and its
        follow-ups (they stay in the outbox, the note in the node's pending set)."""

        async def node_dies(source: str, entry: OutboxEntry) -> None:
            raise RuntimeError("the node died here")

        self.storage.followups.before_apply = node_dies
        with pytest.raises(RuntimeError, match="died"):
            await step
        self.storage.followups.before_apply = None

    def notes(self, user: str) -> list[bytes]:
        stored = self.client.hgetall(f"{self.base(user)}:ntf")
        return [stored[seq] for seq in sorted(stored, key=int)]

    def gate(self, a: str, b: str) -> dict[bytes, bytes]:
        base = self.storage.keys.conversation_tag(single_conversation_id(a, b))
        return dict(self.client.hgetall(f"{base}:gate"))

    def friends(self, user: str) -> set[str]:
        return {k.decode() for k in self.client.hkeys(f"{self.base(user)}:friends")}

    def snapshot(self) -> dict[bytes, Any]:
        """Every key of the test's prefix but the nodes' (the note of a pending step
        is removed by a detached command) and its dump."""
        prefix = self.storage.keys.prefix
        return {
            key: self.client.dump(key)
            for key in self.client.scan_iter(f"{prefix}*")
            if not key.startswith(f"{prefix}{{n:".encode())
        }

    async def settled(self) -> None:
        """Wait for the detached deletes of applied outbox entries."""
        pattern = f"{self.storage.keys.prefix}*:outbox"
        with trio.fail_after(5):
            while any(self.client.hlen(key) for key in self.client.scan_iter(pattern)):
                await trio.sleep(0.01)

    async def unnoted(self) -> None:
        """Wait until the node has no step noted as pending any more."""
        with trio.fail_after(5):
            while self.client.scard(self.storage.keys.node_pending(NODE)):
                await trio.sleep(0.01)

    async def check(self, a: str, b: str) -> None:
        """The pair's data agrees with itself, whatever order the steps ran in."""
        await self.settled()
        gate = self.gate(a, b)
        for x, y in ((a, b), (b, a)):
            x_base, y_base = self.base(x), self.base(y)
            has = bool(self.client.hexists(f"{x_base}:friends", y))
            assert has == bool(self.client.sismember(f"{y_base}:friend_of", x)), (x, y)
            assert has == (self.client.zscore(f"{x_base}:friends:order", y) is not None), (x, y)
            assert gate.get(f"friend:{x}".encode(), b"0") == (b"1" if has else b"0"), (x, y)
            blocks = bool(self.client.hexists(f"{x_base}:black", y))
            assert gate.get(f"black:{x}".encode(), b"0") == (b"1" if blocks else b"0"), (x, y)
            sent = self.client.hget(f"{x_base}:fa:out", y)
            assert sent == self.client.hget(f"{y_base}:fa:in", x), (x, y)
            pending = sent is not None and _application(sent).state == PENDING
            assert pending == bool(self.client.sismember(f"{y_base}:fa:in:pending", x)), (x, y)


_application = msgspec.msgpack.Decoder(ApplicationRecord).decode


@pytest.fixture
async def pair(nursery: trio.Nursery, slot_checking_redis: Any, prefix: str) -> AsyncIterator[Pair]:
    storage = Storage(slot_checking_redis.plain_url, prefix, NODE)
    await nursery.start(storage.run)
    client = redis.Redis.from_url(slot_checking_redis.plain_url)
    pair = Pair(storage, client)
    pair.account("alice", "bob", "carol")
    yield pair
    storage.close()
    client.close()


class Copy:
    """A client's copy of one friend list, kept by incremental sync."""

    def __init__(self, pair: Pair, user: str) -> None:
        self.pair, self.user, self.copy = pair, user, FriendListCopy()

    async def sync(self) -> None:
        changes = await self.pair.relations.sync_friends(
            self.user, self.copy.version_id, self.copy.version
        )
        self.copy.apply(friend_sync_reply(0, changes))
        assert set(self.copy.friends) == self.pair.friends(self.user)

    async def is_current(self) -> None:
        changes = await self.pair.relations.sync_friends(
            self.user, self.copy.version_id, self.copy.version
        )
        assert changes.kind == "equal"


def hold(pair: Pair, source_user: str) -> tuple[trio.Event, trio.Event]:
    """Make the next step of ``source_user`` stop between its primary step and its
    follow-ups: returns (reached, release)."""
    reached, release = trio.Event(), trio.Event()
    source = pair.base(source_user)

    async def before_apply(at: str, entry: OutboxEntry) -> None:
        if at == source and not reached.is_set():
            reached.set()
            await release.wait()

    pair.storage.followups.before_apply = before_apply
    return reached, release


async def run_held(
    pair: Pair,
    held_user: str,
    held: Callable[[], Awaitable[Any]],
    other: Callable[[], Awaitable[Any]],
) -> tuple[Any, Any]:
    """Run ``held`` up to its follow-ups, then ``other`` to the end, then the rest of
    ``held``; returns both results (or the exceptions they raised)."""
    reached, release = hold(pair, held_user)
    results: dict[str, Any] = {}

    async def run(name: str, step: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[name] = await step()
        except (StepRefused, StaleRead) as exc:
            results[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "held", held)
        with trio.fail_after(10):
            await reached.wait()
        await run("other", other)
        release.set()
    pair.storage.followups.before_apply = None
    return results["held"], results["other"]


class TestEveryStepOnOneSlot:
    async def test_apply_and_accept_write_both_users_and_the_gate(self, pair: Pair) -> None:
        alice, bob = Copy(pair, "alice"), Copy(pair, "bob")
        await alice.sync()
        await bob.sync()
        assert await pair.apply("alice", "bob") == (1, 1)
        assert pair.notes("bob") == pair.notes("alice") == [b"apply alice>bob hi"]
        assert pair.client.smembers(f"{pair.base('bob')}:fa:in:pending") == {b"alice"}
        assert pair.gate("alice", "bob") == {}  # an application changes no friendship
        await pair.check("alice", "bob")

        seqs = await pair.respond("bob", "alice")
        assert seqs == ResponseSeqs(
            responder_result=3, applicant_result=3, responder_added=2, applicant_added=2
        )
        assert pair.notes("bob")[1:] == [b"added alice to bob", b"result alice>bob"]
        assert pair.notes("alice")[1:] == [b"added bob to alice", b"result alice>bob"]
        assert pair.friends("alice") == {"bob"} and pair.friends("bob") == {"alice"}
        assert _application(pair.client.hget(f"{pair.base('alice')}:fa:out", "bob")).state == (
            ACCEPTED
        )
        assert pair.gate("alice", "bob") == {b"friend:alice": b"1", b"friend:bob": b"1"}
        assert await pair.relations.followers("alice") == ["bob"]
        await pair.check("alice", "bob")
        await pair.unnoted()
        await alice.sync()
        await bob.sync()

    async def test_refuse_answers_both_sides_and_changes_no_friendship(self, pair: Pair) -> None:
        await pair.apply("alice", "bob")
        seqs = await pair.respond("bob", "alice", accept=False)
        assert seqs == ResponseSeqs(2, 2, 0, 0)
        assert pair.friends("alice") == pair.friends("bob") == set()
        assert _application(pair.client.hget(f"{pair.base('alice')}:fa:out", "bob")).state == (
            REFUSED
        )
        assert pair.gate("alice", "bob") == {}
        await pair.check("alice", "bob")

    async def test_delete_one_side_then_both_sides(self, pair: Pair) -> None:
        await pair.apply("alice", "bob")
        await pair.respond("bob", "alice")
        alice, bob = Copy(pair, "alice"), Copy(pair, "bob")
        await alice.sync()
        await bob.sync()

        assert await pair.delete("bob", "alice") == (4, 0)
        assert pair.friends("bob") == set() and pair.friends("alice") == {"bob"}
        assert pair.gate("alice", "bob") == {b"friend:alice": b"1", b"friend:bob": b"0"}
        await pair.check("alice", "bob")
        await bob.sync()
        await alice.is_current()

        await pair.apply("bob", "alice")
        await pair.respond("alice", "bob")  # alice has bob already: only bob gets alice
        assert pair.notes("alice")[-1:] == [b"result bob>alice"]
        assert pair.friends("bob") == {"alice"}
        await pair.check("alice", "bob")

        seq_alice, seq_bob = await pair.delete("alice", "bob", both=True)
        assert pair.notes("alice")[seq_alice - 1] == b"deleted bob"
        assert pair.notes("bob")[seq_bob - 1] == b"deleted by alice"
        assert pair.friends("alice") == pair.friends("bob") == set()
        assert pair.gate("alice", "bob") == {b"friend:alice": b"0", b"friend:bob": b"0"}
        await pair.check("alice", "bob")
        await alice.sync()
        await bob.sync()

    async def test_both_sides_delete_of_a_one_sided_friend_leaves_the_other_alone(
        self, pair: Pair
    ) -> None:
        await pair.apply("alice", "bob")
        await pair.respond("bob", "alice")
        await pair.delete("bob", "alice")
        before = len(pair.notes("bob"))
        assert await pair.delete("alice", "bob", both=True) == (4, 0)
        assert len(pair.notes("bob")) == before
        await pair.check("alice", "bob")

    async def test_update_friend_and_the_blacklist(self, pair: Pair) -> None:
        await pair.apply("alice", "bob")
        await pair.respond("bob", "alice")
        found = await pair.relations.friend_entry("alice", "bob")
        assert found is not None
        read, entry = found
        seq = await pair.relations.update_friend("alice", read, replace(entry, remark="B"), b"r")
        assert pair.notes("alice")[seq - 1] == b"r"

        assert await pair.block("alice", "bob") == seq + 1
        assert pair.gate("alice", "bob")[b"black:alice"] == b"1"
        assert await pair.relations.is_blocked("alice", "bob")
        await pair.check("alice", "bob")
        assert await pair.unblock("alice", "bob") == seq + 2
        assert pair.gate("alice", "bob")[b"black:alice"] == b"0"  # written, not deleted
        assert not await pair.relations.is_blocked("alice", "bob")
        await pair.check("alice", "bob")
        assert pair.friends("alice") == {"bob"}  # a block keeps the friendship


class TestRefusals:
    async def test_a_refused_step_changes_nothing(self, pair: Pair) -> None:
        await pair.apply("alice", "bob")
        await pair.respond("bob", "alice")
        await pair.block("carol", "alice")

        async def refused(reason: str, step: Awaitable[Any]) -> None:
            await pair.settled()
            before = pair.snapshot()
            with pytest.raises(StepRefused) as caught:
                await step
            assert caught.value.reason == reason
            await pair.settled()
            assert pair.snapshot() == before

        await refused("USER_NOT_FOUND", pair.apply("alice", "nobody"))
        await refused("USER_NOT_FOUND", pair.block("alice", "nobody"))
        await refused("ALREADY_FRIENDS", pair.apply("alice", "bob"))
        await refused("BLOCKED_BY_PEER", pair.apply("alice", "carol"))
        await pair.block("alice", "bob")
        await refused("PEER_BLOCKED", pair.apply("alice", "bob"))
        await refused("ALREADY_BLOCKED", pair.block("alice", "bob"))
        await refused("NOT_BLOCKED", pair.unblock("bob", "alice"))
        await refused("NOT_FRIENDS", pair.delete("alice", "carol"))
        application = ApplicationRecord("carol", "alice", "", PENDING, "", NOW, 0)
        await refused(
            "NO_SUCH_APPLICATION", pair.respond_to(msgspec.msgpack.encode(application), application)
        )
        await pair.unblock("carol", "alice")
        await pair.apply("alice", "carol")
        await pair.block("alice", "carol")
        await refused("BLOCKED_BY_PEER", pair.respond("carol", "alice"))
        await pair.unblock("alice", "carol")
        await pair.block("carol", "alice")
        await refused("PEER_BLOCKED", pair.respond("carol", "alice"))

    async def test_an_answer_to_a_changed_application_is_retried(self, pair: Pair) -> None:
        await pair.apply("alice", "bob", "first")
        found = await pair.relations.received_application("bob", "alice")
        assert found is not None
        await pair.apply("alice", "bob", "second")
        await pair.settled()
        before = pair.snapshot()
        with pytest.raises(StaleRead):
            await pair.respond_to(*found)
        assert pair.snapshot() == before
        await pair.respond("bob", "alice")
        await pair.check("alice", "bob")


class TestReplay:
    @pytest.mark.parametrize("replay", ["next_step", "replay_source", "replay_node"])
    async def test_a_step_stopped_before_its_follow_ups_is_completed_once(
        self, pair: Pair, replay: str
    ) -> None:
        await pair.apply("carol", "alice")
        await pair.respond("alice", "carol")  # alice's list has a version log
        alice = Copy(pair, "alice")
        await alice.sync()
        await pair.apply("alice", "bob")
        notes_before = pair.notes("alice")

        await pair.dies_before_follow_ups(pair.respond("bob", "alice"))
        # bob's side is written, alice's not yet: its follow-ups wait in bob's outbox
        assert pair.friends("bob") == {"alice"} and pair.friends("alice") == {"carol"}
        bob = pair.base("bob")
        [raw] = pair.client.hvals(f"{bob}:outbox")
        assert pair.client.sismember(pair.storage.keys.node_pending(NODE), bob)
        await alice.is_current()

        if replay == "next_step":
            await pair.block("bob", "carol")
        elif replay == "replay_source":
            assert await pair.storage.followups.replay_source(bob) == 1
        else:
            assert await pair.storage.followups.replay_node(NODE) == 1
        assert pair.friends("alice") == {"carol", "bob"}
        assert pair.notes("alice")[len(notes_before) :] == [
            b"added bob to alice",
            b"result alice>bob",
        ]
        assert pair.gate("alice", "bob") == {b"friend:alice": b"1", b"friend:bob": b"1"}
        await pair.check("alice", "bob")
        await alice.sync()

        # applied again (a frozen node waking up), it changes nothing
        assert await pair.storage.followups.apply(bob, [raw]) == [[[], []]]
        assert await pair.storage.followups.replay_source(bob) == 0
        assert len(pair.notes("alice")) == len(notes_before) + 2
        await alice.is_current()
        await pair.check("alice", "bob")

    async def test_a_refused_step_applies_what_a_previous_one_left(self, pair: Pair) -> None:
        await pair.dies_before_follow_ups(pair.block("alice", "bob"))
        assert pair.gate("alice", "bob") == {}
        with pytest.raises(StepRefused):
            await pair.block("alice", "bob")  # ALREADY_BLOCKED, after applying the first
        assert pair.gate("alice", "bob") == {b"black:alice": b"1"}
        await pair.check("alice", "bob")


class TestRaces:
    async def test_two_accept_each_others_application_at_once(self, pair: Pair) -> None:
        await pair.apply("alice", "bob")
        await pair.apply("bob", "alice")
        alice, bob = Copy(pair, "alice"), Copy(pair, "bob")
        await alice.sync()
        await bob.sync()
        held, other = await run_held(
            pair,
            "alice",
            lambda: pair.respond("alice", "bob"),
            lambda: pair.respond("bob", "alice"),
        )
        assert isinstance(held, ResponseSeqs) and isinstance(other, ResponseSeqs)
        assert pair.friends("alice") == {"bob"} and pair.friends("bob") == {"alice"}
        for user in ("alice", "bob"):  # each added once, by whichever step came first
            assert sum(n.startswith(b"added") for n in pair.notes(user)) == 1
        await pair.check("alice", "bob")
        await alice.sync()
        await bob.sync()

    async def test_two_accept_at_once_free_running(self, pair: Pair) -> None:
        for _ in range(5):
            await pair.apply("alice", "bob")
            await pair.apply("bob", "alice")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pair.respond, "alice", "bob")
                nursery.start_soon(pair.respond, "bob", "alice")
            await pair.check("alice", "bob")
            assert pair.friends("alice") == {"bob"} and pair.friends("bob") == {"alice"}
            await pair.delete("alice", "bob", both=True)
            await pair.check("alice", "bob")

    @pytest.mark.parametrize("held_user", ["bob", "alice"])
    async def test_accept_racing_the_applicants_delete(self, pair: Pair, held_user: str) -> None:
        # alice has bob, bob does not have alice; alice applies again; then bob accepts
        # while alice deletes bob
        await pair.apply("alice", "bob")
        await pair.respond("bob", "alice")
        await pair.delete("bob", "alice")
        await pair.apply("alice", "bob", "again")
        alice, bob = Copy(pair, "alice"), Copy(pair, "bob")
        await alice.sync()
        await bob.sync()

        def accept() -> Awaitable[Any]:
            return pair.respond("bob", "alice")

        def delete() -> Awaitable[Any]:
            return pair.delete("alice", "bob")

        if held_user == "bob":
            await run_held(pair, "bob", accept, delete)
        else:
            await run_held(pair, "alice", delete, accept)
        assert pair.friends("bob") == {"alice"} and pair.friends("alice") == set()
        await pair.check("alice", "bob")
        await alice.sync()
        await bob.sync()

    @pytest.mark.parametrize("held_user", ["bob", "alice"])
    async def test_delete_both_sides_racing_the_others_accept(
        self, pair: Pair, held_user: str
    ) -> None:
        # bob has alice, alice does not have bob, bob applied to alice; alice accepts
        # while bob deletes alice on both sides
        await pair.apply("bob", "alice")
        await pair.respond("alice", "bob")
        await pair.delete("alice", "bob")
        await pair.apply("bob", "alice", "again")

        def accept() -> Awaitable[Any]:
            return pair.respond("alice", "bob")

        def delete() -> Awaitable[Any]:
            return pair.delete("bob", "alice", both=True)

        if held_user == "bob":
            await run_held(pair, "bob", delete, accept)
        else:
            await run_held(pair, "alice", accept, delete)
        await pair.check("alice", "bob")

    async def test_apply_racing_a_block(self, pair: Pair) -> None:
        # the application's primary step ran before the block: it lands, and the
        # block holds from then on
        held, other = await run_held(
            pair, "alice", lambda: pair.apply("alice", "bob"), lambda: pair.block("bob", "alice")
        )
        assert held == (2, 1) and other == 1  # bob: the block, then the application
        assert pair.gate("alice", "bob") == {b"black:bob": b"1"}
        await pair.check("alice", "bob")
        with pytest.raises(StepRefused, match="PEER_BLOCKED"):
            await pair.respond("bob", "alice")
        with pytest.raises(StepRefused, match="BLOCKED_BY_PEER"):
            await pair.apply("alice", "bob")

    async def test_a_block_whose_follow_ups_are_pending_already_refuses(self, pair: Pair) -> None:
        held, other = await run_held(
            pair, "bob", lambda: pair.block("bob", "alice"), lambda: pair.apply("alice", "bob")
        )
        assert held == 1
        assert isinstance(other, StepRefused) and other.reason == "BLOCKED_BY_PEER"
        await pair.check("alice", "bob")
