"""A group's members: their group nickname and ex, mutes, and reading the member
list (pages, by id, all ids, incremental sync). Every method runs in the group
actor's task on the node's event loop and awaits storage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from msgspec.structs import replace

from actors.group.state import (
    Change,
    GroupCommands,
    member_info,
    request_as,
    require_outranks,
    sender,
)
from actors.runtime.messages import Command
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from protocol.notifications import NotificationType as N
from storage import Changes
from storage.group_records import decode_member, join_order


def member_changes(group_id: str, changes: Changes) -> tuple[list[m.GroupMember], ...]:
    """(inserts, updates) of a member-list sync answer, in the order members joined."""
    records = sorted(
        (decode_member(raw) for raw in changes.upserts.values()),
        key=join_order,
    )
    inserts = [member_info(group_id, r) for r in records if r.user_id in changes.inserted]
    updates = [member_info(group_id, r) for r in records if r.user_id not in changes.inserted]
    return inserts, updates


class GroupMemberCommands(GroupCommands):
    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.SetGroupMemberInfo: self.set_member_info,
            m.MuteGroupMember: self.mute,
            m.UnmuteGroupMember: self.mute,
            m.GetGroupMembers: self.members,
            m.GetGroupMembersById: self.members_by_id,
            m.GetGroupMemberIds: self.member_ids,
            m.SyncGroupMembers: self.sync,
        }

    async def set_member_info(self, command: Command) -> m.Reply:
        request = request_as(command, m.SetGroupMemberInfo)
        state = self._state()
        actor = sender(command)
        me = state.require_member(actor)
        target = state.target(request.user_id)
        if target.user_id != actor:
            require_outranks(me, target)
        given = {
            name: value
            for name in ("nickname", "face_url", "ex")
            if (value := getattr(request, name)) is not None
        }
        if not given:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "nothing to change")
        updated = replace(target, **given)
        if updated != target:
            change = Change(self.group_id, state)
            change.step.put_member(updated, insert=False)
            detail = m.GroupMembersDetail(
                group=state.info_record(),
                op_user_id=actor,
                members=[member_info(self.group_id, updated)],
            )
            change.notify(N.GROUP_MEMBER_INFO_SET, detail, state.member_ids())
            await self._commit(change, command)
        return m.GroupMembers(rid=request.rid, items=[member_info(self.group_id, updated)], total=1)

    async def mute(self, command: Command) -> m.Reply:
        """``mute_group_member`` and ``unmute_group_member``."""
        request = command.request
        assert isinstance(request, m.MuteGroupMember | m.UnmuteGroupMember)
        state = self._state()
        actor = sender(command)
        me = state.require_member(actor)
        target = state.target(request.user_id)
        require_outranks(me, target)
        change = Change(self.group_id, state)
        if isinstance(request, m.MuteGroupMember):
            until, kind = change.now + request.seconds * 1000, N.GROUP_MEMBER_MUTED
        else:
            until, kind = 0, N.GROUP_MEMBER_UNMUTED
        updated = replace(target, muted_until_ms=until)
        change.step.put_member(updated, insert=False)
        detail = m.GroupMembersDetail(
            group=state.info_record(),
            op_user_id=actor,
            members=[member_info(self.group_id, updated)],
        )
        change.notify(kind, detail, state.member_ids())
        await self._commit(change, command)
        return m.Ok(rid=request.rid)

    # -- reading ------------------------------------------------------------------------

    async def members(self, command: Command) -> m.Reply:
        request = request_as(command, m.GetGroupMembers)
        state = self._state()
        state.require_member(sender(command))
        roles = set(request.roles)
        chosen = sorted(
            (r for r in state.members.values() if not roles or r.role in roles),
            key=join_order,
        )
        page = chosen[request.offset : request.offset + request.limit]
        return m.GroupMembers(
            rid=request.rid,
            items=[member_info(self.group_id, r) for r in page],
            total=len(chosen),
        )

    async def members_by_id(self, command: Command) -> m.Reply:
        request = request_as(command, m.GetGroupMembersById)
        state = self._state()
        state.require_member(sender(command))
        found = [
            member_info(self.group_id, state.members[u])
            for u in dict.fromkeys(request.user_ids)
            if u in state.members
        ]
        return m.GroupMembers(rid=request.rid, items=found, total=len(found))

    async def member_ids(self, command: Command) -> m.Reply:
        request = request_as(command, m.GetGroupMemberIds)
        state = self._state()
        state.require_member(sender(command))
        raw, version_id, version = await self._store.members_with_version(self.group_id)
        records = sorted((decode_member(r) for r in raw), key=join_order)
        return m.GroupMemberIds(
            rid=request.rid,
            group_id=self.group_id,
            user_ids=[r.user_id for r in records],
            version_id=version_id,
            version=version,
        )

    async def sync(self, command: Command) -> m.Reply:
        request = request_as(command, m.SyncGroupMembers)
        state = self._state()
        state.require_member(sender(command))
        changes = await self._store.sync_members(self.group_id, request.version_id, request.version)
        inserts, updates = member_changes(self.group_id, changes)
        return m.GroupMemberSync(
            rid=request.rid,
            group_id=self.group_id,
            kind=changes.kind,
            version_id=changes.version_id,
            version=changes.version,
            inserts=inserts,
            updates=updates,
            deletes=changes.deletes,
        )
