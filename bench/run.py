"""`make bench`: what the sidecar costs each call, against Envoy alone and a no-op.

Phases, all on 127.0.0.1:
1. check: one JSON and one streamed call through each set-up must succeed;
2. warm-up: a short saturating run per set-up and workload;
3. throughput: rounds of saturating wrk runs, set-ups alternated (the order
   rotates each round), medians kept;
4. latency: the open-loop generator at one fixed moderate rate on every set-up.
Results go to bench/results/latest.json and latest.md.

Run: `python -m bench.run [--rounds 5] [--seconds 8] [--setups A,B,C] [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.measure import RedisProbe, peak_rss_kib
from bench.runs import ENVOY_STATS, TX_BYTES, saturate, steady
from bench.stack import SETUPS, BenchStack
from bench.wrk import require_wrk

RESULTS = Path(__file__).parent / "results"
WORKLOADS = {"json": False, "stream": True}
# The whole benchmark must end well inside ten minutes, in s.
BUDGET_S = 570.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="per wrk run")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--json-connections", type=int, default=64)
    parser.add_argument("--stream-connections", type=int, default=32)
    parser.add_argument("--json-rate", type=float, default=200.0, help="calls/s")
    parser.add_argument("--stream-rate", type=float, default=10.0, help="calls/s")
    parser.add_argument("--chunks", type=int, default=200, help="SSE events")
    parser.add_argument("--tick-ms", type=float, default=1.0, help="between events")
    parser.add_argument("--setups", default=",".join(SETUPS), help="e.g. B,C")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.setups = tuple(s for s in SETUPS if s in args.setups.split(","))
    if args.quick:
        args.rounds, args.seconds, args.latency_seconds = 1, 3.0, 5.0
        args.warmup_seconds = 1.0
    return args


class Budget:
    """The time left of the benchmark's wall-clock budget."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self, step: str) -> None:
        if time.monotonic() > self.deadline:
            raise SystemExit(f"bench: over its time budget before {step}")


def check_stack(
    stack: BenchStack, probe: RedisProbe, setups: tuple[str, ...] = SETUPS
) -> dict[str, float]:
    """Two calls of each workload through each set-up; raise if one fails.

    Returns the bytes of one whole streamed reply to the client, by set-up.
    """
    reply_bytes = {}
    for setup in setups:
        for workload, stream in WORKLOADS.items():
            run = steady(stack, probe, setup, stream, rate=2, seconds=1)
            if run["verdict"] != "ok":
                raise SystemExit(f"bench: set-up {setup} {workload}: {run}")
            if stream:
                calls = run["envoy"]["downstream_rq_total"]
                reply_bytes[setup] = run["envoy"][TX_BYTES] / calls
    if "C" in setups and not probe.client.dbsize():
        raise SystemExit("bench: set-up C wrote no quota counter to Redis")
    return reply_bytes


def throughput(
    stack: BenchStack,
    probe: RedisProbe,
    args: argparse.Namespace,
    budget: Budget,
    reply_bytes: dict[str, float],
) -> list[dict[str, Any]]:
    connections = {"json": args.json_connections, "stream": args.stream_connections}

    def one(setup: str, workload: str, seconds: float) -> dict[str, Any]:
        stream = WORKLOADS[workload]
        return saturate(
            stack, probe, setup, stream, seconds, connections[workload],
            reply_bytes[setup],
        )  # fmt: skip

    for setup in args.setups:
        for workload in WORKLOADS:
            one(setup, workload, args.warmup_seconds)
    runs = []
    for round_index in range(args.rounds):
        # Rotate the order each round, so no set-up always runs first.
        shift = round_index % len(args.setups)
        order = args.setups[shift:] + args.setups[:shift]
        for workload in WORKLOADS:
            for setup in order:
                budget.check(f"round {round_index + 1} {setup} {workload}")
                run = one(setup, workload, args.seconds)
                run["round"] = round_index + 1
                runs.append(run)
                print(report.run_line(run), flush=True)
    return runs


def moderate_rates(
    runs: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, float]:
    """The asked rates, lowered to 40% of the slowest set-up's median throughput."""
    asked = {"json": args.json_rate, "stream": args.stream_rate}
    rates = {}
    for workload, rate in asked.items():
        slowest = min(
            report.median_rps(runs, setup, workload) or rate for setup in args.setups
        )
        rates[workload] = min(rate, max(1.0, round(0.4 * slowest)))
    return rates


def latency(
    stack: BenchStack,
    probe: RedisProbe,
    rates: dict[str, float],
    args: argparse.Namespace,
    budget: Budget,
) -> list[dict[str, Any]]:
    runs = []
    for workload, stream in WORKLOADS.items():
        for setup in args.setups:
            budget.check(f"latency {setup} {workload}")
            run = steady(
                stack, probe, setup, stream, rates[workload], args.latency_seconds
            )
            runs.append(run)
            print(report.latency_line(run), flush=True)
    return runs


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    budget = Budget(BUDGET_S)
    started = time.monotonic()
    stack = BenchStack(workdir, args.chunks, args.tick_ms).start()
    probe = RedisProbe(stack.redis.url)
    try:
        reply_bytes = check_stack(stack, probe, args.setups)
        runs = throughput(stack, probe, args, budget, reply_bytes)
        rates = moderate_rates(runs, args)
        steady_runs = latency(stack, probe, rates, args, budget)
        peaks = {name: peak_rss_kib(pid) for name, pid in stack.pids().items()}
        c_calls = stack.envoys["C"].stats(ENVOY_STATS + "downstream_rq_total")
    finally:
        probe.close()
        printed = stack.stop()
    sidecar_exit = json.loads(printed["sidecar"].strip().splitlines()[-1])
    sidecar_exit["calls"] = c_calls[ENVOY_STATS + "downstream_rq_total"]
    return report.results(
        vars(args) | {"out": str(args.out)},
        runs,
        rates,
        steady_runs,
        peaks,
        sidecar_exit,
        wall_s=time.monotonic() - started,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="extproc-bench-"))
    try:
        results = bench(args, workdir)
    except BaseException:
        print(f"bench: process logs kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    (args.out / "latest.md").write_text(markdown)
    print(markdown)
    if results["verdict"] != "ok":
        sys.exit(1)


if __name__ == "__main__":
    main()
