"""Which command group handles each request, looked up once per actor kind.

An actor kind's commands live in command groups (accounts, friends, chat, ...):
small objects made for one entity, with a ``handlers()`` table of bound methods.
Building every table for every actor cost about 2.6 KB per actor (a dict of bound
methods each); so the table of request type -> (command group, method name) is
built once, and each actor makes only the command groups it is sent commands for,
when the first one comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from actors.runtime.replies import Handler
from protocol import messages as m


class HandlerTable:
    """The routes of one actor kind: built from one probe instance of each group."""

    def __init__(self, groups: Sequence[type[Any]], probe: Callable[[type[Any]], Any]) -> None:
        self.groups = tuple(groups)
        self._routes: dict[type[m.Request], tuple[int, str]] = {}
        for index, group in enumerate(self.groups):
            for request_type, method in probe(group).handlers().items():
                self._routes[request_type] = (index, method.__name__)

    def bind(self, make: Callable[[type[Any]], Any]) -> BoundHandlers:
        """The handlers of one actor; ``make`` makes one of its command groups."""
        return BoundHandlers(self, make)

    def route(self, request_type: type[m.Request]) -> tuple[int, str] | None:
        return self._routes.get(request_type)


class BoundHandlers:
    """One actor's view of its kind's table; command groups are made on first use."""

    __slots__ = ("_made", "_make", "_table")

    def __init__(self, table: HandlerTable, make: Callable[[type[Any]], Any]) -> None:
        self._table = table
        self._make = make
        self._made: dict[int, Any] = {}

    def get(self, request_type: type[m.Request]) -> Handler | None:
        route = self._table.route(request_type)
        if route is None:
            return None
        index, name = route
        group = self._made.get(index)
        if group is None:
            group = self._made[index] = self._make(self._table.groups[index])
        handler: Handler = getattr(group, name)
        return handler
