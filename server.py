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
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CollectorRegistry

import settings as config
from actors.cluster.identity import NodeRefused, join_cluster, retire
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
from actors.node.metrics import SessionCollector
from actors.node.startup import parley_version, startup_failure
from actors.node.workers import WorkersError, WorkerSupervisor
from actors.runtime.credentials import PasswordHasher, TokenSigner
from actors.runtime.logs import configure_logging
from actors.runtime.metrics import ActorCollector
from actors.runtime.services import NodeServices
from actors.runtime.supervisor import ActorFactory, Supervisor
from actors.user import actor as user
from actors.user.actor import CommandGroup, UserActor
from actors.user.admin import AdminCommands
from actors.user.chat import SingleChatCommands
from actors.user.conversations import ConversationCommands
from actors.user.groups import UserGroupCommands
from api.app import build_app
from api.calls import ActorCalls
from api.context import ApiContext
from api.listener import serve_http
from settings import Settings
from storage import (
    EmbeddedRedis,
    EmbeddedRedisError,
    Storage,
    durability_wait,
    embedded_appendfsync,
)
from storage.metrics import PipelineCollector
from storage.urls import redact_url
from webhooks.dispatcher import Webhooks

log = logging.getLogger("parley")


VERSION = parley_version()
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
    http_url: str | None = None
    """Where the HTTP listener listens (``http://host:port``); None when it is off."""
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
        embedded = EmbeddedRedis(
            settings.redis.data_dir,
            settings.redis.server_binary,
            appendfsync=embedded_appendfsync(settings.redis.durability),
        )
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
            durability_wait(
                settings.redis.durability,
                settings.redis.replicas,
                settings.redis.wait_timeout,
                embedded=embedded is not None,
            ),
        )
        async with trio.open_nursery() as infrastructure:
            await infrastructure.start(storage.run)
            await _run_node(
                settings, node_id, storage, redis_url, tls_context, stopped, task_status
            )
            infrastructure.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if storage is not None:
                retire(storage.presence.instance)
                storage.close()
            if embedded is not None:
                await trio.to_thread.run_sync(embedded.stop)
        stopped.set()


async def _run_node(
    settings: Settings,
    node_id: str,
    storage: Storage,
    redis_url: str,
    tls_context: ssl.SSLContext | None,
    stopped: trio.Event,
    task_status: trio.TaskStatus[RunningNode],
) -> None:
    """The node on a running storage: until ``request_stop()``, then a drained stop."""
    secret = await join_cluster(settings, storage, node_id)
    auth = settings.auth
    hasher = await trio.to_thread.run_sync(
        PasswordHasher, auth.argon2_time_cost, auth.argon2_memory_kib, auth.argon2_parallelism
    )
    signer = TokenSigner(secret, auth.token_ttl)
    cluster = ClusterLink(
        storage, node_id, settings.cluster.node_timeout, settings.session.request_deadline
    )
    hub = Hub(cluster)
    # One registry per node, not the process-wide default: tests run several nodes in one
    # process.
    registry = CollectorRegistry(auto_describe=True)
    webhooks = Webhooks(settings.webhooks, node_id, registry)
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
        webhooks,
    )
    user_command_groups: list[type[CommandGroup]] = [SingleChatCommands, ConversationCommands]
    user_command_groups.append(UserGroupCommands)
    user_command_groups.append(AdminCommands)
    actor_factories: dict[str, ActorFactory] = {
        user.KIND: UserActor.factory(services, user_command_groups),
        group.KIND: GroupActor.factory(services, [GroupChatCommands]),
    }
    supervisor = Supervisor(actor_factories, settings.actors.idle_timeout)
    cluster.attach(hub, supervisor)
    context = ConnectionContext(
        settings.session,
        supervisor,
        hub,
        signer,
        node_id,
        services.metrics,
        settings.limits,
        limit_metrics,
    )
    gateway = Gateway(
        context,
        node_id,
        settings.server.host,
        settings.server.port,
        settings.server.allowed_origins,
        settings.server.reuse_port,
        settings.server.trusted_proxies,
        tls_context,
    )
    _register_metrics(registry, services, supervisor, gateway)
    stopping = trio.Event()
    calls = ActorCalls(hub, supervisor, node_id, settings.session.request_deadline, stopping)
    http_stopped = trio.Event()
    async with trio.open_nursery() as actors:
        await actors.start(webhooks.run)
        await actors.start(supervisor.run)
        calls.open()
        try:
            async with trio.open_nursery() as http:
                http_url = await _start_http(
                    http,
                    ApiContext(services, supervisor, calls, stopping, settings.http),
                    http_stopped,
                )
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
                            http_url,
                            _stop=stopping,
                        )
                        node.stopped = stopped
                        task_status.started(node)
                        await node._stop.wait()
                        background.cancel_scope.cancel()
                    await gateway.close_all(
                        timeout=min(settings.session.handshake_timeout, SHUTDOWN_GRACE_S)
                    )
                    sessions.cancel_scope.cancel()
                # /ready answers 503 from the stop until here; requests in progress finish.
                http_stopped.set()
        finally:
            calls.close_entry()
            await _stop_actors(supervisor, storage)
            actors.cancel_scope.cancel()


async def _start_http(nursery: trio.Nursery, context: ApiContext, stop: trio.Event) -> str | None:
    """Start the HTTP listener if it is on; its URL, or None."""
    http = context.settings
    if not http.enabled:
        return None
    url: str = await nursery.start(serve_http, build_app(context), http.host, http.port, stop)
    return url


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    server = settings.server
    if not server.tls_cert:
        return None
    return tls.server_context(server.tls_cert, server.tls_key)


def _register_metrics(
    registry: CollectorRegistry, services: NodeServices, supervisor: Supervisor, gateway: Gateway
) -> None:
    """Every part's collector, on the node's own registry (docs/OPERATIONS.md)."""
    registry.register(SessionCollector(gateway, services.hub, services.cluster))
    registry.register(ActorCollector(services.metrics, supervisor))
    registry.register(PipelineCollector(services.storage.pipelined))


async def _stop_actors(supervisor: Supervisor, storage: Storage) -> None:
    """Let every actor finish its mailbox, then deregister the node (shielded, bounded)."""
    with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_GRACE_S * 4):
        await supervisor.stop_all()
        try:
            await storage.presence.node_gone()
        except Exception as exc:
            log.warning("could not deregister node: %s", exc)


@dataclass
class _Progress:
    listening: bool = False


async def _run_until_signalled(settings: Settings, progress: _Progress) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            node: RunningNode = await nursery.start(serve, settings)
            progress.listening = True
            http = f"; http on {node.http_url}" if node.http_url else ""
            print(
                f"parley listening on {node.url} (node {node.node_id},"
                f" redis {redact_url(node.redis_url)}, prefix {settings.redis.prefix!r},"
                f" version {VERSION})" + http,
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
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N node processes on the port and store, restarted when they die",
    )
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
    if args.workers < 1:
        print(f"parley: --workers: expected 1 or more, got {args.workers}", file=sys.stderr)
        return 2
    configure_logging(settings.log)
    if args.workers > 1:
        return _supervise_workers(settings, args.workers, argv)
    tune_garbage_collector()
    progress = _Progress()
    try:
        trio.run(_run_until_signalled, settings, progress)
    except Exception as exc:
        message, leaf = startup_failure(exc, settings)
        if message is None or (progress.listening and not isinstance(leaf, NodeRefused)):
            raise
        print(f"parley: {message}", file=sys.stderr)
        if settings.log.level == "debug":
            traceback.print_exception(exc)
        return 2
    return 0


def _supervise_workers(settings: Settings, count: int, argv: Sequence[str] | None) -> int:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *(sys.argv[1:] if argv is None else argv),
    ]
    try:
        return_code = WorkerSupervisor(settings, count, command).run()
    except (WorkersError, EmbeddedRedisError) as failed:
        # A failure to start, like a single node's: one line, status 2.
        print(f"parley: {failed}", file=sys.stderr)
        return 2
    print("parley stopped", flush=True)
    return return_code


if __name__ == "__main__":
    sys.exit(main())
