"""Group commands that belong to a user rather than to one group: my joined groups
(pages, ids, incremental sync), member-list sync of many groups at once, group
info of several groups, my applications and those to the groups I manage.

:class:`UserGroupCommands` belongs to one user actor; every method runs in that
actor's task on the node's event loop and awaits storage. These commands only
read; every change to a group goes through the group's own actor
(``actors.group.actor``), ``create_group`` included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from actors.group.members import member_changes
from actors.group.state import application_info, group_info
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from protocol import messages as m
from storage import Changes, JoinedRecord
from storage.group_records import decode_joined


class UserGroupCommands:
    def __init__(self, user_id: str, services: NodeServices) -> None:
        self.user_id = user_id
        self._store = services.storage.groups

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.GetGroupsInfo: self.groups_info,
            m.GetJoinedGroups: self.joined_groups,
            m.SyncJoinedGroups: self.sync_joined,
            m.GetJoinedGroupIds: self.joined_ids,
            m.SyncGroupMembersBatch: self.sync_members_batch,
            m.GetMyGroupApplications: self.my_applications,
            m.GetGroupApplications: self.managed_applications,
        }

    async def _joined(self, records: list[JoinedRecord]) -> list[m.JoinedGroup]:
        """The entries with the current info of each group (in the given order)."""
        infos = await self._store.infos([r.group_id for r in records])
        return [
            m.JoinedGroup(
                group=group_info(*infos[r.group_id]), role_level=r.role, joined_at=r.joined_at
            )
            for r in records
            if r.group_id in infos
        ]

    async def groups_info(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetGroupsInfo)
        wanted = list(dict.fromkeys(request.group_ids))
        infos = await self._store.infos(wanted)
        return m.Groups(
            rid=request.rid,
            items=[group_info(*infos[g]) for g in wanted if g in infos],
            not_found=[g for g in wanted if g not in infos],
        )

    async def joined_groups(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetJoinedGroups)
        records, total = await self._store.joined(self.user_id, request.offset, request.limit)
        return m.JoinedGroups(rid=request.rid, items=await self._joined(records), total=total)

    async def sync_joined(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SyncJoinedGroups)
        changes: Changes = await self._store.sync_joined(
            self.user_id, request.version_id, request.version
        )
        records = sorted(
            (decode_joined(raw) for raw in changes.upserts.values()),
            key=lambda r: (r.joined_at, r.group_id),
        )
        entries = await self._joined(records)
        return m.JoinedGroupSync(
            rid=request.rid,
            kind=changes.kind,
            version_id=changes.version_id,
            version=changes.version,
            inserts=[e for e in entries if e.group.group_id in changes.inserted],
            updates=[e for e in entries if e.group.group_id not in changes.inserted],
            deletes=changes.deletes,
        )

    async def joined_ids(self, command: Command) -> m.Reply:
        ids, version_id, version = await self._store.joined_ids(self.user_id)
        return m.JoinedGroupIds(
            rid=command.request.rid, group_ids=ids, version_id=version_id, version=version
        )

    async def sync_members_batch(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SyncGroupMembersBatch)
        wanted = list({g.group_id: g for g in request.groups}.values())
        member_of = await self._store.membership([g.group_id for g in wanted], self.user_id)
        items: list[m.GroupMemberChanges] = []
        for copy in (g for g, member in zip(wanted, member_of, strict=True) if member):
            changes = await self._store.sync_members(copy.group_id, copy.version_id, copy.version)
            inserts, updates = member_changes(copy.group_id, changes)
            items.append(
                m.GroupMemberChanges(
                    group_id=copy.group_id,
                    kind=changes.kind,
                    version_id=changes.version_id,
                    version=changes.version,
                    inserts=inserts,
                    updates=updates,
                    deletes=changes.deletes,
                )
            )
        not_member = [g.group_id for g, member in zip(wanted, member_of, strict=True) if not member]
        return m.GroupMemberSyncs(rid=request.rid, items=items, not_member=not_member)

    async def my_applications(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetMyGroupApplications)
        records, total = await self._store.my_applications(
            self.user_id, request.offset, request.limit
        )
        items = [application_info(r) for r in records]
        return m.GroupApplications(rid=request.rid, items=items, total=total)

    async def managed_applications(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetGroupApplications)
        records, total = await self._store.managed_applications(
            self.user_id, request.offset, request.limit
        )
        items = [application_info(r) for r in records]
        return m.GroupApplications(rid=request.rid, items=items, total=total)
