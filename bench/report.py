"""Turns the runs into the figures the benchmark reports, in JSON and Markdown."""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any

SETUPS = ("A", "B", "C")
WORKLOADS = ("json", "stream")
# Commands the sidecar sends itself; every other command counted by Redis was
# run inside one of its Lua scripts.
CLIENT_COMMANDS = ("evalsha", "eval", "script", "xadd", "ping", "client", "hello")
TARGETS = {
    "json_c_over_b": 0.8,  # throughput ratio, at least
    "stream_c_over_b": 0.7,  # throughput ratio, at least
    "round_trips_per_call": 2.0,  # at most
    "json_added_p50_ms": 2.0,  # over A, at most (strictly under)
}


def run_line(run: dict[str, Any]) -> str:
    others = outside_cores(run)["other_programs"]
    return (
        f"round {run['round']} {run['setup']} {run['workload']:6} "
        f"{run['rps']:8.1f} calls/s ({run['completed_rps']:.1f} completed), "
        f"other programs {others:.2f} cores: {run['verdict']}"
    )


def latency_line(run: dict[str, Any]) -> str:
    timings = run["timings_ms"]
    return (
        f"latency {run['setup']} {run['workload']:6} at {run['rate']:g}/s: "
        f"p50 {timings['total_p50']:.2f} ms p99 {timings['total_p99']:.2f} ms  "
        f"{run['verdict']}"
    )


def _ok(runs: list[dict[str, Any]], setup: str, workload: str) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["setup"] == setup and r["workload"] == workload and r["verdict"] == "ok"
    ]


def median_rps(runs: list[dict[str, Any]], setup: str, workload: str) -> float | None:
    values = [r["rps"] for r in _ok(runs, setup, workload)]
    return statistics.median(values) if values else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 3) if top and bottom else None


def throughput(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for workload in WORKLOADS:
        medians = {s: median_rps(runs, s, workload) for s in SETUPS}
        table[workload] = {
            "median_rps": medians,
            "rps_by_round": {
                s: [
                    r["rps"]
                    for r in runs
                    if (r["setup"], r["workload"]) == (s, workload)
                ]
                for s in SETUPS
            },
            "C/B": _ratio(medians["C"], medians["B"]),
            "C/A": _ratio(medians["C"], medians["A"]),
            "B/A": _ratio(medians["B"], medians["A"]),
        }
    return table


def outside_cores(run: dict[str, Any]) -> dict[str, float]:
    """CPU used outside the bench's processes during a run, in cores: by
    interrupts (the kernel's loopback networking) and by other programs."""
    cpu: dict[str, float] = dict(run["cpu_s"])
    busy = cpu.pop("machine_busy", 0.0)
    irq = cpu.pop("machine_irq", 0.0)
    seconds = float(run["seconds"])
    others = max(0.0, busy - irq - sum(cpu.values()))
    return {
        "irq": round(irq / seconds, 2),
        "other_programs": round(others / seconds, 2),
    }


def _calls(run: dict[str, Any]) -> int:
    return int(run["envoy"].get("downstream_rq_total", 0))


def per_call_costs(
    runs: list[dict[str, Any]], setup: str, workload: str
) -> dict[str, Any]:
    """CPU per 1,000 calls and Redis per call, over every run of one set-up."""
    chosen = [r for r in runs if r["setup"] == setup and r["workload"] == workload]
    calls = sum(_calls(r) for r in chosen)
    if not calls:
        return {}
    cpu: dict[str, float] = {}
    redis: dict[str, float] = {}
    ext_proc: dict[str, float] = {}
    for run in chosen:
        for name, seconds in run["cpu_s"].items():
            cpu[name] = cpu.get(name, 0) + seconds
        for name, count in run["redis"].items():
            redis[name] = redis.get(name, 0) + count
        for name, count in run["envoy"].items():
            if name.startswith("ext_proc."):
                ext_proc[name] = ext_proc.get(name, 0) + count
    return {
        "calls": calls,
        "cpu_s_per_1000_calls": {k: round(v * 1000 / calls, 3) for k, v in cpu.items()},
        "redis_per_call": {k: round(v / calls, 3) for k, v in sorted(redis.items())},
        "ext_proc_per_call": {k: round(v / calls, 2) for k, v in ext_proc.items()},
    }


def latency(
    steady_runs: list[dict[str, Any]], rates: dict[str, float]
) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for workload in WORKLOADS:
        timings = {
            r["setup"]: r["timings_ms"]
            for r in steady_runs
            if r["workload"] == workload
        }
        added = {
            setup: {
                name: round(value - timings["A"][name], 3)
                for name, value in timings[setup].items()
                if name != "events_min"
            }
            for setup in ("B", "C")
            if setup in timings and "A" in timings
        }
        table[workload] = {
            "rate_per_s": rates[workload],
            "timings_ms": timings,
            "added_over_A_ms": added,
        }
    return table


def targets(
    table: dict[str, Any], lat: dict[str, Any], round_trips: float | None
) -> list[dict[str, Any]]:
    json_added = lat["json"]["added_over_A_ms"].get("C", {}).get("total_p50")
    measured = {
        "json_c_over_b": table["json"]["C/B"],
        "stream_c_over_b": table["stream"]["C/B"],
        "round_trips_per_call": round_trips,
        "json_added_p50_ms": json_added,
    }
    rows = []
    for name, goal in TARGETS.items():
        value = measured[name]
        if value is None:
            met = False
        elif name.endswith("over_b"):
            met = value >= goal
        elif name == "json_added_p50_ms":
            met = value < goal
        else:
            met = value <= goal
        rows.append({"target": name, "goal": goal, "measured": value, "met": met})
    return rows


# Connection upkeep, not calls: redis-py's handshake on a new connection and
# its PING before reusing one idle for 30 s; each is a round trip of its own.
UPKEEP_COMMANDS = ("ping", "client", "hello")


def round_trips(costs: dict[str, Any]) -> dict[str, float]:
    """Server-side reads per call, with and without connection upkeep."""
    redis = costs.get("redis_per_call", {})
    reads = redis.get("total_reads_processed", 0.0)
    upkeep = sum(redis.get("cmd:" + c, 0.0) for c in UPKEEP_COMMANDS)
    return {"all": reads, "calls_only": round(reads - upkeep, 3)}


def _worst_round_trips(costs: dict[str, Any]) -> float | None:
    values = [round_trips(c)["calls_only"] for c in costs.values() if c]
    return max(values) if values else None


def results(
    config: dict[str, Any],
    runs: list[dict[str, Any]],
    rates: dict[str, float],
    steady_runs: list[dict[str, Any]],
    peaks_kib: dict[str, int],
    sidecar_exit: dict[str, Any],
    wall_s: float,
) -> dict[str, Any]:
    table = throughput(runs)
    lat = latency(steady_runs, rates)
    saturated = {w: per_call_costs(runs, "C", w) for w in WORKLOADS}
    steady_costs = {w: per_call_costs(steady_runs, "C", w) for w in WORKLOADS}
    noop = {w: per_call_costs(runs, "B", w) for w in WORKLOADS}
    failed = [r for r in runs + steady_runs if r["verdict"] != "ok"]
    writes = sidecar_exit["redis_writes"] / max(1, sidecar_exit["calls"])
    return {
        "verdict": "ok" if not failed else f"FAILED: {len(failed)} run(s) failed",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "config": config,
        "wall_s": round(wall_s, 1),
        "throughput": table,
        "latency": lat,
        "costs_saturated_C": saturated,
        "costs_moderate_C": steady_costs,
        "costs_saturated_B": noop,
        "redis_client_writes_per_call": round(writes, 3),
        "other_programs_cores_max": max(
            (outside_cores(r)["other_programs"] for r in runs + steady_runs),
            default=0.0,
        ),
        "peak_rss_mib": {k: round(v / 1024, 1) for k, v in peaks_kib.items()},
        "targets": targets(table, lat, _worst_round_trips(steady_costs)),
        "runs": runs,
        "steady_runs": steady_runs,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(res: dict[str, Any]) -> str:
    """A short report: throughput, latency, per-call costs, targets."""
    lines = [
        "# Sidecar cost per call",
        "",
        f"Verdict: **{res['verdict']}**, {res['machine']['cpus']} CPUs, "
        f"{res['config']['rounds']} rounds of {res['config']['seconds']:g} s, "
        f"wall time {res['wall_s']:.0f} s. A: Envoy alone; B: Envoy with a no-op "
        "Python ext_proc; C: Envoy with the sidecar, Redis, 1,000 consumers.",
        "",
        "Programs outside the benchmark used up to "
        f"{res['other_programs_cores_max']:.2f} cores during a run. Streamed "
        "calls/s count whole replies' worth of bytes sent; see latest.json for "
        "completed calls.",
        "",
        "| saturation, calls/s (median) | A | B | C | C/B | C/A |",
        "|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        row = res["throughput"][workload]
        m = row["median_rps"]
        lines.append(
            f"| {workload} | {_fmt(m['A'])} | {_fmt(m['B'])} | {_fmt(m['C'])} | "
            f"{_fmt(row['C/B'], 2)} | {_fmt(row['C/A'], 2)} |"
        )
    lines += ["", *_latency_table(res), "", *_cost_table(res), "", *_target_table(res)]
    return "\n".join(lines) + "\n"


def _latency_table(res: dict[str, Any]) -> list[str]:
    lines = [
        "| at a fixed rate, ms | rate/s | A p50 / p99 | B p50 / p99 | C p50 / p99 "
        "| C added p50 over A |",
        "|---|---|---|---|---|---|",
    ]
    items = {"json": ["total"], "stream": ["first_event", "chunk_gap", "total"]}
    for workload in WORKLOADS:
        lat = res["latency"][workload]
        for item in items[workload]:
            cells = []
            for setup in SETUPS:
                t = lat["timings_ms"].get(setup, {})
                cells.append(
                    f"{_fmt(t.get(item + '_p50'), 2)} / {_fmt(t.get(item + '_p99'), 2)}"
                )
            added = lat["added_over_A_ms"].get("C", {}).get(item + "_p50")
            label = workload if item == "total" else f"{workload} {item}"
            lines.append(
                f"| {label} | {lat['rate_per_s']:g} | {' | '.join(cells)} | "
                f"{_fmt(added, 2)} |"
            )
    return lines


def _cpu_ms(costs: dict[str, Any], process: str) -> float | None:
    value = costs.get("cpu_s_per_1000_calls", {}).get(process)
    return None if value is None else float(value)


def _cost_table(res: dict[str, Any]) -> list[str]:
    lines = [
        "| per call (C) | sidecar CPU ms, saturated / moderate | no-op CPU ms (B) "
        "| Redis round trips (all / calls only) | commands sent | run in scripts |",
        "|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        sat = res["costs_saturated_C"][workload]
        mod = res["costs_moderate_C"][workload]
        noop = _cpu_ms(res["costs_saturated_B"][workload], "noop")
        redis = mod.get("redis_per_call", {})
        trips = round_trips(mod)
        sent = sum(redis.get("cmd:" + c, 0) for c in CLIENT_COMMANDS)
        total = redis.get("total_commands_processed", 0)
        lines.append(
            f"| {workload} | {_fmt(_cpu_ms(sat, 'sidecar'), 2)} / "
            f"{_fmt(_cpu_ms(mod, 'sidecar'), 2)} | {_fmt(noop, 2)} | "
            f"{_fmt(trips['all'], 3)} / {_fmt(trips['calls_only'], 3)} | "
            f"{_fmt(sent, 2)} | {_fmt(total - sent, 2)} |"
        )
    lines.append("")
    lines.append(
        f"Sidecar peak RSS {res['peak_rss_mib'].get('sidecar', 0):.1f} MiB; "
        f"its own count of Redis writes per call "
        f"{res['redis_client_writes_per_call']:.3f}."
    )
    return lines


def _target_table(res: dict[str, Any]) -> list[str]:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    for row in res["targets"]:
        lines.append(
            f"| {row['target']} | {row['goal']:g} | {_fmt(row['measured'], 3)} | "
            f"{'yes' if row['met'] else '**no**'} |"
        )
    return lines
