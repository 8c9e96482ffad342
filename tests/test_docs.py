"""The documentation cannot rot: every snippet and command in README.md and docs/*.md runs or parses.

* Every ```python block runs, in order within its page, as written (sizes included), in a
  temporary folder holding links to ``configs/`` and ``experiments/`` (so the relative
  paths work) with the repository root on the path. Blocks that import a package this
  environment does not have (the dask-jobqueue and dask-kubernetes cluster recipes) are
  compiled, and their imports from ``simulator`` are checked.
* Every ```sh line that calls ``inosim`` is parsed by the command's own parser (an unknown
  option or command fails the test); those of README.md (the front page a new user
  follows) are also run, in order, in one temporary folder. The other pages' commands
  (full sweeps, calibration, benchmarks: minutes each) are parsed only.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import re
import shlex
import sys
import warnings
from pathlib import Path

import pytest
from conftest import ROOT

from simulator.cli import build_parser, main

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INOSIM = (".venv/bin/inosim", "inosim")


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def commands(page: Path) -> list[list[str]]:
    """The inosim command lines of a page's ```sh blocks, as argument lists."""
    out = []
    for body in blocks(page, "sh"):
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] in INOSIM:
                out.append(words[1:])
    return out


def _top_imports(code: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name in ("configs", "experiments"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    return tmp_path


def test_the_docs_have_snippets_and_commands():
    assert sum(len(blocks(p, "python")) for p in PAGES) >= 5
    assert sum(len(commands(p)) for p in PAGES) >= 15
    assert len(commands(ROOT / "README.md")) >= 4


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_snippets_run(page, workdir):
    for i, code in enumerate(blocks(page, "python")):
        imports = _top_imports(code)
        missing = [m for m in imports if importlib.util.find_spec(m.split(".")[0]) is None]
        compiled = compile(code, f"{page.name}[python {i}]", "exec")
        if missing:  # a cluster recipe: it cannot run here; its own imports must exist
            for module in imports:
                if module.startswith("simulator"):
                    importlib.import_module(module)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SALib's, on the small sizes of a snippet
            exec(compiled, {"__name__": "__main__"})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_parses(page):
    parser = build_parser()
    for args in commands(page):
        if args in (["--version"], ["--help"]):
            continue
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"{page.name}: inosim {' '.join(args)}: refused by the parser (exit {exc.code})")


def test_front_page_commands_run_in_order(workdir, capsys):
    for args in commands(ROOT / "README.md"):
        assert main(args) == 0, f"inosim {' '.join(args)}: {capsys.readouterr().err}"
    capsys.readouterr()
    assert (workdir / "cap.nc").is_file() and (workdir / "strategies.nc").is_file()
    assert list((workdir / "strategies_plots").glob("*.png"))
    assert (workdir / "strategies_plots" / "answer_two_cycles_then_stop.png").is_file()  # the front page's figure


def test_links_between_pages_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
GENERATED_TOLERANCE = 0.02  # a printed number may move by this much (two units of its last digit) between machines


def _written(report, text: str) -> str:
    """The first block of ``text`` between ``report``'s generated markers, markers included."""
    start = text.index(report.BEGIN)
    return text[start:text.index(report.END, start) + len(report.END)]


def _same_but_for_rounding(written: str, printed: str) -> bool:
    """The same text, with every number within GENERATED_TOLERANCE of the printed one."""
    if NUMBER.split(written) != NUMBER.split(printed):
        return False
    pairs = zip(NUMBER.findall(written), NUMBER.findall(printed), strict=True)
    return all(abs(float(a) - float(b)) <= GENERATED_TOLERANCE for a, b in pairs)


def test_sensitivity_numbers_are_what_the_commands_print(monkeypatch):
    """docs/sensitivity.md's generated block is what the tornado command and the SOS one-way print now."""
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    report = importlib.import_module("sensitivity_report")
    written = _written(report, report.DOC.read_text())
    assert _same_but_for_rounding(written, report.block()), \
        "docs/sensitivity.md drifted: run .venv/bin/python experiments/sensitivity_report.py"



def test_performance_figures_are_the_report_of_the_stored_benchmark_run():
    """docs/performance.md's generated block is `inosim bench`'s report of benchmarks/results.json
    (timings cannot be measured again here: they are checked against the stored run)."""
    import json

    spec = importlib.util.spec_from_file_location("benchmark_report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    written = _written(report, report.DOC.read_text())
    assert written == report.block(json.loads(report.RESULTS.read_text())), \
        "docs/performance.md was edited by hand: run .venv/bin/python benchmarks/report.py --results FILE"


def _experiment(name: str):
    """The script experiments/NAME.py as a module (with experiments/ on the path, as when it runs)."""
    if str(ROOT / "experiments") not in sys.path:
        sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report


def test_comparators_tables_are_the_stored_results():
    """docs/comparators.md's generated blocks are experiments/comparators_report.py's rendering of its stored run."""
    import json

    report = _experiment("comparators_report")
    written = _experiment("_generated").written_blocks(report.DOC.read_text(), report.BEGIN)
    assert written == report.blocks(json.loads(report.RESULTS.read_text())), \
        "docs/comparators.md was edited by hand: run .venv/bin/python experiments/comparators_report.py --render"


SMALL = {"patients": 20_000, "trials": 500, "truth_patients": 50_000, "draws": 100, "seed": 7,
         "records": 100_000}  # records: patients of the reruns that only simulate and summarise records (< 1 s)
Z = 4.0  # a stored number may differ from a small rerun at another seed by this many Monte Carlo SEs


def _near(stored: float, again: float, se: float, what: str) -> None:
    assert abs(stored - again) <= Z * se, f"{what}: stored {stored:.4f}, now {again:.4f} (allowed {Z * se:.4f})"


def test_comparators_stored_results_are_what_the_model_gives_now():
    """The stored run is the current model's: a small rerun at another seed lands within Z Monte Carlo SEs of
    every stored number (SEs of both runs: binomial for rates and powers, the check's own for its figures,
    the bootstrap's for the posterior widths); the ensemble's summary is the shipped file's."""
    import json

    report = _experiment("comparators_report")
    stored = json.loads(report.RESULTS.read_text())
    n, trials, seed = SMALL["patients"], SMALL["trials"], SMALL["seed"]
    for trial, run in zip(stored["check"], report.check_results(n, (seed, seed + 1))):
        for a, b in zip(trial["rows"], run["rows"], strict=True):
            if math.isfinite(b["se"][0]) and b["se"][0] > 0:
                _near(a["simulated"][0], b["simulated"][0], math.hypot(a["se"][0], b["se"][0]),
                      f"{trial['title']}: {a['label']}")
    arms = report.arm_results(n, seed)
    m = stored["arm_patients"]
    for name, arm in stored["arms"][0].items():
        for a, b in zip(arm["arms"], arms[name]["arms"], strict=True):
            for p, q in zip(a["milestones"], b["milestones"]):
                _near(p, q, math.sqrt(p * (1 - p) * (1 / m + 1 / n)), f"{name} {a['treatment']} milestone")
        for p, q in zip(arm["hazard_ratios"], arms[name]["hazard_ratios"]):
            _near(math.log(p), math.log(q), 0.03, f"{name} log hazard ratio by period")  # SE <= 0.03 at 2,000 deaths
    for name, b in report.sequence_results(n, seed).items():
        a = stored["sequences"][0][name]
        for key in ("os_24", "next_line", "hsct"):
            p = a[key]
            _near(p, b[key], math.sqrt(p * (1 - p) * (1 / m + 1 / n)) + 1e-9, f"{name} {key}")
        if a["next_response"] is not None:
            p = a["next_response"]
            _near(p, b["next_response"], math.sqrt(p * (1 - p) / (a["next_line"] * n)), f"{name} next response")
    for name, path in report.PIVOTAL.items():
        a, b = stored["trials"][name][0], report.trial_results(path, seed, trials, SMALL["truth_patients"])
        for test, (p, *_) in a["power"].items():
            q = b["power"][test][0]
            _near(p, q, math.sqrt(p * (1 - p) / a["trials"] + q * (1 - q) / trials) + 1e-9, f"{name} power {test}")
        _near(a["hr_true"], b["hr_true"], 0.01, f"{name} true HR")  # SE about 0.003 at 50,000 patients per arm
        _near(a["hr_median"], b["hr_median"], 0.006, f"{name} median HR estimate")  # SE of both runs' medians
        _near(a["cr_difference_true"], b["cr_difference_true"], math.sqrt(0.5 / SMALL["truth_patients"]),
              f"{name} true CR/CRi difference")
    assert stored["ensemble"] == report.ensemble_results(), "the modules' ensemble changed: rerun the report"
    a, b = stored["widths"][0], report.width_results(seed, draws=SMALL["draws"])
    for mode in ("fit", "drawn"):
        for metric, (w, se) in a[mode].items():
            _near(w, b[mode][metric][0], math.hypot(se, b[mode][metric][1]), f"posterior width of {metric}, {mode}")


def test_shipped_designs_table_is_the_stored_results():
    """docs/trials.md's table of the shipped designs and the text under it are experiments/trials_report.py's
    rendering of its stored run."""
    import json

    report = _experiment("trials_report")
    written = _written(report, report.DOC.read_text())
    assert written == report.block(json.loads(report.RESULTS.read_text())), \
        "docs/trials.md was edited by hand: run .venv/bin/python experiments/trials_report.py --render"


def test_shipped_designs_stored_results_are_what_the_model_gives_now():
    """A small rerun of each shipped design at another seed lands within Z Monte Carlo SEs of the stored run:
    its figures (binomial SEs for rejection, stopping and selection rates; for the others, the SE implied
    by the stored and new 95% CIs) and its truth (binomial SEs for the rates, the utilities' from the rates,
    0.01 for hazard ratios, 0.05 months for RMST differences, sqrt(0.5 / n) for differences of rates)."""
    import json

    report = _experiment("trials_report")
    stored = json.loads(report.RESULTS.read_text())
    trials, n, m = SMALL["trials"], SMALL["truth_patients"], stored["truth_patients"]
    for path, runs in zip(report.DESIGNS, stored["designs"], strict=True):
        a = runs[0]
        b = report.design_results(path, SMALL["seed"], trials, n)
        assert a["figures"].keys() == b["figures"].keys(), path.name
        for name, (p, lo, hi) in a["figures"].items():
            q, lo2, hi2 = b["figures"][name]
            if name.startswith(("power: ", "type I error: ", "stop at look ", "P(")):
                se = math.sqrt(p * (1 - p) / a["trials"] + q * (1 - q) / trials) + 1e-9
            else:
                se = math.hypot(hi - lo, hi2 - lo2) / (2 * 1.96) + 1e-9
            _near(p, q, se, f"{path.name}: {name}")
        for arm, rates in a["truth"]["rate"].items():
            for endpoint, p in rates.items():
                _near(p, b["truth"]["rate"][arm][endpoint], math.sqrt(p * (1 - p) * (1 / m + 1 / n)),
                      f"{path.name}: true {endpoint} rate of {arm}")
            sd = math.sqrt(rates["cr_cri"] * (1 - rates["cr_cri"])) + 2 * math.sqrt(
                rates["sos_post_hsct"] * (1 - rates["sos_post_hsct"]))  # utility = CR/CRi - 2 post-HSCT SOS
            _near(a["truth"]["utility"][arm], b["truth"]["utility"][arm], sd * math.sqrt(1 / m + 1 / n),
                  f"{path.name}: true utility of {arm}")
        for test, by_look in a["truth"]["estimate"].items():
            se = 0.01 if test.startswith(("os_cox", "os_logrank")) else 0.05 if test.startswith("os_rmst") \
                else math.sqrt(0.5 / n)
            for p, q in zip(by_look, b["truth"]["estimate"][test], strict=True):
                if math.isfinite(p):
                    _near(p, q, se, f"{path.name}: true {test}")


def test_cause_of_death_shares_are_what_the_script_gives_now():
    """docs/model.md's and docs/evidence.md's shares of the causes of death are experiments/causes_report.py's
    blocks (recomputed: 3 x 200,000 patients, a few seconds)."""
    spec = importlib.util.spec_from_file_location("causes_report", ROOT / "experiments" / "causes_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    for doc, block in zip(report.DOCS, (report.model_block(200_000, 1), report.evidence_block(200_000, 1))):
        written = _written(report, doc.read_text())
        assert _same_but_for_rounding(written, block), \
            f"docs/{doc.name} drifted: run .venv/bin/python experiments/causes_report.py"


def test_calibration_figures_are_the_stored_results():
    """docs/calibration.md's generated block is experiments/calibration_report.py's rendering of its stored run."""
    import json

    report = _experiment("calibration_report")
    written = _written(report, report.DOC.read_text())
    assert written == report.block(json.loads(report.RESULTS.read_text())), \
        "docs/calibration.md was edited by hand: run .venv/bin/python experiments/calibration_report.py --render"


def test_calibration_stored_results_are_what_the_model_gives_now():
    """The check's figures rerun on fewer patients at another seed land within Z Monte Carlo SEs (the check's own,
    of both runs) of the stored ones; the parameters' fitted values and ranges are the shipped files'."""
    import json

    report = _experiment("calibration_report")
    stored = json.loads(report.RESULTS.read_text())
    for a, b in zip(stored["figures"], report.figure_results(SMALL["records"], (SMALL["seed"],)), strict=True):
        _near(a["simulated"][0], b["simulated"][0], math.hypot(a["se"][0], b["se"][0]) + 1e-9, a["key"])
    assert stored["posterior"] == report.parameter_results(), "the shipped fit or posterior changed: rerun the report"


def test_sweep_blocks_are_the_stored_results():
    """docs/experiments.md's excerpts of `inosim compare` on the dose sweep are the stored run's."""
    import json

    report = _experiment("sweep_report")
    written = _experiment("_generated").written_blocks(report.DOC.read_text(), report.BEGIN)
    assert written == report.blocks(json.loads(report.RESULTS.read_text())), \
        "docs/experiments.md was edited by hand: run .venv/bin/python experiments/sweep_report.py --render"


def test_sweep_stored_results_are_what_the_model_gives_now():
    """The paired differences the excerpt quotes (each metric's best and worst grid points): a sweep of 24
    replicates at another seed lands within Z Monte Carlo SEs of each (SEs from both runs' 95% CIs)."""
    import json

    report = _experiment("sweep_report")
    stored = json.loads(report.RESULTS.read_text())
    _, found = report.sweep_and_compare(24, SMALL["seed"])
    axes = [k for k in stored["reference"]]
    again = {(r["metric"], *(r[a] for a in axes)): r for r in found["differences"]}
    for a in stored["quoted"]:
        b = again[(a["metric"], *(a[x] for x in axes))]
        se = math.hypot(a["monte_carlo_upper"] - a["monte_carlo_lower"],
                        b["monte_carlo_upper"] - b["monte_carlo_lower"]) / (2 * 1.96)
        _near(a["difference"], b["difference"], se + 1e-9, f"{a['metric']} at {[a[x] for x in axes]}")


def test_evidence_blocks_are_the_stored_results():
    """docs/evidence.md's blocks of experiments/evidence_report.py are its rendering of its stored run."""
    import json

    report = _experiment("evidence_report")
    written = _experiment("_generated").written_blocks(report.DOC.read_text(), report.BEGIN)
    assert written == report.blocks(json.loads(report.RESULTS.read_text())), \
        "docs/evidence.md was edited by hand: run .venv/bin/python experiments/evidence_report.py --render"


def test_evidence_stored_results_are_what_the_model_gives_now():
    """A rerun on fewer patients at another seed lands within Z Monte Carlo SEs of every stored figure under each
    effect: binomial SEs for shares, the Cox SEs for log hazard ratios, those implied by the 95% intervals of both
    runs for Kaplan-Meier figures."""
    import json

    report = _experiment("evidence_report")
    stored = json.loads(report.RESULTS.read_text())
    n, m = SMALL["records"], stored["patients"]

    def share(a: dict, b: dict, what: str) -> None:
        p = a["k"] / a["n"]
        _near(p, b["k"] / b["n"], math.sqrt(p * (1 - p) * (1 / a["n"] + 1 / b["n"])) + 1e-9, what)

    def hazard_ratio(a: dict, b: dict, what: str) -> None:
        _near(math.log(a["estimate"]), math.log(b["estimate"]), math.hypot(a["log_se"], b["log_se"]), what)

    def km(a: list[float], b: list[float], what: str) -> None:
        _near(a[0], b[0], math.hypot(a[2] - a[1], b[2] - b[1]) / (2 * 1.96) + 1e-9, what)

    for effect, b in report.effect_results(n, SMALL["seed"]).items():
        a = stored["effects"][effect]
        for key in ("responders_without_hsct", "more_cycles", "mrd_more_cycles", "mrd_fewer_cycles"):
            share(a["continuation"][key], b["continuation"][key], f"{effect}: {key}")
        share({"k": a["continuation"]["responders_without_hsct"]["n"], "n": m},
              {"k": b["continuation"]["responders_without_hsct"]["n"], "n": n}, f"{effect}: responders")
        hazard_ratio(a["continuation"]["hazard_ratio"], b["continuation"]["hazard_ratio"], f"{effect}: S7's HR")
        hazard_ratio(a["landmark"]["hazard_ratio"], b["landmark"]["hazard_ratio"], f"{effect}: landmark HR")
        share({"k": a["landmark"]["more"], "n": a["landmark"]["patients"]},
              {"k": b["landmark"]["more"], "n": b["landmark"]["patients"]}, f"{effect}: landmark > 3 share")
        pa, pb = a["pfs"], b["pfs"]
        for kind in ("recorded", "protocol", "remission"):
            for key, f in pa[kind].items():
                km(f, pb[kind][key], f"{effect}: {kind} {key}")
        for key in ("changed", "never"):
            p = pa[key]
            _near(p, pb[key], math.sqrt(p * (1 - p) * (1 / m + 1 / n)), f"{effect}: {key}")
        share({"k": pa["changed_never"] * pa["changed"] * m, "n": pa["changed"] * m},
              {"k": pb["changed_never"] * pb["changed"] * n, "n": pb["changed"] * n}, f"{effect}: changed, never")
        for group, t in pa["at_12_by_group"].items():
            p = t["share"]
            _near(p, pb["at_12_by_group"][group]["share"], math.sqrt(p * (1 - p) * (1 / m + 1 / n)), f"{group} share")
            km(t["at_12"], pb["at_12_by_group"][group]["at_12"], f"{effect}: {group} at 12 months")
