"""The result of a scenario: a flat dict printed as a human-readable summary and,
with ``--json``, as one JSON object on the last line of stdout."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

Result = dict[str, Any]

COMMON_FIELDS = (
    "scenario",
    "connections",
    "sent",
    "delivered",
    "lost",
    "duplicates",
    "out_of_order",
    "failures",
    "msgs_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "server_cpu_us_per_msg",
    "server_rss_mb",
    "rss_kb_per_connection",
    "logins_per_s",
)
"""Every result has these keys; None where a figure does not apply to the scenario."""


def complete(result: Mapping[str, Any]) -> Result:
    """The result with every common field present, common fields first."""
    ordered: Result = {name: result.get(name) for name in COMMON_FIELDS}
    ordered.update({k: v for k, v in result.items() if k not in ordered})
    return ordered


def _format(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format(v)}" for k, v in value.items()) or "none"
    return str(value)


def print_summary(result: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Every figure that applies, one per line."""
    out = stream if stream is not None else sys.stdout
    out.write(f"\n== {result.get('scenario')} ==\n")
    notes = result.get("notes") or []
    width = max((len(k) for k in result), default=10)
    for key, value in result.items():
        if key in ("scenario", "notes", "command") or value is None:
            continue
        out.write(f"  {key:<{width}}  {_format(value)}\n")
    for note in notes:
        out.write(f"  note: {note}\n")
    out.flush()


def emit(result: Mapping[str, Any], as_json: bool, save_to: str | None = None) -> None:
    """Print the summary, then (with ``as_json``) the JSON object as the last line."""
    full = complete(result)
    print_summary(full)
    text = json.dumps(full, sort_keys=False)
    if save_to:
        path = Path(save_to)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(full, indent=2) + "\n")
    if as_json:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
