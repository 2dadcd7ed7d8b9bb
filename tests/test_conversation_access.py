"""Who may use a conversation, end to end through the SDK (issue 12, finding 2).

With user ids that could hold ``_``, the single chats of (``aX_b``, ``cX``) and
(``aX``, ``b_cX``) were both ``si_aX_b_cX``: ``aX`` could read the other pair's
messages and write into their conversation. User ids no longer hold ``_``, so a
single-chat id names one pair; and every conversation-scoped request is checked
against what is stored (the accounts, the group's members), not only parsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import redis
import trio

from client import ErrorCode, ParleyClient, single_conversation_id
from protocol import messages as m
from server import RunningNode
from tests.support import Connect, both_stores, drain, expect_error, signed_in, stored_state, user

pytestmark = both_stores

Call = Callable[[ParleyClient, str], Awaitable[object]]

CONVERSATION_REQUESTS: dict[str, Call] = {
    "pull_messages": lambda c, cid: c.pull_messages(cid),
    "get_history": lambda c, cid: c.get_history(cid),
    "mark_read": lambda c, cid: c.mark_read(cid),
    "delete_messages": lambda c, cid: c.delete_messages(cid, [1]),
    "clear_conversation": lambda c, cid: c.clear_conversation(cid),
    "revoke_message": lambda c, cid: c.revoke_message(cid, 1),
    "set_conversations": lambda c, cid: c.set_conversations([cid], pinned=True),
    "hide_conversation": lambda c, cid: c.hide_conversation(cid),
}
"""Every request that names a conversation (sends name a user or a group instead)."""


def new_messages(events: list[object]) -> list[m.ChatMessage]:
    return [e.message for e in events if isinstance(e, m.NewMessage)]


async def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, object]:
    return dict(await trio.to_thread.run_sync(stored_state, client, prefix))


class TestUserIdsCannotCollide:
    async def test_user_ids_with_underscore_are_refused(
        self, node: RunningNode, connect: Connect
    ) -> None:
        client = await connect(node.url)
        for user_id in ("aX_b", "b_cX"):
            error = await expect_error(
                ErrorCode.INVALID_FIELD, client.register(user_id, "password-1")
            )
            assert "user_id" in error.message
            await expect_error(ErrorCode.INVALID_FIELD, client.login(user_id, "password-1"))
        await signed_in(client, "aX")
        # The old second attack named the recipient b_cX: refused before anything is stored.
        await expect_error(ErrorCode.INVALID_FIELD, client.send_text("hi", to_user_id="b_cX"))
        assert await client.get_max_seqs() == {}

    async def test_nearest_lookalike_pairs_get_different_conversations(
        self, node: RunningNode, connect: Connect
    ) -> None:
        # The pairs of the issue with "-" in place of "_": (aX-b, cX) and (aX, b-cX).
        victim, peer = await user(node, connect, "aX-b"), await user(node, connect, "cX")
        for n in range(3):
            await victim.phone.send_text(f"private {n}", to_user_id="cX")
        assert len(new_messages(await drain(peer.phone))) == 3
        attacker, lookalike = await user(node, connect, "aX"), await user(node, connect, "b-cX")

        sent = await attacker.phone.send_text("am I in?", to_user_id="b-cX")
        assert sent.conversation_id == "si_aX_b-cX"
        assert sent.seq == 1  # its own seq counter, not the victims' (at 3)
        [got] = new_messages(await drain(lookalike.phone))
        assert (got.conversation_id, got.content) == (
            sent.conversation_id,
            m.TextContent(text="am I in?"),
        )
        assert new_messages(await drain(peer.phone)) == []
        assert new_messages(await drain(victim.phone)) == []
        victims = single_conversation_id("cX", "aX-b")
        assert victims == "si_aX-b_cX" != sent.conversation_id
        assert [x.seq for x in (await peer.phone.pull_messages(victims)).items] == [1, 2, 3]
        assert set(await peer.phone.get_max_seqs()) == {victims}
        await expect_error(ErrorCode.NO_SUCH_CONVERSATION, attacker.phone.pull_messages(victims))


class TestAThirdUserIsRefused:
    async def test_every_conversation_request_on_another_pairs_chat_is_refused(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        alice, bob = await user(node, connect, "aX-b"), await user(node, connect, "cX")
        for n in range(3):
            await alice.phone.send_text(f"private {n}", to_user_id="cX")
        await bob.phone.mark_read("si_aX-b_cX", 1)
        eve = await user(node, connect, "aX")
        for device in (*alice.devices, *bob.devices):
            await drain(device)
        before = await snapshot(redis_client, prefix)

        refused = {
            # The victims' id: well formed, but aX is not one of its two users.
            "si_aX-b_cX": ErrorCode.NO_SUCH_CONVERSATION,
            # The same pair in the wrong order: not a conversation at all.
            "si_cX_aX-b": ErrorCode.NO_SUCH_CONVERSATION,
            # The id that named two pairs before: it cannot even be sent.
            "si_aX_b_cX": ErrorCode.INVALID_FIELD,
        }
        for conversation_id, code in refused.items():
            for name, call in CONVERSATION_REQUESTS.items():
                error = await expect_error(code, call(eve.phone, conversation_id))
                assert error.code == code, (name, conversation_id)

        assert await snapshot(redis_client, prefix) == before
        assert await eve.phone.get_max_seqs() == {}
        assert (await eve.phone.get_conversations()).items == []
        assert (await eve.phone.sync_conversations()).inserts == []
        for device in (*alice.devices, *bob.devices):
            assert await drain(device) == []
        # The victims' own view is intact.
        seqs = (await bob.phone.get_max_seqs())["si_aX-b_cX"]
        assert (seqs.max_seq, seqs.has_read_seq) == (3, 1)
        pulled = await bob.phone.pull_messages("si_aX-b_cX")
        assert [x.content for x in pulled.items] == [
            m.TextContent(text=f"private {n}") for n in range(3)
        ]

    async def test_strangers_and_former_members_cannot_use_a_group_conversation(
        self, node: RunningNode, connect: Connect
    ) -> None:
        owner, eve = await user(node, connect, "owner"), await user(node, connect, "eve")
        mia = await user(node, connect, "mia")
        # Group ids may keep "_": sg_ ids are told apart by their prefix alone.
        group = await owner.phone.create_group("Team", group_id="team_one", member_user_ids=["mia"])
        conversation_id = "sg_team_one"
        sent = await owner.phone.send_text("members only", group_id=group.group_id)
        assert sent.conversation_id == conversation_id
        assert [x.seq for x in (await mia.phone.pull_messages(conversation_id)).items] == [1]
        await mia.phone.quit_group(group.group_id)
        for stranger in (eve.phone, mia.phone):
            for name in ("pull_messages", "get_history", "mark_read", "clear_conversation"):
                await expect_error(
                    ErrorCode.NO_SUCH_CONVERSATION,
                    CONVERSATION_REQUESTS[name](stranger, conversation_id),
                )
            await expect_error(
                ErrorCode.NO_SUCH_CONVERSATION, stranger.revoke_message(conversation_id, 1)
            )


class TestConversationWithNobody:
    async def test_set_conversations_with_a_user_who_does_not_exist_is_user_not_found(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        alice = await user(node, connect, "alice")
        await signed_in(await connect(node.url), "bob")
        before = await snapshot(redis_client, prefix)
        error = await expect_error(
            ErrorCode.USER_NOT_FOUND,
            alice.phone.set_conversations(["si_alice_nobody"], pinned=True),
        )
        assert "nobody" in error.message
        # One unknown user in a batch refuses the whole batch.
        await expect_error(
            ErrorCode.USER_NOT_FOUND,
            alice.phone.set_conversations(["si_alice_bob", "si_alice_nobody"], pinned=True),
        )
        await expect_error(
            ErrorCode.USER_NOT_FOUND, alice.phone.hide_conversation("si_alice_nobody")
        )
        await expect_error(ErrorCode.USER_NOT_FOUND, alice.phone.pull_messages("si_alice_nobody"))
        assert await snapshot(redis_client, prefix) == before
        assert (await alice.phone.sync_conversations()).inserts == []
        assert (await alice.phone.get_conversations()).items == []

        # With a user who exists, and with oneself, the entry is made.
        await alice.phone.set_conversations(["si_alice_bob", "si_alice_alice"], pinned=True)
        listed = await alice.phone.sync_conversations()
        assert {(c.conversation_id, c.peer_user_id, c.pinned) for c in listed.inserts} == {
            ("si_alice_bob", "bob", True),
            ("si_alice_alice", "alice", True),
        }
