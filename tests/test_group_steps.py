"""The group steps and multi-user notifications as single-slot steps (storage/groups.py,
lua/group_step.lua, lua/notify_users.lua), on ``slot_checking_redis``: a Redis Cluster
that refuses any step whose keys span slots. Each step is built as the group's actor
builds it (actors/group/*.py); the tests check the group's slot, every touched user's
slot, the version logs (exact incremental sync) and the notification seqs; and that a
step stopped between its primary and its follow-ups is completed exactly once by the
replay (the node's pending set, the group's outbox, the group's next step)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import trio
from msgspec.structs import replace

from protocol.groups import ADMIN, MEMBER, OWNER
from storage import (
    AccountRecord,
    GroupApplicationRecord,
    GroupRecord,
    GroupStep,
    MemberRecord,
    StaleRead,
    StepRefused,
    Storage,
)
from storage.followups import OutboxEntry
from storage.group_records import decode_joined
from storage.groups import LoadedGroup


class Interrupted(Exception):
    """Raised by the ``before_apply`` hook: the node 'dies' after the primary step."""


@pytest.fixture
def client(slot_checking_redis: Any) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(slot_checking_redis.plain_url)
    yield connection
    connection.close()


async def _storage(nursery: trio.Nursery, url: str, prefix: str, node_id: str) -> Storage:
    storage = Storage(url, prefix, node_id)
    await nursery.start(storage.run)
    for user_id in ("owner", "bob", "carol", "dave"):
        await storage.accounts.create(AccountRecord(user_id, "hash", user_id, "", "", 1, 1))
    return storage


@pytest.fixture
async def storage(
    nursery: trio.Nursery, slot_checking_redis: Any, prefix: str
) -> AsyncIterator[Storage]:
    storage = await _storage(nursery, slot_checking_redis.plain_url, prefix, "node-g")
    yield storage
    storage.close()


def _info(**changed: Any) -> GroupRecord:
    fields: dict[str, Any] = {
        "group_id": "g1", "name": "G", "face_url": "", "intro": "", "notification": "",
        "ex": "", "owner_user_id": "owner", "creator_user_id": "owner",
        "join_policy": "approval", "status": "active", "mute_all": False,
        "created_at": 1, "notification_updated_at": 0, "notification_user_id": "",
    }  # fmt: skip
    fields.update(changed)
    return GroupRecord(**fields)


def _member(user_id: str, role: int, n: int) -> MemberRecord:
    return MemberRecord(user_id, role, "", "", "", 10 + n, 1, "", 0, n)


def _create(users: dict[str, int]) -> GroupStep:
    """create_group: the group, and every initial member on their own slot."""
    step = GroupStep("g1", None)
    step.put_info(_info())
    for n, (user_id, role) in enumerate(users.items()):
        if role != OWNER:
            step.require_account(user_id)
        record = _member(user_id, role, n)
        step.put_member(record, insert=True)
        step.put_joined(record, insert=True)
    step.notify(b"created", list(users))
    return step


async def _loaded(storage: Storage) -> LoadedGroup:
    loaded = await storage.groups.load("g1")
    assert loaded is not None
    return loaded


async def _applied(storage: Storage, client: redis.Redis, note_cleared: bool = True) -> None:
    """Wait for the detached deletes that end an applied step: no outbox entry left,
    and (``note_cleared``) the node's note of the group gone."""
    base = storage.keys.group_tag("g1")
    pending = storage.keys.node_pending(storage.followups.node_id)
    with trio.fail_after(5):
        while client.hlen(f"{base}:outbox") or (note_cleared and client.scard(pending)):
            await trio.sleep(0.01)


async def _notifications(storage: Storage, user_id: str) -> list[bytes]:
    page = await storage.notifications.pull(user_id, 0, 100)
    return [payload for _, payload in page.items]


async def test_create_writes_each_members_slot_and_an_unknown_user_changes_nothing(
    storage: Storage, client: redis.Redis
) -> None:
    with pytest.raises(StepRefused) as refused:
        await storage.groups.run(_create({"owner": OWNER, "nobody": MEMBER}))
    assert (refused.value.reason, refused.value.user_id) == ("USER_NOT_FOUND", "nobody")
    written = set(client.keys(f"{storage.keys.prefix}*"))
    assert written == set(client.keys(f"{storage.keys.prefix}*:account"))

    result = await storage.groups.run(_create({"owner": OWNER, "bob": ADMIN, "carol": MEMBER}))
    assert result.rev == 1
    assert result.seqs == [[("owner", 1), ("bob", 1), ("carol", 1)]]
    loaded = await _loaded(storage)
    assert list(loaded.members) == ["owner", "bob", "carol"] and loaded.rev == 1
    for user_id in ("owner", "bob", "carol"):
        records, total = await storage.groups.joined(user_id, 0, 10)
        assert total == 1 and records[0].group_id == "g1" and records[0].group_rev == 1
        assert await _notifications(storage, user_id) == [b"created"]
        conversations = await storage.conversations.sync(user_id, "", 0)
        assert conversations.inserted == {"sg_g1"}
    for user_id, managed in (("owner", True), ("bob", True), ("carol", False)):
        key = f"{storage.keys.user_tag(user_id)}:groups:managed"
        assert client.sismember(key, "g1") == managed
    await _applied(storage, client)
    with pytest.raises(StepRefused, match="GROUP_EXISTS"):
        await storage.groups.run(_create({"owner": OWNER}))
    with pytest.raises(StaleRead):
        await storage.groups.run(GroupStep("g1", 0))  # a copy older than revision 1


async def test_info_transfer_roles_and_mutes(storage: Storage, client: redis.Redis) -> None:
    await storage.groups.run(_create({"owner": OWNER, "bob": MEMBER, "carol": MEMBER}))
    before = {u: (await storage.groups.joined_ids(u))[1:] for u in ("owner", "bob", "carol")}
    loaded = await _loaded(storage)

    step = GroupStep("g1", loaded.rev)  # set_group_info / mute_group
    step.put_info(_info(name="New"))
    step.touch_joined(loaded.members.values())
    step.notify(b"renamed", list(loaded.members))
    assert (await storage.groups.run(step)).seqs == [[("owner", 2), ("bob", 2), ("carol", 2)]]
    for user_id, (version_id, version) in before.items():
        changes = await storage.groups.sync_joined(user_id, version_id, version)
        assert changes.kind == "incremental" and list(changes.upserts) == ["g1"]
        assert changes.inserted == frozenset() and changes.deletes == []
    assert (await storage.groups.infos(["g1", "missing"]))["g1"][0].name == "New"

    loaded = await _loaded(storage)  # transfer_group_owner to bob
    step = GroupStep("g1", loaded.rev)
    step.put_info(_info(name="New", owner_user_id="bob"))
    old, new = loaded.members["owner"], loaded.members["bob"]
    for record in (replace(new, role=OWNER), replace(old, role=MEMBER)):
        step.put_member(record, insert=False)
        step.put_joined(record, insert=False)
    step.touch_joined([loaded.members["carol"]])
    step.notify(b"transferred", list(loaded.members))
    await storage.groups.run(step)
    managed = {u: client.smembers(f"{storage.keys.user_tag(u)}:groups:managed") for u in before}
    assert managed == {"owner": set(), "bob": {b"g1"}, "carol": set()}
    records, _ = await storage.groups.joined("bob", 0, 10)
    assert records[0].role == OWNER and records[0].group_rev == 3

    loaded = await _loaded(storage)  # mute_group_member carol: the group's slot only
    step = GroupStep("g1", loaded.rev)
    carol = loaded.members["carol"]
    step.put_member(replace(carol, muted_until_ms=99_999), insert=False)
    step.notify(b"muted", list(loaded.members))
    result = await storage.groups.run(step)
    assert result.seqs == [[("owner", 4), ("bob", 4), ("carol", 4)]]
    assert (await _loaded(storage)).members["carol"].muted_until_ms == 99_999
    raw, _, version = await storage.groups.members_with_version("g1")
    assert len(raw) == 3 and version == 6  # 3 inserts, 2 role updates, 1 mute
    await _applied(storage, client)


def _application(user_id: str, state: int, inviter: str = "") -> GroupApplicationRecord:
    return GroupApplicationRecord("g1", user_id, inviter, "hi", state, "", "", 50, 0)


async def test_applications_on_both_sides_and_joining(
    storage: Storage, client: redis.Redis
) -> None:
    await storage.groups.run(_create({"owner": OWNER, "bob": ADMIN}))
    loaded = await _loaded(storage)
    step = GroupStep("g1", loaded.rev)  # apply_join_group under 'approval'
    step.put_application(_application("carol", 0))
    step.notify(b"applied", ["owner", "bob", "carol"])
    await storage.groups.run(step)
    mine, total = await storage.groups.my_applications("carol", 0, 10)
    assert total == 1 and mine[0].state == 0
    managed, total = await storage.groups.managed_applications("bob", 0, 10)
    assert total == 1 and managed[0].user_id == "carol"
    assert [a.user_id for a in await storage.groups.pending_applications("g1", ["carol"])] == [
        "carol"
    ]

    loaded = await _loaded(storage)  # respond_group_application: accepted, carol joins
    step = GroupStep("g1", loaded.rev)
    joined = _member("carol", MEMBER, 5)
    step.put_member(joined, insert=True)
    step.put_joined(joined, insert=True)
    step.put_application(_application("carol", 1))
    step.notify(b"accepted", ["owner", "bob", "carol"])
    step.notify(b"entered", ["owner", "bob", "carol"])
    result = await storage.groups.run(step)
    assert result.seqs[1] == [("owner", 4), ("bob", 4), ("carol", 3)]
    assert await _notifications(storage, "carol") == [b"applied", b"accepted", b"entered"]
    assert (await storage.groups.application("g1", "carol")) == _application("carol", 1)
    assert (await storage.groups.my_applications("carol", 0, 10))[0][0].state == 1
    assert await storage.groups.pending_applications("g1", ["carol"]) == []
    assert await storage.groups.membership(["g1", "g2"], "carol") == [True, False]
    assert await storage.joined_group_ids("carol") == ["g1"]
    await _applied(storage, client)


async def test_leaving_kick_quit_and_dismiss(storage: Storage, client: redis.Redis) -> None:
    await storage.groups.run(
        _create({"owner": OWNER, "bob": MEMBER, "carol": MEMBER, "dave": MEMBER})
    )
    before = {u: (await storage.groups.joined_ids(u))[1:] for u in ("bob", "carol", "dave")}
    # the group's conversation went to seq 7 (its sends are tested with the messages)
    client.hset(f"{storage.keys.conversation_tag('sg_g1')}:meta", "seq", 7)

    loaded = await _loaded(storage)  # kick bob, then carol quits
    for user_id in ("bob", "carol"):
        step = GroupStep("g1", loaded.rev)
        step.delete_member(user_id)
        step.delete_joined(user_id)
        step.notify(b"left", list(loaded.members))
        await storage.groups.run(step)
        loaded = await _loaded(storage)
    assert list(loaded.members) == ["owner", "dave"]
    for user_id in ("bob", "carol"):
        assert await storage.left_group_seqs(user_id, ["g1"]) == [7]
        changes = await storage.groups.sync_joined(user_id, *before[user_id])
        assert changes.kind == "incremental" and changes.deletes == ["g1"]
        assert await storage.groups.joined(user_id, 0, 10) == ([], 0)
        assert (await storage.conversations.sync(user_id, "", 0)).inserted == {"sg_g1"}

    step = GroupStep("g1", loaded.rev)  # dismiss_group: every member's slot
    step.put_info(_info(status="dismissed"))
    for user_id in loaded.members:
        step.delete_member(user_id)
        step.delete_joined(user_id)
    step.notify(b"dismissed", list(loaded.members))
    await storage.groups.run(step)
    assert (await _loaded(storage)).members == {}
    for user_id in ("owner", "dave"):
        assert await storage.joined_group_ids(user_id) == []
        assert (await _notifications(storage, user_id))[-1] == b"dismissed"
    assert not client.sismember(f"{storage.keys.user_tag('owner')}:groups:managed", "g1")
    await _applied(storage, client)


async def test_notify_users_appends_once_to_each_user(
    storage: Storage, client: redis.Redis
) -> None:
    seqs = await storage.notifications.append(["bob", "carol", "bob"], b"n1", sender="owner")
    assert seqs == [1, 1, 0]
    assert await storage.notifications.append(["carol"], b"n2", sender="owner") == [2]
    assert await storage.notifications.append([], b"n3", sender="owner") == []
    assert await _notifications(storage, "bob") == [b"n1"]
    assert await _notifications(storage, "carol") == [b"n1", b"n2"]
    with trio.fail_after(5):
        while client.hlen(f"{storage.keys.user_tag('owner')}:outbox"):
            await trio.sleep(0.01)


def _interrupt(storage: Storage) -> list[OutboxEntry]:
    stopped: list[OutboxEntry] = []

    async def stop(source: str, entry: OutboxEntry) -> None:
        stopped.append(entry)
        raise Interrupted()

    storage.followups.before_apply = stop
    return stopped


async def _stopped_create(storage: Storage, client: redis.Redis) -> tuple[str, int]:
    """create_group stopped between its primary and its follow-ups; returns carol's
    joined-group version from before."""
    _, version_id, version = await storage.groups.joined_ids("carol")
    stopped = _interrupt(storage)
    with pytest.raises(Interrupted):
        await storage.groups.run(_create({"owner": OWNER, "carol": MEMBER}))
    storage.followups.before_apply = None
    assert len(stopped) == 1 and len(stopped[0].follow_ups) == 2
    assert (await _loaded(storage)).rev == 1  # the group's slot holds the change
    assert await storage.joined_group_ids("carol") == []  # carol's does not, yet
    assert client.hlen(f"{storage.keys.group_tag('g1')}:outbox") == 1
    assert client.sismember(storage.keys.node_pending("node-g"), storage.keys.group_tag("g1"))
    return version_id, version


async def _exactly_once(storage: Storage, version_id: str, version: int) -> None:
    changes = await storage.groups.sync_joined("carol", version_id, version)
    assert changes.kind == "incremental" and changes.inserted == {"g1"}
    assert decode_joined(changes.upserts["g1"]).role == MEMBER
    _, version_id, version = await storage.groups.joined_ids("carol")
    assert (await storage.groups.sync_joined("carol", version_id, version)).kind == "equal"
    assert await _notifications(storage, "carol") == [b"created"]
    assert (await storage.conversations.sync("carol", "", 0)).inserted == {"sg_g1"}


async def test_a_dead_nodes_step_is_completed_by_the_node_that_replays_it(
    nursery: trio.Nursery,
    storage: Storage,
    client: redis.Redis,
    slot_checking_redis: Any,
    prefix: str,
) -> None:
    version_id, version = await _stopped_create(storage, client)
    other = await _storage(nursery, slot_checking_redis.plain_url, prefix, "node-h")
    assert await other.followups.replay_node("node-g") == 1
    assert await other.followups.replay_node("node-g") == 0
    assert await storage.followups.replay_source(storage.keys.group_tag("g1")) == 0
    await _exactly_once(storage, version_id, version)
    other.close()


async def test_a_stopped_step_is_completed_by_the_groups_next_step_first(
    storage: Storage, client: redis.Redis
) -> None:
    version_id, version = await _stopped_create(storage, client)
    loaded = await _loaded(storage)
    step = GroupStep("g1", loaded.rev)
    step.put_info(_info(name="Later"))
    step.touch_joined(loaded.members.values())
    step.notify(b"renamed", list(loaded.members))
    result = await storage.groups.run(step)
    assert result.seqs == [[("owner", 2), ("carol", 2)]]  # after the replayed seq 1
    assert await _notifications(storage, "carol") == [b"created", b"renamed"]
    changes = await storage.groups.sync_joined("carol", version_id, version)
    assert changes.kind == "incremental" and changes.inserted == {"g1"}
    assert decode_joined(changes.upserts["g1"]).group_rev == 2
    assert await storage.followups.replay_node("node-g") == 0
    await _applied(storage, client)


async def test_a_stopped_step_is_replayed_from_the_groups_outbox_once(
    storage: Storage, client: redis.Redis
) -> None:
    version_id, version = await _stopped_create(storage, client)
    source = storage.keys.group_tag("g1")
    assert await storage.followups.replay_source(source) == 1
    await _applied(storage, client, note_cleared=False)  # replay_node clears it, later
    assert await storage.followups.replay_source(source) == 0
    await _exactly_once(storage, version_id, version)


async def test_a_stopped_notification_reaches_the_rest_once(
    storage: Storage, client: redis.Redis
) -> None:
    await storage.notifications.append(["bob"], b"first", sender="owner")
    _interrupt(storage)
    with pytest.raises(Interrupted):
        await storage.notifications.append(["bob", "carol"], b"second", sender="owner")
    storage.followups.before_apply = None
    assert await _notifications(storage, "carol") == []
    # the sender's next notification applies the one left first, then its own
    assert await storage.notifications.append(["carol"], b"third", sender="owner") == [2]
    assert await _notifications(storage, "bob") == [b"first", b"second"]
    assert await _notifications(storage, "carol") == [b"second", b"third"]
    assert await storage.followups.replay_node("node-g") == 0
