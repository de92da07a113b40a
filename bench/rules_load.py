"""How long the rule set takes to load: 10,000 consumers and 1,000 rules.

The folder is the one the loader's scale test writes (ten consumer files and
one rules file, half the rules binding by label selector); it is loaded several
times and the wall and CPU times of each load are kept. Loading happens at
start and on every change of the folder, off the hot path, but a reload holds
the event loop while it runs.

Run: `python -m bench.rules_load [--repeat 5]`; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from extproc.rules.loader import load_rules
from tests.rules.test_scale import CONSUMERS, RULES, write_large_set


def measure(repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="extproc-rules-") as folder:
        write_large_set(Path(folder))
        walls, cpus = [], []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            rules = load_rules(Path(folder))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {
        "consumers": len(rules.consumers),
        "rules": len(rules.rules),
        "expected": [CONSUMERS, RULES],
        "wall_s": {
            "median": round(statistics.median(walls), 3),
            "min": round(min(walls), 3),
        },
        "cpu_s": {
            "median": round(statistics.median(cpus), 3),
            "min": round(min(cpus), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    print(json.dumps(measure(parser.parse_args().repeat)))


if __name__ == "__main__":
    main()
