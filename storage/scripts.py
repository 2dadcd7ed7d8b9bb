"""Lua scripts kept as ``storage/lua/*.lua``, registered once per client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

_LUA_DIR = Path(__file__).with_name("lua")


class Scripts:
    """Each ``.lua`` file as a callable ``Script``, by file stem."""

    def __init__(self, client: redis.Redis) -> None:
        self._scripts: dict[str, Script] = {
            path.stem: client.register_script(path.read_text(encoding="utf-8"))
            for path in sorted(_LUA_DIR.glob("*.lua"))
        }

    def __getitem__(self, name: str) -> Script:
        return self._scripts[name]

    def run(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        client: redis.Redis | Any | None = None,
    ) -> Any:
        """Run a script, on ``client`` (e.g. a pipeline) when given."""
        return self._scripts[name](keys=keys, args=args, client=client)
