"""Saturating load with wrk (Debian's `wrk` package) and the bench's Lua script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.workload import CONSUMERS, KEY_FORMAT, PATH, request_body

SCRIPT = Path(__file__).parent / "wrk" / "chat.lua"
INSTALL_HINT = "apt-get install -y wrk"
# A reply slower than this counts as a wrk timeout (an error), in s.
REPLY_TIMEOUT_S = 10
_MARK = "BENCH_RESULT "


def require_wrk() -> str:
    """The wrk binary, or SystemExit with the command that installs it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(f"wrk is not installed; install it with: {INSTALL_HINT}")
    return found


def run_wrk(
    port: int, stream: bool, duration_s: float, connections: int
) -> dict[str, Any]:
    """Run wrk for `duration_s` against 127.0.0.1:`port`; its BENCH_RESULT line."""
    env = dict(
        os.environ,
        BENCH_CONSUMERS=str(CONSUMERS),
        BENCH_KEY_FORMAT=KEY_FORMAT,
        BENCH_BODY=request_body(stream),
    )
    command = [
        require_wrk(),
        "--threads", "1",
        "--connections", str(connections),
        "--duration", f"{duration_s:g}s",
        "--timeout", f"{REPLY_TIMEOUT_S}s",
        "--script", str(SCRIPT),
        f"http://127.0.0.1:{port}{PATH}",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + REPLY_TIMEOUT_S + 20,
        check=True,
    )
    return parse_result(done.stdout)


def parse_result(output: str) -> dict[str, Any]:
    """The JSON that the Lua script's `done` printed after its mark."""
    for line in output.splitlines():
        if line.startswith(_MARK):
            result: dict[str, Any] = json.loads(line[len(_MARK) :])
            result["status"] = {int(k): v for k, v in result["status"].items()}
            return result
    raise RuntimeError(f"wrk printed no result line:\n{output[-2000:]}")
