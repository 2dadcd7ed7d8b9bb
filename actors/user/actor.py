"""The user actor: one actor task per active user. Every command about the
user (account, sign-in, profile, friends, conversations, and the single chats
it owns) runs here, one at a time.

Commands can name user ids that have no account (a sign-in with a wrong id, a
message to a made-up user whose id sorts first). Such an actor asks the
supervisor to stop it as soon as it has answered, so made-up ids cannot make
the node hold thousands of actors until the idle timeout.

Every method runs in the actor's task and awaits storage; while it waits, other
actors run. Replies go back to sessions through their ``Outbox``; pushes go
through the hub.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import redis

from actors.runtime.callbacks import tell_session_event
from actors.runtime.entity import EntityActor
from actors.runtime.handlers import HandlerTable
from actors.runtime.messages import Command, SessionClosed
from actors.runtime.replies import Handler, answer, is_sign_in
from actors.runtime.services import NodeServices
from actors.runtime.supervisor import ActorFactory, SupervisorLink
from actors.user.accounts import AccountCommands
from actors.user.relations import RelationCommands
from protocol import messages as m

log = logging.getLogger(__name__)

KIND = "user"


class CommandGroup(Protocol):
    """A set of user commands kept in its own module (accounts, friends, chat, ...)."""

    def __init__(self, user_id: str, services: NodeServices) -> None: ...

    def handlers(self) -> dict[type[m.Request], Handler]: ...


class UserActor(EntityActor):
    """Owns one user. Created by the supervisor; all methods run in this actor's task.

    It keeps no copy of stored state between commands (each command reads what it
    needs), so a failing command cannot leave bad state behind. With several nodes,
    the node holding the user's lease runs the commands; actors elsewhere forward."""

    def __init__(
        self,
        user_id: str,
        services: NodeServices,
        supervisor: SupervisorLink,
        table: HandlerTable,
    ) -> None:
        super().__init__(KIND, user_id, services, supervisor)
        self.user_id = user_id
        self._services = services
        self._account_known = False
        """Whether this actor has seen that the user's account exists; until then a
        refused command makes it check (accounts are never deleted)."""
        self._handlers = table.bind(lambda group: group(user_id, services))

    @classmethod
    def factory(
        cls, services: NodeServices, command_groups: Sequence[type[CommandGroup]] = ()
    ) -> ActorFactory:
        """Makes the actor of a user id; ``command_groups`` add further commands."""
        groups: list[type[CommandGroup]] = [AccountCommands, RelationCommands, *command_groups]
        table = HandlerTable(groups, lambda group: group("", services))

        def make(user_id: str, supervisor: SupervisorLink) -> UserActor:
            return cls(user_id, services, supervisor, table)

        return make

    async def _answer(self, command: Command) -> None:
        request = command.request
        handler = self._handlers.get(type(request))
        succeeded = await answer(command, handler, metrics=self._services.metrics)
        if not succeeded:
            await self._stop_if_no_account()
        elif is_sign_in(request) or isinstance(request, m.Register):
            self._account_known = True

    async def _stop_if_no_account(self) -> None:
        """After a refused command or a closed session: if the user has no account,
        ask the supervisor to stop this actor now (it stops it only if no session
        depends on it). One Redis read, made only until the account is known to
        exist, so successful commands (single-chat sends included) never pay for it."""
        if self._account_known:
            return
        try:
            exists = await self._services.storage.accounts.exists(self.user_id)
        except redis.RedisError as exc:
            log.warning("could not check that user %s exists: %s", self.user_id, exc)
            return  # the idle timeout stops the actor if it is not needed
        if exists:
            self._account_known = True
        else:
            self._supervisor.entity_missing()

    async def receive(self, message: Any) -> None:
        if isinstance(message, Command):
            await self._ownership.run_or_forward(message, self._answer)
        elif isinstance(message, SessionClosed):
            try:
                await self._services.storage.presence.session_offline(
                    self.user_id, message.session_id
                )
            except redis.RedisError as exc:
                log.warning("could not mark session %s offline: %s", message.session_id, exc)
            hooks = self._services.webhooks
            if hooks.on and message.signed_in:
                tell_session_event(
                    self._services, self.user_id, "after_user_offline", message.session_id
                )
            # A session that tried to sign in as a made-up id tells it when it closes.
            await self._stop_if_no_account()
        else:
            log.error("user actor %s: unexpected message %r", self.user_id, message)
