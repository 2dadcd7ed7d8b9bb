"""Reading version logs: the incremental-sync engine shared by every synced list.

Each synced list (a user's friends; later joined groups, members,
conversations) has a version log written by the Lua step that changes the list
(``storage/lua/lib/versionlog.lua``). A client holding a copy at
(version id, version) asks for changes; :func:`read_changes` answers, in one
consistent Redis step, with one of:

* ``equal``: the copy is current;
* ``incremental``: the records to upsert and the ids to delete;
* ``full``: the whole list, when the log cannot prove the copy can be brought
  up to date (different version id, client ahead, or log trimmed past it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from storage.replies import text
from storage.scripts import Scripts

SyncKind = Literal["equal", "incremental", "full"]
_ids = random.Random()
"""Seeded once from the OS. Version ids must be unique, not secret; drawing them from
``os.urandom`` (a system call, which lets the GIL go) on every message send made the
sending actor wait for the GIL behind the event loop."""


def new_version_id() -> str:
    """A fresh version id, used when a list's log is created (or recreated)."""
    return f"{_ids.getrandbits(64):016x}"


@dataclass(frozen=True)
class Changes:
    kind: SyncKind
    version_id: str
    version: int
    upserts: dict[str, bytes] = field(default_factory=dict)
    """Entity id -> stored record; for ``full`` every record of the list."""
    inserted: frozenset[str] = frozenset()
    """Which of ``upserts`` the client has never seen (inserted after its version)."""
    deletes: list[str] = field(default_factory=list)


async def read_changes(
    scripts: Scripts, log_base: str, records_key: str, version_id: str, version: int
) -> Changes:
    """What a client at (``version_id``, ``version``) must apply to match the list."""
    reply = await scripts.run("sync_read", [log_base, records_key], [version_id, version])
    kind = text(reply[0]).lower()
    current_id, current_version = text(reply[1]), int(reply[2])
    rest = reply[3:]
    if kind == "equal":
        return Changes("equal", current_id, current_version)
    if kind == "full":
        records = {text(rest[i]): bytes(rest[i + 1]) for i in range(0, len(rest), 2)}
        return Changes("full", current_id, current_version, records, frozenset(records))
    upserts: dict[str, bytes] = {}
    inserted: set[str] = set()
    deletes: list[str] = []
    for i in range(0, len(rest), 3):
        entity, op, record = text(rest[i]), text(rest[i + 1]), rest[i + 2]
        if op == "delete" or not record:
            deletes.append(entity)
        else:
            upserts[entity] = bytes(record)
            if op.startswith("insert:") and int(op.removeprefix("insert:")) > version:
                inserted.add(entity)
    return Changes(
        "incremental", current_id, current_version, upserts, frozenset(inserted), deletes
    )
