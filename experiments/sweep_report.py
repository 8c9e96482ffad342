"""The excerpts of `inosim compare` on the dose sweep in docs/experiments.md, generated: the summary
(best and worst grid points of two headline metrics) and the observational-vs-causal section.

Runs ``inosim sweep experiments/dose_cutoff_sweep.yaml`` (its 240 replicates of 338 patients per grid
point, about 10 s) and ``inosim compare`` on the results, as text and as ``--format json``; stores the
excerpts and the paired differences they quote (experiments/sweep_results.json) and rewrites the
page's blocks between the ``generated`` markers (``--print`` prints them; ``--render`` rewrites them
from the stored run). ``tests/test_docs.py`` checks the blocks against the stored run and reruns a
smaller sweep at another seed.

    .venv/bin/python experiments/sweep_report.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _generated import END, begin, run_report

from simulator.cli import guarded, positive_int, seed_int

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "experiments.md"
RESULTS = ROOT / "experiments" / "sweep_results.json"
EXPERIMENT = ROOT / "experiments" / "dose_cutoff_sweep.yaml"
BEGIN = begin(Path(__file__).name)
SUMMARY_METRICS = ("CR/CRi rate", "overall survival at 24 months (KM)")  # the summary's blocks shown


def _inosim(*args: str) -> str:
    """What ``inosim ARGS`` prints on standard output."""
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout


def sweep_and_compare(replicates: int, seed: int) -> tuple[list[str], dict]:
    """``inosim compare`` of a fresh dose sweep: its text lines and its ``--format json`` output."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "dose.nc")
        _inosim("sweep", str(EXPERIMENT), "--out", out, "--replicates", str(replicates), "--seed", str(seed))
        return _inosim("compare", out).splitlines(), json.loads(_inosim("compare", out, "--format", "json"))


def _summary(lines: list[str]) -> list[str]:
    """The intervals sentence and the chosen metrics' best and worst rows."""
    out = lines[:lines.index("")]
    for metric in SUMMARY_METRICS:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{metric} ("))
        end = lines.index("", start)
        out += ["", *lines[start:end]]
    return out


def _contrast(lines: list[str]) -> list[str]:
    """The observational-vs-causal section: its sentences, both tables and the note under them."""
    start = next(i for i, line in enumerate(lines) if line.startswith("Observational vs causal contrast"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Full paired-difference tables"))
    return lines[start:end - 1]


def quoted(found: dict) -> list[dict]:
    """The paired differences the summary shows: each chosen metric's best and worst grid points."""
    shown = [r for r in found["differences"] if r["metric_name"] in SUMMARY_METRICS]
    rows = []
    for metric in SUMMARY_METRICS:
        mine = [r for r in shown if r["metric_name"] == metric]
        rows += [min(mine, key=lambda r: r["difference"]), max(mine, key=lambda r: r["difference"])]
    return rows


def simulate(args: argparse.Namespace) -> dict:
    """The sweep and comparison at the experiment's size, the excerpts and the differences they quote."""
    lines, found = sweep_and_compare(args.replicates, args.seed)
    return {"replicates": args.replicates, "seed": args.seed, "summary": _summary(lines),
            "contrast": _contrast(lines), "quoted": quoted(found), "reference": found["reference"]}


def blocks(results: dict) -> list[str]:
    """The page's two blocks: the summary excerpt and the contrast tables."""
    return ["\n".join([BEGIN, "```", *results[part], "```", END]) for part in ("summary", "contrast")]


def main() -> None:
    """Sweep, compare, store the results and rewrite the doc's blocks (or print them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=positive_int, default=240)
    parser.add_argument("--seed", type=seed_int, default=2025)
    run_report(parser, DOC, RESULTS, BEGIN, simulate, blocks)


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
