"""The node's log lines: plain text or one JSON object per line, Parley's loggers at
``log.level`` and the libraries' at ``log.library_level``.

Events an operator follows (sign-in, sign-out, kick, slow consumer, node join and
leave, lease takeover) are logged at ``info`` through :func:`log_event`, with their
fields both in the text and, for JSON lines, as keys of their own. Nothing is logged
per message.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from settings import LogSettings

LIBRARY_LOGGERS = (
    "asyncio",
    "hpack",
    "httpcore",
    "httpx",
    "hypercorn",
    "pykka",
    "redis",
    "trio",
    "trio-websocket",
    "urllib3",
    "wsproto",
)
PARLEY_LOGGERS = ("parley", "actors", "storage", "protocol", "settings", "server", "__main__")
_STANDARD = set(vars(logging.makeLogRecord({})))


def log_event(logger: logging.Logger, name: str, **fields: Any) -> None:
    """Log event ``name`` at info with ``fields`` (cheap when info is off)."""
    if logger.isEnabledFor(logging.INFO):
        text = " ".join(f"{key}={value}" for key, value in fields.items())
        logger.info("%s %s", name, text, extra={"event": name, **fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.library_level.upper())
    for name in PARLEY_LOGGERS:
        logging.getLogger(name).setLevel(settings.level.upper())
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(settings.library_level.upper())
