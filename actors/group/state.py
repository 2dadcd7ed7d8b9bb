"""A group's live state as its actor holds it, the permission rules, and the
conversion of stored records to protocol records.

Nothing here does I/O except :meth:`GroupCommands._commit` (which awaits the
actor's commit); the state is owned by one group actor and read and replaced only
in that actor's task, one command at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from actors.delivery.notify import stored_form
from actors.runtime.callbacks import ask_before, notes_body, tell_after
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import now_ms
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from protocol.groups import ADMIN, MEMBER, OWNER
from protocol.notifications import NotificationType
from storage import GroupApplicationRecord, GroupRecord, GroupStep, MemberRecord

__all__ = [
    "ADMIN",
    "MEMBER",
    "OWNER",
    "Change",
    "GroupState",
    "MemberState",
    "application_info",
    "group_info",
    "member_info",
    "outranks",
]

ACTIVE = "active"
DISMISSED = "dismissed"

MemberState = MemberRecord
"""A member as the actor holds it: ``role``, ``muted_until_ms``, nickname, ... (immutable;
a change replaces the entry)."""


@dataclass
class GroupState:
    """Everything the group's actor knows of its group, as of revision ``rev``."""

    group_id: str
    info: GroupRecord
    members: dict[str, MemberState] = field(default_factory=dict)
    """By user id, in the order they joined."""
    rev: int = 0

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def mute_all(self) -> bool:
        return self.info.mute_all

    @property
    def owner_user_id(self) -> str:
        return self.info.owner_user_id

    @property
    def active(self) -> bool:
        return self.info.status == ACTIVE

    def role_of(self, user_id: str) -> int:
        """The user's role, 0 for a non-member."""
        member = self.members.get(user_id)
        return member.role if member is not None else 0

    def managers(self) -> list[str]:
        """The owner and the admins."""
        return [u for u, member in self.members.items() if member.role >= ADMIN]

    def member_ids(self) -> list[str]:
        return list(self.members)

    def require_member(self, user_id: str) -> MemberState:
        member = self.members.get(user_id)
        if member is None:
            raise ProtocolError(ErrorCode.NOT_GROUP_MEMBER, "you are not a member of this group")
        return member

    def require_role(self, user_id: str, role: int) -> MemberState:
        member = self.require_member(user_id)
        if member.role < role:
            who = "the owner" if role >= OWNER else "the owner or an admin"
            raise ProtocolError(ErrorCode.PERMISSION_DENIED, f"only {who} may do this")
        return member

    def target(self, user_id: str) -> MemberState:
        member = self.members.get(user_id)
        if member is None:
            raise ProtocolError(ErrorCode.NOT_GROUP_MEMBER, f"{user_id!r} is not a member")
        return member

    def send_refusal(self, user_id: str, now_ms: int) -> ErrorCode | None:
        """Why ``user_id`` may not send to the group now, or ``None`` if they may."""
        if not self.active:
            return ErrorCode.GROUP_DISMISSED
        member = self.members.get(user_id)
        if member is None:
            return ErrorCode.NOT_GROUP_MEMBER
        if member.role >= ADMIN:
            return None
        if self.mute_all:
            return ErrorCode.GROUP_MUTED
        if member.muted_until_ms > now_ms:
            return ErrorCode.MEMBER_MUTED
        return None

    def info_record(self) -> m.GroupInfo:
        return group_info(self.info, len(self.members))


class Change:
    """One change to a group being built: the storage step, and the notifications to
    push once it is stored (the step stores them; the actor pushes them)."""

    def __init__(self, group_id: str, state: GroupState | None) -> None:
        self.now = now_ms()
        self.step = GroupStep(group_id, None if state is None else state.rev)
        self.notes: list[tuple[NotificationType, m.NotificationDetail]] = []

    def notify(
        self, kind: NotificationType, detail: m.NotificationDetail, user_ids: list[str]
    ) -> None:
        self.step.notify(stored_form(kind, detail, self.now), user_ids)
        self.notes.append((kind, detail))


def outranks(actor: MemberState, target: MemberState) -> bool:
    """Whether ``actor`` may kick, mute or edit ``target``: the owner may act on anyone
    else, an admin on ordinary members only, an ordinary member on no one."""
    return actor.role >= ADMIN and actor.role > target.role


def require_outranks(actor: MemberState, target: MemberState) -> None:
    if actor.user_id == target.user_id:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "you cannot do this to yourself")
    if not outranks(actor, target):
        raise ProtocolError(
            ErrorCode.PERMISSION_DENIED, f"you may not do this to {target.user_id!r}"
        )


def group_info(record: GroupRecord, member_count: int) -> m.GroupInfo:
    return m.GroupInfo(
        group_id=record.group_id,
        name=record.name,
        face_url=record.face_url,
        intro=record.intro,
        notification=record.notification,
        ex=record.ex,
        owner_user_id=record.owner_user_id,
        creator_user_id=record.creator_user_id,
        join_policy=record.join_policy,
        status=record.status,
        mute_all=record.mute_all,
        member_count=member_count,
        created_at=record.created_at,
        notification_updated_at=record.notification_updated_at,
        notification_user_id=record.notification_user_id,
    )


def member_info(group_id: str, record: MemberRecord) -> m.GroupMember:
    return m.GroupMember(
        group_id=group_id,
        user_id=record.user_id,
        role_level=record.role,
        nickname=record.nickname,
        face_url=record.face_url,
        ex=record.ex,
        joined_at=record.joined_at,
        join_source=record.join_source,
        inviter_user_id=record.inviter_user_id,
        muted_until=record.muted_until_ms,
    )


def application_info(record: GroupApplicationRecord) -> m.GroupApplication:
    return m.GroupApplication(
        group_id=record.group_id,
        user_id=record.user_id,
        inviter_user_id=record.inviter_user_id,
        message=record.message,
        state=record.state,
        handler_user_id=record.handler_user_id,
        handle_message=record.handle_message,
        created_at=record.created_at,
        handled_at=record.handled_at,
    )


class GroupOwner(Protocol):
    """The group's actor as its command groups use it (``actors.group.actor``)."""

    state: GroupState | None

    def require_state(self) -> GroupState: ...

    async def commit(self, change: Change, command: Command) -> Any: ...


class GroupCommands:
    """Base of the group actor's built-in command groups; their handlers run in the
    actor's task on the node's event loop and await storage."""

    def __init__(self, group_id: str, services: NodeServices, actor: GroupOwner) -> None:
        self.group_id = group_id
        self._services = services
        self._actor = actor
        self._store = services.storage.groups

    def _state(self) -> GroupState:
        return self._actor.require_state()

    async def _commit(self, change: Change, command: Command) -> None:
        """Store the change, asking the app first and telling it after, if the
        command's callbacks are enabled (``before_<t>`` may refuse it)."""
        services = self._services
        if services.webhooks.on:
            await ask_before(services, command, group_id=self.group_id)
        await self._actor.commit(change, command)
        if services.webhooks.on:
            tell_after(
                services,
                command,
                self.group_id,
                group_id=self.group_id,
                notifications=notes_body(change.notes),
            )


T = TypeVar("T")


def request_as(command: Command, kind: type[T]) -> T:
    request: Any = command.request
    assert isinstance(request, kind)
    return request


def sender(command: Command) -> str:
    assert command.user_id is not None
    return command.user_id
