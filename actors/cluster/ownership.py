"""One owner per entity across the cluster: the node holding the entity's lease
runs its commands; an actor on any other node forwards them there.

This keeps every conversation's sends in one actor cluster-wide (so pushes go
out in seq order) and every entity's commands serialized, with one lease
renewal per half lease time while the entity is in use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import redis

from actors.runtime.logs import log_event
from actors.runtime.messages import Command
from actors.runtime.replies import refuse
from actors.runtime.services import NodeServices
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

MAX_HOPS = 2
"""A command forwarded this often is refused (``UNAVAILABLE``) instead of chasing a
lease that keeps moving."""
OWNER_NOT_LISTENING = (
    "the node running this entity is not listening (stopped, or reconnecting to Redis); try again"
)


class Ownership:
    """Whether this node owns one entity now. Used only by that entity's actor."""

    def __init__(self, kind: str, entity_id: str, services: NodeServices) -> None:
        self.kind = kind
        self.entity_id = entity_id
        self._services = services
        self._lease_ms = int(services.settings.cluster.lease_time * 1000)
        self._valid_until = 0.0

    async def owner_elsewhere(self) -> str | None:
        """None when this node owns the entity (claiming or renewing the lease as
        needed), else the node that does."""
        now = time.monotonic()
        if now < self._valid_until:
            return None
        leases = self._services.storage.leases
        owner, taken_from = await leases.claim(self.kind, self.entity_id, self._lease_ms)
        if owner == self._services.node_id:
            self._valid_until = now + self._lease_ms / 2000
            if taken_from:
                log_event(
                    log,
                    "lease-takeover",
                    kind=self.kind,
                    entity=self.entity_id,
                    node=owner,
                    from_node=taken_from,
                )
                # What the gone owner's last step left to apply lands before any new step.
                await self._services.storage.followups.replay_source(self._source())
            return None
        self._valid_until = 0.0
        return owner

    def _source(self) -> str:
        keys = self._services.storage.keys
        return (
            keys.group_tag(self.entity_id)
            if self.kind == "group"
            else keys.user_tag(self.entity_id)
        )

    async def release(self) -> None:
        """Give the lease up (the actor is stopping)."""
        if self._valid_until:
            self._valid_until = 0.0
            try:
                await self._services.storage.leases.release(self.kind, self.entity_id)
            except redis.RedisError as exc:
                log.warning("could not release %s/%s: %s", self.kind, self.entity_id, exc)

    async def run_or_forward(
        self, command: Command, run: Callable[[Command], Awaitable[None]]
    ) -> None:
        """Run ``command`` here if this node owns the entity, else forward it."""
        try:
            owner = await self.owner_elsewhere()
        except redis.RedisError as exc:
            # Out of reach, or refusing writes (a full Redis): either way unanswerable here.
            log.warning("could not claim or forward %s/%s: %s", self.kind, self.entity_id, exc)
            refuse(command, ErrorCode.UNAVAILABLE, "storage temporarily unavailable")
            return
        if owner is None:
            await run(command)
            return
        if command.hops >= MAX_HOPS:
            refuse(
                command, ErrorCode.UNAVAILABLE, "the owner of this entity is changing; try again"
            )
            return
        try:
            received = await self._services.cluster.forward(
                self.kind, self.entity_id, owner, command
            )
        except redis.RedisError as exc:
            # Out of reach, or refusing writes (a full Redis): either way unanswerable here.
            log.warning("could not claim or forward %s/%s: %s", self.kind, self.entity_id, exc)
            refuse(command, ErrorCode.UNAVAILABLE, "storage temporarily unavailable")
            return
        if not received:
            refuse(command, ErrorCode.UNAVAILABLE, OWNER_NOT_LISTENING)
