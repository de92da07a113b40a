"""docker-compose.yml and the Dockerfile agree with the files and ports they use.

Docker does not run in the test environment: these checks read the files.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.harness.processes import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _envoy_config() -> dict[str, Any]:
    mounts = [v.split(":") for v in SERVICES["envoy"]["volumes"]]
    host = next(
        h for h, container, *_ in mounts if container == "/etc/envoy/envoy.yaml"
    )
    return dict(yaml.safe_load((REPO / host).read_text()))


def test_services() -> None:
    """Compose runs Envoy, the sidecar, Redis and the fake provider."""
    assert {"envoy", "sidecar", "redis", "fake-upstream"} == set(SERVICES)


def test_mounted_files_exist() -> None:
    """Every file or folder mounted from the repository exists."""
    hosts = [v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", [])]
    assert ["./rules", "./envoy/envoy-compose.yaml"] == hosts
    assert [] == [host for host in hosts if not (REPO / host).exists()]


def test_images_are_pinned() -> None:
    """No image floats on `latest` or on a bare name."""
    images = [s["image"] for s in SERVICES.values()]
    assert [] == [i for i in images if ":" not in i or i.endswith(":latest")]


def test_envoy_clusters_point_at_services() -> None:
    """Envoy's clusters name the compose services and the ports they listen on."""
    clusters = {}
    for cluster in _envoy_config()["static_resources"]["clusters"]:
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        address = endpoint["endpoint"]["address"]["socket_address"]
        clusters[cluster["name"]] = (address["address"], address["port_value"])
    sidecar = SERVICES["sidecar"]["command"]
    upstream = SERVICES["fake-upstream"]["entrypoint"]
    expected = {
        "quota_sidecar": ("sidecar", int(_flag(sidecar, "--port"))),
        "llm_provider": ("fake-upstream", int(_flag(upstream, "--port"))),
    }
    assert expected == clusters


def test_published_port_is_envoys_listener() -> None:
    """The port compose publishes on the laptop is Envoy's listener port."""
    listener = _envoy_config()["static_resources"]["listeners"][0]
    port = listener["address"]["socket_address"]["port_value"]
    assert [f"127.0.0.1:{port}:{port}"] == SERVICES["envoy"]["ports"]


def test_sidecar_reads_the_mounted_rules() -> None:
    """The sidecar's --rules folder is where compose mounts rules/."""
    sidecar = SERVICES["sidecar"]
    mount = sidecar["volumes"][0].split(":")[1]
    assert mount == _flag(sidecar["command"], "--rules")


def _dockerfile_instruction(name: str) -> list[str]:
    text = (REPO / "Dockerfile").read_text()
    lines = re.findall(rf"^{name} (.+)$", text, flags=re.MULTILINE)
    return [line.strip() for line in lines]


def test_image_runs_extproc_serve_as_documented() -> None:
    """The image starts `extproc serve`, the command docs/deployment.md shows."""
    entry = json.loads(_dockerfile_instruction("ENTRYPOINT")[-1])
    command = json.loads(_dockerfile_instruction("CMD")[-1])
    assert ["extproc", "serve"] == entry + command
    assert "extproc serve" in (REPO / "docs" / "deployment.md").read_text()


def test_image_is_small_pinned_and_non_root() -> None:
    """Slim pinned base images, and a numeric non-root user at run time."""
    bases = [line.split()[0] for line in _dockerfile_instruction("FROM")]
    assert ["python:3.11.11-slim-bookworm"] * 2 == bases
    assert ["10001"] == _dockerfile_instruction("USER")
