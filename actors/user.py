"""The user actor: one pykka thread per active user. Every command about the
user (account, sign-in, profile, friends, conversations, and the single chats
it owns) runs here, one at a time.

Every method runs in the actor's own thread. Redis calls block that thread
only. Replies go back to sessions through their ``SessionOutbox``; pushes go
through the hub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pykka
import redis

from actors.accounts import AccountCommands
from actors.bridge import one_crossing
from actors.messages import Command, SessionClosed
from actors.ownership import Ownership
from actors.relations import RelationCommands
from actors.replies import answer
from actors.services import NodeServices
from actors.supervisor import StoppedNotice
from protocol import messages as m

log = logging.getLogger(__name__)

KIND = "user"


class CommandGroup(Protocol):
    """A set of user commands kept in its own module (accounts, friends, chat, ...)."""

    def __init__(self, user_id: str, services: NodeServices) -> None: ...

    def handlers(self) -> dict[type[m.Request], Callable[[Command], m.Reply | None]]: ...


class UserActor(pykka.ThreadingActor):
    """Owns one user. Created by the supervisor; all methods run in this actor's thread.

    It keeps no copy of stored state between commands (each command reads what it
    needs), so a failing command cannot leave bad state behind. With several nodes,
    the node holding the user's lease runs the commands; actors elsewhere forward.

    Daemon threads: Python walks the list of all non-daemon threads whenever one
    starts, which made starting thousands of user actors quadratic. The node stops
    every actor itself before it exits."""

    use_daemon_thread = True

    def __init__(
        self,
        user_id: str,
        services: NodeServices,
        stopped: StoppedNotice,
        command_groups: Sequence[type[CommandGroup]] = (),
    ) -> None:
        super().__init__()
        self.user_id = user_id
        self._services = services
        self._stopped = stopped
        self._handlers: dict[type[m.Request], Callable[[Command], m.Reply | None]] = {}
        self._ownership = Ownership(KIND, user_id, services)
        groups: list[type[CommandGroup]] = [AccountCommands, RelationCommands, *command_groups]
        for command_group in groups:
            self._handlers.update(command_group(user_id, services).handlers())

    @classmethod
    def factory(
        cls, services: NodeServices, command_groups: Sequence[type[CommandGroup]] = ()
    ) -> Any:
        """Starts the actor of a user id; ``command_groups`` add further commands."""

        def start(user_id: str, stopped: StoppedNotice) -> pykka.ActorRef[Any]:
            return cls.start(user_id, services, stopped, command_groups)

        return start

    def on_stop(self) -> None:
        self._ownership.release()
        self._stopped(self.actor_urn)

    def on_failure(self, *_exc: object) -> None:
        self._stopped(self.actor_urn)

    def _answer(self, command: Command) -> None:
        answer(command, self._handlers.get(type(command.request)))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Command):
            with one_crossing():  # the reply and the pushes of a command cross together
                self._ownership.run_or_forward(message, self._answer)
        elif isinstance(message, SessionClosed):
            try:
                self._services.storage.presence.session_offline(self.user_id, message.session_id)
            except redis.RedisError as exc:
                log.warning("could not mark session %s offline: %s", message.session_id, exc)
        else:
            log.error("user actor %s: unexpected message %r", self.user_id, message)
        return None
