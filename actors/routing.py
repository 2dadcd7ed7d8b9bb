"""Which actor owns each command a signed-in session sends.

By default a command goes to the sender's own user actor. Commands about
another entity (a group, ...) are listed in ``ROUTES`` with the actor kind that
owns them and how to find the entity id in the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import user

Route = tuple[str, str]
"""(actor kind, entity id)"""

ROUTES: dict[type[Any], tuple[str, Callable[[Any], str]]] = {}
"""Request type -> (actor kind, entity id of the request)."""


def route(request: Any, user_id: str) -> Route:
    """The actor that must handle ``request`` sent by ``user_id``."""
    found = ROUTES.get(type(request))
    if found is None:
        return user.KIND, user_id
    kind, entity = found
    return kind, entity(request)
