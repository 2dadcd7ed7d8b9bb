"""Parley server entry point: reads the configuration and wires the parts together.

python server.py serve [--config parley.toml] [--port 8080] [--redis-url URL] ...
"""

from __future__ import annotations

import argparse
import gc
import logging
import secrets
import signal
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from prometheus_client import CollectorRegistry

import settings as config
from actors.cluster.link import ClusterLink
from actors.group import actor as group
from actors.group.actor import GroupActor
from actors.group.chat import GroupChatCommands
from actors.limits.metrics import LimitMetrics
from actors.limits.sends import SendLimiter
from actors.node import tls
from actors.node.connection import ConnectionContext
from actors.node.gateway import Gateway
from actors.node.hub import Hub
from actors.runtime.credentials import PasswordHasher, TokenSigner
from actors.runtime.services import NodeServices
from actors.runtime.supervisor import ActorFactory, Supervisor
from actors.user import actor as user
from actors.user.actor import CommandGroup, UserActor
from actors.user.chat import SingleChatCommands
from actors.user.conversations import ConversationCommands
from actors.user.groups import UserGroupCommands
from settings import Settings
from storage import EmbeddedRedis, EmbeddedRedisError, Storage

log = logging.getLogger("parley")

GC_THRESHOLD_YOUNG = 50_000
SHUTDOWN_GRACE_S = 3.0
"""How long sessions get to finish their close handshake at shutdown."""


@dataclass
class RunningNode:
    """Handle to a started node, given to whoever started it."""

    url: str
    node_id: str
    redis_url: str
    gateway: Gateway
    supervisor: Supervisor
    storage: Storage
    cluster: ClusterLink
    registry: CollectorRegistry
    _stop: trio.Event = field(default_factory=trio.Event)
    stopped: trio.Event = field(default_factory=trio.Event)

    def request_stop(self) -> None:
        """Begin a graceful shutdown; ``serve`` returns when it is done."""
        self._stop.set()

    async def stop(self) -> None:
        """Shut down gracefully and wait until the node has stopped."""
        self._stop.set()
        await self.stopped.wait()


async def serve(
    settings: Settings, *, task_status: trio.TaskStatus[RunningNode] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run one node until ``request_stop()``; then close sessions, stop actors and Redis.
    Raises ``TlsSetupError`` before starting anything if the TLS files cannot be used."""
    tls_context = _tls_context(settings)
    node_id = settings.server.node_id or f"node-{secrets.token_hex(4)}"
    embedded: EmbeddedRedis | None = None
    redis_url = settings.redis.url
    if not redis_url:
        embedded = EmbeddedRedis(settings.redis.data_dir, settings.redis.server_binary)
        await trio.to_thread.run_sync(embedded.start)
        redis_url = embedded.url
    storage: Storage | None = None
    stopped = trio.Event()
    try:
        storage = Storage(
            redis_url,
            settings.redis.prefix,
            node_id,
            settings.redis.max_connections,
            settings.data.version_log_length,
            settings.data.notifications_kept,
        )
        async with trio.open_nursery() as infrastructure:
            await infrastructure.start(storage.run)
            await _run_node(
                settings, node_id, storage, embedded, redis_url, tls_context, stopped, task_status
            )
            infrastructure.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if storage is not None:
                storage.close()
            if embedded is not None:
                await trio.to_thread.run_sync(embedded.stop)
        stopped.set()


async def _run_node(
    settings: Settings,
    node_id: str,
    storage: Storage,
    embedded: EmbeddedRedis | None,
    redis_url: str,
    tls_context: ssl.SSLContext | None,
    stopped: trio.Event,
    task_status: trio.TaskStatus[RunningNode],
) -> None:
    """The node on a running storage: until ``request_stop()``, then a drained stop."""
    await storage.ping()
    if embedded is not None:
        await _forget_other_nodes(storage, node_id)
    auth = settings.auth
    secret = auth.secret or await storage.token_secret()
    hasher = await trio.to_thread.run_sync(
        PasswordHasher, auth.argon2_time_cost, auth.argon2_memory_kib, auth.argon2_parallelism
    )
    signer = TokenSigner(secret, auth.token_ttl)
    cluster = ClusterLink(storage, node_id, settings.cluster.node_timeout)
    hub = Hub(cluster)
    # One registry per node, not the process-wide default: tests run several nodes in one
    # process.
    registry = CollectorRegistry(auto_describe=True)
    limit_metrics = LimitMetrics(registry)
    send_limiter = SendLimiter(storage.limits, settings.limits, limit_metrics)
    services = NodeServices(
        settings,
        storage,
        hasher,
        signer,
        node_id,
        hub,
        cluster,
        registry,
        limit_metrics,
        send_limiter,
    )
    user_command_groups: list[type[CommandGroup]] = [SingleChatCommands, ConversationCommands]
    user_command_groups.append(UserGroupCommands)
    actor_factories: dict[str, ActorFactory] = {
        user.KIND: UserActor.factory(services, user_command_groups),
        group.KIND: GroupActor.factory(services, [GroupChatCommands]),
    }
    supervisor = Supervisor(actor_factories, settings.actors.idle_timeout)
    cluster.attach(hub, supervisor)
    context = ConnectionContext(
        settings.session, supervisor, hub, signer, settings.limits, limit_metrics
    )
    gateway = Gateway(
        context,
        node_id,
        settings.server.host,
        settings.server.port,
        settings.server.allowed_origins,
        settings.server.trusted_proxies,
        tls_context,
    )
    async with trio.open_nursery() as actors:
        await actors.start(supervisor.run)
        try:
            async with trio.open_nursery() as sessions:
                async with trio.open_nursery() as background:
                    await background.start(cluster.run)
                    listener = await background.start(gateway.serve, sessions)
                    host = settings.server.host
                    scheme = "ws" if tls_context is None else "wss"
                    node = RunningNode(
                        f"{scheme}://{host}:{listener.port}",
                        node_id,
                        redis_url,
                        gateway,
                        supervisor,
                        storage,
                        cluster,
                        registry,
                    )
                    node.stopped = stopped
                    task_status.started(node)
                    await node._stop.wait()
                    background.cancel_scope.cancel()
                await gateway.close_all(
                    timeout=min(settings.session.handshake_timeout, SHUTDOWN_GRACE_S)
                )
                sessions.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_GRACE_S * 4):
                await supervisor.stop_all()
                try:
                    await storage.presence.node_gone()
                except Exception as exc:
                    log.warning("could not deregister node: %s", exc)
            actors.cancel_scope.cancel()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    server = settings.server
    if not server.tls_cert:
        return None
    return tls.server_context(server.tls_cert, server.tls_key)


async def _forget_other_nodes(storage: Storage, node_id: str) -> None:
    """Deregister every other node found in this node's own embedded Redis.

    Only one node runs on an embedded Redis (its data directory is locked), so any
    other node record there is this node's earlier run, killed before it could
    deregister. Its sessions would count as online, and its leases would keep its
    users and groups, with every command for them forwarded to a node that is gone,
    until the record expired (``cluster.node_timeout``)."""
    for other in await storage.presence.live_nodes():
        if other != node_id:
            removed = await storage.presence.forget_node(other)
            log.info("forgot node %s of an earlier run (%d sessions)", other, removed)


async def _run_until_signalled(settings: Settings) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            node: RunningNode = await nursery.start(serve, settings)
            print(
                f"parley listening on {node.url} (node {node.node_id}, redis {node.redis_url})",
                flush=True,
            )
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                node.request_stop()
                break
    print("parley stopped", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run a server node")
    run.add_argument("--config", help="TOML configuration file")
    run.add_argument("--host", help="address to listen on (server.host)")
    run.add_argument("--port", type=int, help="port to listen on, 0 for any (server.port)")
    run.add_argument("--redis-url", help="external Redis; omit for embedded (redis.url)")
    run.add_argument("--data-dir", help="embedded Redis data directory (redis.data_dir)")
    run.add_argument("--prefix", help="Redis key prefix (redis.prefix)")
    run.add_argument("--node-id", help="node name (server.node_id)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any setting, e.g. --set session.idle_timeout=30 (repeatable)",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    cli: dict[str, Any] = {}
    named = {
        "host": "server.host",
        "port": "server.port",
        "redis_url": "redis.url",
        "data_dir": "redis.data_dir",
        "prefix": "redis.prefix",
        "node_id": "server.node_id",
    }
    for attribute, dotted in named.items():
        value = getattr(args, attribute)
        if value is not None:
            cli = config._merge(cli, config.assignment(dotted, value))
    for item in args.set:
        dotted, sep, text = item.partition("=")
        if not sep:
            raise config.ConfigError(f"--set {item}: expected SECTION.KEY=VALUE")
        cli = config._merge(cli, config.text_setting(dotted.strip(), text))
    return config.load(args.config, cli_values=cli)


def tune_garbage_collector() -> None:
    """Collect the young generation less often, and keep start-up objects out of the
    collector's way: with thousands of sessions, full collections of the default
    settings stalled the event loop for up to a second (bench/FINDINGS.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_YOUNG, 20, 100)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except config.ConfigError as exc:
        print(f"parley: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tune_garbage_collector()
    try:
        trio.run(_run_until_signalled, settings)
    except* EmbeddedRedisError as failed:
        # E.g. the data directory is in use: one line for the operator, no traceback.
        print(f"parley: {_first_leaf(failed)}", file=sys.stderr)
        return_code = 1
    except* tls.TlsSetupError as failed:
        print(f"parley: {_first_leaf(failed)}", file=sys.stderr)
        return_code = 1
    else:
        return_code = 0
    return return_code


def _first_leaf(group: BaseExceptionGroup[Exception]) -> BaseException:
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


if __name__ == "__main__":
    sys.exit(main())
