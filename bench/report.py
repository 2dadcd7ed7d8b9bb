"""Regenerate docs/BENCHMARKS.md (and the latency plot) from bench/results/*.json.

    python bench/report.py [--results bench/results] [--out docs/BENCHMARKS.md]

``make bench`` runs the standard set and then this script. Each result file is one
run, named after what it measured (``pairs.json``, ``pairs-rate-1000.json``, ...);
the open-loop ``pairs`` runs at several offered rates make the latency-vs-rate
plot. A/B runs saved by ``bench/load.py compare --save bench/results/compare/NAME.json``
are shown as tables of ratios. The hand-written analysis in bench/FINDINGS.md, if
present, is included as it is.
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

# Run as a script: make the repository importable (bench.compare).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.compare import report_lines as comparison_lines  # noqa: E402
from bench.verify import CHECKS as VERIFY_CHECKS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PLOT_NAME = "bench_latency.png"
RATE_PLOT_NAME = "bench_pairs_rate.png"
SCENARIO_ORDER = ("connect", "sync", "pairs", "group", "cluster")
WHAT = {
    "connect": "sign in K clients with tokens (and some with passwords), hold them idle",
    "sync": "incremental friend sync after a few changes in a large list, against a full sync",
    "pairs": "N sender/receiver pairs in single chat",
    "group": "fan-out to the online members of one group",
    "cluster": "pairs with users split across 2 nodes on one Redis (or a Redis Cluster)",
}
SWEEP = "pairs"
"""Open-loop runs of this scenario (results named ``pairs-rate-<R>``) make the rate plot."""
COMPARISONS = "compare"
"""The folder of ``bench/results`` holding A/B results (``bench/load.py compare``)."""
CLIENT_BOUND_SHARE = 1 / 3
"""A figure is client-bound when the load client's CPU per message is above this share of
the server's: the client processes share the 2 cores with the server and Redis."""
OLD_CLIENT = "trio"
"""Results without a ``client`` field predate ``--client``: the trio client made them."""


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
    Target("pairs", "msgs_per_s", "closed loop: delivered msgs/s >= 3,000", operator.ge, 3000),
    Target("pairs", "server_cpu_us_per_msg", "closed loop: server CPU per msg < 300 us",
           operator.lt, 300),
    Target("pairs-rate-1000", "p99_ms", "at 1,000 msgs/s offered: p99 < 100 ms", operator.lt, 100),
    Target("pairs-rate-1000", "server_cpu_us_per_msg",
           "at 1,000 msgs/s offered: server CPU per msg < 300 us", operator.lt, 300),
    Target("pairs*", "problems", "every pairs run: lost + duplicated + out of order == 0",
           operator.eq, 0),
    Target("group", "p99_ms", "1,000 members: p99 send to last member < 500 ms", operator.lt, 500),
    Target("group", "problems", "lost + duplicated + out of order == 0", operator.eq, 0),
    Target("cluster", "problems", "lost + duplicated + out of order == 0", operator.eq, 0),
    Target("cluster-failover*", "stored_problems", "through a master failover: acknowledged "
           "messages lost + renumbered + duplicated + reordered, and seq gaps == 0",
           operator.eq, 0),
)  # fmt: skip
SCALE_OUT_TARGETS = (
    ("cluster-store", "server_cpu_us_per_msg", "Redis Cluster of 3 masters / one Redis: "
     "server CPU per msg <= 1.25x", 1.25),
)  # fmt: skip
"""(comparison, figure, text, most): a ratio head/base of ``bench/results/compare/``."""
FAILOVER = "cluster-failover"
"""Results named ``cluster-failover*`` are failover runs (``--failover-at``)."""
FAILOVER_COLUMNS = (
    "durability", "pairs", "acked", "retries", "recovered", "longest_recovery_s", "failing_s",
    "outage_s", "lost", "renumbered", "duplicated", "reordered", "seq_gaps", "pushes_missed",
    "stored_unacknowledged", "server_cpu_us_per_msg", "redis_cpu_us_per_msg",
    "redis_replica_cpu_us_per_msg", "client_cpu_us_per_msg",
)  # fmt: skip

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
    "pairs": (
        "load", "client", "connections", "sent", "delivered", "lost", "duplicates",
        "out_of_order", "failures", "msgs_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_msg",
        "client_cpu_us_per_msg", "redis_cpu_us_per_msg", "server_rss_mb",
        "rss_kb_per_connection",
    ),
    "group": (
        "load", "client", "members", "messages_posted", "pushes", "lost", "duplicates",
        "out_of_order", "failures", "p50_ms", "p99_ms", "delivery_p50_ms", "msgs_per_s",
        "server_cpu_us_per_msg", "client_cpu_us_per_msg", "server_cpu_us_per_send",
    ),
    "cluster": (
        "load", "client", "nodes", "connections", "sent", "delivered", "lost", "duplicates",
        "out_of_order", "failures", "msgs_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_msg",
        "client_cpu_us_per_msg", "redis_cpu_us_per_msg", "node_cpu_s",
    ),
}  # fmt: skip
SWEEP_COLUMNS = (
    "offered_rate", "client", "sent", "msgs_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    "ack_p99_ms", "server_cpu_us_per_msg", "redis_cpu_us_per_msg", "client_cpu_us_per_msg", "lost",
    "duplicates", "out_of_order", "failures",
)  # fmt: skip

LATENCY_SERIES = (
    ("connect", "", "token login: connect + handshake + login, 256 in flight"),
    ("connect", "login_", "token_login request alone"),
    ("connect", "heartbeat_", "heartbeat ping while 5,000 idle"),
    ("connect", "password_login_", "password login (argon2id), 256 in flight"),
    ("sync", "incremental_", "incremental friend sync"),
    ("sync", "full_", "full friend sync"),
    ("pairs-rate-1000", "", "single chat, send to receipt, 1,000 msgs/s offered"),
    ("pairs", "", "single chat, send to receipt, closed loop (saturated)"),
    ("group", "", "group of 1,000: send to the last member"),
    ("cluster", "", "single chat across 2 nodes, closed loop (saturated)"),
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
    """Every result by its file's name (``pairs``, ``pairs-rate-1000``, ...)."""
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        if "client_cpu_us_per_msg" in result or "client_cpu_s" in result:
            result.setdefault("client", OLD_CLIENT)
        results[path.stem] = result
    return results


def load_comparisons(folder: Path) -> dict[str, dict[str, Any]]:
    """The A/B results saved in ``folder/compare`` by ``bench/load.py compare``, by file
    name (other files there, e.g. figures collected by hand, are left out)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / COMPARISONS).glob("*.json")):
        comparison = json.loads(path.read_text())
        if not {"sides", "ratios", "per_round"} <= comparison.keys():
            print(f"{path}: not a compare result, left out", file=sys.stderr)
            continue
        found[path.stem] = comparison
    return found


def client_bound(result: dict[str, Any]) -> bool | None:
    """Whether the load client used more than ``CLIENT_BOUND_SHARE`` of the server's CPU
    per message (None: not measured)."""
    client, server = result.get("client_cpu_us_per_msg"), result.get("server_cpu_us_per_msg")
    if not isinstance(client, int | float) or not isinstance(server, int | float) or not server:
        return None
    return bool(client > server * CLIENT_BOUND_SHARE)


def _client_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Per run: which client, its CPU per message beside the server's, client-bound or not."""
    lines = [
        "| run | client | client CPU per msg, us | server CPU per msg, us | client / server "
        "| client-bound |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        bound = client_bound(result)
        if bound is None:
            continue
        share = result["client_cpu_us_per_msg"] / result["server_cpu_us_per_msg"]
        lines.append(
            f"| {name} | {result.get('client', OLD_CLIENT)} "
            f"| {_cell(result['client_cpu_us_per_msg'])} "
            f"| {_cell(result['server_cpu_us_per_msg'])} | {share:.2f} "
            f"| {'**yes**' if bound else 'no'} |"
        )
    return lines


def sweep(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The open-loop runs of the sweep scenario, by offered rate."""
    runs = [
        r
        for name, r in results.items()
        if name.startswith(f"{SWEEP}-rate-") and r.get("offered_rate")
    ]
    return sorted(runs, key=lambda r: float(r["offered_rate"]))


def problems(result: dict[str, Any]) -> int | None:
    """Lost, duplicated and out-of-order messages of a messaging run."""
    counts = [result.get(k) for k in ("lost", "duplicates", "out_of_order")]
    if any(c is None for c in counts):
        return None
    return sum(int(c) for c in counts if c is not None)


def stored_problems(result: dict[str, Any]) -> int | None:
    """What ``bench.verify`` found wrong in what the server stored (None: not verified)."""
    verified = result.get("verify")
    if not isinstance(verified, dict):
        return None
    return sum(int(verified.get(k) or 0) for k in VERIFY_CHECKS)


def _failover_row(name: str, result: dict[str, Any]) -> dict[str, Any]:
    settings = result.get("server_settings") or []
    durability = next(
        (s.partition("=")[2] for s in settings if s.startswith("redis.durability=")), "default"
    )
    return {
        **{k: result.get(k) for k in FAILOVER_COLUMNS},
        **(result.get("verify") or {}),
        "outage_s": (result.get("failover") or {}).get("outage_s"),
        "durability": durability,
        "run": name,
    }


def _failover_table(results: dict[str, dict[str, Any]]) -> list[str]:
    runs = [_failover_row(n, r) for n, r in results.items() if n.startswith(FAILOVER)]
    if not runs:
        return []
    columns = ("run", *FAILOVER_COLUMNS)
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *["| " + " | ".join(_cell(run.get(c)) for c in columns) + " |" for run in runs],
    ]


def _scale_out_targets(comparisons: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| target | ratio head/base | met |", "|---|---|---|"]
    for name, figure, text, most in SCALE_OUT_TARGETS:
        found = [c for n, c in comparisons.items() if n.startswith(name)]
        ratio = found[0]["ratios"].get(figure) if found else None
        met = "-" if ratio is None else ("yes" if ratio <= most else "**no**")
        lines.append(f"| {text} | {_cell(ratio)} | {met} |")
    return lines


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
            lines.append(f"| {name} | not measured | {WHAT.get(name, '')} |")
            continue
        figures = "; ".join(
            f"{key} {_cell(result.get(key))}"
            for key in HEADLINES.get(name, ())
            if result.get(key) is not None
        )
        lines.append(f"| {name} | measured | {figures} |")
    return lines


def _sweep_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| " + " | ".join(SWEEP_COLUMNS) + " |",
        "|" + "---|" * len(SWEEP_COLUMNS),
    ]
    for run in runs:
        lines.append("| " + " | ".join(_cell(run.get(c)) for c in SWEEP_COLUMNS) + " |")
    return lines


def _target_value(results: dict[str, dict[str, Any]], target: Target) -> Any:
    if target.scenario.endswith("*"):
        stem = target.scenario[:-1]
        found = [r for n, r in results.items() if n == stem or n.startswith(f"{stem}-")]
    else:
        found = [results[target.scenario]] if target.scenario in results else []
    if not found:
        return None
    if target.figure == "problems":
        counts = [problems(r) for r in found]
        return None if None in counts else sum(c for c in counts if c is not None)
    if target.figure == "stored_problems":
        stored = [stored_problems(r) for r in found]
        return None if None in stored else sum(c for c in stored if c is not None)
    return found[0].get(target.figure)


def _targets_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target in TARGETS:
        value = _target_value(results, target)
        met = "-" if value is None else ("yes" if target.holds(value, target.bound) else "**no**")
        where = target.scenario.rstrip("*")
        lines.append(f"| {where}: {target.text} | {_cell(value)} | {met} |")
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
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(rows) + 2.0))
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
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3)
    axes.grid(axis="x", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return True


def plot_rates(runs: list[dict[str, Any]], out: Path) -> bool:
    """Latency percentiles and delivered rate against offered rate (open-loop pairs)."""
    points = [r for r in runs if all(r.get(f"{p}_ms") for p in ("p50", "p95", "p99"))]
    if len(points) < 2:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return False
    offered = [float(r["offered_rate"]) for r in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, colour in (("p50", "#4c72b0"), ("p95", "#dd8452"), ("p99", "#c44e52")):
        left.plot(offered, [r[f"{name}_ms"] for r in points], "o-", label=name, color=colour)
    left.axhline(100, color="grey", linestyle="--", linewidth=1, label="p99 target (100 ms)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xticks(offered)
    left.set_xticklabels([f"{x:g}" for x in offered])
    left.xaxis.set_minor_formatter(NullFormatter())
    left.set_xlabel("offered load, messages/s (open loop)")
    left.set_ylabel("send to receipt, ms (log scale)")
    left.set_title("pairs: latency vs offered rate")
    left.grid(which="both", alpha=0.3)
    left.legend()
    right.plot(offered, offered, ":", color="grey", label="offered")
    right.plot(offered, [r.get("msgs_per_s") or 0 for r in points], "o-", label="delivered")
    right.set_xlabel("offered load, messages/s")
    right.set_ylabel("messages/s")
    cpu = right.twinx()
    cpu.plot(offered, [r.get("server_cpu_us_per_msg") or 0 for r in points], "s--",
             color="#55a868", label="server CPU per msg")  # fmt: skip
    cpu.set_ylabel("server CPU per message, us")
    cpu.set_ylim(bottom=0)
    right.set_title("pairs: delivered rate and server CPU")
    right.grid(alpha=0.3)
    lines = right.get_legend_handles_labels()
    more = cpu.get_legend_handles_labels()
    right.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return True


def render(
    results: dict[str, dict[str, Any]],
    plotted: bool,
    findings: str,
    rate_plotted: bool = False,
    comparisons: dict[str, dict[str, Any]] | None = None,
) -> str:
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
        *[r["command"] for r in _in_order(results) if "command" in r],
        "python bench/report.py",
        "# A/B: a scenario against the servers of two commits, alternating rounds, ratios",
        "make bench-compare BASE=<commit> [HEAD=<commit or path>] SCENARIO=pairs "
        'ARGS="--pairs 500 --duration 10"',
        "# scale-out (make bench-scale, part of make bench): two deployments of one tree",
        "python bench/load.py compare --base-args '--store redis' --head-args '--store cluster' "
        "--rounds 3 cluster --pairs 500 --duration 10",
        "python bench/load.py compare --head-args '--workers 2' --rounds 3 pairs --pairs 500 "
        "--duration 10",
        "python bench/load.py cluster --store cluster --replicas 1 --failover-at 5 --pairs 200 "
        "--duration 15 [--set redis.durability=replicas]",
        "```",
        "",
        "`cluster --store cluster` starts a Redis Cluster of 3 masters (`--masters`, "
        "`--replicas`) from the system's redis-server 7 with the tests' fixture "
        "(tests/redis_cluster.py) and gives the nodes its seed list; `--failover-at S` "
        "SIGKILLs the master holding the most keys S seconds into the load, starts it again "
        "once its replica is promoted, and reads every conversation back (`--verify`, "
        "bench/verify.py); on one Redis (`--store redis`) it kills the Redis, which its "
        "supervisor starts again on its AOF. Both stores run `appendfsync everysec` unless "
        "`--appendfsync always`: with `everysec` a kill on a busy disk can lose answered "
        'writes (CLUSTER.md, "Durability"). Without `--base`, `compare` runs this checkout '
        "on both sides and "
        "`--base-args` / `--head-args` give each side's runs options of their own.",
        "",
        "## Scenarios",
        "",
        *_summary_table(results),
        "",
        "## Targets",
        "",
        *_targets_table(results),
        "",
        "Scale-out targets, from the A/B runs of `make bench-scale` (bench/results/compare):",
        "",
        *_scale_out_targets(comparisons or {}),
        "",
        "## Load client",
        "",
        "The messaging scenarios (pairs, group, cluster) run their sessions in client "
        "processes on the same 2 cores as the server and Redis, so what the client spends "
        "per message is taken from the server. `--client picows` (the default: picows on "
        "uvloop, `bench/picows_clients.py`) or `--client trio` (lean wsproto sessions on "
        "trio, `bench/chat_clients.py`) says which; every result names its client (results "
        f"without the field predate the option and came from the {OLD_CLIENT} client). A "
        "figure is **client-bound** when the client's CPU per message is over "
        f"{CLIENT_BOUND_SHARE:.2g} of the server's: then msgs/s and latency measure the "
        "client as much as the server, and server CPU per message is the figure to trust.",
        "",
        *_client_table(results),
        "",
    ]
    for name, comparison in (comparisons or {}).items():
        lines += [
            f"### A/B: {name}",
            "",
            "```sh",
            str(comparison.get("command", "")),
            "```",
            "",
            *comparison_lines(comparison),
            "",
        ]
    failovers = _failover_table(results)
    if failovers:
        lines += [
            "## cluster: through a master failover",
            "",
            "`cluster --store cluster --replicas 1 --failover-at S`: the master holding the "
            "most keys is SIGKILLed S seconds into the load and its replica promoted; the "
            "clients resend what is answered `UNAVAILABLE` (or not at all) with the same "
            "client msg id, and afterwards every conversation is pulled and each "
            "acknowledged message looked up (`bench/verify.py`). lost, renumbered, "
            "duplicated, reordered and seq_gaps are what was stored; pushes_missed are "
            "stored messages a receiver was not pushed (a resend answered from the stored "
            "message pushes nothing) and finds by the seq gap.",
            "",
            *failovers,
            "",
        ]
    if plotted:
        lines += ["## Latency", "", f"![latency percentiles by operation]({PLOT_NAME})", ""]
    runs = sweep(results)
    if runs:
        lines += [
            "## pairs: latency against offered rate",
            "",
            "Open loop: messages started on schedule at the offered rate, round robin over "
            "the pairs, whatever the server's pace; latency is counted from the scheduled "
            "send time, so queueing shows.",
            "",
            *_sweep_table(runs),
            "",
        ]
        if rate_plotted:
            lines += [f"![pairs latency and throughput by offered rate]({RATE_PLOT_NAME})", ""]
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


def _in_order(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Results in the standard order: by scenario, then the sweep by rate, then others."""
    ordered = [results[n] for n in SCENARIO_ORDER if n in results]
    if SWEEP in results:
        at = ordered.index(results[SWEEP]) + 1
        ordered[at:at] = sweep(results)
    ordered += [r for r in results.values() if not any(r is o for o in ordered)]
    return ordered


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
        print(
            "no plot: matplotlib is missing (it is in the bench extra, which make installs)",
            file=sys.stderr,
        )
    rate_plotted = plot_rates(sweep(results), args.out.parent / RATE_PLOT_NAME)
    findings = args.findings.read_text() if args.findings.exists() else ""
    comparisons = load_comparisons(args.results)
    args.out.write_text(render(results, plotted, findings, rate_plotted, comparisons))
    plots = [n for n, done in ((PLOT_NAME, plotted), (RATE_PLOT_NAME, rate_plotted)) if done]
    print(f"wrote {args.out}" + "".join(f" and {n}" for n in plots), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
