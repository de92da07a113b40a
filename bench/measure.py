"""What the benchmark reads from the processes it runs: CPU, memory, Redis counts.

CPU comes from /proc/PID/stat (user plus system time, in clock ticks of
1/SC_CLK_TCK s), peak memory from VmHWM in /proc/PID/status. Redis numbers come
from INFO: `commandstats` counts every command, those a client sent and those a
Lua script ran with redis.call; `total_reads_processed` counts the reads Redis
made from client sockets, one per request that arrives in one packet, which for
small commands and pipelines is one per round trip.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import redis

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: split after its closing paren.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS_PER_S


def machine_cpu() -> dict[str, float]:
    """CPU time of all CPUs since boot, in seconds: not idle, and of that the
    part spent on interrupts (loopback networking runs there, in no process)."""
    ticks = [
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ]
    idle, iowait, irq, softirq = ticks[3], ticks[4], ticks[5], ticks[6]
    return {
        "machine_busy": (sum(ticks) - idle - iowait) / _TICKS_PER_S,
        "machine_irq": (irq + softirq) / _TICKS_PER_S,
    }


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size so far, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class RedisProbe:
    """One kept connection to Redis, so a snapshot adds no connection handshake."""

    # What one snapshot adds to the counts it reads: two INFO commands.
    COMMANDS = 2

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def counts(self) -> dict[str, int]:
        """Calls per command (`cmd:NAME`) and the server-wide request counters."""
        stats = self.client.info("stats")
        commands = self.client.info("commandstats")
        counts = {
            name: int(stats[name])
            for name in ("total_commands_processed", "total_reads_processed")
        }
        for name, values in commands.items():
            counts["cmd:" + name.removeprefix("cmdstat_")] = int(values["calls"])
        return counts

    def close(self) -> None:
        self.client.close()


def deltas(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """after - before for every key of `after` (a missing `before` counts as 0)."""
    return {key: after[key] - before.get(key, 0) for key in after}
