"""The benchmark's processes: one upstream, one Redis, the two ext_proc servers
and three Envoys built from the shipped envoy.yaml, one per set-up.

- A: Envoy alone (the ext_proc filter removed);
- B: Envoy with the no-op ext_proc server, same processing modes;
- C: Envoy with the product's sidecar, real Redis.

All three run side by side for the whole benchmark, so the rounds can alternate
between them without restarts; an idle Envoy costs next to nothing. The access
log of the shipped configuration is removed in all three: it would measure the
disk, not the sidecar.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.processes import (
    REPO,
    EnvoyProcess,
    RedisServer,
    free_port,
    render_envoy_config,
    wait_for_port,
)

SETUPS = ("A", "B", "C")
EXT_PROC_FILTER = "envoy.filters.http.ext_proc"


def envoy_config(setup: str, processor_port: int, upstream_port: int) -> dict[str, Any]:
    """The shipped configuration on free ports, trimmed for set-up `setup`."""
    config = render_envoy_config(
        free_port(), processor_port, upstream_port, free_port()
    )
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    manager.pop("access_log", None)
    if setup == "A":
        filters = manager["http_filters"]
        manager["http_filters"] = [f for f in filters if f["name"] != EXT_PROC_FILTER]
    return config


# A free port can be taken by someone else before Envoy binds it: new ports
# are tried this many times.
ENVOY_ATTEMPTS = 3


def _start_envoy(setup: str, processor_port: int, upstream_port: int) -> EnvoyProcess:
    for attempt in range(ENVOY_ATTEMPTS):
        envoy = EnvoyProcess(envoy_config(setup, processor_port, upstream_port))
        try:
            return envoy.start()
        except RuntimeError as exc:
            if (
                "Address already in use" not in str(exc)
                or attempt + 1 == ENVOY_ATTEMPTS
            ):
                raise
    raise AssertionError("unreachable")


@dataclass
class PythonProcess:
    """A `python -m MODULE` child on a port of its own, output kept in files."""

    module: str
    args: list[str]
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> PythonProcess:
        name = self.module.rsplit(".", 1)[-1]
        command = [sys.executable, "-m", self.module, "--port", str(self.port)]
        with (
            (self.workdir / f"{name}.out").open("wb") as out,
            (self.workdir / f"{name}.err").open("wb") as err,
        ):
            self.process = subprocess.Popen(
                command + self.args, cwd=REPO, stdout=out, stderr=err
            )
        wait_for_port(self.port, timeout=20)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> str:
        """Stop with SIGTERM (SIGKILL after 15 s); return what it printed."""
        if self.process is None:
            return ""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None
        name = self.module.rsplit(".", 1)[-1]
        return (self.workdir / f"{name}.out").read_text()


@dataclass
class BenchStack:
    workdir: Path
    chunks: int
    tick_ms: float
    redis: RedisServer = field(default_factory=RedisServer)
    children: dict[str, PythonProcess] = field(default_factory=dict)
    envoys: dict[str, EnvoyProcess] = field(default_factory=dict)

    def start(self) -> BenchStack:
        """Start everything; on any failure stop what did start, then raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.redis.start()
        upstream_args = ["--chunks", str(self.chunks), "--tick-ms", str(self.tick_ms)]
        sidecar_args = ["--redis-url", self.redis.url]
        for name, module, args in (
            ("upstream", "bench.upstream", upstream_args),
            ("noop", "bench.noop_processor", []),
            ("sidecar", "bench.sidecar", sidecar_args),
        ):
            self.children[name] = PythonProcess(module, args, self.workdir).start()
        upstream = self.children["upstream"].port
        processors = {
            "A": self.children["noop"].port,  # unused: A has no ext_proc filter
            "B": self.children["noop"].port,
            "C": self.children["sidecar"].port,
        }
        for setup in SETUPS:
            self.envoys[setup] = _start_envoy(setup, processors[setup], upstream)

    def pids(self) -> dict[str, int]:
        """Every process whose CPU the benchmark reads, by role."""
        pids = {name: child.pid for name, child in self.children.items()}
        assert self.redis.process is not None
        pids["redis"] = self.redis.process.pid
        for setup, envoy in self.envoys.items():
            assert envoy.process is not None
            pids[f"envoy_{setup}"] = envoy.process.pid
        return pids

    def stop(self) -> dict[str, str]:
        """Stop every process in reverse order; what each Python child printed."""
        for envoy in self.envoys.values():
            envoy.stop()
        printed = {name: child.stop() for name, child in self.children.items()}
        self.redis.stop()
        return printed
