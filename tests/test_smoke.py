from __future__ import annotations

from server import RunningNode
from tests.support import Connect, signed_in


async def test_sign_in_and_read_profile(node: RunningNode, connect: Connect) -> None:
    client = await connect(node.url)
    await signed_in(client, "alice")
    profile = await client.get_self()
    assert profile.user_id == "alice"
    assert profile.nickname == "Alice"
