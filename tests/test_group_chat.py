"""Group chat end to end: fan-out to every member's devices in seq order, the
sending rules (members only, mutes, dismissal, @all), revoke permissions, and
group conversations in the conversation list. Two devices per user."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from client import ErrorCode, ParleyClient
from protocol import messages as m
from server import RunningNode
from tests.conftest import StartNode
from tests.support import Connect, User, both_stores, drain, expect_error, user

pytestmark = both_stores


async def messages_on(client: ParleyClient, count: int) -> list[m.ChatMessage]:
    got: list[m.ChatMessage] = []
    with trio.fail_after(15):
        while len(got) < count:
            got.append((await client.next_event(m.NewMessage)).message)
    return got


@dataclass
class Team:
    owner: User
    admin: User
    member: User
    outsider: User
    group_id: str

    @property
    def conversation_id(self) -> str:
        return f"sg_{self.group_id}"


async def team(node: RunningNode, connect: Connect) -> Team:
    owner, admin, member, outsider = [
        await user(node, connect, name) for name in ("olga", "adam", "mona", "otto")
    ]
    info = await owner.phone.create_group("team", member_user_ids=["mona"], admin_user_ids=["adam"])
    for person in (owner, admin, member):
        await drain(person.phone, 0.1)
        await drain(person.desktop, 0.1)
    return Team(owner, admin, member, outsider, info.group_id)


async def test_fan_out_reaches_every_member_device_in_order(
    node: RunningNode, connect: Connect
) -> None:
    t = await team(node, connect)
    sent = []
    for n, sender in enumerate([t.owner, t.member, t.admin, t.member, t.owner]):
        sent.append(await sender.phone.send_text(f"g{n}", group_id=t.group_id))
    assert [s.seq for s in sent] == [1, 2, 3, 4, 5]
    for person in (t.owner, t.admin, t.member):
        got = await messages_on(person.desktop, 5)
        assert [g.seq for g in got] == [1, 2, 3, 4, 5]
        assert {g.recv_id for g in got} == {t.group_id}
        assert {g.session_type for g in got} == {m.GROUP_CHAT}
    assert [e for e in await drain(t.outsider.phone, 0.2) if isinstance(e, m.NewMessage)] == []


async def test_sending_rules(start_node: StartNode, connect: Connect) -> None:
    node = await start_node()
    t = await team(node, connect)
    gid = t.group_id
    await expect_error(
        ErrorCode.NOT_GROUP_MEMBER, t.outsider.phone.send_text("let me in", group_id=gid)
    )
    await expect_error(
        ErrorCode.GROUP_NOT_FOUND, t.owner.phone.send_text("hello?", group_id="no-such-group")
    )
    await expect_error(
        ErrorCode.CONTENT_NOT_ALLOWED,
        t.member.phone.send_message(m.MentionContent(text="@all", at_all=True), group_id=gid),
    )
    await t.admin.phone.send_message(m.MentionContent(text="@all", at_all=True), group_id=gid)

    await t.admin.phone.mute_group_member(gid, "mona", 60)
    await expect_error(ErrorCode.MEMBER_MUTED, t.member.phone.send_text("x", group_id=gid))
    await t.admin.phone.unmute_group_member(gid, "mona")
    await t.member.phone.send_text("free again", group_id=gid)

    await t.owner.phone.mute_group(gid)
    await expect_error(ErrorCode.GROUP_MUTED, t.member.phone.send_text("x", group_id=gid))
    await t.admin.phone.send_text("admins may still talk", group_id=gid)
    await t.owner.phone.unmute_group(gid)

    await t.owner.phone.dismiss_group(gid)
    await expect_error(ErrorCode.GROUP_DISMISSED, t.owner.phone.send_text("x", group_id=gid))
    await expect_error(
        ErrorCode.BAD_RECIPIENT,
        t.owner.phone.send_message(m.TextContent(text="x"), group_id=gid, to_user_id="mona"),
    )
    seqs = await t.owner.desktop.get_max_seqs()
    assert seqs[t.conversation_id].max_seq == 3


async def test_revoke_permissions(start_node: StartNode, connect: Connect) -> None:
    node = await start_node(messaging={"revoke_time_limit": 60})
    t = await team(node, connect)
    gid, cid = t.group_id, t.conversation_id
    by_member = await t.member.phone.send_text("member says", group_id=gid)
    by_admin = await t.admin.phone.send_text("admin says", group_id=gid)
    by_owner = await t.owner.phone.send_text("owner says", group_id=gid)
    await expect_error(
        ErrorCode.REVOKE_NOT_ALLOWED, t.member.phone.revoke_message(cid, by_admin.seq)
    )
    await expect_error(
        ErrorCode.REVOKE_NOT_ALLOWED, t.admin.phone.revoke_message(cid, by_owner.seq)
    )
    await expect_error(
        ErrorCode.NO_SUCH_CONVERSATION, t.outsider.phone.revoke_message(cid, by_member.seq)
    )
    await t.admin.phone.revoke_message(cid, by_member.seq)
    await t.owner.phone.revoke_message(cid, by_admin.seq)
    own = await t.member.phone.send_text("mine to take back", group_id=gid)
    await t.member.phone.revoke_message(cid, own.seq)
    page = await t.owner.desktop.pull_messages(cid)
    revoked = {x.seq for x in page.items if isinstance(x.content, m.RevokedContent)}
    assert {by_member.seq, by_admin.seq, own.seq} <= revoked
    assert by_owner.seq not in revoked


async def test_group_conversation_is_listed_and_readable_by_members_only(
    node: RunningNode, connect: Connect
) -> None:
    t = await team(node, connect)
    for n in range(3):
        await t.owner.phone.send_text(f"{n}", group_id=t.group_id)
    listed = {v.info.conversation_id: v for v in (await t.member.phone.get_conversations()).items}
    view = listed[t.conversation_id]
    assert (view.info.group_id, view.max_seq, view.unread_count) == (t.group_id, 3, 3)
    await t.member.phone.mark_read(t.conversation_id, 2)
    listed = {v.info.conversation_id: v for v in (await t.member.desktop.get_conversations()).items}
    assert listed[t.conversation_id].unread_count == 1
    assert len((await t.member.phone.pull_messages(t.conversation_id)).items) == 3
    await expect_error(
        ErrorCode.NO_SUCH_CONVERSATION, t.outsider.phone.pull_messages(t.conversation_id)
    )
    await t.member.phone.quit_group(t.group_id)
    await expect_error(
        ErrorCode.NO_SUCH_CONVERSATION, t.member.phone.pull_messages(t.conversation_id)
    )
    # The conversation stays listed, but shows nothing sent after leaving.
    await t.owner.phone.send_text("after mona left", group_id=t.group_id)
    listed = {v.info.conversation_id: v for v in (await t.member.phone.get_conversations()).items}
    view = listed[t.conversation_id]
    assert (view.max_seq, view.unread_count) == (3, 1)
    assert view.latest_message is not None and view.latest_message.seq == 3
    assert (await t.member.phone.get_max_seqs())[t.conversation_id].max_seq == 3


async def test_typing_in_a_group_is_pushed_not_stored(node: RunningNode, connect: Connect) -> None:
    t = await team(node, connect)
    reply = await t.member.phone.send_message(m.TypingContent(), group_id=t.group_id)
    assert reply.seq == 0
    typing = await t.owner.phone.next_event(m.Typing)
    assert (typing.from_user_id, typing.conversation_id) == ("mona", t.conversation_id)
    assert (await t.owner.phone.get_max_seqs())[t.conversation_id].max_seq == 0


async def test_retry_after_being_muted_returns_the_first_result(
    node: RunningNode, connect: Connect
) -> None:
    t = await team(node, connect)
    first = await t.member.phone.send_text("said before the mute", group_id=t.group_id)
    await t.owner.phone.mute_group_member(t.group_id, "mona", 60)
    again = await t.member.phone.send_message(
        m.TextContent(text="said before the mute"),
        group_id=t.group_id,
        client_msg_id=first.client_msg_id,
    )
    assert (again.seq, again.server_msg_id) == (first.seq, first.server_msg_id)
    await expect_error(ErrorCode.MEMBER_MUTED, t.member.phone.send_text("new", group_id=t.group_id))
    assert (await t.owner.phone.get_max_seqs())[t.conversation_id].max_seq == 1


def pushed(events: list[object]) -> list[m.ChatMessage]:
    return [e.message for e in events if isinstance(e, m.NewMessage)]


async def quiet(*people: User) -> None:
    """Drop every event already on its way to the devices of ``people``."""
    for person in people:
        for device in person.devices:
            await drain(device, 0.1)


async def test_member_who_does_not_receive_gets_no_pushes_but_can_pull(
    node: RunningNode, connect: Connect
) -> None:
    t = await team(node, connect)
    gid, cid = t.group_id, t.conversation_id
    await t.member.phone.set_conversations([cid], recv_opt=1)
    await t.admin.phone.set_conversations([cid], recv_opt=2)
    await quiet(t.member, t.admin)

    sent = await t.owner.phone.send_text("for everyone", group_id=gid)
    await t.owner.phone.send_message(m.TypingContent(), group_id=gid)
    for device in t.admin.devices:  # recv_opt 2: pushed as usual
        [got] = await messages_on(device, 1)
        assert got.seq == sent.seq
        await device.next_event(m.Typing)
    for device in t.member.devices:
        events = await drain(device)
        assert pushed(events) == []
        assert [e for e in events if isinstance(e, m.Typing)] == []
    assert (await t.member.desktop.get_max_seqs())[cid].max_seq == sent.seq
    page = await t.member.desktop.pull_messages(cid)
    assert [x.content for x in page.items] == [m.TextContent(text="for everyone")]

    notice = await t.owner.phone.revoke_message(cid, sent.seq)
    [revoked] = await messages_on(t.admin.phone, 1)
    assert revoked.seq == notice.seq and isinstance(revoked.content, m.RevokedContent)
    for device in t.member.devices:
        assert pushed(await drain(device)) == []

    await t.member.phone.set_conversations([cid], recv_opt=0)
    await quiet(t.member)
    resumed = await t.admin.phone.send_text("welcome back", group_id=gid)
    for device in t.member.devices:
        [got] = await messages_on(device, 1)
        assert got.seq == resumed.seq == notice.seq + 1


async def test_own_group_sends_reach_own_devices_and_option_is_per_conversation(
    node: RunningNode, connect: Connect
) -> None:
    t = await team(node, connect)
    gid, cid = t.group_id, t.conversation_id
    await t.member.phone.set_conversations([cid], recv_opt=1)
    await quiet(t.member)

    mine = await t.member.phone.send_text("I muted it, I still speak", group_id=gid)
    for device in (t.member.desktop, *t.owner.devices, *t.admin.devices):
        [got] = await messages_on(device, 1)
        assert got.seq == mine.seq
    notice = await t.member.phone.revoke_message(cid, mine.seq)
    [got] = await messages_on(t.member.desktop, 1)
    assert got.seq == notice.seq and isinstance(got.content, m.RevokedContent)

    direct = await t.owner.phone.send_text("single chat still rings", to_user_id="mona")
    for device in t.member.devices:
        got_direct = pushed(await drain(device))
        assert [x.seq for x in got_direct] == [direct.seq]
        assert got_direct[0].conversation_id == "si_mona_olga"


async def test_do_not_receive_outlives_leaving_and_rejoining(
    node: RunningNode, connect: Connect
) -> None:
    """The option belongs to the user's conversation entry, which is kept when they
    leave a group: after rejoining they still do not receive it."""
    t = await team(node, connect)
    gid, cid = t.group_id, t.conversation_id
    await t.member.phone.set_conversations([cid], recv_opt=1)
    await t.member.phone.quit_group(gid)
    await t.owner.phone.invite_to_group(gid, ["mona"])
    await quiet(t.member)
    sent = await t.owner.phone.send_text("are you back?", group_id=gid)
    [got] = await messages_on(t.admin.desktop, 1)
    assert got.seq == sent.seq
    for device in t.member.devices:
        assert pushed(await drain(device)) == []
    [view] = [
        v for v in (await t.member.phone.get_conversations()).items if v.info.conversation_id == cid
    ]
    assert (view.info.recv_opt, view.max_seq) == (1, sent.seq)
