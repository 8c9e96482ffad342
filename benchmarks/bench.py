"""Benchmark InOSim: the same as ``inosim bench`` (arguments are passed on).

    .venv/bin/python benchmarks/bench.py            # report
    .venv/bin/python benchmarks/bench.py --json     # one JSON object

The measurements live in :mod:`simulator.benchmark`.
"""

import sys

from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
