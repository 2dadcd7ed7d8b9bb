"""The message and conversation steps, one slot each (docs/CLUSTER.md, "Sends and
conversations"), run through their stores on ``slot_checking_redis``: a one-master
Redis Cluster that refuses any step whose keys span slots. A send is one step on the
conversation's slot, whose follow-ups give entries only to users the conversation
had not seen; the single-chat gate refuses blocks, non-friends and unknown peers;
the read steps and revokes touch the conversation alone; writing a conversation
entry is a step on the user's slot with follow-ups on the conversation's. A node
stopped between a primary step and its follow-ups leaves them in the outbox, and
the replay (a resend, the next send, the node's pending set) lands them once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import pytest
import redis
import trio

from storage import AccountRecord, ConversationRecord, StaleRead, StepRefused, Storage
from storage.conversations import encode_record
from storage.followups import OutboxEntry

SI = "si_alice_bob"


@pytest.fixture
async def storage(
    nursery: trio.Nursery, slot_checking_redis: Any, prefix: str
) -> AsyncIterator[Storage]:
    storage = Storage(slot_checking_redis.plain_url, prefix, "node-s")
    await nursery.start(storage.run)
    for user in ("alice", "bob", "carol"):
        await storage.accounts.create(AccountRecord(user, "h", user, "", "", 1, 1))
    yield storage
    storage.close()


@pytest.fixture
def client(slot_checking_redis: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(slot_checking_redis.plain_url)
    yield client
    client.close()


def _entry(owner: str, peer: str) -> bytes:
    return encode_record(ConversationRecord(SI, 1, peer, ""))


async def _send(
    storage: Storage,
    client_msg_id: str,
    sender: str = "alice",
    peer: str = "bob",
    checks: Literal["", "peer", "friends"] = "peer",
    conversation: str = SI,
    locate: bool = False,
) -> Any:
    entries = {sender: _entry(sender, peer), peer: _entry(peer, sender)}
    return await storage.messages.send(
        conversation, client_msg_id, client_msg_id.encode(), 1_000, True, sender, entries,
        checks, peer, locate,
    )  # fmt: skip


def _conv(storage: Storage, conversation: str = SI) -> str:
    return storage.keys.conversation_tag(conversation)


def _user(storage: Storage, user: str) -> str:
    return storage.keys.user_tag(user)


async def _outbox_gone(client: redis.Redis, base: str) -> None:
    with trio.fail_after(5):
        while client.exists(f"{base}:outbox"):  # deleted by a detached command
            await trio.sleep(0.01)


async def test_a_send_gives_entries_once_then_is_one_step(
    storage: Storage, client: redis.Redis
) -> None:
    bob_presence = storage.keys.presence("bob")
    client.hset(bob_presence, "s1", "1:node-b:t1:5")
    first = await _send(storage, "m1", locate=True)
    assert (first.seq, first.duplicate, first.nodes) == (1, False, frozenset({"node-b"}))
    assert storage.followups.applied == 2  # both users' entries
    for owner, peer in (("alice", "bob"), ("bob", "alice")):
        assert client.hget(f"{_user(storage, owner)}:conv", SI) == _entry(owner, peer)
        assert client.hgetall(f"{_user(storage, owner)}:vlog:convs:ops") == {
            SI.encode(): b"insert:1"
        }
    conv = _conv(storage)
    assert client.smembers(f"{conv}:entered") == {b"alice", b"bob"}
    assert client.hget(f"{conv}:reads", "alice") == b"1"  # sending reads what came before
    await _outbox_gone(client, conv)

    second = await _send(storage, "m2", sender="bob", peer="alice")
    assert (second.seq, second.duplicate, second.nodes) == (2, False, None)
    assert storage.followups.applied == 2  # steady state: no follow-ups
    assert not client.exists(f"{conv}:outbox")
    assert client.hget(f"{conv}:reads", "bob") == b"2"
    again = await _send(storage, "m1")
    assert (again.seq, again.duplicate) == (1, True)
    assert await storage.messages.max_seqs([SI]) == [2]


async def test_a_group_send_has_no_gate_and_enters_the_sender(
    storage: Storage, client: redis.Redis
) -> None:
    group_entry = encode_record(ConversationRecord("sg_g1", 2, "", "g1"))
    stored = await storage.messages.send(
        "sg_g1", "g-m1", b"hello", 1_000, True, "carol", {"carol": group_entry}
    )
    assert (stored.seq, stored.not_receiving) == (1, frozenset())
    assert client.hget(f"{_user(storage, 'carol')}:conv", "sg_g1") == group_entry
    assert not client.exists(f"{_conv(storage, 'sg_g1')}:gate")


async def test_the_gate_refuses_unknown_peers_blocks_and_non_friends(
    storage: Storage, client: redis.Redis
) -> None:
    with pytest.raises(StepRefused, match="USER_NOT_FOUND"):
        await _send(storage, "x1", peer="nobody", conversation="si_alice_nobody")
    assert not client.exists(f"{_conv(storage, 'si_alice_nobody')}:gate")
    assert await storage.messages.max_seqs(["si_alice_nobody"]) == [0]

    client.hset(f"{_user(storage, 'bob')}:black", "alice", "entry")
    with pytest.raises(StepRefused, match="BLOCKED_BY_PEER"):
        await _send(storage, "m1")
    gate = f"{_conv(storage)}:gate"
    assert client.hgetall(gate) == {
        b"exists": b"1",
        b"black:alice": b"0",
        b"friend:alice": b"0",
        b"black:bob": b"1",
        b"friend:bob": b"0",
    }
    assert await storage.messages.max_seqs([SI]) == [0]
    # What the follow-up of bob's unblock writes: the send then goes through.
    client.hset(gate, "black:bob", "0")
    assert (await _send(storage, "m1")).seq == 1
    client.hset(gate, "black:alice", "1")  # alice blocks bob
    with pytest.raises(StepRefused, match="PEER_BLOCKED"):
        await _send(storage, "m2")
    client.hset(gate, "black:alice", "0")
    with pytest.raises(StepRefused, match="NOT_FRIENDS"):
        await _send(storage, "m2", checks="friends")
    client.hset(gate, "friend:alice", "1")
    with pytest.raises(StepRefused, match="NOT_FRIENDS"):  # both sides are needed
        await _send(storage, "m2", checks="friends")
    client.hset(gate, "friend:bob", "1")
    assert (await _send(storage, "m2", checks="friends")).seq == 2


async def test_a_gate_filled_from_reads_keeps_a_block_written_meanwhile(
    storage: Storage, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fill read "bob does not block alice"; bob's block (its entry and its
    follow-up on the gate) landed before the fill was written: the block wins."""
    gate = f"{_conv(storage)}:gate"
    read_gate = storage.messages._gate_fields

    async def block_meanwhile(sender: str, peer: str) -> list[str]:
        fields = await read_gate(sender, peer)
        client.hset(f"{_user(storage, 'bob')}:black", "alice", "entry")
        client.hset(gate, "black:bob", "1")
        return fields

    monkeypatch.setattr(storage.messages, "_gate_fields", block_meanwhile)
    with pytest.raises(StepRefused, match="BLOCKED_BY_PEER"):
        await _send(storage, "m1")
    assert client.hget(gate, "black:bob") == b"1"
    assert client.hget(gate, "black:alice") == b"0"  # filled, as it was absent


async def test_a_send_stopped_before_its_follow_ups_is_completed_by_the_resend(
    storage: Storage, client: redis.Redis
) -> None:
    stops = 1

    async def stop(source: str, entry: OutboxEntry) -> None:
        nonlocal stops
        if stops:
            stops -= 1
            raise redis.ConnectionError("the node died here")

    storage.followups.before_apply = stop
    with pytest.raises(redis.ConnectionError):
        await _send(storage, "m1")
    bob_conv = f"{_user(storage, 'bob')}:conv"
    assert not client.hexists(bob_conv, SI)  # the primary ran, its follow-ups did not
    assert client.hlen(f"{_conv(storage)}:outbox") == 1
    resent = await _send(storage, "m1")
    assert (resent.seq, resent.duplicate) == (1, True)
    assert client.hget(bob_conv, SI) == _entry("bob", "alice")
    await _outbox_gone(client, _conv(storage))
    assert storage.followups.applied == 2
    assert (await _send(storage, "m1")).duplicate  # nothing left to apply
    assert storage.followups.applied == 2
    assert client.hgetall(f"{_user(storage, 'bob')}:vlog:convs:ops") == {SI.encode(): b"insert:1"}


async def test_the_next_send_lands_what_a_stopped_send_left(
    storage: Storage, client: redis.Redis
) -> None:
    async def stop(source: str, entry: OutboxEntry) -> None:
        storage.followups.before_apply = None
        raise trio.TooSlowError()

    storage.followups.before_apply = stop
    with pytest.raises(trio.TooSlowError):
        await _send(storage, "m1")
    assert (await _send(storage, "m2")).seq == 2  # applies m1's follow-ups first
    assert client.hget(f"{_user(storage, 'bob')}:conv", SI) == _entry("bob", "alice")
    assert storage.followups.applied == 2


async def test_read_steps_are_on_the_conversation_slot(
    storage: Storage, client: redis.Redis
) -> None:
    for n in range(1, 4):
        await _send(storage, f"m{n}")
    assert await storage.conversations.read_state("alice", [SI, "sg_none"]) == [(3, 0), (0, 0)]
    marked = await storage.conversations.mark_read("bob", SI, 2)
    assert (marked.has_read_seq, marked.max_seq, marked.advanced, marked.cleared) == (2, 3, True, 0)
    again = await storage.conversations.mark_read("bob", SI, 1)
    assert (again.has_read_seq, again.advanced) == (2, False)
    assert await storage.conversations.clear("bob", SI) == (3, 3)
    assert await storage.conversations.read_state("bob", [SI]) == [(3, 3)]
    assert client.hgetall(f"{_conv(storage)}:reads") == {
        b"alice": b"3",
        b"bob": b"3",
        b"cleared:bob": b"3",
    }


async def test_a_revoke_is_one_step_on_the_conversation(storage: Storage) -> None:
    await _send(storage, "m1")
    raw = await storage.messages.get(SI, 1)
    assert raw is not None
    with pytest.raises(StaleRead):
        await storage.messages.revoke(SI, 1, b"not as read", b"r", "revoke:1", b"n", 2_000)
    notice = await storage.messages.revoke(SI, 1, raw, b"revoked", "revoke:1", b"notice", 2_000)
    assert notice.seq == 2 and await storage.messages.get(SI, 1) == b"revoked"
    with pytest.raises(StepRefused, match="NO_SUCH_MESSAGE"):
        await storage.messages.revoke(SI, 9, raw, b"r", "revoke:9", b"n", 2_000)


async def test_writing_entries_keeps_the_conversations_sets_by_follow_ups(
    storage: Storage, client: redis.Redis
) -> None:
    muted = ConversationRecord(SI, 1, "bob", "", recv_opt=1)
    group = ConversationRecord("sg_g1", 2, "", "g1")
    await storage.conversations.write("alice", [(None, muted), (None, group)])
    conv = _conv(storage)
    assert client.smembers(f"{conv}:not_receiving") == {b"alice"}
    assert client.smembers(f"{conv}:entered") == {b"alice"}
    assert client.smembers(f"{_conv(storage, 'sg_g1')}:entered") == {b"alice"}
    assert client.scard(f"{_conv(storage, 'sg_g1')}:not_receiving") == 0
    stored = await _send(storage, "m1", sender="bob", peer="alice")
    assert stored.not_receiving == {"alice"}
    assert storage.followups.applied == 3  # only bob's entry: alice had one
    with pytest.raises(StaleRead):  # not what was read: nothing written
        await storage.conversations.write("alice", [(None, muted)])

    async def stop(source: str, entry: OutboxEntry) -> None:
        raise redis.ConnectionError("the node died here")

    read = await storage.conversations.entry("alice", SI)
    assert read is not None
    storage.followups.before_apply = stop
    with pytest.raises(redis.ConnectionError):
        await storage.conversations.write(
            "alice", [(read[0], ConversationRecord(SI, 1, "bob", ""))]
        )
    storage.followups.before_apply = None
    assert client.smembers(f"{conv}:not_receiving") == {b"alice"}  # not applied yet
    # The node starts again under its id: it replays what it had noted as pending.
    assert await storage.followups.replay_node("node-s") == 1
    assert client.scard(f"{conv}:not_receiving") == 0
    assert await storage.followups.replay_node("node-s") == 0


async def test_a_resend_answered_from_the_stored_send_lands_its_follow_ups(
    storage: Storage, client: redis.Redis
) -> None:
    """A group resend is answered by ``seq_of`` without running the send step (the
    group actor looks it up first): that look-up lands what the first send left."""
    group_entry = encode_record(ConversationRecord("sg_g1", 2, "", "g1"))

    async def stop(source: str, entry: OutboxEntry) -> None:
        storage.followups.before_apply = None
        raise redis.ConnectionError("the node died here")

    storage.followups.before_apply = stop
    with pytest.raises(redis.ConnectionError):
        await storage.messages.send(
            "sg_g1", "g-m1", b"hi", 1_000, True, "carol", {"carol": group_entry}
        )
    carol_conv = f"{_user(storage, 'carol')}:conv"
    assert not client.hexists(carol_conv, "sg_g1")
    assert await storage.messages.seq_of("sg_g1", "g-m1") == 1
    assert client.hget(carol_conv, "sg_g1") == group_entry
    assert await storage.messages.seq_of("sg_g1", "g-m2") is None
    assert storage.followups.applied == 1
