"""Compile protos/ into the Python modules committed under extproc/.

Run from anywhere: `python scripts/gen_protos.py [--out DIR]`. The generated
files are committed so that installing the package needs no protoc; a test
regenerates them into a temporary folder and compares, so they never drift.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[1]
PROTOS = REPO / "protos"
SOURCES = ("extproc/admin/v1/admin.proto",)


def generate(out: Path) -> None:
    """Write the *_pb2.py, *_pb2_grpc.py and *_pb2.pyi files under `out`."""
    well_known = resources.files("grpc_tools") / "_proto"
    for source in SOURCES:
        argv = [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--pyi_out={out}",
            str(PROTOS / source),
        ]
        if protoc.main(argv) != 0:
            raise SystemExit(f"protoc failed on {source}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO, help="output root")
    generate(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
