"""Every Envoy configuration in the repository is accepted by the real Envoy."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.processes import (
    PRODUCTION_CONFIG,
    REPO,
    envoy_binary,
    render_production_text,
    resolve_on_loopback,
)
from tests.harness.tls import TlsFiles, make_tls_files

CONFIGS = sorted((REPO / "envoy").glob("*.yaml"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _rendered(path: Path, tls: TlsFiles) -> dict[str, Any]:
    """The config with certificate paths moved to throwaway files."""
    text = render_production_text(tls.gateway_cert, tls.gateway_key)
    if path != PRODUCTION_CONFIG:
        text = path.read_text()
    return resolve_on_loopback(yaml.safe_load(text))


def _validate(
    config: dict[str, Any], workdir: Path
) -> subprocess.CompletedProcess[str]:
    config_path = workdir / "envoy.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [envoy_binary(), "--mode", "validate", "-c", str(config_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_configs_are_found() -> None:
    """The plain, production and compose configurations are all checked."""
    expected = {"envoy.yaml", "envoy-production.yaml", "envoy-compose.yaml"}
    assert expected == {path.name for path in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_envoy_accepts_config(path: Path, tls: TlsFiles, tmp_path: Path) -> None:
    """`envoy --mode validate` accepts the configuration."""
    result = _validate(_rendered(path, tls), tmp_path)
    assert 0 == result.returncode, result.stdout[-3000:] + result.stderr[-3000:]


def test_envoy_refuses_missing_certificate(tls: TlsFiles, tmp_path: Path) -> None:
    """The validation would notice a broken config: a missing key file fails it."""
    config = _rendered(PRODUCTION_CONFIG, tls)
    text = yaml.safe_dump(config).replace(str(tls.gateway_key), "/nonexistent.key")
    result = _validate(yaml.safe_load(text), tmp_path)
    assert 1 == result.returncode


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_admin_is_bound_to_loopback(path: Path) -> None:
    """Envoy's admin interface, which can drain and stop it, listens on loopback."""
    config = yaml.safe_load(path.read_text())
    assert "127.0.0.1" == config["admin"]["address"]["socket_address"]["address"]
