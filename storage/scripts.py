"""Lua scripts kept as ``storage/lua/*.lua``, registered once per client.

A script whose first line is ``--! use NAME ...`` gets the shared functions of
``storage/lua/lib/NAME.lua`` put in front of it (Redis scripts cannot import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

_LUA_DIR = Path(__file__).with_name("lua")


def load_script(path: Path) -> str:
    """The script's text with the libraries it names prepended."""
    text = path.read_text(encoding="utf-8")
    first_line = text.split("\n", 1)[0]
    if not first_line.startswith("--! use "):
        return text
    libraries = [
        (_LUA_DIR / "lib" / f"{name}.lua").read_text(encoding="utf-8")
        for name in first_line.removeprefix("--! use ").split()
    ]
    return "\n".join([*libraries, text])


class Scripts:
    """Each ``.lua`` file as a callable ``Script``, by file stem."""

    def __init__(self, client: redis.Redis) -> None:
        self._scripts: dict[str, Script] = {
            path.stem: client.register_script(load_script(path))
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
