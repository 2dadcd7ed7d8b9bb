"""What the HTTP app's handlers share: the node's services and actors, and the state
of the node."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from actors.runtime.services import NodeServices
from actors.runtime.supervisor import Supervisor
from api.calls import ActorCalls
from settings import HttpSettings


@dataclass(frozen=True)
class ApiContext:
    services: NodeServices
    supervisor: Supervisor
    calls: ActorCalls
    """How a handler runs a command in the actor that owns it and awaits the reply."""
    stopping: trio.Event
    """Set once the node has begun to shut down."""
    settings: HttpSettings

    @property
    def api_secrets(self) -> tuple[bytes, ...]:
        """Bearer secrets the server API accepts (several during a rotation)."""
        return tuple(secret.encode() for secret in self.settings.api_secrets)
