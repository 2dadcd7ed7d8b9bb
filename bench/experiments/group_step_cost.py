"""What each group command costs in Redis work: the batches the node sent (one round
trip each, detached ones included) and the commands in them, counted by the node's
pipelined client (``storage.pipelined``), the command's latency and the Redis
server's CPU, for every kind of group change, in a group of ``--members`` members (a
few of them online; issue 18: the group steps as single-slot steps). Run it through
``/tmp/cpu/exclusive`` or on an idle machine: latency and CPU are one sample each.

Runs one node in-process on its own embedded Redis, with the heartbeat slowed down
so that nothing else runs while a command is counted. ``--tree`` runs another
checkout's server (e.g. ``git archive h18-followups | tar -x -C /tmp/base``), so
two revisions can be compared with this same script.

    python bench/experiments/group_step_cost.py [--members 20] [--tree PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
import trio

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--members", type=int, default=20, help="members of the group")
parser.add_argument("--tree", help="the checkout whose server to run (default: this one)")
parser.add_argument("--json", action="store_true", help="print the figures as JSON")
options = parser.parse_args()
sys.path.insert(0, options.tree or str(Path(__file__).resolve().parents[2]))

import server  # noqa: E402
import settings as config  # noqa: E402
from client import ParleyClient, Platform  # noqa: E402
from storage import AccountRecord  # noqa: E402


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def main(data_dir: str) -> list[dict[str, Any]]:
    values = {
        "server": {"host": "127.0.0.1", "port": 0},
        "redis": {"data_dir": data_dir},
        "http": {"enabled": False},
        "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
        "cluster": {"node_timeout": 3600},
        "log": {"level": "error"},
    }
    figures: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        node: server.RunningNode = await nursery.start(server.serve, config.build(values))
        pipelined = node.storage.pipelined
        clients: dict[str, ParleyClient] = {}
        members = [f"m{n}" for n in range(options.members - 1)]
        for name in ["owner", "m0", "x1", "x2"]:
            client = ParleyClient(node.url, request_timeout=60)
            await client.connect(nursery)
            await client.register(name, "password-1", nickname=name)
            await client.login(name, "password-1", Platform.IOS)
            clients[name] = client
        for name in members[1:]:  # accounts only: they are not online
            await node.storage.accounts.create(AccountRecord(name, "-", name, "", "", 1, 1))
        owner = clients["owner"]
        redis_client = redis.Redis.from_url(node.redis_url)

        async def count(label: str, request: Callable[[], Awaitable[Any]]) -> None:
            await trio.sleep(0.05)  # let the detached commands of earlier steps go
            batches, commands = pipelined.batches, pipelined.commands
            redis_cpu, started = _cpu(redis_client), time.perf_counter()
            await request()
            latency = time.perf_counter() - started
            await trio.sleep(0.05)  # and this step's own
            figures.append(
                {
                    "command": label,
                    "batches": pipelined.batches - batches,
                    "commands": pipelined.commands - commands,
                    "latency_ms": round(latency * 1000, 1),
                    "redis_cpu_ms": round((_cpu(redis_client) - redis_cpu) * 1000, 1),
                }
            )

        await count(
            f"create_group ({options.members} members)",
            lambda: owner.create_group("g", group_id="g", member_user_ids=members),
        )
        await count("set_group_info (name)", lambda: owner.set_group_info("g", name="G2"))
        await count("mute_group", lambda: owner.mute_group("g"))
        await count("set_group_member_role", lambda: owner.set_group_member_role("g", "m0", 60))
        await count(
            "set_group_member_info", lambda: owner.set_group_member_info("g", "m1", nickname="n")
        )
        await count("mute_group_member", lambda: owner.mute_group_member("g", "m1", 60))
        await count("apply_join_group (approval)", lambda: clients["x1"].apply_join_group("g"))
        await count(
            "respond_group_application (accept)",
            lambda: owner.respond_group_application("g", "x1", True),
        )
        await count("invite_to_group (by owner)", lambda: owner.invite_to_group("g", ["x2"]))
        await count("kick_group_members (1)", lambda: owner.kick_group_members("g", ["x2"]))
        await count("quit_group", lambda: clients["x1"].quit_group("g"))
        await count("transfer_group_owner", lambda: owner.transfer_group_owner("g", "m0"))
        await count("dismiss_group", lambda: clients["m0"].dismiss_group("g"))
        for client in clients.values():
            await client.aclose()
        redis_client.close()
        node.request_stop()
    return figures


with tempfile.TemporaryDirectory() as data_dir:
    figures = trio.run(main, data_dir)
if options.json:
    print(json.dumps(figures, indent=2))
else:
    print(f"{'command':38} {'batches':>8} {'commands':>9} {'latency ms':>11} {'Redis CPU ms':>13}")
    for row in figures:
        print(
            f"{row['command']:38} {row['batches']:>8} {row['commands']:>9}"
            f" {row['latency_ms']:>11} {row['redis_cpu_ms']:>13}"
        )
