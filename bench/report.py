"""Regenerate docs/BENCHMARKS.md (and the latency plot) from bench/results/*.json.

    python bench/report.py [--results bench/results] [--out docs/BENCHMARKS.md]

``make bench`` runs the standard set and then this script. The hand-written
analysis in bench/FINDINGS.md, if present, is included as it is.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PLOT_NAME = "bench_latency.png"
SCENARIO_ORDER = ("connect", "sync", "pairs", "group", "cluster")
NOT_YET = {
    "pairs": "N sender/receiver pairs in single chat",
    "group": "fan-out to the 1,000 online members of one group",
    "cluster": "pairs with users split across 2 nodes on one Redis",
}


@dataclass(frozen=True)
class Target:
    scenario: str
    figure: str
    text: str
    holds: Callable[[Any, Any], bool]
    bound: float


TARGETS = (
    Target("connect", "signed_in", "sessions signed in >= 5,000", operator.ge, 5000),
    Target("connect", "failures", "failures == 0", operator.eq, 0),
    Target("connect", "logins_per_s", "logins/s >= 500", operator.ge, 500),
    Target("connect", "rss_kb_per_connection", "RSS per connection < 50 KB", operator.lt, 50),
)

HEADLINES: dict[str, tuple[str, ...]] = {
    "connect": (
        "connections", "signed_in", "failures", "logins_per_s", "p50_ms", "p99_ms",
        "rss_kb_per_connection", "server_rss_mb", "server_cpu_us_per_login",
        "password_logins_per_s", "password_login_p50_ms",
    ),
    "sync": (
        "friends", "failures", "incremental_bytes", "full_bytes", "incremental_p50_ms",
        "full_p50_ms", "server_cpu_us_per_incremental", "server_cpu_us_per_full",
    ),
}  # fmt: skip

LATENCY_SERIES = (
    ("connect", "", "token login: connect + handshake + login, 256 in flight"),
    ("connect", "login_", "token_login request alone"),
    ("connect", "heartbeat_", "heartbeat ping while 5,000 idle"),
    ("connect", "password_login_", "password login (argon2id), 256 in flight"),
    ("sync", "incremental_", "incremental friend sync"),
    ("sync", "full_", "full friend sync"),
)


def machine(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "CPUs (nproc)": str(os.cpu_count()),
        "CPU model": model,
        "memory": memory,
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": platform.platform(),
        "server commit": ", ".join(
            sorted({str(r["server_commit"]) for r in results.values() if r.get("server_commit")})
        )
        or _git_commit(),
    }


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        results[str(data.get("scenario", path.stem))] = data
    return results


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items()) or "none"
    return str(value)


def _figures_table(result: dict[str, Any]) -> list[str]:
    lines = ["| figure | value |", "|---|---|"]
    for key, value in result.items():
        if key in ("scenario", "command", "notes") or value is None or isinstance(value, list):
            continue
        lines.append(f"| {key} | {_cell(value)} |")
    return lines


def _summary_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| scenario | status | headline figures |", "|---|---|---|"]
    for name in SCENARIO_ORDER:
        result = results.get(name)
        if result is None:
            what = NOT_YET.get(name, "")
            lines.append(f"| {name} | not yet measured (needs messaging) | {what} |")
            continue
        figures = "; ".join(
            f"{key} {_cell(result.get(key))}"
            for key in HEADLINES.get(name, ())
            if result.get(key) is not None
        )
        lines.append(f"| {name} | measured | {figures} |")
    return lines


def _targets_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target in TARGETS:
        value = results.get(target.scenario, {}).get(target.figure)
        met = "-" if value is None else ("yes" if target.holds(value, target.bound) else "**no**")
        lines.append(f"| {target.scenario}: {target.text} | {_cell(value)} | {met} |")
    return lines


def plot(results: dict[str, dict[str, Any]], out: Path) -> bool:
    """Latency percentiles of every measured operation; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = []
    for scenario, prefix, label in LATENCY_SERIES:
        result = results.get(scenario, {})
        values = [result.get(f"{prefix}{p}_ms") for p in ("p50", "p95", "p99")]
        numbers = [float(v) for v in values if isinstance(v, int | float) and v > 0]
        if len(numbers) == len(values):
            rows.append((label, numbers))
    if not rows:
        return False
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.6))
    height = 0.26
    for offset, (name, colour) in enumerate(
        (("p50", "#4c72b0"), ("p95", "#dd8452"), ("p99", "#c44e52"))
    ):
        positions = [i + (offset - 1) * height for i in range(len(rows))]
        axes.barh(positions, [r[1][offset] for r in rows], height, label=name, color=colour)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([r[0] for r in rows])
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("latency, ms (log scale)")
    axes.set_title("Parley latency by operation (bench/load.py)")
    axes.legend(loc="lower right")
    axes.grid(axis="x", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return True


def render(results: dict[str, dict[str, Any]], plotted: bool, findings: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/report.py` from `bench/results/*.json`; regenerate everything "
        "with `make bench`. Every figure comes from `bench/load.py` (see its `--help`); "
        "the tool starts its own server (`server.py serve` with an embedded Redis and the "
        "default settings, argon2id included) unless given `--url`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine(results).items()],
        "",
        "Client processes run on the same machine and share its cores with the server "
        "and Redis; every figure is loopback traffic.",
        "",
        "## Commands",
        "",
        "```sh",
        "make bench    # installs .[bench], runs the set below, rewrites this page",
        *[
            results[n]["command"]
            for n in SCENARIO_ORDER
            if n in results and "command" in results[n]
        ],
        "python bench/report.py",
        "```",
        "",
        "## Scenarios",
        "",
        *_summary_table(results),
        "",
        "## Targets",
        "",
        *_targets_table(results),
        "",
    ]
    if plotted:
        lines += ["## Latency", "", f"![latency percentiles by operation]({PLOT_NAME})", ""]
    for name in SCENARIO_ORDER:
        result = results.get(name)
        if result is None:
            continue
        lines += [f"## {name}", "", *_figures_table(result), ""]
        lines += [f"- {note}" for note in result.get("notes") or []]
        lines.append("")
    if findings:
        lines += [findings.rstrip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument("--findings", type=Path, default=REPO / "bench" / "FINDINGS.md")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if not results:
        print(f"no results in {args.results}; run `make bench`", file=sys.stderr)
        return 1
    plotted = plot(results, args.out.parent / PLOT_NAME)
    if not plotted:
        print("no plot: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
    findings = args.findings.read_text() if args.findings.exists() else ""
    args.out.write_text(render(results, plotted, findings))
    print(f"wrote {args.out}" + (f" and {PLOT_NAME}" if plotted else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
