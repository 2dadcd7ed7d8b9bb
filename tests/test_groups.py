"""Groups end to end through the SDK: life cycle, join policies, applications,
members, roles, mutes, their notifications on every device, sync after changes
while offline, the size limit, several nodes, and restart persistence. Every user
has two devices (iOS and Windows). The role x action rules are in
``test_group_permissions.py``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import redis
import trio

from actors.group.state import GroupState
from client import (
    ErrorCode,
    GroupMembersCopy,
    JoinedGroupsCopy,
    ParleyClient,
    ParleyError,
    Platform,
)
from protocol import messages as m
from protocol.notifications import NotificationType as N
from server import RunningNode
from storage import GroupRecord, MemberRecord
from tests.conftest import StartNode
from tests.support import (
    Connect,
    Snapshot,
    User,
    both_stores,
    eventually,
    expect_error,
    signed_in,
    stored_state,
    user,
)

pytestmark = both_stores


async def users(node: RunningNode, connect: Connect, *user_ids: str) -> list[User]:
    return [await user(node, connect, u) for u in user_ids]


async def offline_user(node: RunningNode, connect: Connect, user_id: str) -> None:
    """Register ``user_id`` and leave no session open."""
    client = await connect(node.url)
    await signed_in(client, user_id)
    await client.logout()


async def notes(client: ParleyClient) -> list[m.Notification]:
    """Every notification that has reached ``client`` and was not read yet. A ping round
    trip first: pushes queued to the session before the pong arrive before it."""
    await client.ping()
    found: list[m.Notification] = []
    while True:
        try:
            event = await client.next_event(timeout=0.01)
        except trio.TooSlowError:
            return found
        if isinstance(event, m.Notification):
            found.append(event)


async def next_of_kind(client: ParleyClient, kind: int, timeout: float = 10) -> m.Notification:
    """The next notification of ``kind`` (skipping others), however it travels."""
    with trio.fail_after(timeout):
        while True:
            note: m.Notification = await client.next_event(m.Notification, timeout)
            if note.type == kind:
                return note


async def kinds(client: ParleyClient) -> list[int]:
    return [n.type for n in await notes(client)]


async def settle(*people: User) -> None:
    """Forget the notifications received so far."""
    for person in people:
        for device in person.devices:
            await notes(device)


def devices(people: Iterable[User]) -> list[ParleyClient]:
    return [d for p in people for d in p.devices]


async def member_ids(client: ParleyClient, group_id: str) -> list[str]:
    page = await client.get_group_members(group_id, limit=100)
    return [r.user_id for r in page.items]


async def joined_ids(client: ParleyClient) -> list[str]:
    return (await client.get_joined_group_ids()).group_ids


def snapshot(client: redis.Redis, prefix: str) -> Snapshot:
    """Every stored key under ``prefix`` (heartbeats and leases are not state)."""
    return stored_state(client, prefix)


@asynccontextmanager
async def unchanged(client: redis.Redis, prefix: str) -> AsyncIterator[None]:
    """The block must not change anything stored."""
    before = await trio.to_thread.run_sync(snapshot, client, prefix)
    yield
    after = await trio.to_thread.run_sync(snapshot, client, prefix)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"stored state changed: {changed}"


class Team:
    """alice owns, carol administers, bob is an ordinary member; dave is outside."""

    def __init__(self, people: list[User], group_id: str) -> None:
        self.alice, self.bob, self.carol, self.dave = people
        self.group_id = group_id

    @property
    def members(self) -> list[User]:
        return [self.alice, self.bob, self.carol]

    @property
    def everyone(self) -> list[User]:
        return [self.alice, self.bob, self.carol, self.dave]

    @classmethod
    async def start(
        cls, node: RunningNode, connect: Connect, join_policy: m.JoinPolicy = "approval"
    ) -> Team:
        people = await users(node, connect, "alice", "bob", "carol", "dave")
        info = await people[0].phone.create_group(
            "team",
            group_id="team",
            join_policy=join_policy,
            member_user_ids=["bob"],
            admin_user_ids=["carol"],
        )
        group = cls(people, info.group_id)
        await settle(*people)
        return group


# --------------------------------------------------------------------------
# Life cycle and info
# --------------------------------------------------------------------------


class TestCreate:
    async def test_create_notifies_every_member_device_and_lists_the_group(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, bob, carol = await users(node, connect, "alice", "bob", "carol")
        info = await alice.phone.create_group(
            "Team",
            face_url="https://x/t.png",
            intro="about",
            notification="welcome",
            ex='{"k":1}',
            join_policy="direct",
            member_user_ids=["bob"],
            admin_user_ids=["carol"],
        )
        assert re.fullmatch(r"[0-9a-f]{16}", info.group_id)
        assert (info.name, info.intro, info.notification, info.ex) == (
            "Team", "about", "welcome", '{"k":1}'
        )  # fmt: skip
        assert (info.owner_user_id, info.creator_user_id, info.member_count) == (
            "alice",
            "alice",
            3,
        )
        assert (info.join_policy, info.status, info.mute_all) == ("direct", "active", False)
        assert info.notification_user_id == "alice" and info.notification_updated_at > 0
        # Every device gets it, the one that created the group too.
        for device in (*alice.devices, *bob.devices, *carol.devices):
            [note] = await notes(device)
            assert note.type == N.GROUP_CREATED
            assert isinstance(note.detail, m.GroupDetail)
            assert note.detail.group == info and note.detail.op_user_id == "alice"

        members = (await bob.phone.get_group_members(info.group_id)).items
        assert [(r.user_id, r.role_level) for r in members] == [
            ("alice", 100), ("carol", 60), ("bob", 20)
        ]  # fmt: skip
        assert [r.inviter_user_id for r in members] == ["", "alice", "alice"]
        assert {r.join_source for r in members} == {1}
        for person, role in ((alice, 100), (bob, 20), (carol, 60)):
            [entry] = (await person.desktop.get_joined_groups()).items
            assert (entry.group, entry.role_level) == (info, role)
        got = await carol.phone.get_groups_info([info.group_id, "nope", info.group_id])
        assert (got.items, got.not_found) == ([info], ["nope"])

    async def test_chosen_id_and_every_refusal(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        alice, bob = await users(node, connect, "alice", "bob")
        info = await alice.phone.create_group("mine", group_id="my.group-1")
        assert info.group_id == "my.group-1" and info.member_count == 1
        async with unchanged(redis_client, prefix):
            await expect_error(
                ErrorCode.GROUP_EXISTS, bob.phone.create_group("again", group_id="my.group-1")
            )
            for members, admins in ((["bob", "bob"], []), (["bob"], ["bob"]), (["alice"], [])):
                await expect_error(
                    ErrorCode.INVALID_FIELD,
                    alice.phone.create_group(
                        "x", group_id="dup", member_user_ids=members, admin_user_ids=admins
                    ),
                )
            await expect_error(
                ErrorCode.USER_NOT_FOUND,
                alice.phone.create_group("x", group_id="ghosts", member_user_ids=["bob", "ghost"]),
            )
            await expect_error(ErrorCode.INVALID_FIELD, alice.phone.create_group(""))
            await expect_error(
                ErrorCode.INVALID_FIELD, alice.phone.create_group("x", group_id="bad id")
            )
            await expect_error(
                ErrorCode.INVALID_FIELD,
                alice.phone.create_group("x", join_policy="open"),  # type: ignore[arg-type]
            )
        assert await joined_ids(bob.phone) == []
        assert (await bob.phone.get_groups_info(["dup", "ghosts"])).not_found == ["dup", "ghosts"]
        await expect_error(ErrorCode.GROUP_NOT_FOUND, bob.phone.apply_join_group("ghosts"))


class TestInfo:
    async def test_each_kind_of_change_has_its_notification(
        self, node: RunningNode, connect: Connect
    ) -> None:
        t = await Team.start(node, connect)
        cases: list[tuple[dict[str, Any], list[int]]] = [
            ({"name": "Team 2"}, [N.GROUP_NAME_SET]),
            ({"notification": "read me"}, [N.GROUP_ANNOUNCEMENT_SET]),
            ({"intro": "we", "face_url": "f"}, [N.GROUP_INFO_SET]),
            ({"name": "Team 3", "intro": "us"}, [N.GROUP_INFO_SET]),
            (
                {"name": "Team 4", "notification": "new"},
                [N.GROUP_ANNOUNCEMENT_SET, N.GROUP_NAME_SET],
            ),
            ({"join_policy": "direct", "ex": "x"}, [N.GROUP_INFO_SET]),
            ({"name": "Team 4"}, []),
        ]
        for fields, expected in cases:
            info = await t.carol.phone.set_group_info(t.group_id, **fields)
            for field, value in fields.items():
                assert getattr(info, field) == value
            for device in (t.carol.desktop, *devices([t.alice, t.bob])):
                got = await notes(device)
                assert [n.type for n in got] == expected, (fields, device.user_id)
                assert all(isinstance(n.detail, m.GroupDetail) for n in got)
                assert all(n.detail.group == info for n in got)  # type: ignore[union-attr]
            assert await notes(t.dave.phone) == []
        assert info.notification_user_id == "carol"
        [entry] = (await t.bob.phone.get_joined_groups()).items
        assert entry.group == info

    async def test_refusals_change_nothing(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        t = await Team.start(node, connect)
        async with unchanged(redis_client, prefix):
            await expect_error(
                ErrorCode.PERMISSION_DENIED, t.bob.phone.set_group_info("team", name="b")
            )
            await expect_error(
                ErrorCode.NOT_GROUP_MEMBER, t.dave.phone.set_group_info("team", name="d")
            )
            await expect_error(ErrorCode.INVALID_FIELD, t.alice.phone.set_group_info("team"))
            await expect_error(
                ErrorCode.GROUP_NOT_FOUND, t.alice.phone.set_group_info("x", name="x")
            )
            await expect_error(
                ErrorCode.INVALID_FIELD, t.alice.phone.set_group_info("team", intro="x" * 4097)
            )
        for device in devices(t.everyone):
            assert await notes(device) == []


class TestDismiss:
    async def test_dismissal_notifies_everyone_and_ends_the_group(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        t = await Team.start(node, connect)
        await expect_error(ErrorCode.PERMISSION_DENIED, t.carol.phone.dismiss_group("team"))
        await t.alice.phone.dismiss_group("team")
        for device in (t.alice.desktop, *devices([t.bob, t.carol])):
            [note] = await notes(device)
            assert note.type == N.GROUP_DISMISSED
            assert isinstance(note.detail, m.GroupDetail)
            assert note.detail.group.status == "dismissed"
        for person in t.members:
            assert await joined_ids(person.phone) == []
        [info] = (await t.dave.phone.get_groups_info(["team"])).items
        assert (info.status, info.member_count) == ("dismissed", 0)
        async with unchanged(redis_client, prefix):
            dismissed = ErrorCode.GROUP_DISMISSED
            await expect_error(dismissed, t.dave.phone.apply_join_group("team"))
            await expect_error(dismissed, t.alice.phone.invite_to_group("team", ["dave"]))
            await expect_error(dismissed, t.bob.phone.get_group_members("team"))
            await expect_error(dismissed, t.alice.phone.set_group_info("team", name="n"))
            await expect_error(dismissed, t.alice.phone.dismiss_group("team"))
            await expect_error(dismissed, t.bob.phone.quit_group("team"))
            await expect_error(dismissed, t.bob.phone.sync_group_members("team"))
            await expect_error(
                ErrorCode.GROUP_EXISTS, t.dave.phone.create_group("n", group_id="team")
            )
        batch = await t.bob.phone.sync_group_members_batch([("team", "", 0)])
        assert (batch.items, batch.not_member) == ([], ["team"])


# --------------------------------------------------------------------------
# Joining: policies, applications, invitations
# --------------------------------------------------------------------------


class TestJoin:
    async def test_direct_policy_joins_at_once(self, node: RunningNode, connect: Connect) -> None:
        t = await Team.start(node, connect, "direct")
        assert await t.dave.phone.apply_join_group("team", "hi") is True
        for device in (t.dave.desktop, *devices(t.members)):
            [note] = await notes(device)
            assert note.type == N.MEMBER_ENTERED
            assert isinstance(note.detail, m.GroupMembersDetail)
            assert [r.user_id for r in note.detail.members] == ["dave"]
            assert note.detail.group.member_count == 4
        [dave] = await t.alice.phone.get_group_members_by_id("team", ["dave", "nobody"])
        assert (dave.role_level, dave.join_source, dave.inviter_user_id) == (20, 3, "")
        assert await joined_ids(t.dave.desktop) == ["team"]
        await expect_error(ErrorCode.ALREADY_MEMBER, t.dave.phone.apply_join_group("team"))
        # Under "direct" an ordinary member's invitation joins at once too.
        erin = await user(node, connect, "erin")
        result = await t.bob.phone.invite_to_group("team", ["erin"])
        assert (result.joined, result.applied) == (["erin"], [])
        for device in (*erin.devices, t.bob.desktop, t.alice.phone):
            assert await kinds(device) == [N.MEMBER_INVITED], device.user_id

    async def test_application_waits_for_a_manager(
        self, node: RunningNode, connect: Connect
    ) -> None:
        t = await Team.start(node, connect)
        assert await t.dave.phone.apply_join_group("team", "let me in") is False
        for device in devices([t.dave, t.alice, t.carol]):
            [note] = await notes(device)
            assert note.type == N.JOIN_GROUP_APPLICATION
            assert isinstance(note.detail, m.GroupApplicationDetail)
            assert note.detail.application.message == "let me in"
        for device in t.bob.devices:
            assert await notes(device) == []
        for manager in (t.alice, t.carol):
            listed = await manager.phone.get_group_applications()
            assert listed.total == 1 and listed.items[0].user_id == "dave"
        assert (await t.bob.phone.get_group_applications()).total == 0
        [mine] = (await t.dave.phone.get_my_group_applications()).items
        assert (mine.group_id, mine.state, mine.inviter_user_id) == ("team", 0, "")

        await t.carol.phone.respond_group_application("team", "dave", True, "welcome")
        for device in devices([t.dave, t.alice, t.carol]):
            got = await kinds(device)
            assert got == [N.GROUP_APPLICATION_ACCEPTED, N.MEMBER_ENTERED], device.user_id
        assert await kinds(t.bob.phone) == [N.MEMBER_ENTERED]
        [mine] = (await t.dave.phone.get_my_group_applications()).items
        assert (mine.state, mine.handler_user_id, mine.handle_message) == (1, "carol", "welcome")
        assert mine.handled_at >= mine.created_at
        assert await member_ids(t.dave.phone, "team") == ["alice", "carol", "bob", "dave"]
        await expect_error(
            ErrorCode.GROUP_APPLICATION_HANDLED,
            t.alice.phone.respond_group_application("team", "dave", False),
        )

    async def test_refusal_and_application_errors(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        t = await Team.start(node, connect)
        await t.dave.phone.apply_join_group("team", "first")
        await t.dave.phone.apply_join_group("team", "second")
        [pending] = (await t.alice.phone.get_group_applications()).items
        assert pending.message == "second"
        await settle(*t.everyone)
        async with unchanged(redis_client, prefix):
            await expect_error(
                ErrorCode.PERMISSION_DENIED,
                t.bob.phone.respond_group_application("team", "dave", True),
            )
            await expect_error(
                ErrorCode.GROUP_APPLICATION_NOT_FOUND,
                t.alice.phone.respond_group_application("team", "erin", True),
            )
            await expect_error(ErrorCode.ALREADY_MEMBER, t.bob.phone.apply_join_group("team"))
            await expect_error(ErrorCode.GROUP_NOT_FOUND, t.dave.phone.apply_join_group("nope"))
        await t.alice.phone.respond_group_application("team", "dave", False, "no")
        for device in (*t.dave.devices, t.alice.desktop, *t.carol.devices):
            assert await kinds(device) == [N.GROUP_APPLICATION_REJECTED], device.user_id
        assert await notes(t.bob.phone) == []
        assert await member_ids(t.alice.phone, "team") == ["alice", "carol", "bob"]
        [mine] = (await t.dave.phone.get_my_group_applications()).items
        assert (mine.state, mine.handle_message) == (-1, "no")
        # A refused applicant may apply again.
        assert await t.dave.phone.apply_join_group("team") is False

    async def test_invitations_follow_the_join_policy(
        self, node: RunningNode, connect: Connect
    ) -> None:
        t = await Team.start(node, connect)
        erin, fay = await users(node, connect, "erin", "fay")
        # An admin's invitation joins at once (OpenIM's rule).
        result = await t.carol.phone.invite_to_group("team", ["dave", "erin", "dave"])
        assert (result.joined, result.applied) == (["dave", "erin"], [])
        for device in devices([t.dave, erin, t.alice, t.bob, t.carol]):
            [note] = await notes(device)
            assert note.type == N.MEMBER_INVITED
            assert isinstance(note.detail, m.GroupMembersDetail)
            assert [r.user_id for r in note.detail.members] == ["dave", "erin"]
            assert {r.inviter_user_id for r in note.detail.members} == {"carol"}
        # An ordinary member's invitation becomes an application.
        result = await t.bob.phone.invite_to_group("team", ["fay"], "she is nice")
        assert (result.joined, result.applied) == ([], ["fay"])
        for device in devices([fay, t.bob, t.alice, t.carol]):
            assert await kinds(device) == [N.JOIN_GROUP_APPLICATION], device.user_id
        assert await notes(t.dave.phone) == []
        [application] = (await fay.phone.get_my_group_applications()).items
        assert (application.inviter_user_id, application.message) == ("bob", "she is nice")
        await t.alice.phone.respond_group_application("team", "fay", True)
        assert await kinds(t.bob.phone) == [N.GROUP_APPLICATION_ACCEPTED, N.MEMBER_ENTERED]
        [member] = await t.alice.phone.get_group_members_by_id("team", ["fay"])
        assert (member.join_source, member.inviter_user_id) == (2, "bob")

    async def test_invite_only_and_invitation_errors(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        t = await Team.start(node, connect, "invite_only")
        await offline_user(node, connect, "erin")
        async with unchanged(redis_client, prefix):
            await expect_error(ErrorCode.JOIN_BY_INVITE_ONLY, t.dave.phone.apply_join_group("team"))
            await expect_error(
                ErrorCode.ALREADY_MEMBER, t.alice.phone.invite_to_group("team", ["dave", "bob"])
            )
            await expect_error(
                ErrorCode.USER_NOT_FOUND, t.alice.phone.invite_to_group("team", ["dave", "ghost"])
            )
            await expect_error(
                ErrorCode.NOT_GROUP_MEMBER, t.dave.phone.invite_to_group("team", ["erin"])
            )
        assert (await t.bob.phone.invite_to_group("team", ["dave"])).applied == ["dave"]
        # The owner's invitation joins at once, and settles the pending application.
        assert (await t.alice.phone.invite_to_group("team", ["dave", "erin"])).joined == [
            "dave", "erin"
        ]  # fmt: skip
        [handled] = (await t.dave.phone.get_my_group_applications()).items
        assert (handled.state, handled.handler_user_id) == (1, "alice")
        assert (await t.carol.phone.get_group_applications()).items[0].state == 1

    async def test_managers_see_applications_of_all_their_groups_in_pages(
        self, node: RunningNode, connect: Connect
    ) -> None:
        boss, other = await users(node, connect, "boss", "other")
        await boss.phone.create_group("one", group_id="g1")
        await other.phone.create_group("two", group_id="g2", admin_user_ids=["boss"])
        await other.phone.create_group("three", group_id="g3")
        for n in range(5):
            applicant = await connect(node.url)
            await signed_in(applicant, f"fan{n}")
            await applicant.apply_join_group(("g1", "g2", "g3")[n % 3])
            await trio.sleep(0.002)
        first = await boss.phone.get_group_applications(0, 2)
        rest = await boss.phone.get_group_applications(2, 10)
        assert first.total == rest.total == 4
        order = [(a.group_id, a.user_id) for a in first.items + rest.items]
        assert order == [("g2", "fan4"), ("g1", "fan3"), ("g2", "fan1"), ("g1", "fan0")]
        assert (await other.phone.get_group_applications()).total == 3


# --------------------------------------------------------------------------
# Leaving, roles, member info, mutes, member lists
# --------------------------------------------------------------------------


class TestMembers:
    async def test_kick_notifies_the_group_and_the_kicked(
        self, node: RunningNode, connect: Connect
    ) -> None:
        t = await Team.start(node, connect)
        await t.alice.phone.invite_to_group("team", ["dave"])
        await settle(*t.everyone)
        await t.alice.phone.kick_group_members("team", ["bob", "carol"], "bye")
        for device in (t.alice.desktop, *devices([t.bob, t.carol, t.dave])):
            [note] = await notes(device)
            assert note.type == N.MEMBER_KICKED
            assert isinstance(note.detail, m.GroupMembersDetail)
            assert [r.user_id for r in note.detail.members] == ["bob", "carol"]
            assert note.detail.group.member_count == 2
        assert await member_ids(t.dave.phone, "team") == ["alice", "dave"]
        assert await joined_ids(t.bob.phone) == []
        assert (await t.carol.phone.get_group_applications()).total == 0
        await expect_error(ErrorCode.NOT_GROUP_MEMBER, t.bob.phone.get_group_members("team"))

    async def test_quit_and_the_owner_must_transfer_first(
        self, node: RunningNode, connect: Connect, redis_client: redis.Redis, prefix: str
    ) -> None:
        t = await Team.start(node, connect)
        async with unchanged(redis_client, prefix):
            await expect_error(ErrorCode.OWNER_CANNOT_QUIT, t.alice.phone.quit_group("team"))
            await expect_error(ErrorCode.NOT_GROUP_MEMBER, t.dave.phone.quit_group("team"))
        await t.bob.phone.quit_group("team")
        for device in devices([t.bob, t.alice, t.carol]):
            [note] = await notes(device)
            assert note.type == N.MEMBER_QUIT
            assert isinstance(note.detail, m.GroupMembersDetail)
            assert [r.user_id for r in note.detail.members] == ["bob"]
        await t.alice.phone.transfer_group_owner("team", "carol")
        for device in devices([t.alice, t.carol]):
            [note] = await notes(device)
            assert note.type == N.GROUP_OWNER_TRANSFERRED
            assert isinstance(note.detail, m.GroupOwnerDetail)
            assert (note.detail.old_owner.user_id, note.detail.old_owner.role_level) == (
                "alice",
                20,
            )
            assert (note.detail.new_owner.user_id, note.detail.new_owner.role_level) == (
                "carol",
                100,
            )
            assert note.detail.group.owner_user_id == "carol"
        assert await notes(t.bob.phone) == []
        await t.alice.phone.quit_group("team")
        assert await member_ids(t.carol.phone, "team") == ["carol"]
        [entry] = (await t.carol.phone.get_joined_groups()).items
        assert (entry.role_level, entry.group.owner_user_id) == (100, "carol")

    async def test_roles_member_info_and_mutes(self, node: RunningNode, connect: Connect) -> None:
        t = await Team.start(node, connect)
        a, b, c = t.alice.phone, t.bob.phone, t.carol.phone
        info_set = N.GROUP_MEMBER_INFO_SET
        steps: list[tuple[ParleyClient, Callable[[], Awaitable[object]], int]] = [
            (a, lambda: a.set_group_member_role("team", "bob", 60), N.GROUP_MEMBER_SET_ADMIN),
            (a, lambda: a.set_group_member_role("team", "bob", 20), N.GROUP_MEMBER_SET_ORDINARY),
            (b, lambda: b.set_group_member_info("team", "bob", nickname="B"), info_set),
            (c, lambda: c.set_group_member_info("team", "bob", ex="x"), info_set),
            (c, lambda: c.mute_group_member("team", "bob", 60), N.GROUP_MEMBER_MUTED),
            (c, lambda: c.unmute_group_member("team", "bob"), N.GROUP_MEMBER_UNMUTED),
            (a, lambda: a.mute_group_member("team", "carol", 30), N.GROUP_MEMBER_MUTED),
            (c, lambda: c.mute_group("team"), N.GROUP_MUTED),
            (a, lambda: a.unmute_group("team"), N.GROUP_UNMUTED),
        ]  # fmt: skip
        for acting, call, kind in steps:
            await call()
            for device in devices(t.members):
                assert await kinds(device) == [kind], (kind, device.user_id, device is acting)
            assert await notes(t.dave.phone) == []
        [bob, carol] = await t.alice.phone.get_group_members_by_id("team", ["bob", "carol"])
        assert (bob.role_level, bob.nickname, bob.ex, bob.muted_until) == (20, "B", "x", 0)
        assert carol.muted_until > bob.joined_at
        [entry] = (await t.bob.phone.get_joined_groups()).items
        assert entry.role_level == 20 and entry.group.mute_all is False
        # Repeating a state that already holds changes nothing and notifies no one.
        await t.alice.phone.set_group_member_role("team", "carol", 60)
        await t.alice.phone.unmute_group("team")
        assert await kinds(t.bob.phone) == []

    async def test_member_pages_role_filter_and_ids(
        self, node: RunningNode, connect: Connect
    ) -> None:
        owner = await user(node, connect, "owner")
        ids = [f"m{n:02d}" for n in range(12)]
        for user_id in ids:
            await offline_user(node, connect, user_id)
        await owner.phone.create_group("big", group_id="big", member_user_ids=ids[:6])
        await owner.phone.invite_to_group("big", ids[6:])
        for user_id in ("m03", "m08"):
            await owner.phone.set_group_member_role("big", user_id, 60)
        pages = [await owner.phone.get_group_members("big", offset, 5) for offset in (0, 5, 10)]
        assert [p.total for p in pages] == [13, 13, 13]
        assert [r.user_id for p in pages for r in p.items] == ["owner", *ids]
        managers = await owner.desktop.get_group_members("big", roles=[100, 60])
        assert [r.user_id for r in managers.items] == ["owner", "m03", "m08"]
        plain = await owner.desktop.get_group_members("big", 1, 3, roles=[20])
        assert plain.total == 10 and [r.user_id for r in plain.items] == ["m01", "m02", "m04"]
        all_ids = await owner.phone.get_group_member_ids("big")
        assert all_ids.user_ids == ["owner", *ids] and all_ids.version == 15
        await expect_error(
            ErrorCode.INVALID_FIELD,
            owner.phone.get_group_members("big", roles=[50]),  # type: ignore[list-item]
        )


# --------------------------------------------------------------------------
# Sync after changes while offline
# --------------------------------------------------------------------------


class TestSync:
    async def test_offline_member_catches_up_with_sync_and_pull(
        self, node: RunningNode, connect: Connect
    ) -> None:
        alice, _carol = await users(node, connect, "alice", "carol")
        await offline_user(node, connect, "bob")
        await alice.phone.create_group("a", group_id="ga", member_user_ids=["bob", "carol"])
        await alice.phone.create_group("b", group_id="gb", member_user_ids=["bob"])
        bob = await user(node, connect, "bob")
        joined = JoinedGroupsCopy()
        joined.apply(await bob.phone.sync_joined_groups())
        assert sorted(joined.groups) == ["ga", "gb"]
        copies = {g: GroupMembersCopy(g) for g in ("ga", "gb")}
        for group_id, copy in copies.items():
            copy.apply(await bob.phone.sync_group_members(group_id))
        seen = (await bob.phone.pull_notifications()).max_seq
        await bob.phone.logout()
        await bob.desktop.logout()

        # While Bob is offline: a new group, a rename, a role change, a dismissal, joins
        # and leaves, a member's nickname.
        await alice.phone.create_group("c", group_id="gc", member_user_ids=["bob"])
        await alice.phone.set_group_info("ga", name="A!")
        await alice.phone.set_group_member_role("ga", "bob", 60)
        await alice.phone.dismiss_group("gb")
        await alice.phone.kick_group_members("ga", ["carol"])
        await offline_user(node, connect, "dave")
        await alice.phone.invite_to_group("ga", ["dave"])
        await alice.phone.set_group_member_info("ga", "alice", nickname="boss")

        again = await connect(node.url)
        await again.login("bob", "password-1", Platform.IOS)
        answer = await again.sync_joined_groups(joined.version_id, joined.version)
        assert answer.kind == "incremental"
        assert [e.group.group_id for e in answer.inserts] == ["gc"]
        [updated] = answer.updates
        assert (updated.group.name, updated.role_level) == ("A!", 60)
        assert answer.deletes == ["gb"]
        joined.apply(answer)
        assert sorted(joined.groups) == ["ga", "gc"]
        assert (await again.sync_joined_groups(joined.version_id, joined.version)).kind == "equal"

        batch = await again.sync_group_members_batch(
            [(g, c.version_id, c.version) for g, c in copies.items()]
        )
        assert batch.not_member == ["gb"]
        [changes] = batch.items
        assert changes.kind == "incremental"
        assert [r.user_id for r in changes.inserts] == ["dave"]
        assert sorted(r.user_id for r in changes.updates) == ["alice", "bob"]
        assert changes.deletes == ["carol"]
        copies["ga"].apply(changes)
        server = await again.get_group_members("ga", limit=100)
        assert copies["ga"].members == {r.user_id: r for r in server.items}
        ids = await again.get_group_member_ids("ga")
        assert (ids.version_id, ids.version) == (changes.version_id, changes.version)
        single = await again.sync_group_members("ga", ids.version_id, ids.version)
        assert single.kind == "equal"

        pulled = await again.pull_notifications(after_seq=seen)
        assert [n.type for n in pulled.items] == [
            N.GROUP_CREATED, N.GROUP_NAME_SET, N.GROUP_MEMBER_SET_ADMIN, N.GROUP_DISMISSED,
            N.MEMBER_KICKED, N.MEMBER_INVITED, N.GROUP_MEMBER_INFO_SET,
        ]  # fmt: skip
        assert [n.seq for n in pulled.items] == list(range(seen + 1, pulled.max_seq + 1))

    async def test_trimmed_or_foreign_versions_answer_full(
        self, start_node: StartNode, connect: Connect
    ) -> None:
        node = await start_node(data={"version_log_length": 3})
        owner = await user(node, connect, "owner")
        await owner.phone.create_group("g", group_id="g")
        members = GroupMembersCopy("g")
        members.apply(await owner.phone.sync_group_members("g"))
        joined = JoinedGroupsCopy()
        joined.apply(await owner.phone.sync_joined_groups())
        for n in range(5):
            await offline_user(node, connect, f"p{n}")
            await owner.phone.invite_to_group("g", [f"p{n}"])
            await owner.phone.create_group(f"g{n}", group_id=f"g{n}")
        answer = await owner.desktop.sync_group_members("g", members.version_id, members.version)
        assert answer.kind == "full"
        members.apply(answer)
        assert sorted(members.members) == ["owner", "p0", "p1", "p2", "p3", "p4"]
        answer_j = await owner.desktop.sync_joined_groups(joined.version_id, joined.version)
        assert answer_j.kind == "full"
        joined.apply(answer_j)
        assert sorted(joined.groups) == ["g", "g0", "g1", "g2", "g3", "g4"]
        ahead = await owner.phone.sync_group_members("g", members.version_id, members.version + 9)
        foreign = await owner.phone.sync_group_members("g", "other", members.version)
        assert ahead.kind == foreign.kind == "full"


# --------------------------------------------------------------------------
# The size limit, several nodes, restarts, the state messaging reads
# --------------------------------------------------------------------------


async def test_size_limit(
    start_node: StartNode, connect: Connect, redis_client: redis.Redis, prefix: str
) -> None:
    node = await start_node(groups={"max_group_size": 3})
    alice, bob, carol, dave = await users(node, connect, "alice", "bob", "carol", "dave")
    async with unchanged(redis_client, prefix):
        await expect_error(
            ErrorCode.GROUP_FULL,
            alice.phone.create_group("x", group_id="x", member_user_ids=["bob", "carol", "dave"]),
        )
    await alice.phone.create_group("d", group_id="d", join_policy="direct")
    await alice.phone.create_group("a", group_id="a", member_user_ids=["bob"])
    await bob.phone.apply_join_group("d")
    await carol.phone.apply_join_group("a")
    await dave.phone.apply_join_group("a")
    await alice.phone.respond_group_application("a", "carol", True)
    async with unchanged(redis_client, prefix):
        await expect_error(
            ErrorCode.GROUP_FULL, alice.phone.invite_to_group("d", ["carol", "dave"])
        )
        await expect_error(
            ErrorCode.GROUP_FULL, alice.phone.respond_group_application("a", "dave", True)
        )
        await expect_error(ErrorCode.GROUP_FULL, dave.phone.apply_join_group("a"))
    await carol.phone.apply_join_group("d")
    await expect_error(ErrorCode.GROUP_FULL, dave.phone.apply_join_group("d"))
    assert (await alice.phone.get_groups_info(["a", "d"])).items[0].member_count == 3
    # A refusal still works on a full group.
    await alice.phone.respond_group_application("a", "dave", False)


async def test_two_nodes_share_each_group(start_node: StartNode, connect: Connect) -> None:
    """Each node has its own actor for the group; a change made through one is seen
    (and checked) by the other's, and concurrent joins never pass the size limit."""
    settings: dict[str, Any] = {"groups": {"max_group_size": 4}, "cluster": {"node_timeout": 3}}
    first, second = await start_node(**settings), await start_node(**settings)
    alice, erin = await users(first, connect, "alice", "erin")
    bob, _carol, dave = await users(second, connect, "bob", "carol", "dave")
    await alice.phone.create_group(
        "g", group_id="g", join_policy="direct", member_user_ids=["bob", "carol", "dave"]
    )
    await eventually(
        lambda: (
            second.node_id in first.cluster.other_nodes
            and first.node_id in second.cluster.other_nodes
        )
    )
    await alice.phone.set_group_member_role("g", "bob", 60)
    # The notification reaches the devices on the other node too.
    for device in bob.devices:
        await next_of_kind(device, N.GROUP_MEMBER_SET_ADMIN)
    await bob.phone.mute_group_member("g", "carol", 60)
    await next_of_kind(alice.desktop, N.GROUP_MEMBER_MUTED)
    await alice.phone.set_group_member_role("g", "bob", 20)
    await expect_error(ErrorCode.PERMISSION_DENIED, bob.phone.kick_group_members("g", ["dave"]))
    [muted] = await alice.phone.get_group_members_by_id("g", ["carol"])
    assert muted.muted_until > 0
    await alice.phone.kick_group_members("g", ["dave"])
    outcomes: list[ErrorCode | None] = []

    async def join(client: ParleyClient) -> None:
        try:
            await client.apply_join_group("g")
            outcomes.append(None)
        except ParleyError as exc:
            outcomes.append(ErrorCode(exc.code))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(join, dave.phone)
        nursery.start_soon(join, erin.phone)
    assert sorted(outcomes, key=str) == sorted([None, ErrorCode.GROUP_FULL], key=str)
    assert len(await member_ids(bob.phone, "g")) == 4


async def test_groups_survive_a_restart(start_node: StartNode, connect: Connect) -> None:
    first = await start_node()
    alice, bob, dave = await users(first, connect, "alice", "bob", "dave")
    await offline_user(first, connect, "carol")
    await alice.phone.create_group(
        "g", group_id="g", notification="hi", member_user_ids=["bob"], admin_user_ids=["carol"]
    )
    await alice.phone.mute_group("g")
    await alice.phone.mute_group_member("g", "bob", 3600)
    await bob.phone.set_group_member_info("g", "bob", nickname="bobby")
    await dave.phone.apply_join_group("g", "me too")
    await alice.phone.create_group("gone", group_id="gone")
    await alice.phone.dismiss_group("gone")
    members = (await alice.phone.get_group_members("g")).items
    versions = await alice.phone.get_group_member_ids("g")
    joined = await alice.phone.get_joined_group_ids()
    await first.stop()

    second = await start_node()
    again = await connect(second.url)
    await again.login("alice", "password-1")
    [info] = (await again.get_groups_info(["g"])).items
    assert (info.mute_all, info.notification, info.member_count) == (True, "hi", 3)
    assert (await again.get_group_members("g")).items == members
    synced = await again.sync_group_members("g", versions.version_id, versions.version)
    assert synced.kind == "equal"
    joined_now = await again.get_joined_group_ids()
    assert (joined_now.group_ids, joined_now.version_id, joined_now.version) == (
        ["g"], joined.version_id, joined.version
    )  # fmt: skip
    [pending] = (await again.get_group_applications()).items
    assert (pending.user_id, pending.message, pending.state) == ("dave", "me too", 0)
    await again.respond_group_application("g", "dave", True)
    await again.kick_group_members("g", ["bob"])
    assert await member_ids(again, "g") == ["alice", "carol", "dave"]
    await expect_error(ErrorCode.GROUP_DISMISSED, again.invite_to_group("gone", ["dave"]))
    assert (await again.pull_notifications()).max_seq >= 8


async def _cut_create(node: RunningNode, alice: User, bob: User) -> tuple[str, int, int]:
    """Alice creates g1 with Bob, and the node stops between the step's primary (the
    group's slot) and its follow-ups (Bob's slot, Alice's): returns Bob's joined-group
    version and notification seq from before."""
    copy = await bob.phone.get_joined_group_ids()
    seen = (await bob.phone.pull_notifications()).max_seq

    async def die_here(source: str, entry: object) -> None:
        raise RuntimeError("the node stops between a primary step and its follow-ups")

    node.storage.followups.before_apply = die_here
    await expect_error(
        ErrorCode.INTERNAL, alice.phone.create_group("cut", group_id="g1", member_user_ids=["bob"])
    )
    node.storage.followups.before_apply = None
    assert await joined_ids(bob.phone) == ["g0"]  # Bob's slot does not have it yet
    return copy.version_id, copy.version, seen


async def _joined_once(bob: ParleyClient, version_id: str, version: int, name: str) -> None:
    answer = await bob.sync_joined_groups(version_id, version)
    assert answer.kind == "incremental" and (answer.updates, answer.deletes) == ([], [])
    assert [(e.group.group_id, e.group.name) for e in answer.inserts] == [("g1", name)]
    again = await bob.sync_joined_groups(answer.version_id, answer.version)
    assert again.kind == "equal"


async def test_a_change_cut_before_its_follow_ups_is_replayed_by_the_restarted_node(
    start_node: StartNode, connect: Connect
) -> None:
    first = await start_node(server={"node_id": "cut-node"})
    alice, bob = await users(first, connect, "alice", "bob")
    await alice.phone.create_group("before", group_id="g0", member_user_ids=["bob"])
    version_id, version, seen = await _cut_create(first, alice, bob)
    await first.stop()

    second = await start_node(server={"node_id": "cut-node"})  # replays before it serves
    again = await connect(second.url)
    await again.login("bob", "password-1", Platform.IOS)
    await _joined_once(again, version_id, version, "cut")
    pulled = await again.pull_notifications(after_seq=seen)
    assert [(n.seq, n.type) for n in pulled.items] == [(seen + 1, N.GROUP_CREATED)]
    assert await member_ids(again, "g1") == ["alice", "bob"]


async def test_a_change_cut_before_its_follow_ups_lands_before_the_groups_next_one(
    node: RunningNode, connect: Connect
) -> None:
    alice, bob = await users(node, connect, "alice", "bob")
    await alice.phone.create_group("before", group_id="g0", member_user_ids=["bob"])
    version_id, version, seen = await _cut_create(node, alice, bob)
    await alice.phone.set_group_info("g1", name="renamed")  # the group's next step
    await _joined_once(bob.phone, version_id, version, "renamed")
    pulled = await bob.phone.pull_notifications(after_seq=seen)
    assert [(n.seq, n.type) for n in pulled.items] == [
        (seen + 1, N.GROUP_CREATED),
        (seen + 2, N.GROUP_NAME_SET),
    ]
    assert await joined_ids(alice.phone) == ["g0", "g1"]


def test_send_refusal_reads_the_live_state() -> None:
    """What group messages check before sending (used by actors.group.chat)."""
    info = GroupRecord("g", "g", "", "", "", "", "o", "o", "approval", "active", False, 1, 0, "")
    state = GroupState(
        "g",
        info,
        {
            "o": MemberRecord("o", 100, "", "", "", 1, 1, "", 0),
            "a": MemberRecord("a", 60, "", "", "", 1, 1, "", 5_000),
            "m": MemberRecord("m", 20, "", "", "", 1, 1, "", 0),
            "x": MemberRecord("x", 20, "", "", "", 1, 1, "", 5_000),
        },
    )
    assert [state.send_refusal(u, 1_000) for u in ("o", "a", "m", "x", "z")] == [
        None, None, None, ErrorCode.MEMBER_MUTED, ErrorCode.NOT_GROUP_MEMBER
    ]  # fmt: skip
    assert state.send_refusal("x", 5_000) is None
    state.info = msgspec.structs.replace(info, mute_all=True)
    assert [state.send_refusal(u, 1_000) for u in ("o", "a", "m")] == [
        None, None, ErrorCode.GROUP_MUTED
    ]  # fmt: skip
    state.info = msgspec.structs.replace(info, status="dismissed")
    assert state.send_refusal("o", 1_000) == ErrorCode.GROUP_DISMISSED
    assert state.managers() == ["o", "a"] and state.role_of("z") == 0
