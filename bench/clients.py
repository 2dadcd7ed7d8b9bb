"""The load clients of the messaging scenarios, by name (``--client``).

Each is the pair of jobs its client processes run (``bench.workers``) and the
event loop they run on; both keep their figures in the same books
(``bench.chat_book``), so a scenario merges their results alike.

* ``picows`` (default): picows on uvloop, callbacks and no task per message; it
  costs the client a fraction of what the server spends per message, so the
  server, not the client, sets the pace on a machine they share.
* ``trio``: lean wsproto sessions on trio, a task per request; several times the
  picows client's CPU per message.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench import chat_clients
from bench.workers import JobFunction, Loop

DEFAULT_CLIENT = "picows"


@dataclass(frozen=True)
class LoadClient:
    name: str
    loop: Loop
    pairs: JobFunction
    """Runs a ``chat_book.PairsJob``."""
    group: JobFunction
    """Runs a ``chat_book.GroupJob``."""


def _picows() -> LoadClient:
    from bench import picows_clients  # needs the bench extra (picows, uvloop)

    return LoadClient("picows", "asyncio", picows_clients.run_pairs, picows_clients.run_group)


def _trio() -> LoadClient:
    return LoadClient("trio", "trio", chat_clients.run_pairs, chat_clients.run_group)


_CLIENTS = {"picows": _picows, "trio": _trio}


def load_client(name: str) -> LoadClient:
    return _CLIENTS[name]()


def add_client_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client",
        choices=sorted(_CLIENTS),
        default=DEFAULT_CLIENT,
        help=f"load client of the client processes (default {DEFAULT_CLIENT}): picows on "
        "uvloop (cheap), or lean wsproto sessions on trio",
    )
