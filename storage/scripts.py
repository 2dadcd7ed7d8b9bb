"""Lua scripts kept as ``storage/lua/*.lua``, run by SHA1 (``EVALSHA``).

A script whose first line is ``--! use NAME ...`` gets the shared functions of
``storage/lua/lib/NAME.lua`` put in front of it (Redis scripts cannot import).

The texts are loaded into Redis by the connections whenever they connect
(``storage.connections``) and again by the executor after a ``SCRIPT FLUSH``
(``storage.pipelined``), so a call here sends only the SHA1, never the text.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from storage.pipelined import CommandGroup, PipelinedRedis

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


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Scripts:
    """Each ``.lua`` file by file stem: its text, and calls of it by SHA1 on ``redis``."""

    def __init__(self, redis: PipelinedRedis) -> None:
        self._redis = redis
        self._texts: dict[str, str] = {
            path.stem: load_script(path) for path in sorted(_LUA_DIR.glob("*.lua"))
        }
        self._shas = {name: _sha1(text) for name, text in self._texts.items()}

    def texts(self) -> tuple[str, ...]:
        """Every script's text, for the connections and the executor to load."""
        return tuple(self._texts.values())

    def sha(self, name: str) -> str:
        return self._shas[name]

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script and return its reply."""
        return await self._redis.evalsha(self._shas[name], len(keys), *keys, *args)

    def add(self, group: CommandGroup, name: str, keys: list[str], args: list[Any]) -> None:
        """Put a call of the script into ``group``; its reply comes from ``group.execute()``."""
        group.evalsha(self._shas[name], len(keys), *keys, *args)
