"""Single chat, delivery, offline catch-up, read state, revoke, delete and clear,
end to end through the SDK with two devices per user."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
import redis
import trio

from client import ErrorCode, ParleyClient, ParleyError, Platform
from client.tracker import MessageTracker
from protocol import messages as m
from server import RunningNode
from tests.conftest import StartNode
from tests.support import Connect, both_stores, drain, expect_error, signed_in, user

pytestmark = both_stores


def conv(a: str, b: str) -> str:
    return m.single_conversation_id(a, b)


async def received(client: ParleyClient, count: int, timeout: float = 10) -> list[m.ChatMessage]:
    messages: list[m.ChatMessage] = []
    with trio.fail_after(timeout):
        while len(messages) < count:
            event = await client.next_event(m.NewMessage, timeout=timeout)
            messages.append(event.message)
    return messages


class TestSend:
    async def test_message_reaches_every_device_in_seq_order(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        sent = [await alice.phone.send_text(f"m{n}", to_user_id="bob") for n in range(5)]
        assert [s.seq for s in sent] == [1, 2, 3, 4, 5]
        assert {s.conversation_id for s in sent} == {"si_alice_bob"}
        for device in (bob.phone, bob.desktop, alice.desktop):
            got = await received(device, 5)
            assert [g.seq for g in got] == [1, 2, 3, 4, 5]
            assert [g.content for g in got] == [m.TextContent(text=f"m{n}") for n in range(5)]
            assert all(g.send_id == "alice" and g.recv_id == "bob" for g in got)
        assert [e for e in await drain(alice.phone) if isinstance(e, m.NewMessage)] == []

    async def test_both_directions_share_one_gap_free_seq(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        seqs: list[int] = []

        async def chat(client: ParleyClient, peer: str) -> None:
            for n in range(20):
                seqs.append((await client.send_text(f"{n}", to_user_id=peer)).seq)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(chat, alice.phone, "bob")
            nursery.start_soon(chat, bob.phone, "alice")
        assert sorted(seqs) == list(range(1, 41))
        got = await received(alice.desktop, 40)
        assert [g.seq for g in got] == list(range(1, 41))

    async def test_every_content_type_round_trips(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        first = await alice.phone.send_text("quote me", to_user_id="bob")
        contents: list[m.MessageContent] = [
            m.PictureContent(url="https://x/p.png", width=640, height=480, size=1000),
            m.VoiceContent(url="https://x/v.ogg", duration=12, size=2000),
            m.VideoContent(url="https://x/v.mp4", duration=30, width=1280, height=720, size=9),
            m.FileContent(url="https://x/f.pdf", name="f.pdf", size=123),
            m.MentionContent(text="@bob hi", user_ids=["bob"]),
            m.CardContent(user_id="carol", nickname="Carol"),
            m.LocationContent(latitude=48.85, longitude=2.35, description="Paris"),
            m.CustomContent(data=b"\x00\x01app", description="custom"),
            m.QuoteContent(text="yes", quoted_seq=first.seq),
        ]
        for content in contents:
            await alice.phone.send_message(content, to_user_id="bob")
        got = await received(bob.phone, 1 + len(contents))
        assert [g.content for g in got[1:]] == contents
        pulled = await bob.desktop.pull_messages(conv("alice", "bob"))
        assert [p.content for p in pulled.items[1:]] == contents

    async def test_invalid_content_is_refused_and_stores_nothing(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(messaging={"max_content_bytes": 200})
        alice, _ = await user(node, connect, "alice"), await user(node, connect, "bob")
        await expect_error(
            ErrorCode.CONTENT_TOO_LARGE, alice.phone.send_text("x" * 300, to_user_id="bob")
        )
        await expect_error(
            ErrorCode.NO_SUCH_MESSAGE,
            alice.phone.send_message(m.QuoteContent(text="a", quoted_seq=5), to_user_id="bob"),
        )
        revoked = m.RevokedContent(
            revoked_seq=1, revoker_user_id="alice", revoke_time=1, original_content_type=101
        )
        await expect_error(
            ErrorCode.CONTENT_NOT_ALLOWED, alice.phone.send_message(revoked, to_user_id="bob")
        )
        await expect_error(ErrorCode.BAD_RECIPIENT, alice.phone.send_text("x"))
        await expect_error(
            ErrorCode.USER_NOT_FOUND, alice.phone.send_text("x", to_user_id="nobody")
        )
        with pytest.raises(ParleyError) as caught:
            await alice.phone.send_message(
                m.LocationContent(latitude=91, longitude=0), to_user_id="bob"
            )
        assert caught.value.code == ErrorCode.INVALID_FIELD
        assert (await alice.phone.get_max_seqs()) == {}

    async def test_resend_with_same_client_msg_id_is_idempotent(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        first = await alice.phone.send_text("once", to_user_id="bob")
        content = m.TextContent(text="once")
        again = await alice.phone.send_message(
            content, to_user_id="bob", client_msg_id=first.client_msg_id
        )
        assert again == m.MessageSent(
            rid=again.rid,
            conversation_id=first.conversation_id,
            seq=first.seq,
            server_msg_id=first.server_msg_id,
            client_msg_id=first.client_msg_id,
            send_time=first.send_time,
        )
        assert len(await received(bob.phone, 1)) == 1
        assert [e for e in await drain(bob.phone) if isinstance(e, m.NewMessage)] == []
        seqs = await bob.phone.get_max_seqs()
        assert seqs[first.conversation_id].max_seq == 1

    async def test_a_first_send_cut_off_before_its_follow_ups_is_completed_later(
        self, node: RunningNode, connect: Connect
    ) -> None:
        """The first message of a conversation gives both users their entry as
        follow-ups of the send; with the node stopped between the send's step and
        them, the send is not acknowledged, and the resend (same client msg id) or
        the conversation's next send lands them, once."""
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        carol = await user(node, connect, "carol")
        cuts = 2

        async def cut_off(source: str, entry: object) -> None:
            nonlocal cuts
            if cuts:
                cuts -= 1
                raise redis.ConnectionError("stopped between the step and its follow-ups")

        def hi(peer: str, client_msg_id: str) -> Awaitable[m.MessageSent]:
            return alice.phone.send_message(
                m.TextContent(text="hi"), to_user_id=peer, client_msg_id=client_msg_id
            )

        node.storage.followups.before_apply = cut_off
        await expect_error(ErrorCode.UNAVAILABLE, hi("bob", "b1"))
        await expect_error(ErrorCode.UNAVAILABLE, hi("carol", "c1"))
        assert (await bob.phone.get_conversations()).items == []
        assert (await carol.phone.get_conversations()).items == []
        assert (await hi("bob", "b1")).seq == 1  # the resend: stored once
        assert (await hi("carol", "c2")).seq == 2  # the next send
        for client, seq in ((bob.phone, 1), (carol.phone, 2)):
            [view] = (await client.get_conversations()).items
            assert (view.info.peer_user_id, view.max_seq) == ("alice", seq)
        synced = await bob.desktop.sync_conversations()
        assert [i.conversation_id for i in synced.inserts] == ["si_alice_bob"]
        assert synced.updates == []

    async def test_typing_is_pushed_but_not_stored(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        reply = await alice.phone.send_message(m.TypingContent(text="..."), to_user_id="bob")
        assert reply.seq == 0
        typing = await bob.phone.next_event(m.Typing)
        assert (typing.from_user_id, typing.conversation_id) == ("alice", "si_alice_bob")
        assert await bob.phone.get_max_seqs() == {}


class TestRefusals:
    async def test_blocked_sender_is_refused(self, node: RunningNode, connect: Connect) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await bob.phone.add_black("alice")
        await expect_error(ErrorCode.BLOCKED_BY_PEER, alice.phone.send_text("hi", to_user_id="bob"))
        await expect_error(ErrorCode.PEER_BLOCKED, bob.phone.send_text("hi", to_user_id="alice"))
        assert await alice.phone.get_max_seqs() == {}

    async def test_a_block_after_messages_stops_sends_until_unblocked(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        assert (await alice.phone.send_text("hi", to_user_id="bob")).seq == 1
        await bob.phone.add_black("alice")
        await expect_error(ErrorCode.BLOCKED_BY_PEER, alice.phone.send_text("hi", to_user_id="bob"))
        await expect_error(ErrorCode.PEER_BLOCKED, bob.phone.send_text("hi", to_user_id="alice"))
        await bob.phone.remove_black("alice")
        assert (await alice.phone.send_text("again", to_user_id="bob")).seq == 2

    async def test_friends_only_policy(self, start_node: StartNode, connect: Connect) -> None:
        node = await start_node(messaging={"friends_only": True})
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await expect_error(ErrorCode.NOT_FRIENDS, alice.phone.send_text("hi", to_user_id="bob"))
        await alice.phone.apply_friend("bob")
        await bob.phone.respond_friend_application("alice", True)
        assert (await alice.phone.send_text("hi", to_user_id="bob")).seq == 1
        await bob.phone.delete_friend("alice")
        await expect_error(ErrorCode.NOT_FRIENDS, bob.phone.send_text("hi", to_user_id="alice"))


class TestOfflineAndGaps:
    async def test_offline_device_catches_up_with_max_seqs_and_pull(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice = await user(node, connect, "alice")
        bob_setup = await connect(node.url)
        await signed_in(bob_setup, "bob")
        await bob_setup.logout()
        for n in range(7):
            await alice.phone.send_text(f"offline {n}", to_user_id="bob")
        carol = await user(node, connect, "carol")
        await carol.phone.send_text("hey", to_user_id="bob")

        bob = await user(node, connect, "bob")
        seqs = await bob.phone.get_max_seqs()
        assert {cid: s.max_seq for cid, s in seqs.items()} == {
            "si_alice_bob": 7,
            "si_bob_carol": 1,
        }
        assert seqs["si_alice_bob"].has_read_seq == 0
        first = await bob.phone.pull_messages("si_alice_bob", 1, limit=4)
        rest = await bob.phone.pull_messages("si_alice_bob", 5, limit=4)
        assert [x.seq for x in first.items] == [1, 2, 3, 4] and not first.is_end
        assert [x.seq for x in rest.items] == [5, 6, 7] and rest.is_end
        newest = await bob.phone.pull_messages("si_alice_bob", 1, descending=True, limit=2)
        assert [x.seq for x in newest.items] == [7, 6]

    async def test_history_pages_backwards_by_seq_and_time(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, _ = await user(node, connect, "alice"), await user(node, connect, "bob")
        sent = []
        for n in range(6):
            sent.append(await alice.phone.send_text(f"h{n}", to_user_id="bob"))
            await trio.sleep(0.003)
        page = await alice.phone.get_history("si_alice_bob", limit=4)
        assert [x.seq for x in page.items] == [6, 5, 4, 3] and not page.is_end
        older = await alice.phone.get_history("si_alice_bob", before_seq=3, limit=4)
        assert [x.seq for x in older.items] == [2, 1] and older.is_end
        by_time = await alice.phone.get_history("si_alice_bob", before_time=sent[2].send_time)
        assert [x.seq for x in by_time.items] == [2, 1]

    async def test_strangers_cannot_read_a_conversation(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, _ = await user(node, connect, "alice"), await user(node, connect, "bob")
        eve = await user(node, connect, "eve")
        await alice.phone.send_text("secret", to_user_id="bob")
        for call in (
            eve.phone.pull_messages("si_alice_bob"),
            eve.phone.get_history("si_alice_bob"),
            eve.phone.mark_read("si_alice_bob"),
            eve.phone.clear_conversation("si_alice_bob"),
            eve.phone.revoke_message("si_alice_bob", 1),
            eve.phone.pull_messages("sg_nogroup"),
        ):
            await expect_error(ErrorCode.NO_SUCH_CONVERSATION, call)


class TestReadState:
    async def test_unread_counts_through_sends_reads_and_clears(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        for n in range(4):
            await alice.phone.send_text(f"{n}", to_user_id="bob")

        async def unread(client: ParleyClient) -> int:
            [view] = (await client.get_conversations()).items
            return view.unread_count

        assert await unread(bob.phone) == 4
        assert await unread(alice.phone) == 0  # own messages never count
        await bob.phone.mark_read("si_alice_bob", 3)
        assert await unread(bob.phone) == 1
        state = await bob.desktop.next_event(m.ReadStateChanged)
        assert state.has_read_seq == 3
        receipt = await alice.desktop.next_event(m.ReadReceipt)
        assert (receipt.reader_user_id, receipt.has_read_seq) == ("bob", 3)
        # Reading backwards never lowers the has-read seq.
        await bob.phone.mark_read("si_alice_bob", 1)
        assert (await bob.phone.get_max_seqs())["si_alice_bob"].has_read_seq == 3
        # Sending implies having read everything before.
        await bob.phone.send_text("reply", to_user_id="alice")
        assert await unread(bob.phone) == 0
        assert await unread(alice.phone) == 1
        await alice.phone.clear_conversation("si_alice_bob")
        assert await unread(alice.phone) == 0
        assert (await alice.phone.pull_messages("si_alice_bob")).items == []
        await bob.phone.send_text("after clear", to_user_id="alice")
        assert [x.seq for x in (await alice.phone.pull_messages("si_alice_bob")).items] == [6]

    async def test_receipt_and_read_state_are_pushed_only_when_the_read_seq_moves(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        for n in range(3):
            await alice.phone.send_text(f"{n}", to_user_id="bob")
        for device in (*alice.devices, *bob.devices):
            await drain(device)

        async def pushed(
            device: ParleyClient, kind: type[m.ReadReceipt | m.ReadStateChanged]
        ) -> list[int]:
            return [e.has_read_seq for e in await drain(device) if isinstance(e, kind)]

        await bob.phone.mark_read("si_alice_bob", 2)
        await bob.phone.mark_read("si_alice_bob", 2)  # the same seq again
        await bob.phone.mark_read("si_alice_bob", 1)  # below the has-read seq
        assert (await bob.phone.get_max_seqs())["si_alice_bob"].has_read_seq == 2
        for device in alice.devices:
            assert await pushed(device, m.ReadReceipt) == [2]
        assert await pushed(bob.desktop, m.ReadStateChanged) == [2]

        await bob.phone.mark_read("si_alice_bob")  # everything: moves to the max seq
        await bob.phone.mark_read("si_alice_bob")  # already there
        await bob.phone.mark_read("si_alice_bob", 99)  # beyond the max seq: the max seq
        assert (await bob.phone.get_max_seqs())["si_alice_bob"].has_read_seq == 3
        for device in alice.devices:
            assert await pushed(device, m.ReadReceipt) == [3]
        assert await pushed(bob.desktop, m.ReadStateChanged) == [3]

    async def test_delete_for_myself_only(self, node: RunningNode, connect: Connect) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        for n in range(3):
            await alice.phone.send_text(f"{n}", to_user_id="bob")
        await alice.phone.delete_messages("si_alice_bob", [2])
        mine = await alice.desktop.pull_messages("si_alice_bob")
        theirs = await bob.phone.pull_messages("si_alice_bob")
        assert [x.seq for x in mine.items] == [1, 3]
        assert [x.seq for x in theirs.items] == [1, 2, 3]


class TestRevoke:
    async def test_sender_revokes_and_every_device_is_told(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        sent = await alice.phone.send_text("oops", to_user_id="bob")
        await received(bob.phone, 1)
        await received(bob.desktop, 1)
        await received(alice.desktop, 1)
        notice = await alice.phone.revoke_message(sent.conversation_id, sent.seq)
        assert notice.seq == 2
        for device in (bob.phone, bob.desktop, alice.desktop):
            [pushed] = await received(device, 1)
            assert isinstance(pushed.content, m.RevokedContent)
            assert (pushed.content.revoked_seq, pushed.content.revoker_user_id) == (1, "alice")
        pulled = await bob.phone.pull_messages(sent.conversation_id)
        assert isinstance(pulled.items[0].content, m.RevokedContent)
        assert pulled.items[0].content.original_content_type == 101
        # The revoke notice does not count as unread.
        [view] = (await bob.phone.get_conversations()).items
        assert view.unread_count == 1
        await expect_error(
            ErrorCode.ALREADY_REVOKED, alice.phone.revoke_message(sent.conversation_id, 1)
        )

    async def test_only_the_sender_and_only_in_time(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(messaging={"revoke_time_limit": 1})
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        sent = await alice.phone.send_text("mine", to_user_id="bob")
        await expect_error(
            ErrorCode.REVOKE_NOT_ALLOWED, bob.phone.revoke_message(sent.conversation_id, 1)
        )
        await expect_error(
            ErrorCode.NO_SUCH_MESSAGE, alice.phone.revoke_message(sent.conversation_id, 9)
        )
        await trio.sleep(1.1)
        await expect_error(
            ErrorCode.REVOKE_TIME_EXPIRED, alice.phone.revoke_message(sent.conversation_id, 1)
        )


class TestConversations:
    async def test_list_order_settings_and_other_device(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice = await user(node, connect, "alice")
        for peer in ("bob", "carol", "dave"):
            other = await connect(node.url)
            await signed_in(other, peer)
            await alice.phone.send_text(f"to {peer}", to_user_id=peer)
            await trio.sleep(0.003)
        listed = await alice.desktop.get_conversations()
        assert [v.info.peer_user_id for v in listed.items] == ["dave", "carol", "bob"]
        assert listed.items[0].latest_message is not None
        assert listed.items[0].latest_message.content == m.TextContent(text="to dave")

        await drain(alice.desktop)
        await alice.phone.set_conversations(["si_alice_bob"], pinned=True, recv_opt=2)
        changed = await alice.desktop.next_event(m.ConversationChanged)
        assert changed.conversations[0].pinned and changed.conversations[0].recv_opt == 2
        await alice.phone.set_conversations(["si_alice_carol"], draft_text="half a thought")
        order = [v.info.peer_user_id for v in (await alice.desktop.get_conversations()).items]
        assert order == ["bob", "carol", "dave"]
        views = {v.info.peer_user_id: v for v in (await alice.desktop.get_conversations()).items}
        assert views["carol"].info.draft_text == "half a thought"
        assert views["carol"].info.draft_time > 0

        await alice.phone.hide_conversation("si_alice_dave")
        order = [v.info.peer_user_id for v in (await alice.desktop.get_conversations()).items]
        assert "dave" not in order
        dave = await connect(node.url)
        await dave.login("dave", "password-1")
        await dave.send_text("back", to_user_id="alice")
        order = [v.info.peer_user_id for v in (await alice.desktop.get_conversations()).items]
        assert order[:2] == ["bob", "dave"]

    async def test_conversation_settings_sync_incrementally(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice = await user(node, connect, "alice")
        other = await connect(node.url)
        await signed_in(other, "bob")
        await alice.phone.send_text("hi", to_user_id="bob")
        full = await alice.desktop.sync_conversations()
        assert [c.conversation_id for c in full.inserts] == ["si_alice_bob"]
        await alice.phone.set_conversations(["si_alice_bob"], ex="x")
        await other.send_text("new conversation", to_user_id="bob")
        second = await connect(node.url)
        await signed_in(second, "carol")
        await second.send_text("hello alice", to_user_id="alice")
        delta = await alice.desktop.sync_conversations(full.version_id, full.version)
        assert delta.kind == "incremental"
        assert [c.conversation_id for c in delta.inserts] == ["si_alice_carol"]
        assert [(c.conversation_id, c.ex) for c in delta.updates] == [("si_alice_bob", "x")]
        again = await alice.desktop.sync_conversations(delta.version_id, delta.version)
        assert again.kind == "equal"

    async def test_invalid_settings_change_nothing(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice = await user(node, connect, "alice")
        await expect_error(
            ErrorCode.NO_SUCH_CONVERSATION,
            alice.phone.set_conversations(["si_bob_carol"], pinned=True),
        )
        with pytest.raises(ParleyError) as caught:
            await alice.phone.set_conversations(["si_alice_bob"], recv_opt=7)  # type: ignore[arg-type]
        assert caught.value.code == ErrorCode.INVALID_FIELD
        assert (await alice.phone.sync_conversations()).inserts == []


def pushed_messages(events: list[object]) -> list[m.ChatMessage]:
    return [e.message for e in events if isinstance(e, m.NewMessage)]


async def quiet_devices(*devices: ParleyClient) -> None:
    """Wait until no more events arrive on any of ``devices``, and drop them."""
    for device in devices:
        await drain(device, 0.1)


class TestReceiveOption:
    """recv_opt 1 ("do not receive") stops pushes of others' messages to every device
    of the user who set it; the messages are stored and pulled as usual."""

    async def test_do_not_receive_is_stored_pullable_and_resumes(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await alice.phone.send_text("before", to_user_id="bob")
        await bob.phone.set_conversations(["si_alice_bob"], recv_opt=1)
        await quiet_devices(*alice.devices, *bob.devices)

        quiet = await alice.phone.send_text("while muted", to_user_id="bob")
        [mirrored] = await received(alice.desktop, 1)
        assert mirrored.seq == quiet.seq
        for device in bob.devices:
            assert pushed_messages(await drain(device)) == []
        seqs = await bob.desktop.get_max_seqs()
        assert seqs["si_alice_bob"].max_seq == quiet.seq
        page = await bob.desktop.pull_messages("si_alice_bob", 1)
        assert [x.content for x in page.items] == [
            m.TextContent(text="before"),
            m.TextContent(text="while muted"),
        ]
        [view] = (await bob.phone.get_conversations()).items
        assert (view.info.recv_opt, view.unread_count) == (1, 2)

        await bob.desktop.set_conversations(["si_alice_bob"], recv_opt=0)
        await quiet_devices(*bob.devices)
        again = await alice.phone.send_text("heard again", to_user_id="bob")
        for device in bob.devices:
            [got] = await received(device, 1)
            assert got.seq == again.seq == quiet.seq + 1

    async def test_own_sends_and_revokes_reach_own_devices_not_muted_peer(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await bob.phone.set_conversations(["si_alice_bob"], recv_opt=1)
        await quiet_devices(*bob.devices)

        mine = await bob.phone.send_text("from the muted side", to_user_id="alice")
        for device in (bob.desktop, *alice.devices):
            [got] = await received(device, 1)
            assert got.seq == mine.seq
        notice = await bob.phone.revoke_message("si_alice_bob", mine.seq)
        for device in (bob.desktop, *alice.devices):
            [got] = await received(device, 1)
            assert got.seq == notice.seq and isinstance(got.content, m.RevokedContent)

        theirs = await alice.phone.send_text("take it back", to_user_id="bob")
        alice_notice = await alice.phone.revoke_message("si_alice_bob", theirs.seq)
        assert [x.seq for x in await received(alice.desktop, 2)] == [
            theirs.seq,
            alice_notice.seq,
        ]
        for device in bob.devices:
            assert pushed_messages(await drain(device)) == []
        pulled = await bob.phone.pull_messages("si_alice_bob", theirs.seq)
        assert [type(x.content) for x in pulled.items] == [m.RevokedContent, m.RevokedContent]

    async def test_typing_is_not_pushed_to_a_user_who_does_not_receive(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await bob.phone.set_conversations(["si_alice_bob"], recv_opt=1)
        await quiet_devices(*bob.devices)
        await alice.phone.send_message(m.TypingContent(), to_user_id="bob")
        await alice.desktop.next_event(m.Typing)
        for device in bob.devices:
            assert [e for e in await drain(device) if isinstance(e, m.Typing)] == []

    async def test_receive_without_notifying_is_pushed_and_option_is_per_conversation(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        carol = await user(node, connect, "carol")
        await bob.phone.send_text("hi carol", to_user_id="carol")
        await bob.phone.set_conversations(["si_alice_bob"], recv_opt=2)
        await bob.phone.set_conversations(["si_bob_carol"], recv_opt=1)
        await quiet_devices(*bob.devices)

        from_alice = await alice.phone.send_text("pushed, quietly", to_user_id="bob")
        for device in bob.devices:
            [got] = await received(device, 1)
            assert got.seq == from_alice.seq and got.send_id == "alice"
        await carol.phone.send_text("not pushed", to_user_id="bob")
        for device in bob.devices:
            assert pushed_messages(await drain(device)) == []
        await bob.phone.set_conversations(["si_alice_bob"], recv_opt=1)
        await bob.phone.set_conversations(["si_bob_carol"], recv_opt=0)
        await quiet_devices(*bob.devices)
        await alice.phone.send_text("not pushed either", to_user_id="bob")
        from_carol = await carol.phone.send_text("pushed again", to_user_id="bob")
        for device in bob.devices:
            pushes = pushed_messages(await drain(device))
            assert [(x.send_id, x.seq) for x in pushes] == [("carol", from_carol.seq)]


async def test_stress_many_senders_one_conversation_gap_free(
    start_node: StartNode, connect: Connect
) -> None:
    """Several concurrent senders on each side of one conversation: seqs are exactly
    1..N, every message stored once, the receiver sees each once and in order. Each
    user sends 1,000 messages as fast as the node takes them, beyond the default
    limit of messages per user (tests/test_rate_limits.py), which is off here."""
    node = await start_node(limits={"messages_per_second": 0})
    a_clients = []
    b_clients = []
    for index in range(4):
        a = await connect(node.url)
        b = await connect(node.url)
        platform = [2, 3, 5, 7][index]
        if index == 0:
            await signed_in(a, "sa", platform)
            await signed_in(b, "sb", platform)
        else:
            await a.login("sa", "password-1", platform)
            await b.login("sb", "password-1", platform)
        a_clients.append(a)
        b_clients.append(b)
    per_client = 250
    watcher = b_clients[0]
    acked: list[int] = []

    async def blast(client: ParleyClient, peer: str, tag: str) -> None:
        for n in range(per_client):
            acked.append((await client.send_text(f"{tag}-{n}", to_user_id=peer)).seq)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for i, client in enumerate(a_clients):
                nursery.start_soon(blast, client, "sb", f"a{i}")
            for i, client in enumerate(b_clients[1:]):
                nursery.start_soon(blast, client, "sa", f"b{i}")
    total = per_client * 7
    assert sorted(acked) == list(range(1, total + 1))
    seen: list[int] = []
    with trio.fail_after(60):
        while len(seen) < total:
            event = await watcher.next_event(m.NewMessage, timeout=30)
            seen.append(event.message.seq)
    # The watcher's own sends are not pushed back to it; it sent none.
    assert seen == list(range(1, total + 1))
    texts: set[str] = set()
    for start in range(1, total + 1, 100):
        page = await watcher.pull_messages("si_sa_sb", start, limit=100)
        for item in page.items:
            assert isinstance(item.content, m.TextContent)
            texts.add(item.content.text)
    assert len(texts) == total


async def test_messages_and_read_state_survive_restart(
    start_node: StartNode, connect: Connect, redis_client: redis.Redis
) -> None:
    first = await start_node()
    alice, bob = await user(first, connect, "alice"), await user(first, connect, "bob")
    for n in range(3):
        await alice.phone.send_text(f"{n}", to_user_id="bob")
    await bob.phone.mark_read("si_alice_bob", 2)
    await first.stop()
    second = await start_node()
    again = await connect(second.url)
    await again.login("bob", "password-1")
    seqs = (await again.get_max_seqs())["si_alice_bob"]
    assert (seqs.max_seq, seqs.has_read_seq) == (3, 2)
    texts = [x.content for x in (await again.pull_messages("si_alice_bob")).items]
    assert texts == [m.TextContent(text=f"{n}") for n in range(3)]


async def test_tracker_fills_gaps_after_missed_pushes(node: RunningNode, connect: Connect) -> None:
    """A device that was away while messages were sent detects the gap from the next
    push (or from max seqs) and pulls exactly the missing range."""
    alice = await user(node, connect, "alice")
    bob_phone = await connect(node.url)
    await signed_in(bob_phone, "bob", Platform.IOS)
    tracker = MessageTracker(bob_phone)
    first = await alice.phone.send_text("before", to_user_id="bob")
    shown = await tracker.on_push((await bob_phone.next_event(m.NewMessage)).message)
    assert [x.seq for x in shown] == [first.seq]

    await bob_phone.logout()
    for n in range(5):
        await alice.phone.send_text(f"while away {n}", to_user_id="bob")
    bob_again = await connect(node.url)
    await bob_again.login("bob", "password-1", Platform.IOS)
    tracker = MessageTracker(bob_again, tracker.last_seqs)
    await alice.phone.send_text("after", to_user_id="bob")
    shown = await tracker.on_push((await bob_again.next_event(m.NewMessage)).message)
    assert [x.seq for x in shown] == [2, 3, 4, 5, 6, 7]
    assert await tracker.on_push(shown[-1]) == []
    for n in range(3):
        await alice.phone.send_text(f"unpushed {n}", to_user_id="bob")
    caught_up = await tracker.catch_up()
    assert [x.seq for x in caught_up] == [8, 9, 10]
    assert await tracker.catch_up() == []
