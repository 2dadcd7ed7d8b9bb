"""The group actor: one actor task per active group, owning the group's info,
members, roles, mutes and member-list version.

Every command about one group is routed here (see :data:`ROUTED`), so the
group's commands are serialized. Each command runs in the actor's task:

1. :meth:`GroupActor.refresh` compares the stored revision with the one held
   and reloads the state if another node changed the group (or on first use);
2. the handler checks the request against :attr:`GroupActor.state` and builds
   a :class:`actors.group.state.Change`;
3. :meth:`GroupActor.commit` stores it: a step on the group's slot (which also
   checks the revision: a stale copy raises ``StaleRead``, and the command is
   run again on a fresh copy) and its follow-ups on each member's slot
   (``storage.groups``), then updates :attr:`GroupActor.state` and pushes the
   stored notifications to every device of their recipients, the acting one
   included.

Handlers come from command-group classes, constructed as
``cls(group_id, services, actor)`` with a ``handlers()`` table; further ones (e.g.
group messages) are passed in with ``command_groups``.

A command that finds the group does not exist (a made-up id, or a refused
``create_group``) leaves no actor behind: once it is answered, the actor asks
the supervisor to stop it, so made-up ids cannot make the node hold thousands
of actors until the idle timeout. The state loaded for the command says so;
no further Redis read is needed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from actors.delivery.notify import push_stored
from actors.group.admin import GroupAdminCommands
from actors.group.joins import GroupJoinCommands
from actors.group.members import GroupMemberCommands
from actors.group.state import ACTIVE, Change, GroupState
from actors.runtime.entity import EntityActor
from actors.runtime.handlers import HandlerTable
from actors.runtime.messages import Command
from actors.runtime.replies import Handler, answer
from actors.runtime.services import NodeServices
from actors.runtime.steps import STEP_ATTEMPTS
from actors.runtime.supervisor import ActorFactory, SupervisorLink
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError
from storage.errors import StaleRead, StepRefused
from storage.groups import StepResult

log = logging.getLogger(__name__)

KIND = "group"


ROUTED: tuple[type[m.Request], ...] = (
    m.CreateGroup,
    m.SetGroupInfo,
    m.DismissGroup,
    m.ApplyJoinGroup,
    m.RespondGroupApplication,
    m.InviteToGroup,
    m.KickGroupMembers,
    m.QuitGroup,
    m.TransferGroupOwner,
    m.SetGroupMemberRole,
    m.SetGroupMemberInfo,
    m.MuteGroupMember,
    m.UnmuteGroupMember,
    m.MuteGroup,
    m.UnmuteGroup,
    m.GetGroupMembers,
    m.GetGroupMembersById,
    m.SyncGroupMembers,
    m.GetGroupMemberIds,
)
"""The commands the group's actor owns; ``actors.node.routing`` sends them by
:func:`group_id_of`."""


def new_group_id() -> str:
    return secrets.token_hex(8)


def group_id_of(request: Any) -> str:
    """The group a command is about. ``create_group`` without an id gets a new one here,
    so the new group's own actor creates it. Runs in the trio thread (routing)."""
    if isinstance(request, m.CreateGroup):
        return request.group_id or new_group_id()
    group_id: str = request.group_id
    return group_id


class GroupCommandGroup(Protocol):
    """A set of group commands kept in its own module (group messages, ...)."""

    def __init__(self, group_id: str, services: NodeServices, actor: GroupActor) -> None: ...

    def handlers(self) -> dict[type[m.Request], Handler]: ...


class GroupActor(EntityActor):
    """Owns one group. Created by the supervisor; all methods run in this actor's task.

    With several nodes, the node holding the group's lease runs its commands (so the
    group's messages are pushed in seq order); actors elsewhere forward them there."""

    def __init__(
        self,
        group_id: str,
        services: NodeServices,
        supervisor: SupervisorLink,
        table: HandlerTable,
    ) -> None:
        super().__init__(KIND, group_id, services, supervisor)
        self.group_id = group_id
        self.services = services
        self._store = services.storage.groups
        self.state: GroupState | None = None
        """The group as of ``state.rev``; ``None`` while it does not exist."""
        self._loaded = False
        self._handlers = table.bind(lambda group: group(group_id, services, self))

    @classmethod
    def factory(
        cls, services: NodeServices, command_groups: Sequence[type[GroupCommandGroup]] = ()
    ) -> ActorFactory:
        """Makes the actor of a group id (called by the supervisor);
        ``command_groups`` add further commands."""
        builtin: list[type[GroupCommandGroup]] = [
            GroupAdminCommands,
            GroupJoinCommands,
            GroupMemberCommands,
        ]
        table = HandlerTable([*builtin, *command_groups], lambda group: group("", services, None))

        def make(group_id: str, supervisor: SupervisorLink) -> GroupActor:
            return cls(group_id, services, supervisor, table)

        return make

    async def receive(self, message: Any) -> None:
        if isinstance(message, Command):
            await self._ownership.run_or_forward(message, self._handle_command)
        else:
            log.error("group actor %s: unexpected message %r", self.group_id, message)

    async def _handle_command(self, command: Command) -> None:
        handler = self._handlers.get(type(command.request))
        await answer(
            command,
            handler and partial(self._run, handler),
            self._forget_state,
            self.services.metrics,
        )
        if self._loaded and self.state is None:
            # Loaded for this command and not there: no such group (a dismissed one
            # keeps its state). Commands already queued are still answered first.
            self._supervisor.entity_missing()

    def _forget_state(self) -> None:
        """Restart from the stored state: drop the copy, reload on next use."""
        self._loaded = False
        self.state = None

    async def _run(self, handler: Handler, command: Command) -> m.Reply | None:
        for _ in range(STEP_ATTEMPTS):
            await self.refresh()
            try:
                return await handler(command)
            except StaleRead:
                self._loaded = False
        raise ProtocolError(ErrorCode.UNAVAILABLE, "the group kept changing; try again")

    async def refresh(self) -> None:
        """Load the state on first use, and again whenever the stored revision differs
        from the one held (another node changed the group)."""
        held = self.state.rev if self.state is not None else 0
        if self._loaded and await self._store.revision(self.group_id) == held:
            return
        loaded = await self._store.load(self.group_id)
        self.state = (
            None
            if loaded is None
            else GroupState(self.group_id, loaded.info, loaded.members, loaded.rev)
        )
        self._loaded = True

    def require_state(self) -> GroupState:
        """The group's state; a typed error if it does not exist or was dismissed."""
        state = self.state
        if state is None:
            raise ProtocolError(ErrorCode.GROUP_NOT_FOUND, f"no group {self.group_id!r}")
        if state.status != ACTIVE:
            raise ProtocolError(ErrorCode.GROUP_DISMISSED, "this group has been dismissed")
        return state

    async def commit(self, change: Change, command: Command) -> StepResult:
        """Store ``change``, then update the state and push its notifications."""
        step = change.step
        try:
            result = await self._store.run(step)
        except StepRefused as exc:
            if exc.reason == "USER_NOT_FOUND":
                raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {exc.user_id!r}") from None
            raise ProtocolError(ErrorCode.GROUP_EXISTS, f"group {self.group_id!r} exists") from None
        state = self.state
        info = step.info if step.info is not None else (state.info if state else None)
        assert info is not None, "a new group's step must write its info"
        members = dict(state.members) if state is not None else {}
        for user_id in step.member_deletes:
            members.pop(user_id, None)
        members.update(step.member_puts)
        self.state = GroupState(self.group_id, info, members, result.rev)
        hub = self.services.hub
        for (kind, detail), recipients in zip(change.notes, result.seqs, strict=True):
            # Every device of every recipient, the acting one too: each device sees its
            # notification seqs without gaps (as with friend notifications).
            push_stored(hub, kind, detail, change.now, recipients, None)
        return result
