"""Platform ids as OpenIM numbers them, and the classes used by login policies."""

from __future__ import annotations

import enum


class Platform(enum.IntEnum):
    IOS = 1
    ANDROID = 2
    WINDOWS = 3
    MACOS = 4
    WEB = 5
    MINI_WEB = 6
    LINUX = 7
    ANDROID_PAD = 8
    IPAD = 9
    HARMONYOS = 11

    @property
    def device_class(self) -> str:
        """``mobile``, ``desktop`` or ``web``: the class used by the same-class login policy."""
        if self in (Platform.WINDOWS, Platform.MACOS, Platform.LINUX):
            return "desktop"
        if self in (Platform.WEB, Platform.MINI_WEB):
            return "web"
        return "mobile"


PLATFORM_IDS: frozenset[int] = frozenset(p.value for p in Platform)
