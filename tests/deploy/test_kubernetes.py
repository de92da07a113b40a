"""The kustomize tree renders, and what it renders agrees with itself."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.harness.processes import (
    REPO,
    EnvoyProcess,
    free_port,
    render_envoy_config,
)

KUSTOMIZE = REPO / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    """Rendered resources by kind (one of each kind, Secrets and ConfigMaps by name)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("no kubectl: it ships in the machine image (apt kubectl)")
    command = [
        kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone",
        str(KUSTOMIZE),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert 0 == result.returncode, result.stderr
    resources: dict[str, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(result.stdout):
        name = doc["metadata"]["name"]
        key = doc["kind"] if doc["kind"] not in ("ConfigMap", "Secret") else name
        resources[key] = doc
    return resources


def _pod(rendered: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(rendered["Deployment"]["spec"]["template"]["spec"])


def _container(rendered: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in _pod(rendered)["containers"] if c["name"] == name)


def test_resources_rendered(rendered: dict[str, dict[str, Any]]) -> None:
    """The tree renders the Deployment, Service, PDB, policy and generated data."""
    kinds = {doc["kind"] for doc in rendered.values()}
    expected = {
        "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget",
        "NetworkPolicy",
    }  # fmt: skip
    assert expected == kinds


def test_rules_come_from_the_repository(rendered: dict[str, dict[str, Any]]) -> None:
    """The rules ConfigMap holds rules/quotas.yaml byte for byte."""
    config_map = next(
        d for n, d in rendered.items() if n.startswith("llm-gateway-rules")
    )
    expected = (REPO / "rules" / "quotas.yaml").read_text()
    assert expected == config_map["data"]["quotas.yaml"]


def test_pod_mounts_what_was_generated(rendered: dict[str, dict[str, Any]]) -> None:
    """Every ConfigMap and Secret the pod mounts by hashed name was rendered."""
    volumes = _pod(rendered)["volumes"]
    sources = [
        s for v in volumes if "projected" in v for s in v["projected"]["sources"]
    ]
    mounted = {v["configMap"]["name"] for v in volumes if "configMap" in v}
    mounted |= {next(iter(s.values()))["name"] for s in sources}
    expected = {"llm-gateway-envoy", "llm-gateway-rules", "llm-gateway-consumers"}
    assert (expected, set()) == (
        {name.rsplit("-", 1)[0] for name in mounted},
        mounted - set(rendered),
    )


def test_selectors_match_the_pod(rendered: dict[str, dict[str, Any]]) -> None:
    """Service, PDB and NetworkPolicy select the Deployment's pods."""
    labels = rendered["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selectors = [
        rendered["Service"]["spec"]["selector"],
        rendered["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        rendered["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
    ]
    assert [labels] * 3 == selectors


def test_ports_agree(rendered: dict[str, dict[str, Any]]) -> None:
    """The Service targets Envoy's TLS port, the probes the sidecar's gRPC port,
    and both ports are the ones the production Envoy config uses."""
    envoy_config = yaml.safe_load(
        (REPO / "envoy" / "envoy-production.yaml").read_text()
    )
    listener = envoy_config["static_resources"]["listeners"][0]
    sidecar = _container(rendered, "sidecar")
    expected = (listener["address"]["socket_address"]["port_value"], 50051, 50051)
    actual = (
        _container(rendered, "envoy")["ports"][0]["containerPort"],
        sidecar["readinessProbe"]["grpc"]["port"],
        sidecar["ports"][0]["containerPort"],
    )
    assert expected == actual
    assert "https" == rendered["Service"]["spec"]["ports"][0]["targetPort"]


def test_shutdown_budget(rendered: dict[str, dict[str, Any]]) -> None:
    """Envoy drains first, the sidecar outlives it and still has its grace and
    settlement time inside terminationGracePeriodSeconds."""
    envoy_hook = _container(rendered, "envoy")["lifecycle"]["preStop"]["exec"]
    envoy_drain = int(envoy_hook["command"][-1].rsplit("sleep", 1)[1])
    sidecar = _container(rendered, "sidecar")
    sidecar_wait = sidecar["lifecycle"]["preStop"]["sleep"]["seconds"]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    grace = float(env["EXTPROC_SHUTDOWN_GRACE_SECONDS"])
    # The sidecar's stop waits up to `grace` for streams, then `grace` for
    # settlements.
    assert envoy_drain < sidecar_wait
    assert sidecar_wait + 2 * grace < _pod(rendered)["terminationGracePeriodSeconds"]


@pytest.fixture
def envoy() -> Iterator[EnvoyProcess]:
    process = EnvoyProcess(
        render_envoy_config(free_port(), free_port(), free_port(), free_port())
    ).start()
    yield process
    process.stop()


def test_envoy_prestop_starts_a_drain(
    rendered: dict[str, dict[str, Any]], envoy: EnvoyProcess
) -> None:
    """Envoy's preStop hook, run by bash against a real Envoy, is answered 200."""
    hook = _container(rendered, "envoy")["lifecycle"]["preStop"]["exec"]["command"]
    script = (
        hook[-1]
        .replace("127.0.0.1/9901", f"127.0.0.1/{envoy.admin_port}")
        .replace("cat <&3 >/dev/null", "head -n 1 <&3")
        .replace("sleep 60", "true")
    )
    result = subprocess.run(
        [hook[0], "-c", script], capture_output=True, text=True, timeout=10
    )
    assert "HTTP/1.1 200 OK" == result.stdout.strip()
