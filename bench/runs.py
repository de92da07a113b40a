"""One measured run: load on one set-up, with everything read before and after.

A run records the status of every reply; a run with any status but 200, or any
socket error or timeout, is marked failed and its throughput is not used.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from typing import Any

from bench import openloop
from bench.measure import RedisProbe, cpu_seconds, deltas, machine_cpu
from bench.stack import BenchStack
from bench.workload import CONSUMERS, http_request
from bench.wrk import run_wrk

ENVOY_STATS = "http.llm_gateway."
TX_BYTES = "downstream_cx_tx_bytes_total"  # bytes Envoy wrote to clients
# After the load stops, settlements still run in the sidecar's background: wait
# this long at most for Redis to go quiet, in s.
QUIET_TIMEOUT_S = 5.0


def snapshot(stack: BenchStack, probe: RedisProbe, setup: str) -> dict[str, Any]:
    return {
        "cpu": {name: cpu_seconds(pid) for name, pid in stack.pids().items()},
        "machine": machine_cpu(),
        "envoy": stack.envoys[setup].stats(ENVOY_STATS),
        "redis": probe.counts(),
    }


def wait_quiet(probe: RedisProbe) -> None:
    """Return once Redis ran nothing but this probe's own INFO in 100 ms."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    last = probe.counts()["total_commands_processed"]
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = probe.counts()["total_commands_processed"]
        if now - last <= probe.COMMANDS:
            return
        last = now


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a run changed, less the probe's own INFO commands.

    Between two snapshots, the INFO calls counted in `total_commands_processed`
    (read by the first INFO of each snapshot) are exactly those counted in
    `cmd:info` (read by the second): the delta of `cmd:info` is what to take off
    the commands, and, one read per INFO, off the reads.
    """
    redis = deltas(before["redis"], after["redis"])
    probe = redis.pop("cmd:info", 0)
    redis["total_commands_processed"] -= probe
    redis["total_reads_processed"] -= probe
    envoy = deltas(before["envoy"], after["envoy"])
    cpu = deltas(before["cpu"], after["cpu"])
    # Everything else that ran meanwhile (the kernel's network work, any other
    # program on the machine) shows in the machine's totals: the report must
    # show it.
    cpu.update(deltas(before["machine"], after["machine"]))
    return {
        "cpu_s": {name: round(seconds, 3) for name, seconds in cpu.items()},
        "envoy": {k.removeprefix(ENVOY_STATS): v for k, v in envoy.items() if v},
        "redis": {k: v for k, v in redis.items() if v},
    }


def verdict(status: Counter[int] | dict[int, int], errors: dict[str, int]) -> str:
    """'ok', or why the run failed: unexpected statuses or socket errors."""
    unexpected = {code: n for code, n in status.items() if code != 200 and n}
    bad_errors = {name: n for name, n in errors.items() if n}
    if not status.get(200):
        return "failed: no 200 reply"
    if unexpected or bad_errors:
        return f"failed: statuses {unexpected}, errors {bad_errors}"
    return "ok"


def saturate(
    stack: BenchStack,
    probe: RedisProbe,
    setup: str,
    stream: bool,
    seconds: float,
    connections: int,
    reply_bytes: float,
) -> dict[str, Any]:
    """wrk at full speed for `seconds` on one set-up.

    Streams start and end in waves (the upstream paces them all alike), so the
    count of streams completed in a run jumps by whole waves. Their rate is
    therefore taken from the bytes Envoy sent to clients, in replies of
    `reply_bytes` each; JSON calls are counted as completed.
    """
    before = snapshot(stack, probe, setup)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk = run_wrk(stack.envoys[setup].port, stream, seconds, connections)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wait_quiet(probe)
    after = snapshot(stack, probe, setup)

    wrk_cpu = (after_children.ru_utime - children.ru_utime) + (
        after_children.ru_stime - children.ru_stime
    )
    elapsed = wrk["duration_us"] / 1e6
    record = changes(before, after)
    record["cpu_s"]["wrk"] = round(wrk_cpu, 3)
    completed = wrk["status"].get(200, 0) / elapsed
    sent = record["envoy"].get(TX_BYTES, 0) / reply_bytes / elapsed
    return {
        "setup": setup,
        "workload": "stream" if stream else "json",
        "seconds": round(elapsed, 3),
        "connections": connections,
        "status": wrk["status"],
        "errors": wrk["errors"],
        "verdict": verdict(wrk["status"], wrk["errors"]),
        "rps": round(sent if stream else completed, 1),
        "completed_rps": round(completed, 1),
        "wrk_latency_ms": {k: v / 1000 for k, v in wrk["latency_us"].items()},
        **record,
    }


def steady(
    stack: BenchStack,
    probe: RedisProbe,
    setup: str,
    stream: bool,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """The open-loop generator at `rate` calls/s for `seconds` on one set-up."""
    port = stack.envoys[setup].port
    requests = [http_request(port, i, stream) for i in range(CONSUMERS)]
    before = snapshot(stack, probe, setup)
    samples = asyncio.run(openloop.run(port, requests, rate, seconds))
    wait_quiet(probe)
    after = snapshot(stack, probe, setup)
    status = Counter(s.status for s in samples)
    return {
        "setup": setup,
        "workload": "stream" if stream else "json",
        "rate": rate,
        "seconds": seconds,
        "status": dict(status),
        "verdict": verdict(status, {}),
        "timings_ms": timings(samples, stream),
        **changes(before, after),
    }


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def timings(samples: list[openloop.Sample], stream: bool) -> dict[str, float]:
    """p50 and p99 of each milestone of the calls answered 200, in ms."""
    good = [s for s in samples if s.status == 200]
    series = {"total": [s.total_s for s in good]}
    if stream:
        series["headers"] = [s.headers_s for s in good]
        series["first_event"] = [s.first_event_s for s in good]
        series["chunk_gap"] = [
            (s.last_event_s - s.first_event_s) / (s.events - 1)
            for s in good
            if s.events > 1
        ]
    result = {}
    for name, values in series.items():
        for q in (50, 99):
            result[f"{name}_p{q}"] = round(percentile(values, q) * 1000, 3)
    if stream:
        result["events_min"] = min((s.events for s in good), default=0)
    return result
