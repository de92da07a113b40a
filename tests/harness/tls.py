"""Throwaway certificates for TLS tests, made with the `openssl` command line.

One test CA signs two leaf certificates: the gateway's (localhost, 127.0.0.1) and
the fake provider's (the providers' real host names, so Envoy's SNI and SAN checks
run unchanged against a loopback upstream).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROVIDER_NAMES = ("api.openai.com", "api.anthropic.com")


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    gateway_cert: Path
    gateway_key: Path
    provider_cert: Path
    provider_key: Path


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("no openssl command: install Debian's openssl package")
    subprocess.run([binary, *args], check=True, capture_output=True, timeout=30)


def _leaf(directory: Path, name: str, sans: str, ca: tuple[Path, Path]) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "1", "-subj", f"/CN={name}",
        "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-addext", f"subjectAltName={sans}",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "extendedKeyUsage=serverAuth",
        "-keyout", str(directory / f"{name}.key"),
        "-out", str(directory / f"{name}.crt"),
    )  # fmt: skip


def make_tls_files(directory: Path) -> TlsFiles:
    """A CA and two leaf certificates (valid for one day) under `directory`."""
    ca = (directory / "ca.crt", directory / "ca.key")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "1", "-subj", "/CN=extproc test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", str(ca[1]), "-out", str(ca[0]),
    )  # fmt: skip
    _leaf(directory, "gateway", "DNS:localhost,IP:127.0.0.1", ca)
    provider_sans = ",".join(f"DNS:{name}" for name in PROVIDER_NAMES)
    _leaf(directory, "provider", provider_sans, ca)
    return TlsFiles(
        ca_cert=ca[0],
        gateway_cert=directory / "gateway.crt",
        gateway_key=directory / "gateway.key",
        provider_cert=directory / "provider.crt",
        provider_key=directory / "provider.key",
    )
