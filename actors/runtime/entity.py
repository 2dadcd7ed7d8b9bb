"""The base of user and group actors: an actor of the runtime
(:mod:`actors.runtime.supervisor`) that owns one entity, holds the entity's lease
while it runs, and gives the lease up when it stops."""

from __future__ import annotations

from typing import Any

from actors.cluster.ownership import Ownership
from actors.runtime.services import NodeServices
from actors.runtime.supervisor import SupervisorLink


class EntityActor:
    """Owns one entity (a user or a group) of ``kind``. The runtime calls ``receive``
    with one message at a time, in arrival order, from the actor's own task."""

    def __init__(
        self, kind: str, entity_id: str, services: NodeServices, supervisor: SupervisorLink
    ) -> None:
        self._supervisor = supervisor
        self._ownership = Ownership(kind, entity_id, services)

    async def receive(self, message: Any) -> None:
        raise NotImplementedError

    async def stopped(self) -> None:
        await self._ownership.release()
