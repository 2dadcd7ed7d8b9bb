"""Refusals during a Redis outage: answering a session held by another node needs a
publish, and a publish that fails is dropped with a log line instead of failing the
actor (the other node answers its request ``UNAVAILABLE`` after the request deadline).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from actors.cluster.remote_outbox import RemoteOutbox
from actors.runtime.messages import Command, SessionRef
from actors.user import actor as user
from protocol import messages as m
from storage import EmbeddedRedis
from tests.conftest import StartNode
from tests.support import eventually


async def test_refusal_to_a_remote_session_during_an_outage_keeps_the_actor(
    tmp_path: Path, start_node: StartNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    private = EmbeddedRedis(tmp_path / "redis")
    await trio.to_thread.run_sync(private.start)
    try:
        node = await start_node(redis={"url": private.url}, cluster={"lease_time": 2})
        await trio.to_thread.run_sync(private.stop)
        # A command forwarded from a session on another node: its answer is a publish.
        remote = RemoteOutbox("node-b:1:1", "node-b", node.cluster)
        session = SessionRef("node-b:1:1", "127.0.0.1:1", remote)
        for rid in (1, 2, 3):
            command = Command(session, m.GetSelf(rid=rid), user_id="ula", platform=1)
            node.supervisor.tell(user.KIND, "ula", command)
        await eventually(lambda: node.cluster.dropped >= 3, timeout=20)
        assert node.supervisor.restarts == 0
        assert not [r for r in caplog.records if "Unhandled exception" in r.getMessage()]
        dropped = [
            r.getMessage() for r in caplog.records if "dropped SessionReply" in r.getMessage()
        ]
        assert len(dropped) >= 3, dropped
    finally:
        await trio.to_thread.run_sync(private.stop)
