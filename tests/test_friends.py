"""Friends, applications, blacklist, their notifications, and friend sync, end to
end through the SDK. Every user has two devices (iOS and Windows)."""

from __future__ import annotations

import trio

from client import ErrorCode, FriendListCopy, ParleyClient, ParleyError, Platform
from protocol import messages as m
from protocol.notifications import NotificationType as N
from server import RunningNode
from tests.conftest import StartNode
from tests.support import (
    Connect,
    User,
    both_stores,
    drain,
    expect_error,
    notification_types,
    signed_in,
    user,
)

pytestmark = both_stores


async def friends_of(client: ParleyClient) -> list[str]:
    return [f.user_id for f in (await client.get_friends(limit=100)).items]


async def make_friends(a: User, b: User) -> None:
    await a.phone.apply_friend(b.user_id, "hello")
    await b.phone.respond_friend_application(a.user_id, accept=True)


class TestApplications:
    async def test_apply_notifies_every_device_of_both_users(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await alice.phone.apply_friend("bob", "hi bob")

        for device in (*bob.devices, *alice.devices):
            note = await device.next_event(m.Notification)
            assert note.type == N.FRIEND_APPLICATION
            assert isinstance(note.detail, m.FriendApplicationDetail)
            assert note.detail.application.from_user_id == "alice"
            assert note.detail.application.message == "hi bob"

        assert await bob.phone.count_unhandled_friend_applications() == 1
        received = await bob.phone.get_friend_applications("received")
        sent = await alice.phone.get_friend_applications("sent")
        assert received.total == sent.total == 1
        assert received.items[0] == sent.items[0]
        assert received.items[0].state == 0

    async def test_repeated_apply_updates_the_pending_application(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await alice.phone.apply_friend("bob", "first")
        await alice.phone.apply_friend("bob", "second")
        received = await bob.phone.get_friend_applications("received")
        assert received.total == 1
        assert received.items[0].message == "second"
        assert await bob.phone.count_unhandled_friend_applications() == 1

    async def test_accept_makes_both_sides_friends_and_notifies_everyone(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await alice.phone.apply_friend("bob")
        for device in (*alice.devices, *bob.devices):
            await drain(device)
        await bob.phone.respond_friend_application("alice", accept=True, message="sure")

        for device in (*alice.devices, *bob.devices):
            notes = [e for e in await drain(device) if isinstance(e, m.Notification)]
            assert [n.type for n in notes] == [N.FRIEND_ADDED, N.FRIEND_APPLICATION_APPROVED]
            assert notes[1].seq == notes[0].seq + 1

        assert await friends_of(alice.phone) == ["bob"]
        assert await friends_of(bob.phone) == ["alice"]
        status = await alice.desktop.check_friend("bob")
        assert (status.in_my_list, status.in_their_list) == (True, True)
        assert await bob.phone.count_unhandled_friend_applications() == 0
        handled = (await alice.phone.get_friend_applications("sent")).items[0]
        assert (handled.state, handled.handle_message) == (1, "sure")
        assert handled.handled_at >= handled.created_at

    async def test_refuse_notifies_applicant_and_makes_no_friendship(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await alice.phone.apply_friend("bob")
        await drain(alice.desktop)
        await bob.phone.respond_friend_application("alice", accept=False, message="no")
        note = await alice.desktop.next_event(m.Notification)
        assert note.type == N.FRIEND_APPLICATION_REJECTED
        assert await friends_of(alice.phone) == []
        assert (await bob.phone.get_friend_applications("received")).items[0].state == -1

    async def test_applications_are_listed_newest_first_with_pages(
        self, node: RunningNode, connect: Connect
    ) -> None:
        target = await user(node, connect, "target")
        for n in range(5):
            applicant = await connect(node.url)
            await signed_in(applicant, f"fan{n}")
            await applicant.apply_friend("target", f"#{n}")
            await trio.sleep(0.002)
        first = await target.phone.get_friend_applications("received", offset=0, limit=3)
        rest = await target.phone.get_friend_applications("received", offset=3, limit=3)
        assert first.total == rest.total == 5
        order = [a.from_user_id for a in first.items + rest.items]
        assert order == ["fan4", "fan3", "fan2", "fan1", "fan0"]
        assert await target.phone.count_unhandled_friend_applications() == 5


class TestApplicationErrors:
    async def test_each_refusal_has_its_code_and_changes_nothing(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        carol = await user(node, connect, "carol")
        await expect_error(ErrorCode.CANNOT_ADD_SELF, alice.phone.apply_friend("alice"))
        await expect_error(ErrorCode.USER_NOT_FOUND, alice.phone.apply_friend("nobody"))
        await expect_error(
            ErrorCode.NO_SUCH_APPLICATION, bob.phone.respond_friend_application("alice", True)
        )
        await alice.phone.apply_friend("bob")
        # Carol cannot answer an application that was sent to Bob.
        await expect_error(
            ErrorCode.NO_SUCH_APPLICATION, carol.phone.respond_friend_application("alice", True)
        )
        await bob.phone.respond_friend_application("alice", accept=True)
        await expect_error(
            ErrorCode.APPLICATION_HANDLED, bob.phone.respond_friend_application("alice", False)
        )
        await expect_error(ErrorCode.ALREADY_FRIENDS, alice.phone.apply_friend("bob"))
        await expect_error(ErrorCode.ALREADY_FRIENDS, bob.phone.apply_friend("alice"))
        assert await friends_of(alice.phone) == ["bob"]
        assert await friends_of(bob.phone) == ["alice"]
        assert await carol.phone.count_unhandled_friend_applications() == 0
        assert (await carol.phone.get_friend_applications("received")).total == 0

    async def test_blocked_users_cannot_apply(self, node: RunningNode, connect: Connect) -> None:
        alice, mallory = await user(node, connect, "alice"), await user(node, connect, "mallory")
        await alice.phone.add_black("mallory")
        await expect_error(ErrorCode.BLOCKED_BY_PEER, mallory.phone.apply_friend("alice"))
        await expect_error(ErrorCode.PEER_BLOCKED, alice.phone.apply_friend("mallory"))
        assert await alice.phone.count_unhandled_friend_applications() == 0
        assert (await mallory.phone.get_friend_applications("sent")).total == 0

    async def test_cannot_accept_a_user_blocked_since_applying(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await alice.phone.apply_friend("bob")
        await bob.phone.add_black("alice")
        await expect_error(
            ErrorCode.PEER_BLOCKED, bob.phone.respond_friend_application("alice", True)
        )
        assert await bob.phone.count_unhandled_friend_applications() == 1
        assert await friends_of(bob.phone) == []


class TestFriendList:
    async def test_delete_is_one_sided_by_default(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await make_friends(alice, bob)
        await drain(alice.desktop)
        await alice.phone.delete_friend("bob")
        note = await alice.desktop.next_event(m.Notification)
        assert note.type == N.FRIEND_DELETED
        assert isinstance(note.detail, m.FriendDeletedDetail)
        assert note.detail.friend_user_id == "bob"
        assert await friends_of(alice.phone) == []
        assert await friends_of(bob.phone) == ["alice"]
        status = await bob.phone.check_friend("alice")
        assert (status.in_my_list, status.in_their_list) == (True, False)
        await expect_error(ErrorCode.NOT_FRIENDS, alice.phone.delete_friend("bob"))
        # Alice may apply again, and Bob's acceptance restores her side only.
        await make_friends(alice, bob)
        assert await friends_of(alice.phone) == ["bob"]
        assert await friends_of(bob.phone) == ["alice"]

    async def test_delete_both_sides(self, node: RunningNode, connect: Connect) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await make_friends(alice, bob)
        for device in bob.devices:
            await drain(device)
        await alice.phone.delete_friend("bob", both_sides=True)
        for device in bob.devices:
            note = await device.next_event(m.Notification)
            assert note.type == N.FRIEND_DELETED
        assert await friends_of(alice.phone) == []
        assert await friends_of(bob.phone) == []

    async def test_remark_and_ex_reach_the_other_device(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await make_friends(alice, bob)
        await drain(alice.desktop)
        updated = await alice.phone.update_friend("bob", remark="Bobby")
        assert (updated.remark, updated.ex) == ("Bobby", "")
        updated = await alice.phone.update_friend("bob", ex='{"tag":1}')
        assert (updated.remark, updated.ex) == ("Bobby", '{"tag":1}')
        kinds = notification_types(await drain(alice.desktop))
        assert kinds == [N.FRIEND_REMARK_SET, N.FRIEND_REMARK_SET]
        [entry] = await alice.desktop.get_friends_by_id(["bob", "nobody"])
        assert entry == updated
        await expect_error(ErrorCode.NOT_FRIENDS, alice.phone.update_friend("carol", remark="x"))

    async def test_friend_list_pages_in_the_order_added(
        self, node: RunningNode, connect: Connect
    ) -> None:
        owner = await user(node, connect, "owner")
        for n in range(12):
            other = await connect(node.url)
            await signed_in(other, f"f{n:02d}")
            await other.apply_friend("owner")
            await owner.phone.respond_friend_application(f"f{n:02d}", accept=True)
        pages = [await owner.phone.get_friends(offset, 5) for offset in (0, 5, 10)]
        assert [p.total for p in pages] == [12, 12, 12]
        ids = [f.user_id for p in pages for f in p.items]
        assert ids == [f"f{n:02d}" for n in range(12)]
        all_ids = await owner.phone.get_friend_ids()
        assert all_ids.user_ids == ids
        assert all_ids.version == 12

    async def test_profile_change_notifies_friends(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await make_friends(alice, bob)
        for device in bob.devices:
            await drain(device)
        await alice.phone.set_profile(nickname="Alice A.")
        for device in bob.devices:
            note = await device.next_event(m.Notification)
            assert note.type == N.FRIEND_INFO_UPDATED
            assert isinstance(note.detail, m.UserInfoDetail)
            assert note.detail.user.nickname == "Alice A."


class TestBlacklist:
    async def test_add_list_remove(self, node: RunningNode, connect: Connect) -> None:
        alice = await user(node, connect, "alice")
        for name in ("m1", "m2", "m3"):
            other = await connect(node.url)
            await signed_in(other, name)
            await alice.phone.add_black(name, ex=f"why {name}")
            await trio.sleep(0.002)
        page = await alice.desktop.get_blacks(offset=0, limit=2)
        assert page.total == 3
        assert [b.user_id for b in page.items] == ["m3", "m2"]
        assert page.items[0].ex == "why m3"
        kinds = notification_types(await drain(alice.desktop))
        assert kinds == [N.BLACK_ADDED] * 3
        await alice.phone.remove_black("m2")
        assert (await alice.desktop.next_event(m.Notification)).type == N.BLACK_DELETED
        assert [b.user_id for b in (await alice.phone.get_blacks()).items] == ["m3", "m1"]

    async def test_errors(self, node: RunningNode, connect: Connect) -> None:
        alice, _bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await expect_error(ErrorCode.USER_NOT_FOUND, alice.phone.add_black("nobody"))
        await expect_error(ErrorCode.INVALID_FIELD, alice.phone.add_black("alice"))
        await expect_error(ErrorCode.NOT_BLOCKED, alice.phone.remove_black("bob"))
        await alice.phone.add_black("bob")
        await expect_error(ErrorCode.ALREADY_BLOCKED, alice.phone.add_black("bob"))
        assert (await alice.phone.get_blacks()).total == 1

    async def test_blocking_keeps_the_friendship(self, node: RunningNode, connect: Connect) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await make_friends(alice, bob)
        await alice.phone.add_black("bob")
        assert await friends_of(alice.phone) == ["bob"]
        assert await friends_of(bob.phone) == ["alice"]


class TestOfflineAndSync:
    async def test_offline_user_catches_up_with_pull_and_sync(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice = await user(node, connect, "alice")
        bob_setup = await connect(node.url)
        await signed_in(bob_setup, "bob")
        await bob_setup.logout()
        carol = await user(node, connect, "carol")
        # While Bob is offline: two applications arrive, and he gets a friend later.
        await alice.phone.apply_friend("bob", "from alice")
        await carol.phone.apply_friend("bob", "from carol")

        bob = await user(node, connect, "bob")
        pulled = await bob.phone.pull_notifications(after_seq=0)
        assert [n.seq for n in pulled.items] == [1, 2]
        assert [n.type for n in pulled.items] == [N.FRIEND_APPLICATION] * 2
        assert pulled.is_end and pulled.max_seq == 2

        copy = FriendListCopy()
        copy.apply(await bob.phone.sync_friends(copy.version_id, copy.version))
        assert copy.friends == {}
        await bob.phone.respond_friend_application("alice", accept=True)
        await bob.phone.respond_friend_application("carol", accept=True)
        await bob.phone.logout()

        # Offline again: a remark change can't happen, but the friends' side changes.
        await carol.phone.delete_friend("bob", both_sides=True)
        bob2 = await connect(node.url)
        await bob2.login("bob", "password-1", Platform.IOS)
        answer = await bob2.sync_friends(copy.version_id, copy.version)
        assert answer.kind == "incremental"
        assert [f.user_id for f in answer.inserts] == ["alice"]
        assert answer.deletes == ["carol"]
        copy.apply(answer)
        assert set(copy.friends) == {"alice"}
        assert (await bob2.sync_friends(copy.version_id, copy.version)).kind == "equal"

        # Notifications after the ones already seen come in seq order with no gaps.
        later = await bob2.pull_notifications(after_seq=2)
        seqs = [n.seq for n in later.items]
        assert seqs == list(range(3, later.max_seq + 1))

    async def test_trimmed_log_answers_full(self, start_node: StartNode, connect: Connect) -> None:
        node = await start_node(data={"version_log_length": 3})
        owner = await user(node, connect, "owner")
        friend_ids = []
        for n in range(2):
            other = await connect(node.url)
            await signed_in(other, f"p{n}")
            await other.apply_friend("owner")
            await owner.phone.respond_friend_application(f"p{n}", True)
            friend_ids.append(f"p{n}")
        copy = FriendListCopy()
        copy.apply(await owner.phone.sync_friends())
        for n in range(5):
            await owner.phone.update_friend(f"p{n % 2}", remark=f"r{n}")
            other = await connect(node.url)
            await signed_in(other, f"q{n}")
            await other.apply_friend("owner")
            await owner.phone.respond_friend_application(f"q{n}", True)
        answer = await owner.desktop.sync_friends(copy.version_id, copy.version)
        assert answer.kind == "full"
        copy.apply(answer)
        server = {f.user_id: f for f in (await owner.phone.get_friends(limit=100)).items}
        assert copy.friends == server

    async def test_unknown_version_id_or_client_ahead_answers_full(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
        await make_friends(alice, bob)
        ids = await alice.phone.get_friend_ids()
        assert (await alice.phone.sync_friends("other-id", ids.version)).kind == "full"
        ahead = await alice.phone.sync_friends(ids.version_id, ids.version + 5)
        assert ahead.kind == "full"
        assert [f.user_id for f in ahead.inserts] == ["bob"]
        equal = await alice.phone.sync_friends(ids.version_id, ids.version)
        assert (equal.kind, equal.inserts, equal.deletes) == ("equal", [], [])


async def test_concurrent_applies_make_one_friendship(node: RunningNode, connect: Connect) -> None:
    alice, bob = await user(node, connect, "alice"), await user(node, connect, "bob")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alice.phone.apply_friend, "bob")
        nursery.start_soon(bob.phone.apply_friend, "alice")
    outcomes: list[ErrorCode | None] = []

    async def accept(client: ParleyClient, applicant: str) -> None:
        try:
            await client.respond_friend_application(applicant, True)
            outcomes.append(None)
        except ParleyError as exc:
            outcomes.append(ErrorCode(exc.code))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept, alice.desktop, "bob")
        nursery.start_soon(accept, bob.desktop, "alice")
    assert outcomes.count(None) >= 1
    assert await friends_of(alice.phone) == ["bob"]
    assert await friends_of(bob.phone) == ["alice"]
    assert (await alice.phone.get_friend_ids()).user_ids == ["bob"]


async def test_friends_survive_a_restart(start_node: StartNode, connect: Connect) -> None:
    first = await start_node()
    alice, bob = await user(first, connect, "alice"), await user(first, connect, "bob")
    await make_friends(alice, bob)
    await alice.phone.update_friend("bob", remark="B")
    await first.stop()
    second = await start_node()
    again = await connect(second.url)
    await again.login("alice", "password-1")
    [entry] = (await again.get_friends()).items
    assert (entry.user_id, entry.remark) == ("bob", "B")
    assert (await again.pull_notifications()).max_seq >= 3
