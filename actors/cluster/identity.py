"""Who a node is in its cluster, checked before it serves anyone: its node id is
claimed for this running instance, and its cluster-wide settings match those of the
nodes already running.

Two live nodes under one id would split one inbox channel and one session set
between them (each receives about half of the pushes meant for either), so a
node refuses to start while another live instance holds its id. An instance is
known to be gone when its record names this host and pid namespace and its pid
no longer runs (a restart after a crash, ``kill -9`` or the OOM killer: no wait);
otherwise its claim must expire, which it does ``cluster.node_timeout`` after its
last heartbeat. While waiting for that, a renewed claim proves the other instance
alive, and the start is refused at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass

import trio

from actors.runtime.logs import log_event
from actors.runtime.steps import now_ms
from protocol import PROTOCOL_VERSION
from settings import Settings
from storage import LAYOUT_VERSION, LayoutRefused, Storage

log = logging.getLogger(__name__)

CLAIM_POLL_S = 0.5
_RUNNING_IN_THIS_PROCESS: set[str] = set()
"""Tokens of the instances of this process that hold their node ids."""


class NodeRefused(Exception):
    """The node must not start (or go on running); the message names the setting
    concerned and the cause, in one line."""


@dataclass(frozen=True)
class Instance:
    """One running process of a node: the value of its node key in Redis."""

    token: str
    host: str
    pid_namespace: str
    pid: int
    started_ms: int

    @classmethod
    def this_process(cls) -> Instance:
        return cls(
            secrets.token_hex(6), socket.gethostname(), _pid_namespace(), os.getpid(), now_ms()
        )

    def record(self) -> str:
        return " ".join(
            (self.token, self.host, self.pid_namespace, str(self.pid), str(self.started_ms))
        )

    @classmethod
    def parse(cls, record: str) -> Instance | None:
        parts = record.split(" ")
        if len(parts) != 5 or not parts[3].isdigit() or not parts[4].isdigit():
            return None  # e.g. a node of an older version, whose key holds "1"
        return cls(parts[0], parts[1], parts[2], int(parts[3]), int(parts[4]))

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.started_ms / 1000))
        return f"instance {self.token} on host {self.host}, pid {self.pid}, started {started} UTC"

    def is_gone(self) -> bool:
        """Whether this instance certainly no longer runs: it ran on this host in this
        pid namespace and its pid does not run now."""
        return self._local_pid_state() is False

    def runs_here(self) -> bool:
        """Whether this instance certainly runs: on this host, in this pid namespace,
        its pid runs (and is not this process)."""
        return self._local_pid_state() is True

    def _local_pid_state(self) -> bool | None:
        if self.host != socket.gethostname() or self.pid_namespace != _pid_namespace():
            return None
        if self.pid == os.getpid():
            # Another node of this process (tests run several), or an earlier process
            # that had this pid.
            return self.token in _RUNNING_IN_THIS_PROCESS
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it runs, as another user
        return True


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").replace(" ", "_")
    except OSError:
        return "-"


def describe_record(record: str) -> str:
    instance = Instance.parse(record)
    return instance.describe() if instance else f"an instance of another version ({record!r})"


async def claim_node_id(storage: Storage, node_id: str, instance: Instance, ttl_s: int) -> None:
    """Claim ``node_id`` for this instance, waiting up to ``ttl_s`` for the claim of an
    earlier instance to expire; raises ``NodeRefused`` while another one is alive."""
    presence = storage.presence
    record = instance.record()
    waited_for: str | None = None
    last_ttl_ms: int | None = None
    give_up_at = trio.current_time() + ttl_s + 2
    while True:
        holder = await presence.holder(node_id)
        replaces = ""
        if holder is not None:
            held_by, ttl_ms = holder
            other = Instance.parse(held_by)
            if other is not None and other.is_gone():
                replaces = held_by
                log.info("node id %s: taking over from %s, which is gone", node_id, held_by)
            else:
                if held_by != waited_for:
                    waited_for, last_ttl_ms = held_by, None
                if other is not None and other.runs_here():
                    raise NodeRefused(_taken(node_id, held_by))
                if last_ttl_ms is not None and ttl_ms > last_ttl_ms:
                    raise NodeRefused(_taken(node_id, held_by))  # its heartbeat renewed it
                if last_ttl_ms is None:
                    log.warning(
                        "node id %s is held by %s, whose heartbeat is %.0f s old; waiting up to"
                        " %.0f s for it to expire (cluster.node_timeout); refused if it beats",
                        node_id,
                        describe_record(held_by),
                        max(0, ttl_s - ttl_ms / 1000),
                        ttl_ms / 1000,
                    )
                if trio.current_time() > give_up_at:
                    raise NodeRefused(_taken(node_id, held_by))
                last_ttl_ms = ttl_ms
                await trio.sleep(CLAIM_POLL_S)
                continue
        taken = await presence.claim(record, ttl_s, replaces, now_ms())
        if not taken:
            _RUNNING_IN_THIS_PROCESS.add(instance.token)
            return
        waited_for, last_ttl_ms = None, None  # another instance claimed it meanwhile


def retire(record: str) -> None:
    """The instance of ``record`` (of this process) has stopped."""
    instance = Instance.parse(record)
    if instance is not None:
        _RUNNING_IN_THIS_PROCESS.discard(instance.token)


def _taken(node_id: str, record: str) -> str:
    return (
        f"server.node_id: node id {node_id!r} is in use by a running node"
        f" ({describe_record(record)}); give every node its own id"
    )


FINGERPRINTED = (
    "auth.token_ttl",
    "auth.login_failures_per_user",
    "auth.login_failures_per_address",
    "auth.login_failure_window",
    "auth.unknown_user_failures_per_address",
    "limits.messages_per_second",
    "limits.message_burst",
    "session.multi_login",
    "messaging.friends_only",
    "messaging.max_content_bytes",
    "messaging.revoke_time_limit",
    "groups.max_group_size",
    "data.version_log_length",
    "data.notifications_kept",
    "cluster.node_timeout",
    "cluster.lease_time",
)
"""Settings every node of a cluster must share: with different values, a user's
requests would be handled by different rules depending on the node they reach."""


def fingerprint(settings: Settings, secret: str) -> dict[str, str]:
    """The settings that must match on every node, by name; the secret only hashed."""
    values = {
        "auth.secret": hashlib.sha256(b"parley-fingerprint\0" + secret.encode()).hexdigest()[:32],
        "protocol.version": PROTOCOL_VERSION,
        "storage.layout": str(LAYOUT_VERSION),
    }
    for dotted in FINGERPRINTED:
        section, _, key = dotted.partition(".")
        values[dotted] = str(getattr(getattr(settings, section), key))
    return values


async def check_fingerprint(storage: Storage, node_id: str, mine: dict[str, str]) -> None:
    """Refuse to start (``NodeRefused``) if a running node of the cluster has other
    values for any of ``mine``; with none running, record this node's."""
    refused, changes = await storage.compare_fingerprint(node_id, mine)
    shown = [
        f"{name} (this node {mine[name]!r}, the cluster {theirs!r})"
        if name != "auth.secret"
        else "auth.secret (values not shown)"
        for name, theirs in changes.items()
    ]
    if refused:
        raise NodeRefused(
            "settings differ from the running nodes of this cluster (prefix"
            f" {storage.keys.prefix!r}): {'; '.join(shown)}; every node must have the same"
        )
    if changes:
        log.warning("cluster settings changed while no node ran: %s", "; ".join(shown))


async def join_cluster(settings: Settings, storage: Storage, node_id: str) -> str:
    """Before serving anyone: reach Redis, claim the node id for this process, check
    that the cluster-wide settings match the running nodes'; the token secret."""
    await storage.ping()
    await claim_node_id(storage, node_id, Instance.this_process(), settings.cluster.node_timeout)
    try:
        await forget_gone_nodes(storage, node_id)
        try:
            await storage.layout.ensure()
        except LayoutRefused as exc:
            raise NodeRefused(str(exc)) from None
        secret = settings.auth.secret or await storage.token_secret()
        await check_fingerprint(storage, node_id, fingerprint(settings, secret))
    except BaseException:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await storage.presence.node_gone()
        raise
    return secret


async def forget_gone_nodes(storage: Storage, node_id: str) -> None:
    """Deregister the nodes whose records name a process of this host that no longer
    runs: above all this node's earlier run on its embedded Redis (under another random
    id), killed before it could deregister. Their sessions would count as online, and
    their leases would keep their users and groups, with every command for them
    forwarded to a node that is gone, until the records expired
    (``cluster.node_timeout``). A record of a process that still runs, or of another
    host, is left alone."""
    for other in await storage.presence.live_nodes():
        if other == node_id:
            continue
        held = await storage.presence.holder(other)
        instance = Instance.parse(held[0]) if held else None
        if held is not None and instance is not None and instance.is_gone():
            await storage.followups.replay_node(other)
            removed = await storage.presence.forget_node(other, held[0])
            log_event(
                log,
                "node-leave",
                node=other,
                seen_by=node_id,
                why="its process is gone",
                sessions_removed=removed,
            )
