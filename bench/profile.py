"""`make bench-profile`: where the sidecar spends its time under saturating load.

It starts the benchmark's stack, loads set-up C with wrk (JSON calls, then
streamed ones) and samples the sidecar process with py-spy meanwhile. The
folded stacks go to bench/results/profile-WORKLOAD.folded (not kept in git), a
summary of the hot spots to bench/results/profile.md.

Run: `python -m bench.profile [--seconds 20]` (needs py-spy: `pip install py-spy`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from bench.measure import RedisProbe
from bench.run import RESULTS, WORKLOADS, check_stack
from bench.stack import BenchStack
from bench.wrk import require_wrk, run_wrk
from extproc.devstack.tools import find_program

CONNECTIONS = {"json": 64, "stream": 32}
SAMPLES_PER_S = 100
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    try:
        return find_program("py-spy", "pip install py-spy")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def record(stack: BenchStack, workload: str, seconds: float, out: Path) -> Path:
    """wrk on set-up C while py-spy samples the sidecar; the folded stacks."""
    folded = out / f"profile-{workload}.folded"
    command = [
        py_spy(), "record", "--pid", str(stack.children["sidecar"].pid),
        "--duration", f"{seconds:g}", "--rate", str(SAMPLES_PER_S),
        "--format", "raw", "--nonblocking", "--output", str(folded),
    ]  # fmt: skip
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        stream = WORKLOADS[workload]
        run_wrk(stack.envoys["C"].port, stream, seconds + 2, CONNECTIONS[workload])
    finally:
        sampler.wait(timeout=seconds + 30)
    return folded


def _stacks(folded: str) -> list[tuple[list[str], int]]:
    """(frames from the root, samples) per line; line numbers dropped."""
    stacks = []
    for line in folded.splitlines():
        frames, _, count = line.rpartition(" ")
        stacks.append(([_LINE.sub(")", f) for f in frames.split(";")], int(count)))
    return stacks


def hot_spots(folded: str, top: int = 20) -> dict[str, list[tuple[str, float]]]:
    """Shares of samples: where the CPU was (self) and which product code led
    there (inclusive, product frames only), in percent."""
    stacks = _stacks(folded)
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    product: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            if "(extproc/" in frame:
                product[frame] += count
    share = {
        "self": own.most_common(top),
        "product_inclusive": product.most_common(top),
    }
    return {k: [(f, round(100 * n / total, 1)) for f, n in v] for k, v in share.items()}


def markdown(spots: dict[str, dict[str, list[tuple[str, float]]]]) -> str:
    lines = [
        "# Sidecar profile under saturating load (py-spy, set-up C)",
        "",
        "Samples of the sidecar's threads while on CPU. `Handle._run` as its own",
        "frame is native work started by the event loop (gRPC's Cython callbacks,",
        "task steps); `Thread.run` is gRPC's completion-queue poller thread; both",
        "are there in the no-op server too. Product frames are under `extproc/`.",
        "",
    ]
    for workload, tables in spots.items():
        for title, rows in tables.items():
            lines += [f"## {workload}: {title.replace('_', ' ')}", ""]
            lines += ["| % of samples | function |", "|---|---|"]
            lines += [f"| {pct:.1f} | `{frame}` |" for frame, pct in rows]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    require_wrk()
    py_spy()
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="extproc-profile-"))
    stack = BenchStack(workdir, chunks=200, tick_ms=1.0).start()
    probe = RedisProbe(stack.redis.url)
    spots = {}
    try:
        check_stack(stack, probe)
        for workload in WORKLOADS:
            folded = record(stack, workload, args.seconds, args.out)
            spots[workload] = hot_spots(folded.read_text())
    finally:
        probe.close()
        stack.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    text = markdown(spots)
    (args.out / "profile.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
