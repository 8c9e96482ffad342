"""The ``inosim`` command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from simulator.analysis.text import paragraph
from simulator.model.config import ConfigError, Scenario
from simulator.model.extrapolation import OutsideCalibrationWarning
from simulator.model.files import default_scenario_path, load_scenario

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that stopped early


def argument_type(convert, ok, expected: str, rule: str):
    """An argparse type: ``convert`` the text, then check it with ``ok``; one-line errors.

    Shared with the example scripts in ``experiments/``, as are :func:`progress_bar` and
    :func:`guarded`.
    """
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    return parse


positive_int = argument_type(int, lambda v: v >= 1, "a whole number", "at least 1")
seed_int = argument_type(int, lambda v: 0 <= v < 2**63, "a whole number", "in [0, 2**63)")
_cutoff = argument_type(float, lambda v: v >= 0, "a number in mg/m2", ">= 0 mg/m2")


def _sizes(text: str) -> list[int]:
    """Comma-separated sample sizes, increasing, each at least 2."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if any(s < 2 for s in sizes) or sizes != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(f"sizes must be increasing whole numbers >= 2, got {text}")
    return sizes


@contextmanager
def progress_bar(desc: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr (silent when not a terminal), driven by ``progress(done, total)``."""
    from tqdm import tqdm

    with tqdm(desc=desc, unit=unit, disable=None, file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def cmd_run(args: argparse.Namespace) -> int:
    """Simulate a scenario and print the pooled-analysis table (memory bounded whatever the size),
    and the figures of the pivotal trial it reproduces, if any."""
    from simulator.analysis.targets import (
        comparison_table,
        load_pooled_targets,
        published_not_comparable,
    )
    from simulator.calibration.comparators import TRIAL_PATIENTS, format_trial_check, trial_check, trial_of
    from simulator.sweep.records import run_records

    path = Path(args.scenario) if args.scenario else default_scenario_path()
    scenario = load_scenario(path)
    absent = published_not_comparable(scenario, args.cutoff)
    targets = None if absent else load_pooled_targets()
    t0 = time.perf_counter()
    with progress_bar(scenario.name, "patient") as progress:
        summary = run_records(scenario, args.patients, args.seed, cutoff=args.cutoff, out=args.out,
                              progress=progress)
    elapsed = time.perf_counter() - t0
    n = summary.attrs["patients"]
    print(paragraph(f"InOSim {summary.attrs['inosim_version']}: scenario '{scenario.name}' ({path}), "
                     f"{n:,} simulated patients, seed {summary.attrs['seed']}, "
                     f"{elapsed:.2f} s ({n / elapsed:,.0f} patients/s incl. compilation if any)"))
    print(paragraph(f"Groups by realised cumulative dose at {args.cutoff:g} mg/m²; 95% CIs are Monte Carlo "
                     "uncertainty only (Clopper-Pearson for rates, Brookmeyer-Crowley for Kaplan-Meier medians, "
                     "order statistics for other medians), not parameter or structural uncertainty. "
                     + (absent or "'pub.' = pooled dose analysis (338 adults).")) + "\n")
    print(comparison_table(summary, targets))
    trial = trial_of(scenario)
    if trial is not None:
        n_trial = min(n, TRIAL_PATIENTS)
        rows = trial_check(trial, scenario, n_trial, summary.attrs["seed"])
        print("\n" + format_trial_check(trial, rows, n_trial))
    if args.out:
        print(f"\nPatient records written to {args.out}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the parameters (default), fit every model structure or the other treatments, or check the shipped fit."""
    from simulator.calibration import check as C
    from simulator.calibration import comparators
    from simulator.calibration import run as R
    from simulator.model.config import default_config_dir
    from simulator.model.files import load_parameters
    from simulator.plots import plot_check
    from simulator.sensitivity.distributions import load_ensemble

    out = Path(args.out)
    shipped = default_config_dir() / "parameters"
    if args.comparators:
        path, ensemble = comparators.calibrate_comparators(out)
        print(paragraph(f"Treatment modules fitted; their parameters written to {path}, their posterior ensemble "
                         f"to {ensemble}"))
        return 0
    if args.structures:
        result = R.calibrate_structures(out, dask=args.dask)
        print(f"Structures fitted; combined ensemble written to {result['posterior']}")
        ensemble_path = Path(result["posterior"])
        path = shipped / "default.yaml"
    elif args.check:
        path = Path(args.parameters) if args.parameters else shipped / "default.yaml"
        ensemble_path = shipped / "posterior.nc"
    else:
        size = R.QUICK if args.quick else R.FULL
        path = R.calibrate(out, size)["parameters"]
        ensemble_path = None
    rows = C.check(load_parameters(path), n_patients=args.patients)
    text = C.format_check(rows, args.patients)
    print(f"Parameters: {path}\n{text}")
    plot = plot_check(rows, args.plot or out / "check.png")
    if not args.check:
        out.mkdir(parents=True, exist_ok=True)
        (out / "check.txt").write_text(text + "\n")
    print(f"\nPlot written to {plot}")
    print("\n" + C.check_continuation(load_parameters(path), n_patients=args.patients))
    primary_ok = all(r.inside for r in rows if r.section == "primary")
    if ensemble_path is not None and not args.parameters:
        ensemble = load_ensemble(ensemble_path)
        if "structure_weight" in ensemble:
            print("\n" + C.format_structures(C.check_structures(ensemble)))
            print(C.format_driver_totals(ensemble))
            combined = C.check_ensemble(ensemble)
            primary = [r for r in combined if r.section == "primary"]
            inside = sum(r.inside for r in primary)
            print("\n" + paragraph(f"Under the combined ensemble (posterior predictive check over "
                                    f"{C.ENSEMBLE_CHECK_DRAWS} draws across structures): {inside}/{len(primary)} "
                                    "primary targets inside their 95% posterior predictive intervals"))
            for r in primary:
                if not r.inside:
                    print(paragraph(f"outside: {r.figure.label} (reported {r.figure.value:.3g}, simulated mean "
                                     f"{r.sim.estimate:.3g}, SD over draws {r.sim.se:.3g})", indent="  "))
            primary_ok = primary_ok and inside == len(primary)
    if not args.parameters:
        for trial in comparators.TRIALS:
            trial_rows = comparators.trial_check(trial, n_patients=args.patients)
            print("\n" + comparators.format_trial_check(trial, trial_rows, args.patients))
            primary_ok = primary_ok and all(r.inside for r in trial_rows if r.figure.fitted)
    return 0 if primary_ok else 1


def _assignment(text: str) -> tuple[str, str]:
    dim, sep, label = text.partition("=")
    if not sep or not dim or not label:
        raise argparse.ArgumentTypeError(f"expected AXIS=VALUE, got {text!r}")
    return dim, label


def _assignments(text: str) -> list[tuple[str, str]]:
    return [_assignment(part) for part in text.split(",")]


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run an experiment's grid of strategies on the same virtual patients and save it; print the grid
    at a glance (``--format table``) or every metric at every grid point (``csv``, ``json``)."""
    from simulator.sweep.compare import paired_differences
    from simulator.sweep.experiment import load_experiment, partial_dir, run_sweep
    from simulator.sweep.report import crn_saving_summary, format_pooled, pooled_frame

    exp = load_experiment(args.experiment, replicates=args.replicates, patients=args.patients, seed=args.seed)
    points = math.prod(exp.shape)
    patients = points * exp.replicates * exp.patients
    info = sys.stdout if args.format == "table" else sys.stderr  # CSV and JSON alone on stdout
    print(paragraph(f"Experiment '{exp.name}' ({args.experiment}): {points} grid points "
                     f"({' x '.join(f'{a.name} {len(a.labels)}' for a in exp.axes)}) x {exp.replicates} replicates "
                     f"x {exp.patients} patients = {patients:,} simulated patients, seed {exp.seed}"), file=info)
    t0 = time.perf_counter()
    with progress_bar(exp.name, "chunk") as progress:
        try:
            ds = run_sweep(exp, args.out, resume=args.resume, progress=progress, dask=args.dask)
        except KeyboardInterrupt:
            print(f"inosim: finished chunks are kept in {partial_dir(args.out)}; run the same command "
                  "with --resume to go on", file=sys.stderr)
            raise
    elapsed = time.perf_counter() - t0
    print(f"Done in {elapsed:.1f} s ({patients / elapsed:,.0f} patients/s); results written to {args.out}",
          file=info)
    if args.format == "csv":
        print(pooled_frame(ds).to_csv(index=False).rstrip("\n"))
        return 0
    if args.format == "json":
        print(json.dumps({"experiment": exp.name, "seed": exp.seed, "replicates": exp.replicates,
                          "patients": exp.patients, "pooled": json.loads(pooled_frame(ds).to_json(orient="records"))},
                         indent=1))
        return 0
    print("\n" + crn_saving_summary(paired_differences(ds)) + "\n")
    print("Mean over replicates (rates in %):")
    print(format_pooled(ds))
    print("\n" + paragraph(f"Every metric with its 95% Monte Carlo CI: --format csv|json, or the results "
                            f"file {args.out}; differences from the reference: inosim compare {args.out}"))
    return 0


MAX_UNCERTAIN_POINTS = 8  # grid points of a sweep answered over the ensemble at once


def _strategy_answers(reference: Scenario, strategies: dict[str, Scenario], args: argparse.Namespace,
                      metrics: tuple[str, ...] | None, seed: int, patients: int) -> None:
    """Each strategy against the reference with Monte Carlo, parameter and structural uncertainty."""
    from simulator.analysis.segments import ALL_PATIENTS
    from simulator.sensitivity.strategies import (
        ENSEMBLE_REPLICATES,
        HEADLINE,
        PRECISE_REPLICATES,
        compare_strategies,
        format_segment_answers,
        format_strategy_answers,
        format_value_of_information,
        value_of_information,
    )

    shown = metrics
    metrics = metrics or HEADLINE
    with progress_bar("parameter sets", "set") as progress:
        answers = compare_strategies(reference, strategies, metrics, ensemble=args.ensemble, seed=seed,
                                     patients=patients, progress=progress, by=args.by or (),
                                     replicates=PRECISE_REPLICATES if args.precise else ENSEMBLE_REPLICATES)
    whole = answers.sel(segment=ALL_PATIENTS, drop=True) if args.by else answers
    if args.by:
        print(format_segment_answers(answers, shown))
    print(format_strategy_answers(whole))
    for name in map(str, answers.strategy.values):
        voi = value_of_information(whole, name, metrics[0])
        print(format_value_of_information(voi) + "\n")
        if args.plot_dir:
            from simulator.plots.decision import answer_plot, decision_title, segment_plot, value_of_information_plot

            paths = [answer_plot(whole, name, args.plot_dir),
                     value_of_information_plot(voi, args.plot_dir, decision_title(whole, name),
                                               stem=f"value_of_information_{name}")]
            if args.by:
                paths.append(segment_plot(answers, name, args.plot_dir))
            for path in paths:
                print(f"Figure written to {path}")
            print()
    if args.out:
        from simulator.runtime.storage import write_netcdf

        print(f"Answers written to {write_netcdf(answers, args.out)}")


def _grid_points(exp, at: dict[str, int]) -> list[tuple[int, ...]]:
    """Every grid point matching ``at`` (axes left out: every value)."""
    import itertools

    return list(itertools.product(*[[at[a.name]] if a.name in at else range(len(a.labels)) for a in exp.axes]))


def cmd_compare(args: argparse.Namespace) -> int:
    """Paired differences between strategies, and the observational vs causal dose contrast."""
    from simulator.analysis.trial_metrics import check_metric_ids
    from simulator.sweep.compare import (
        HEADLINE_METRICS,
        dose_contrast,
        paired_differences,
        point_label,
        resolve_point,
    )
    from simulator.sweep.experiment import (
        experiment_from_json,
        load_results,
        run_sweep,
        strategies_experiment,
    )
    from simulator.sweep.report import CompareView, compare_report

    source = args.inputs[0]
    results = [p for p in args.inputs if p.endswith(".nc")]
    if results and len(args.inputs) > 1:
        raise ConfigError(f"{results[0]}: compare takes one results file, or two or more scenario files")
    try:
        metrics = check_metric_ids(args.metric) if args.metric else None
    except KeyError as exc:
        raise ConfigError(f"{source}: --metric: {exc.args[0]}") from None
    if args.by:
        from simulator.analysis.segments import splits

        try:
            splits(args.by)
        except KeyError as exc:
            raise ConfigError(f"{source}: --by: {exc.args[0]}") from None
    for flag, value in (("--by", args.by), ("--out", args.out)):
        if value and (args.format != "table" or (results and not args.uncertainty)):
            raise ConfigError(f"{source}: {flag}: applies to the answers over the ensemble (scenario files, or a "
                              "results file with --uncertainty), shown as a table")
    if results:
        ds = load_results(source)
        exp = experiment_from_json(ds.attrs["experiment"], source)
    else:
        reference, *others = [load_scenario(p) for p in args.inputs]
        if not others:
            raise ConfigError(f"{source}: compare needs a reference and at least one strategy: name two or more "
                              "scenario files (or one results file of 'inosim sweep')")
        if args.format == "table":
            _strategy_answers(reference, {s.name: s for s in others}, args, metrics, args.seed, args.patients)
            if args.contrast:
                from simulator.sweep.report import format_dose_contrast

                shown = metrics or HEADLINE_METRICS
                print(format_dose_contrast(dose_contrast(reference, args.cutoff, seed=args.seed, patients=args.patients,
                                                         replicates=args.replicates).sel(metric=list(shown))))
            else:
                print(f"Do the published <= {args.cutoff:g} and > {args.cutoff:g} mg/m2 groups differ by dose, or by "
                      "who gets more cycles?\nAdd --contrast.\nPaired differences of every metric: --format csv|json.")
            return 0
        exp = strategies_experiment(args.inputs, replicates=args.replicates, patients=args.patients,
                                    seed=args.seed)
        ds = run_sweep(exp)
    reference = dict(args.reference or ())
    try:
        diffs = paired_differences(ds, reference)
        at = resolve_point(ds, dict(sum(args.at, []))) if args.at else None
    except KeyError as exc:
        raise ConfigError(f"{source}: {'--at' if args.at else '--reference'}: {exc.args[0]}") from None
    if results and args.uncertainty:
        if at is None:
            raise ConfigError(f"{source}: --uncertainty: name the grid points with --at")
        points = _grid_points(exp, at)
        if len(points) > MAX_UNCERTAIN_POINTS:
            raise ConfigError(f"{source}: --uncertainty: --at selects {len(points)} grid points; name at most "
                              f"{MAX_UNCERTAIN_POINTS}")
        ref = resolve_point(ds, json.loads(diffs.attrs["reference"]))
        names = [a.name for a in exp.axes]
        strategies = {point_label(ds, dict(zip(names, p))): exp.scenario_at(p) for p in points}
        _strategy_answers(exp.scenario_at(tuple(ref[n] for n in names)), strategies, args, metrics, exp.seed,
                          exp.patients)
    view = CompareView(metrics=metrics or HEADLINE_METRICS, full_metrics=metrics or tuple(map(str, ds.metric.values)),
                       at=at, top=args.top, show_all=args.all, format=args.format)
    contrast = None
    if args.format != "csv":
        index = resolve_point(ds, json.loads(diffs.attrs["reference"]))
        contrast = dose_contrast(exp.scenario_at(tuple(index[a.name] for a in exp.axes)), args.cutoff,
                                 seed=exp.seed, patients=exp.patients, replicates=exp.replicates)
    print(compare_report(diffs, contrast, view))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Figures of a sweep's differences from the reference: heatmaps, forest plot, survival."""
    from simulator.analysis.trial_metrics import check_metric_ids
    from simulator.plots import plot_all
    from simulator.sweep.compare import HEADLINE_METRICS
    from simulator.sweep.experiment import load_results, sweep_axes

    ds = load_results(args.results)
    try:
        metrics = check_metric_ids(args.metric) if args.metric else HEADLINE_METRICS
    except KeyError as exc:
        raise ConfigError(f"{args.results}: --metric: {exc.args[0]}") from None
    for flag, dim in (("--x", args.x), ("--y", args.y)):
        if dim is not None and (dim not in sweep_axes(ds) or ds.sizes[dim] < 2):
            raise ConfigError(f"{args.results}: {flag}: no axis '{dim}' with two or more values")
    results = Path(args.results)
    out_dir = Path(args.out_dir) if args.out_dir else results.with_name(results.stem + "_plots")
    paths = plot_all(ds, out_dir, metrics, args.x, args.y, args.format)
    print(f"{len(paths)} files written to {out_dir}:")
    for path in paths:
        print(f"  {path.name}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure throughput, floors, PSA workload, start-up and memory; print a report or JSON."""
    import json

    from simulator.benchmark import format_report, run_benchmark

    path = Path(args.scenario) if args.scenario else default_scenario_path()
    load_scenario(path)  # a broken scenario fails here, with the usual one-line error
    results = run_benchmark(path, n_patients=args.patients, repeats=args.repeats,
                            progress=lambda stage: print(f"inosim bench: {stage} ...", file=sys.stderr))
    print(json.dumps(results, indent=2) if args.json else format_report(results))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile every numba engine ahead of time, so that no later command waits for it."""
    from simulator.benchmark import compile_engines

    t0 = time.perf_counter()
    compile_engines(progress=lambda stage: print(f"inosim compile: {stage} ...", file=sys.stderr))
    print(f"Every engine compiled or loaded from numba's cache in {time.perf_counter() - t0:.1f} s "
          f"({os.environ.get('NUMBA_CACHE_DIR')})")
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """Run a sensitivity file (one-way, PSA, Sobol or Morris), save the results and their figures."""
    import warnings

    from simulator.plots import plot_sensitivity
    from simulator.runtime.storage import write_netcdf
    from simulator.sensitivity import (
        SensitivityWarning,
        format_result,
        load_sensitivity,
        run_sensitivity,
    )

    config = load_sensitivity(args.config, patients=args.patients, replicates=args.replicates, seed=args.seed,
                              dask=args.dask)
    model = config.model
    print(paragraph(f"Sensitivity analysis '{config.name}' ({args.config}): method {config.method}, scenario "
                     f"'{model.scenario.name}', {model.replicates} replicates x {model.patients} patients per "
                     f"parameter set, seed {model.seed}"))
    t0 = time.perf_counter()
    with progress_bar(config.name, "set") as progress:
        with warnings.catch_warnings():  # format_result lists them below
            warnings.simplefilter("ignore", SensitivityWarning)
            ds = run_sensitivity(config, progress=progress)
    out = write_netcdf(ds, args.out)
    print(f"Done in {time.perf_counter() - t0:.1f} s; results written to {out}\n")
    print(format_result(ds, top=args.top))
    if not args.no_plots:
        folder = Path(args.plot_dir) if args.plot_dir else out.with_name(out.stem + "_plots")
        paths = plot_sensitivity(ds, folder, args.plot_format)
        print(f"\n{len(paths)} figures written to {folder}")
    return 0


def cmd_trial(args: argparse.Namespace) -> int:
    """Simulate a trial design: operating characteristics, truth, analytic figures, plots."""
    from simulator.runtime.storage import write_netcdf
    from simulator.trial import (
        analytic,
        format_figures,
        load_trial,
        look_cuts,
        null_arrays,
        operating_characteristics,
        rejections,
        sample_size_search,
        simulate_trials,
        true_values,
        verdict,
    )
    from simulator.trial.truth import TRUTH_PATIENTS

    path = Path(args.design)
    arrays = load_trial(path)  # the design and its arms' scenarios, each read once
    design = arrays.design
    if args.ensemble is not None or args.draws is not None or design.assurance is not None:
        return _trial_over_draws(args, arrays, path)
    n_trials = args.trials or design.n_trials
    n_null = 0 if design.null else (n_trials if args.null_trials is None else args.null_trials)
    seed = design.seed if args.seed is None else args.seed
    print(paragraph(f"Trial design '{design.name}' ({path}): {len(design.arms)} arms "
                     f"({', '.join(design.experimental)} vs {design.control}), {design.sample_size} patients, "
                     f"{len(design.analyses)} look(s), {n_trials:,} trials, seed {seed}"
                     + (" [null: every arm gets the control's strategy]" if design.null else
                        f"; type I error from {n_null:,} null trials" if n_null else "")))
    t0 = time.perf_counter()
    with progress_bar(design.name, "chunk") as progress:
        ds = simulate_trials(arrays, n_trials=n_trials, seed=seed, dask=args.dask, progress=progress)
    elapsed = time.perf_counter() - t0
    null = None
    if n_null:  # the same trials' patients with every arm given the control's strategy
        with progress_bar(f"{design.name} (null)", "chunk") as progress:
            null = rejections(simulate_trials(null_arrays(arrays), n_trials=n_null, seed=seed, dask=args.dask,
                                              progress=progress))
    cuts = look_cuts(ds)
    truth = true_values(arrays, seed, cuts, n=args.truth_patients or TRUTH_PATIENTS)
    print(paragraph(f"Simulated in {elapsed:.2f} s ({n_trials / elapsed:,.0f} trials/s); truth at each look's mean "
                     f"cut ({', '.join(f'{c:.1f}' for c in cuts)} months): {truth.attrs['method']}") + "\n")
    simulated, planned = operating_characteristics(ds, truth), analytic(ds, truth)
    print(paragraph(verdict(ds, simulated, planned, null)) + "\n")
    print(format_figures(simulated + (null or []),
                         "Operating characteristics (simulated; 95% Monte Carlo CIs in parentheses):"))
    print()
    print(format_figures(planned, "Analytic (planned):"))
    if null is not None:
        ds.attrs.update(type_one_error=null[0].estimate, type_one_error_lower=null[0].lower,
                        type_one_error_upper=null[0].upper, null_trials=n_null)
    out = write_netcdf(ds.merge(truth), args.out)
    print(f"\nResults written to {out}")
    if args.sizes:
        search = sample_size_search(arrays, args.sizes, target=args.target, n_trials=n_trials, seed=seed,
                                    dask=args.dask)
        print(f"\nPower of {design.primary_test.name} by sample size (95% Monte Carlo CI):")
        for size in search.sample_size.values:
            p = search.sel(sample_size=size)
            print(f"  {size:>6} patients  {100 * p.power.item():5.1f}% ({100 * p.lower.item():.1f} to "
                  f"{100 * p.upper.item():.1f})")
        def size(n: int) -> str:  # the search's attrs say -1 when no size reaches the target
            return f"{n} patients" if n > 0 else f"none of these (largest: {max(args.sizes)} patients)"

        print(f"  smallest size with power >= {args.target:.0%}: {size(search.attrs['smallest_size'])}\n"
              f"  ... with the CI's lower limit >= {args.target:.0%}: {size(search.attrs['smallest_size_lower'])}")
    else:
        search = None
    if not args.no_plots:
        from simulator.plots import plot_trial

        folder = Path(args.plot_dir) if args.plot_dir else out.with_name(out.stem + "_plots")
        paths = plot_trial(ds, truth, folder, search)
        print(f"{len(paths)} figures written to {folder}")
    return 0


def _trial_over_draws(args: argparse.Namespace, arrays, path: Path) -> int:
    """``inosim trial --ensemble``: assurance, power by NRM driver, the value of the trial's information."""
    from simulator.runtime.storage import write_netcdf
    from simulator.sensitivity.evsi import driver_discrimination, ensemble_draws, format_value_of_trial, value_of_trial
    from simulator.trial.assurance import (
        assurance_figures,
        assurance_verdict,
        format_assurance,
        prior_draws,
        simulate_assurance,
    )
    from simulator.trial.design import Assurance

    design = arrays.design
    settings = design.assurance or Assurance()
    if args.sizes:
        settings = settings.model_copy(update={"sizes": args.sizes})
    if args.trials:
        settings = settings.model_copy(update={"trials_per_draw": args.trials})
    k = args.draws or settings.draws
    if arrays.model[0] is None:
        draws = prior_draws(arrays, k or DEFAULT_PRIOR_DRAWS)
    else:
        source = args.ensemble or (str(path.parent / settings.ensemble) if settings.ensemble else None)
        draws = ensemble_draws(arrays, source, k)
    seed = design.seed if args.seed is None else args.seed
    print(paragraph(f"Trial design '{design.name}' ({path}) over {draws.size} draws of {draws.source} "
                     f"x {settings.trials_per_draw} trials each, {design.sample_size} patients, seed {seed}"))
    t0 = time.perf_counter()
    with progress_bar(design.name, "draw") as progress:
        ds = simulate_assurance(arrays, draws, seed=seed, settings=settings, progress=progress)
    figures = assurance_figures(ds)
    print(f"Simulated in {time.perf_counter() - t0:.1f} s\n")
    print(paragraph(assurance_verdict(ds, figures)) + "\n")
    figures += driver_discrimination(ds)
    print(format_assurance(figures, f"Over the draws (95% Monte Carlo CIs; benefit: pp of {ds.attrs['benefit']}):"))
    value = value_of_trial(ds)
    print("\n" + paragraph(format_value_of_trial(value)))
    stored = {"figure_estimate": ("figure", [f.estimate for f in figures]),
             "figure_lower": ("figure", [f.lower for f in figures]),
             "figure_upper": ("figure", [f.upper for f in figures])}
    out = ds.assign(stored).assign_coords(figure=[f.name for f in figures],
                                         figure_unit=("figure", [f.unit for f in figures]))
    out = out.merge(value.rename({"input": "voi_input"}))
    power = ds.success.sel(sample_size=design.sample_size).mean("trial")
    out["power_by_structure"] = power.groupby("structure").mean().rename(structure="structure_id").assign_attrs(
        units="1", long_name="mean power of the draws of each model structure (design's size)")
    print(f"\nResults written to {write_netcdf(out, args.out)}")
    return 0


DEFAULT_PRIOR_DRAWS = 400  # draws of the arms' hazard-ratio priors when the design does not say


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``inosim``."""
    from simulator import __version__
    from simulator.analysis.outcomes import DEFAULT_CUTOFF

    parser = argparse.ArgumentParser(
        prog="inosim",
        description="Monte Carlo trial simulator for inotuzumab ozogamicin dosing strategies "
                    "in adult R/R B-ALL.")
    parser.add_argument("--version", action="version", version=f"inosim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate a scenario and compare with the pooled analysis")
    run.add_argument("scenario", nargs="?", help="scenario YAML (default: the shipped pooled_analysis.yaml)")
    run.add_argument("--patients", type=positive_int, help="number of patients (default: from the scenario)")
    run.add_argument("--seed", type=seed_int, help="random seed (default: from the scenario)")
    run.add_argument("--cutoff", type=_cutoff, default=DEFAULT_CUTOFF,
                     help=f"cumulative-dose cutoff, mg/m2 (default {DEFAULT_CUTOFF:g})")
    run.add_argument("--out", help="write patient records to this netCDF file (atomically)")
    run.set_defaults(func=cmd_run)

    cal = sub.add_parser("calibrate", help="fit the parameters to the published figures, or check the fit")
    cal.add_argument("--quick", action="store_true", help="a short fit (under a minute) instead of the full one")
    cal.add_argument("--out", default="calibration",
                     help="folder for default.yaml, posterior.nc, check.txt and check.png (default: ./calibration)")
    cal.add_argument("--check", action="store_true",
                     help="only compare the shipped (or --parameters) values with every figure, and each "
                          "other treatment with its trial; exit 0 when every primary target and every fitted "
                          "trial figure is inside its 95%% interval")
    cal.add_argument("--structures", action="store_true",
                     help="fit every model structure with 4 patient seeds, weight them by evidence (with the "
                          "range over seeds) and write the combined ensemble to OUT (see docs/calibration.md "
                          "for the time it takes)")
    cal.add_argument("--comparators", action="store_true",
                     help="fit each other treatment's own parameters to its pivotal trial and write "
                          "OUT/comparators.yaml (docs/comparators.md)")
    cal.add_argument("--dask", help="with --structures: run the structures as tasks on a dask cluster "
                                    "('local:N' or a scheduler address)")
    cal.add_argument("--parameters", help="parameter file to check (default: the shipped default.yaml and, "
                                          "with --check, every model structure and the combined ensemble)")
    cal.add_argument("--patients", type=positive_int, default=200_000,
                     help="simulated patients for the check (default 200,000)")
    cal.add_argument("--plot", help="PNG of reported vs simulated (default: OUT/check.png)")
    cal.set_defaults(func=cmd_calibrate)

    from simulator.analysis.outcomes import POOLED_ANALYSIS_PATIENTS
    from simulator.sweep.experiment import (
        DEFAULT_REPLICATES,
        DEFAULT_SEED,
    )

    sweep = sub.add_parser("sweep", help="run an experiment's grid of strategies on the same virtual patients")
    sweep.add_argument("experiment", help="experiment YAML (see experiments/)")
    sweep.add_argument("--out", required=True, help="results netCDF file (written atomically)")
    sweep.add_argument("--replicates", type=positive_int, help="trials per grid point (default: from the file)")
    sweep.add_argument("--patients", type=positive_int, help="patients per trial (default: from the file)")
    sweep.add_argument("--seed", type=seed_int, help="random seed (default: from the file)")
    sweep.add_argument("--resume", action="store_true",
                       help="go on with an interrupted sweep of the same experiment (OUT.partial/)")
    sweep.add_argument("--dask", metavar="SCHEDULER",
                       help="run the chunks on a dask.distributed cluster: a scheduler address "
                            "(tcp://host:8786) or local:N (a LocalCluster of N single-threaded worker "
                            "processes); the results are bit-identical to a run without it")
    from simulator.sweep.report import DEFAULT_TOP, FORMATS

    sweep.add_argument("--format", choices=FORMATS, default=FORMATS[0],
                       help="table (default): the headline metrics at every grid point; csv or json: every "
                            "metric at every grid point with its 95%% Monte Carlo CI, alone on stdout")
    sweep.set_defaults(func=cmd_sweep)

    compare = sub.add_parser("compare", help="paired differences between strategies and the observational "
                                             "vs causal dose contrast")
    compare.add_argument("inputs", nargs="+", metavar="RESULTS.nc | SCENARIO.yaml",
                         help="results of 'inosim sweep', or scenario files (the first is the reference)")
    compare.add_argument("--cutoff", type=_cutoff, default=DEFAULT_CUTOFF,
                         help=f"cumulative-dose cutoff and cap, mg/m2 (default {DEFAULT_CUTOFF:g})")
    compare.add_argument("--reference", type=_assignment, action="append", metavar="AXIS=VALUE",
                         help="change the reference grid point (default: the experiment's)")
    compare.add_argument("--metric", action="append",
                         help="only these metrics (repeatable or a comma list; default: the headline metrics in "
                              "the summary, all of them in the full tables and in csv or json)")
    compare.add_argument("--at", type=_assignments, action="append", metavar="AXIS=VALUE,...",
                         help="full tables for these grid points, e.g. cumulative_cap=3.3,max_cycles=2 "
                              "(axes left out: every value)")
    compare.add_argument("--all", action="store_true", help="full tables for every grid point")
    compare.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                         help=f"best and worst grid points shown per metric (default {DEFAULT_TOP})")
    compare.add_argument("--format", choices=FORMATS, default=FORMATS[0],
                         help="table (default); csv: the paired differences, one row per metric and grid "
                              "point (every metric unless --metric); json: those and the dose contrast")
    compare.add_argument("--plot-dir", help="with scenario files (or --uncertainty): write here, per strategy, the "
                                            "answer with its three uncertainties and the value-of-information figure")
    compare.add_argument("--uncertainty", action="store_true",
                         help="results file with --at: also each selected grid point against the reference "
                              "over the combined ensemble of parameters and model structures (scenario files: "
                              "always)")
    compare.add_argument("--by", action="append", metavar="SPLIT,...",
                         help="also the answers by patient segment, each split one way: age_<years> (e.g. age_55), "
                              "salvage_line, transplant_eligible, prior_hsct, ph_positive, bilirubin_high "
                              "(repeatable or a comma list); --plot-dir adds segments_<strategy>.png")
    compare.add_argument("--out", help="write the answers over the ensemble (with --by, a segment dimension) to "
                                       "this netCDF file (atomically)")
    compare.add_argument("--contrast", action="store_true",
                         help="scenario files: also the observational vs causal dose contrast of the reference "
                              "at --cutoff")
    compare.add_argument("--precise", action="store_true",
                         help="scenario files: 8x the patients per parameter draw (about 8x slower), for a "
                              "smaller Monte Carlo error of the posterior figures and P(better)")
    compare.add_argument("--ensemble", help="parameter ensemble for the posterior intervals of scenario-file "
                                            "comparisons (default: the shipped combined ensemble)")
    compare.add_argument("--replicates", type=positive_int, default=DEFAULT_REPLICATES,
                         help=f"scenario files: trials per strategy (default {DEFAULT_REPLICATES})")
    compare.add_argument("--patients", type=positive_int, default=POOLED_ANALYSIS_PATIENTS,
                         help=f"scenario files: patients per trial (default {POOLED_ANALYSIS_PATIENTS})")
    compare.add_argument("--seed", type=seed_int, default=DEFAULT_SEED,
                         help=f"scenario files: random seed (default {DEFAULT_SEED})")
    compare.set_defaults(func=cmd_compare)

    from simulator.runtime.storage import DEFAULT_FIGURE_FORMAT, FIGURE_FORMATS

    plot = sub.add_parser("plot", help="figures of differences from the reference: heatmaps, forest plot, "
                                       "survival differences")
    plot.add_argument("results", help="results of 'inosim sweep'")
    plot.add_argument("--out-dir", help="folder for the figures (default: RESULTS_plots/)")
    plot.add_argument("--metric", action="append",
                      help="metric to plot (repeatable or a comma list; default: headline metrics)")
    plot.add_argument("--format", choices=FIGURE_FORMATS, default=DEFAULT_FIGURE_FORMAT,
                      help=f"file format (default {DEFAULT_FIGURE_FORMAT}; svg or pdf for papers)")
    plot.add_argument("--x", help="heatmap axis across (default: the first axis that varies)")
    plot.add_argument("--y", help="heatmap axis up (default: the next axis that varies)")
    plot.set_defaults(func=cmd_plot)

    from simulator.benchmark import DEFAULT_PATIENTS, DEFAULT_REPEATS

    bench = sub.add_parser("bench", help="benchmark the kernel against the random-number floor, "
                                         "start-up, memory and hesim's PSA workload")
    bench.add_argument("scenario", nargs="?", help="scenario YAML (default: the shipped pooled_analysis.yaml)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    bench.add_argument("--patients", type=positive_int, default=DEFAULT_PATIENTS,
                       help=f"patients per throughput and memory run (default {DEFAULT_PATIENTS:,})")
    bench.add_argument("--repeats", type=positive_int, default=DEFAULT_REPEATS,
                       help=f"timed runs per figure, median reported (default {DEFAULT_REPEATS})")
    bench.set_defaults(func=cmd_bench)

    comp = sub.add_parser("compile", help="compile every numba engine ahead of time (about a minute, once per "
                                          "version of the sources; `make run` does it), so that no command waits for it")
    comp.set_defaults(func=cmd_compile)

    sens = sub.add_parser("sensitivity", help="one-way (tornado), probabilistic, Sobol or Morris sensitivity "
                                              "analysis from a sensitivity file")
    sens.add_argument("config", help="sensitivity YAML (see experiments/*.yaml with a 'method' key)")
    sens.add_argument("--out", required=True, help="results netCDF file (written atomically)")
    sens.add_argument("--patients", type=positive_int, help="patients per replicate (default: from the file)")
    sens.add_argument("--replicates", type=positive_int, help="replicates per parameter set (default: from the file)")
    sens.add_argument("--seed", type=seed_int, help="random seed (default: from the file)")
    sens.add_argument("--top", type=positive_int, help="show only the most important parameters in the tables")
    sens.add_argument("--plot-dir", help="folder for the figures (default: OUT_plots/ beside the results)")
    sens.add_argument("--no-plots", action="store_true", help="write no figures")
    sens.add_argument("--plot-format", choices=FIGURE_FORMATS, default=DEFAULT_FIGURE_FORMAT,
                      help=f"figure file format (default {DEFAULT_FIGURE_FORMAT}; svg or pdf for papers)")
    sens.add_argument("--dask", metavar="SCHEDULER",
                      help="run the parameter sets on a dask.distributed cluster (local:N or a scheduler "
                           "address); the results are bit-identical to a run without it")
    sens.set_defaults(func=cmd_sensitivity)

    trial = sub.add_parser("trial", help="simulate a randomised trial design: power and type I error, duration, "
                                         "bias, dose selection")
    trial.add_argument("design", help="trial design YAML (see experiments/trial_*.yaml)")
    trial.add_argument("--out", required=True, help="results netCDF file (written atomically)")
    trial.add_argument("--trials", type=positive_int, help="simulated trials (default: from the file)")
    trial.add_argument("--seed", type=seed_int, help="random seed (default: from the file)")
    trial.add_argument("--null-trials", type=argument_type(int, lambda v: v >= 0, "a whole number", ">= 0"),
                       help="trials of the null run (every arm given the control's strategy) whose rejection rate "
                            "is the type I error, printed beside the power (default: as many as --trials; 0: none)")
    trial.add_argument("--truth-patients", type=argument_type(int, lambda v: 1 <= v <= 1 << 20, "a whole number",
                                                          "in 1 .. 1,048,576"),
                       help="counterfactual patients per arm of strategy arms' truth (default: "
                            "simulator.trial.truth.TRUTH_PATIENTS, 10^6; the trial layer is imported only when a "
                            "trial runs); piecewise-exponential arms have theirs in closed form")
    trial.add_argument("--sizes", type=_sizes, help="sample-size search: comma-separated sizes, e.g. 200,300,400")
    trial.add_argument("--target", type=argument_type(float, lambda v: 0 < v < 1, "a number", "in (0, 1)"),
                       default=0.8, help="target power of the sample-size search (default 0.8)")
    trial.add_argument("--plot-dir", help="folder for the figures (default: OUT_plots/ beside the results)")
    trial.add_argument("--no-plots", action="store_true", help="write no figures")
    trial.add_argument("--dask", metavar="SCHEDULER",
                       help="run the chunks of trials on a dask.distributed cluster (local:N or a scheduler "
                            "address); the results are bit-identical to a run without it")
    trial.add_argument("--ensemble", nargs="?", const="", metavar="FILE",
                       help="trials over draws: each draw of the posterior ensemble (default: the shipped one; "
                            "piecewise-exponential arms: of their log_hazard_ratio priors) runs --trials trials "
                            "(default 50): assurance, power by NRM driver, EVSI beside EVPI")
    trial.add_argument("--draws", type=positive_int, help="with --ensemble: draws, evenly spaced (default: all)")
    trial.set_defaults(func=cmd_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, run, map errors to exit codes without tracebacks."""
    args = build_parser().parse_args(argv)
    return guarded(lambda: args.func(args))


def _show_warning(prog: str, message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings as one line on stderr; others as Python shows them."""
    if issubclass(category, OutsideCalibrationWarning):
        print(f"{prog}: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def guarded(run: Callable[[], int | None], prog: str = "inosim",
            interrupted: str = "interrupted; no result file was written") -> int:
    """Call ``run`` and return its exit status, mapping errors to one line on stderr.

    Bad input (:class:`ConfigError`) and unwritable files exit 2, Ctrl-C 130, a reader
    that closed our output early (``| head``) 141 quietly; warnings of doses or
    parameters outside the calibration are shown once, in one line.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("once", OutsideCalibrationWarning)
        warnings.showwarning = partial(_show_warning, prog)
        try:
            return run() or 0
        except ConfigError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except BrokenPipeError:  # e.g. `inosim run --out x.nc | head`: every file was written before printing
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return EXIT_BROKEN_PIPE
        except OSError as exc:  # e.g. an output folder that cannot be created
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"{prog}: {where}{exc.strerror or exc}", file=sys.stderr)
            return EXIT_CONFIG
        except KeyboardInterrupt:
            print(f"{prog}: {interrupted}", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
