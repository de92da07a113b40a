"""The committed admin stubs are exactly what the proto compiles to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness.processes import REPO

GENERATED = ("admin_pb2.py", "admin_pb2_grpc.py", "admin_pb2.pyi")


def test_committed_stubs_match_a_fresh_compile(tmp_path: Path) -> None:
    """Regenerating from admin.proto gives byte-identical committed files."""
    script = REPO / "scripts" / "gen_protos.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    folder = Path("extproc/admin/v1")
    for name in GENERATED:
        fresh = (tmp_path / folder / name).read_bytes()
        committed = (REPO / folder / name).read_bytes()
        assert fresh == committed, f"{name} drifted: run scripts/gen_protos.py"
