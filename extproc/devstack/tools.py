"""Finding the programs that the demo stack, tests and benchmark start."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_program(name: str, remedy: str) -> str:
    """`name` installed beside this Python (by a wheel in its environment),
    else on PATH; RuntimeError saying how to install it when it is neither.

    The environment's own copy comes first so that `make` targets use the
    versions the project pins, whatever else the machine has.
    """
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: {remedy}")
    return found
