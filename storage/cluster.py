"""Batches of commands on a Redis Cluster: one plain pipeline per master, routed by
key slot (docs/CLUSTER.md, "Pipelining on a cluster").

:class:`ClusterRouter` offers what :class:`storage.pipelined.RedisExecutor` uses of a
redis-py client (``pipeline()``, ``close()``), so the executor runs each batch on a
cluster as it does on one server. The router keeps the cluster's slot map (read with
``CLUSTER SLOTS``) and a client per master; a batch is split into one redis-py
``Pipeline`` per master, each command going to the master of its first key's slot
(``redis.crc.key_slot``; for ``EVALSHA``/``EVAL`` the first of its ``KEYS``).

Why not redis-py's ``ClusterPipeline``: it resolves every command's keys through
its command parser and node objects, which cost 10x the client CPU of a plain
pipeline per command; routing by the known first key costs 1.5x
(``bench/experiments/cluster_pipeline.py``). It also refuses ``evalsha``.

- A command answered ``MOVED`` (the slot has another master now: a failover, a
  resharding) is sent again, once the slot map was read again, to the new master;
  one answered ``ASK`` (a slot being migrated) is sent to the node named, after
  ``ASKING``. Neither had run, so sending it again changes nothing twice.
- Except a Lua step answered ``ASK``: it fails with ``TryAgainError`` (answered
  ``UNAVAILABLE``; the client resends) until the migration has ended. A step
  declares only its entity's base (``{c:X}``, never a key itself) and reaches the
  entity's keys by name (``{c:X}:meta``, ...), so Redis, which checks only declared
  keys, cannot tell which of them have moved: run on the new master with
  ``ASKING`` it could read a half-moved entity (a seq counter not moved yet) and
  write beside it. Declared bases never exist, so the old master never runs such
  a step during the migration either (it answers ``ASK`` or ``TRYAGAIN``): no step
  runs on a slot while it moves (docs/CLUSTER.md, "A slot moves").
- A master that cannot be reached fails the commands sent to it with the connection
  error (callers answer ``UNAVAILABLE``); the slot map is read again before the next
  batch, so once a replica has been promoted the batch after goes to it.
- ``SCRIPT LOAD`` goes to every master (each runs the scripts of its own slots);
  other commands without a key go to any master; ``SPUBLISH`` goes to the master of
  its channel's slot. A replica runs an ``SPUBLISH`` itself, without ``MOVED``, and
  counts only its own subscribers: so one that reached no subscriber has the slot
  map read again (at most once per ``UNHEARD_REFRESH_S``), in case the map names a
  master that has become a replica since.
- A durability wait (``WAIT``/``WAITAOF``, storage/durability.py) goes to every
  master written to since the last wait, at the end of each one's pipeline; its
  answer is the worst of theirs (the fewest replicas), so a batch is confirmed only
  when every master it wrote to confirms it.
- A ``MULTI`` group (``pipeline(transaction=True)``) must stay within one slot.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import AskError, MovedError, TryAgainError

from storage.urls import redact_url

log = logging.getLogger(__name__)

SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""Cluster URL schemes and the scheme of each master's own URL."""
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
"""The query options a ``rediss+cluster://`` URL may carry (redis-py's, for each master)."""
REDIRECTS = 3
"""Times one command follows ``MOVED``/``ASK`` within a batch."""
UNHEARD_REFRESH_S = 1.0
"""The slot map is read again at most this often for ``SPUBLISH``es that reached no
subscriber (forwards to a node that died reach none until it is given up)."""

Address = tuple[str, int]
_Command = tuple[tuple[Any, ...], dict[str, Any]]


class ClusterUnreachable(redis.ConnectionError):
    """No seed or known master answered ``CLUSTER SLOTS``."""


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def seed_urls(url: str) -> list[str]:
    """``redis+cluster://[user:pass@]h1:p1,h2:p2[/]`` -> ``["redis://[user:pass@]h1:p1", ...]``;
    ``rediss+cluster://...?ssl_ca_certs=...``: the TLS options go to every seed (and,
    through :class:`ClusterRouter`, to every master)."""
    parts = urlsplit(url)
    shown = repr(redact_url(url))
    if parts.scheme not in SCHEMES:
        raise ValueError(f"not a Redis Cluster URL: {shown}")
    credentials, _, hosts = parts.netloc.rpartition("@")
    if not hosts or parts.path not in ("", "/"):
        raise ValueError(f"expected redis+cluster://host:port,host:port, got {shown}")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name not in TLS_OPTIONS:
            raise ValueError(
                f"{shown}: a Redis Cluster URL takes no option {name!r} (only the TLS "
                f"options {', '.join(TLS_OPTIONS)})"
            )
        if parts.scheme != "rediss+cluster":
            raise ValueError(f"{shown}: {name} is a TLS option: use rediss+cluster://")
    prefix = f"{SCHEMES[parts.scheme]}://{credentials + '@' if credentials else ''}"
    options = f"?{parts.query}" if parts.query else ""
    seeds = []
    for host in hosts.split(","):
        if not host.strip():
            raise ValueError(f"an empty seed in {shown}")
        seeds.append(prefix + host.strip() + options)
    return seeds


def first_key(args: Sequence[Any]) -> Any | None:
    """The key a command is routed by, or None for a command without one."""
    name = str(args[0]).upper()
    if name in ("EVALSHA", "EVAL", "FCALL"):
        return args[3] if len(args) > 3 and int(args[2]) > 0 else None
    if name in ("PING", "PUBLISH", "SCRIPT LOAD", "SCRIPT", "WAIT", "WAITAOF", "INFO", "ECHO"):
        return None
    if name == "CLUSTER":
        return None
    return args[1] if len(args) > 1 else None


def _is_script(args: Sequence[Any]) -> bool:
    return str(args[0]).upper() in ("EVALSHA", "EVAL", "FCALL")


def _is_publish(args: Sequence[Any]) -> bool:
    return str(args[0]).upper() == "SPUBLISH"


def _is_wait(args: Sequence[Any]) -> bool:
    return str(args[0]).upper() in ("WAIT", "WAITAOF")


def _worst(replies: list[Any]) -> Any:
    """One answer for a wait sent to several masters: an error if one failed, else the
    fewest (``WAIT``: replicas; ``WAITAOF``: [local, replicas])."""
    for reply in replies:
        if isinstance(reply, Exception):
            return reply
    if replies and isinstance(replies[0], list):
        return [min(int(r[i]) for r in replies) for i in range(len(replies[0]))]
    return min(int(r) for r in replies)


def _slot(key: Any) -> int:
    return key_slot(key if isinstance(key, bytes) else str(key).encode())


class ClusterRouter:
    """The masters of one Redis Cluster, for the executor's thread only."""

    def __init__(self, url: str, client_for: Callable[[str], redis.Redis]) -> None:
        self._seeds = seed_urls(url)
        self._scheme_prefix = self._seeds[0].rpartition("//")[0] + "//"
        self._credentials = urlsplit(self._seeds[0]).netloc.rpartition("@")[0]
        self._options = urlsplit(self._seeds[0]).query
        self._client_for = client_for
        self._masters: dict[Address, redis.Redis] = {}
        self._owner: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._stale = True
        self._refreshed_at = 0.0
        self.written: set[Address] = set()
        """Masters sent commands since the last durability wait went to them."""
        self.refreshes = 0
        """Times the slot map was read."""

    # -- what the executor uses ------------------------------------------------------

    def pipeline(self, transaction: bool = False) -> RoutedPipeline:
        return RoutedPipeline(self, transaction)

    def close(self) -> None:
        for client in self._masters.values():
            client.close()
            client.connection_pool.disconnect()
        self._masters.clear()

    # -- the slot map ----------------------------------------------------------------

    def masters(self) -> list[Address]:
        self._ensure_map()
        return list(dict.fromkeys(a for a in self._owner if a is not None))

    def master_clients(self) -> list[redis.Redis]:
        """A client of every master (as of the slot map)."""
        return [self.client(a) for a in self.masters()]

    def master_of(self, key: Any | None) -> Address:
        self._ensure_map()
        if key is None:
            return random.choice(self.masters())
        owner = self._owner[_slot(key)]
        if owner is None:
            raise redis.exceptions.ClusterDownError(f"no master serves the slot of {key!r}")
        return owner

    def client(self, address: Address) -> redis.Redis:
        client = self._masters.get(address)
        if client is None:
            credentials = f"{self._credentials}@" if self._credentials else ""
            url = f"{self._scheme_prefix}{credentials}{address[0]}:{address[1]}"
            if self._options:
                url += f"?{self._options}"
            client = self._masters[address] = self._client_for(url)
        return client

    def mark_stale(self) -> None:
        self._stale = True

    def publication_unheard(self) -> None:
        """An ``SPUBLISH`` reached no subscriber: read the map again before the next
        batch, unless it was read within ``UNHEARD_REFRESH_S``."""
        if time.monotonic() - self._refreshed_at >= UNHEARD_REFRESH_S:
            self._stale = True

    def _ensure_map(self) -> None:
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Read the slot map from the first known master or seed that answers."""
        known = [(self.client(a), True) for a in dict.fromkeys(self._owner) if a is not None]
        failures = []
        for client, own in [*known, *((self._client_for(s), False) for s in self._seeds)]:
            try:
                ranges = client.cluster("SLOTS")
            except redis.RedisError as exc:
                failures.append(str(exc))
                continue
            finally:
                if not own:
                    client.close()
            owner: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
            for start, end, master, *_ in ranges:
                host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
                for slot in range(int(start), int(end) + 1):
                    owner[slot] = (host, int(master[1]))
            self._owner = owner
            self._stale = False
            self._refreshed_at = time.monotonic()
            self.refreshes += 1
            return
        raise ClusterUnreachable(
            f"no node of the Redis Cluster answered: {'; '.join(failures) or 'no seeds'}"
        )


class RoutedPipeline:
    """The commands of one batch, sent to their masters by ``execute``."""

    def __init__(self, router: ClusterRouter, transaction: bool) -> None:
        self._router = router
        self._transaction = transaction
        self._commands: list[_Command] = []
        self.wait_replies: dict[int, Any] = {}
        """After ``execute`` with a durability wait: per command, the answer of the wait
        on the master that ran it (so that a master whose replica is missing fails
        only the commands it ran, not the whole batch)."""

    def execute_command(self, *args: Any, **options: Any) -> RoutedPipeline:
        self._commands.append((args, options))
        return self

    def script_load(self, script: str) -> RoutedPipeline:
        return self.execute_command("SCRIPT LOAD", script)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        commands, self._commands = self._commands, []
        if self._transaction:
            return self._execute_transaction(commands)
        results: list[Any] = [None] * len(commands)
        waits = [i for i, (args, _) in enumerate(commands) if _is_wait(args)]
        wait = commands[waits[0]] if waits else None
        wait_replies: dict[Address, Any] = {}
        ran_on: dict[int, Address] = {}
        targets: dict[int, Address | None] = {
            i: None for i in range(len(commands)) if i not in waits
        }
        asking: set[int] = set()
        for attempt in range(REDIRECTS + 1):
            if not targets and (wait is None or attempt > 0):
                break
            targets, asking = self._round(
                commands, targets, asking, results, wait, wait_replies, ran_on
            )
        for index in waits:
            results[index] = _worst(list(wait_replies.values()))
        if wait is not None:
            self.wait_replies = {
                index: wait_replies[address]
                for index, address in ran_on.items()
                if address in wait_replies
            }
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    def _round(
        self,
        commands: list[_Command],
        targets: dict[int, Address | None],
        asking: set[int],
        results: list[Any],
        wait: _Command | None,
        wait_replies: dict[Address, Any],
        ran_on: dict[int, Address],
    ) -> tuple[dict[int, Address | None], set[int]]:
        """Send the commands of ``targets`` (index -> node, None: by slot; those in
        ``asking`` after ``ASKING``) once, each master's pipeline ending with ``wait``
        (whose answers go to ``wait_replies``; it also goes to the masters written to
        before and not waited on since); the ones to send again, where, and which of
        them after ``ASKING``."""
        router = self._router
        by_node = self._by_node(commands, targets, results, wait)
        again: dict[int, Address | None] = {}
        ask_again: set[int] = set()
        for address, indexes in by_node.items():
            answers = self._send(address, commands, indexes, asking, wait, wait_replies)
            for index in indexes:
                ran_on[index] = address
            if isinstance(answers, Exception):
                for index in indexes:
                    results[index] = answers
                continue
            for index, answer in zip(indexes, answers, strict=True):
                if isinstance(answer, MovedError):
                    router.mark_stale()
                    again[index] = None
                elif isinstance(answer, AskError):
                    if _is_script(commands[index][0]):
                        results[index] = TryAgainError(
                            f"slot {answer.slot_id} is being migrated; try again"
                        )
                        continue
                    again[index] = (answer.host, answer.port)
                    ask_again.add(index)
                elif results[index] is None or not isinstance(answer, Exception):
                    # SCRIPT LOAD on several masters: one answer is kept.
                    results[index] = answer
                    if answer == 0 and _is_publish(commands[index][0]):
                        router.publication_unheard()
        for index in again:
            results[index] = None
        return again, ask_again

    def _by_node(
        self,
        commands: list[_Command],
        targets: dict[int, Address | None],
        results: list[Any],
        wait: _Command | None,
    ) -> dict[Address, list[int]]:
        """The master each command of ``targets`` goes to (a routing failure is its
        result); with ``wait``, every master to wait on, with no command if need be."""
        router = self._router
        by_node: dict[Address, list[int]] = {}
        if wait is not None:
            for address in router.written or ({*router.masters()} if not targets else ()):
                by_node[address] = []
        for index, target in targets.items():
            args = commands[index][0]
            if str(args[0]).upper() == "SCRIPT LOAD" and target is None:
                for address in router.masters():
                    by_node.setdefault(address, []).append(index)
                continue
            try:
                address = target or router.master_of(first_key(args))
            except redis.RedisError as exc:
                results[index] = exc
                continue
            by_node.setdefault(address, []).append(index)
        return by_node

    def _send(
        self,
        address: Address,
        commands: list[_Command],
        indexes: list[int],
        asking: set[int],
        wait: _Command | None,
        wait_replies: dict[Address, Any],
    ) -> list[Any] | Exception:
        """Send the commands of ``indexes`` to ``address`` in one pipeline (``wait``
        last); their answers, or the error that failed the pipeline."""
        router = self._router
        pipe = router.client(address).pipeline(transaction=False)
        for index in indexes:
            args, options = commands[index]
            if index in asking:
                pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
            pipe.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        if wait is not None:
            pipe.execute_command(*wait[0], **wait[1])  # type: ignore[no-untyped-call]
            router.written.discard(address)
        elif indexes:
            router.written.add(address)
        try:
            answers: list[Any] = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            router.mark_stale()
            if wait is not None:
                wait_replies[address] = exc
            return exc
        if wait is not None:
            wait_replies[address] = answers.pop()
        if not asking:
            return answers
        kept, position = [], 0  # without the answers to ASKING
        for index in indexes:
            position += index in asking
            kept.append(answers[position])
            position += 1
        return kept

    def _execute_transaction(self, commands: list[_Command]) -> list[Any]:
        slots = {_slot(k) for k in (first_key(args) for args, _ in commands) if k is not None}
        if len(slots) > 1:
            raise redis.exceptions.CrossSlotTransactionError("a MULTI group spans several slots")
        key = next((first_key(args) for args, _ in commands), None)
        address = self._router.master_of(key)
        self._router.written.add(address)
        pipe = self._router.client(address).pipeline(transaction=True)
        for args, options in commands:
            pipe.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        try:
            return pipe.execute()
        except redis.RedisError:
            self._router.mark_stale()
            raise
