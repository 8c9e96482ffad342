"""Trials over draws: the probability that a design succeeds given what the model does not know.

A design is simulated under each of ``K`` draws (:class:`Draws`): parameter vectors of the
posterior ensemble with their model structure (strategy arms), or log hazard ratios from the
arms' normal priors (piecewise-exponential arms, classical assurance as in O'Hagan, Stevens &
Campbell 2005), and runs ``M`` trials. Each draw's truth comes from ``n`` counterfactual patients simulated under every arm
(:func:`simulator.trial.truth.counterfactual`): the true benefit is the difference between the
arms' copies of those patients, with its Monte Carlo error; for piecewise-exponential arms it is
exact, from the arms' survival functions (:func:`piecewise_benefit`).

Every draw has its own patients: draw ``k`` runs trials ``k M .. k M + M - 1`` (trial-scoped
ids, so the arms of a trial, and the nested sample sizes, share patients) and its own
counterfactual patients (a seed of its own). Sharing patients across draws would make the draws'
Monte Carlo errors move together: with M = 50 the assurance would carry the error of 50 trials,
not of K x 50 (DESIGN.md section 5).

The figures (:func:`assurance_figures`) carry 95% Monte Carlo intervals from resampling each
draw's success rate and truth (:func:`resampled_means`), with the draws held fixed: they say how far a rerun
with other patients (another seed) may move a number, not how far other draws of the same
posterior would.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special, stats

from simulator.analysis.labels import NRM_DRIVER_TITLES
from simulator.model import kernel as K
from simulator.trial import engine as E
from simulator.trial.design import BINARY_ENDPOINTS, TIME_ENDPOINTS, Assurance, lower_is_better
from simulator.trial.run import (
    RESULT_FIELDS,
    TrialArrays,
    TrialPatients,
    analyse_patients,
    resized,
    run_chunk,
    test_labels,
    trial_patients,
)
from simulator.trial.summary import RATIO_ESTIMANDS, Figure, format_figures
from simulator.trial.truth import counterfactual, piecewise_survival

BOOTSTRAP = 400  # resamples of the trial index for the Monte Carlo intervals
BOOTSTRAP_SEED = 20251206
POWERED = 0.8  # a draw's power counts as adequate from here
QUANTILES = (0.1, 0.5, 0.9)  # of the power and of the true benefit over draws
Z_95 = float(special.ndtri(0.975))  # half-width of a 95% normal interval, in SDs
BENEFIT_WORDS = {"os": "overall survival", "pfs": "progression-free survival", "nrm": "freedom from post-HSCT NRM",
                 "cr_cri": "CR/CRi", "sos_post_hsct": "freedom from post-HSCT SOS",
                 "grade3_ae": "freedom from grade >= 3 adverse events"}
Z_STAT = RESULT_FIELDS.index("z")
ESTIMATE = RESULT_FIELDS.index("estimate")


@dataclass(frozen=True)
class Draws:
    """``K`` draws of what the arms' models leave uncertain.

    Attributes
    ----------
    columns : tuple of int
        Kernel parameters (indices into :data:`simulator.model.kernel.PARAMETER_NAMES`) each draw sets
        in every strategy arm's model.
    values : numpy.ndarray
        (K, len(columns)) their values.
    log_hr : numpy.ndarray
        (K, arms): each piecewise-exponential arm's hazards are multiplied by ``exp(log_hr)``.
    structure : tuple of str
        Each draw's model structure id ("" where there is none).
    source : str
        Where the draws come from (for the Dataset's attributes).
    """

    columns: tuple[int, ...]
    values: np.ndarray
    log_hr: np.ndarray
    structure: tuple[str, ...]
    source: str

    @property
    def size(self) -> int:
        """Number of draws."""
        return len(self.structure)


def _pick(n: int, k: int | None) -> np.ndarray:
    """``k`` indices evenly spaced through ``range(n)`` (all if ``k`` is None or at least ``n``)."""
    return np.arange(n) if k is None or k >= n else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def parameter_draws(ta: TrialArrays, names: list[str], values: np.ndarray, structure: list[str], k: int | None,
                    source: str) -> Draws:
    """Draws of a parameter ensemble for strategy arms: ``k`` rows evenly spaced through ``values``.

    Parameters
    ----------
    names : list of str
        The parameters each draw sets (kernel parameter names; the others keep each arm's values).
    values : numpy.ndarray
        (draws, len(names)) the ensemble.
    structure : list of str
        Each ensemble row's model structure id.
    """
    if ta.model[0] is None:
        raise ValueError("a parameter ensemble needs strategy arms (piecewise-exponential arms take "
                         "log_hazard_ratio priors)")
    unknown = [n for n in names if n not in K.PARAMETER_NAMES]
    if unknown:
        raise ValueError(f"{source}: unknown parameter {unknown[0]!r}")
    pick = _pick(len(values), k)
    return Draws(columns=tuple(K.PARAMETER_NAMES.index(n) for n in names), values=np.asarray(values)[pick],
                 log_hr=np.zeros((len(pick), len(ta.model))), structure=tuple(structure[i] for i in pick),
                 source=source)


def prior_draws(ta: TrialArrays, k: int) -> Draws:
    """``k`` draws of the piecewise-exponential arms' log hazard ratio priors, at the normal quantiles
    ``(i + 1/2) / k`` (a stratified sample: the mean over draws has almost no sampling error).

    Arms without a prior keep their hazards; under ``null`` every arm takes the control's.
    """
    design = ta.design
    arms = [next(a for a in design.arms if a.name == design.control) if design.null else a for a in design.arms]
    z = special.ndtri((np.arange(k) + 0.5) / k)
    log_hr = np.zeros((k, len(arms)))
    for j, arm in enumerate(arms):
        if arm.log_hazard_ratio is not None:
            log_hr[:, j] = arm.log_hazard_ratio.mean + arm.log_hazard_ratio.sd * z
    return Draws(columns=(), values=np.empty((k, 0)), log_hr=log_hr, structure=("",) * k,
                 source="the arms' normal priors on the log hazard ratio")


def under_draw(ta: TrialArrays, draws: Draws, k: int) -> TrialArrays:
    """The converted design with draw ``k``'s parameters (strategy arms) or hazards (piecewise arms)."""
    if ta.model[0] is None:
        rates = ta.constants.pe_rates * np.exp(draws.log_hr[k])[:, None]
        return dataclasses.replace(ta, constants=ta.constants._replace(pe_rates=rates))
    columns = list(draws.columns)
    models = []
    for m in ta.model:
        par = m.par.copy()
        par[columns] = draws.values[k]
        models.append(dataclasses.replace(m, par=par))
    return dataclasses.replace(ta, model=tuple(models))


def true_benefit(ta: TrialArrays, cf: dict[str, np.ndarray], settings: Assurance) -> tuple[np.ndarray, np.ndarray]:
    """Each experimental arm's true benefit over the control in the counterfactual patients, and its SE.

    Every patient has a copy under each arm, so the difference is paired: its Monte Carlo SE is
    the SD of the patients' differences over sqrt(n).
    """
    b = settings.benefit
    dc = ta.constants
    if b.endpoint in TIME_ENDPOINTS:
        good = cf["tte"][:, TIME_ENDPOINTS.index(b.endpoint)] > b.months  # (arm, patient): free at months
    else:
        x = np.isfinite(cf["binary_time"][:, BINARY_ENDPOINTS.index(b.endpoint)])  # over complete follow-up
        good = ~x if lower_is_better(b.endpoint) else x
    diff = good[dc.comparisons].astype(float) - good[dc.control].astype(float)
    return diff.mean(axis=1), diff.std(axis=1, ddof=1) / math.sqrt(diff.shape[1])


def piecewise_benefit(ta: TrialArrays, settings: Assurance) -> np.ndarray:
    """:func:`true_benefit` of piecewise-exponential arms in closed form: the share free of the event at
    ``months``, S_e(m) - S_c(m); 0 for a binary endpoint (such arms have no binary outcomes)."""
    dc = ta.constants
    if settings.benefit.endpoint not in TIME_ENDPOINTS:
        return np.zeros(dc.comparisons.size)
    m = settings.benefit.months
    return np.array([float(piecewise_survival(ta, e, m) - piecewise_survival(ta, dc.control, m)) for e in dc.comparisons])


def first_slots(p: TrialPatients, n: int) -> TrialPatients:
    """The first ``n`` slots of every trial: exactly the patients of the design at ``n`` patients
    (entry, dropout, blocks and outcomes are the slots' own, in slot order), without selection."""
    s = p.slots
    c = np.ascontiguousarray
    return dataclasses.replace(p, slots=E.Slots(c(s.entry[:, :n]), c(s.drop_u[:, :n]), c(s.stratum[:, :n]),
                                                c(s.arm[:, :n]), c(s.tte[..., :n]), c(s.binary_time[..., :n])))


def draw_seed(seed: int, k: int) -> int:
    """The seed of draw ``k``'s counterfactual patients: its own, so that draws' truths err independently."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _success(parts: dict[str, np.ndarray], ta: TrialArrays) -> np.ndarray:
    """Per trial: the primary test crossed its efficacy bound for some experimental arm."""
    dc = ta.constants
    n_cmp = dc.comparisons.size
    primary = parts["decision"][:, :, dc.primary * n_cmp:(dc.primary + 1) * n_cmp]
    return (primary == E.EFFICACY).any(axis=(1, 2))


def simulate_assurance(ta: TrialArrays, draws: Draws, *, seed: int | None = None,
                       settings: Assurance | None = None,
                       progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Simulate the design's trials under every draw, with each draw's truth.

    Parameters
    ----------
    ta : TrialArrays
        The converted design (:func:`simulator.trial.run.trial_arrays`).
    draws : Draws
        What each draw changes (:func:`parameter_draws`, :func:`prior_draws`).
    seed : int, optional
        Seed of the patients (default: the design's).
    settings : Assurance, optional
        Trials per draw, truth patients, benefit, relevant difference, nested sizes (default: the
        design's ``assurance`` key, else its defaults).
    progress : callable, optional
        Called with (draws done, draws).

    Returns
    -------
    xarray.Dataset
        ``success`` (sample_size, draw, trial): the primary test rejected favouring an
        experimental arm (the design's own size and the nested ``sizes``, the same patients);
        at the design's size, per (draw, trial) (trial ``m`` of draw ``k`` is the design's trial
        ``first_trial[k] + m``): ``stop_look``, ``duration`` (months to the last
        look's cut), ``events`` (primary test's two arms at the stop); per (draw, trial, test):
        ``z`` and ``estimate`` at the stop; per (draw, experimental): ``true_benefit`` and its
        Monte Carlo ``true_benefit_se``; per (draw, arm) ``log_hr`` (piecewise arms); coordinates
        ``structure`` and ``nrm_driver`` on ``draw``.
    """
    design = ta.design
    settings = settings or design.assurance or Assurance()
    seed = design.seed if seed is None else int(seed)
    sizes = sorted(set(settings.sizes) | {design.sample_size})
    bases = {size: ta if size == design.sample_size else resized(ta, size) for size in sizes}
    n_draws, n_trials = draws.size, settings.trials_per_draw
    n_tests = ta.constants.tests.shape[0] * ta.constants.comparisons.size
    success = np.zeros((len(sizes), n_draws, n_trials), dtype=bool)
    stop = np.empty((n_draws, n_trials), dtype=np.int64)
    duration = np.empty((n_draws, n_trials))
    events = np.empty((n_draws, n_trials))
    z = np.empty((n_draws, n_trials, n_tests))
    estimate = np.empty((n_draws, n_trials, n_tests))
    benefit = np.empty((n_draws, ta.constants.comparisons.size))
    benefit_se = np.empty_like(benefit)
    rows = np.arange(n_trials)
    nested = design.selection is None  # with selection, the re-randomisation depends on the size's looks
    for k in range(n_draws):
        largest = trial_patients(under_draw(bases[sizes[-1]], draws, k), seed, k * n_trials, n_trials) \
            if nested else None
        for s, size in enumerate(sizes):
            tk = under_draw(bases[size], draws, k)
            parts = (analyse_patients(tk, first_slots(largest, size)) if nested
                     else run_chunk(tk, seed, k * n_trials, n_trials))
            success[s, k] = _success(parts, tk)
            if size != design.sample_size:
                continue
            at = parts["stop_look"]
            stop[k] = at + 1
            duration[k] = parts["cut"][rows, at]
            events[k] = parts["events"][rows, at, ta.constants.primary * ta.constants.comparisons.size]
            z[k] = parts["res"][rows, at, :, Z_STAT]
            estimate[k] = parts["res"][rows, at, :, ESTIMATE]
            if tk.model[0] is None:  # piecewise-exponential arms: the benefit in closed form, exact
                benefit[k], benefit_se[k] = piecewise_benefit(tk, settings), 0.0
            else:
                cf = counterfactual(tk, draw_seed(seed, k), settings.truth_patients)
                benefit[k], benefit_se[k] = true_benefit(tk, cf, settings)
        if progress is not None:
            progress(k + 1, n_draws)
    labels = test_labels(design)
    types = [t.type for t in design.tests for _ in design.experimental]
    structure = list(draws.structure)
    b = settings.benefit
    what = f"{BENEFIT_WORDS[b.endpoint]}" + (f" at {b.months:g} months" if b.months is not None else "")
    return xr.Dataset(
        {"success": (("sample_size", "draw", "trial"), success,
                     {"units": "1", "long_name": "primary test rejected favouring an experimental arm"}),
         "stop_look": (("draw", "trial"), stop, {"units": "1", "long_name": "look at which the trial stopped"}),
         "duration": (("draw", "trial"), duration, {"units": "month", "long_name": "first entry to the last cut"}),
         "events": (("draw", "trial"), events, {"units": "1", "long_name": "primary test's events at the stop"}),
         "z": (("draw", "trial", "test"), z, {"units": "1", "long_name": "z at the stop (> 0 favours experimental)"}),
         "estimate": (("draw", "trial", "test"), estimate,
                      {"units": "see estimand", "long_name": "effect estimate at the stop"}),
         "true_benefit": (("draw", "experimental"), benefit,
                          {"units": "1", "long_name": f"true benefit, experimental - control: {what}"}),
         "true_benefit_se": (("draw", "experimental"), benefit_se,
                             {"units": "1", "long_name": "Monte Carlo SE of the true benefit"}),
         "log_hr": (("draw", "arm"), draws.log_hr, {"units": "1", "long_name": "log hazard multiplier of each "
                                                   "piecewise-exponential arm (0: none)"})},
        coords={"sample_size": sizes, "draw": np.arange(n_draws), "trial": rows, "test": labels,
                "first_trial": ("draw", np.arange(n_draws) * n_trials),
                "test_type": ("test", types), "ratio": ("test", [t in RATIO_ESTIMANDS for t in types]),
                "experimental": design.experimental, "arm": [a.name for a in design.arms],
                "structure": ("draw", structure), "nrm_driver": ("draw", [s.split("-")[0] for s in structure])},
        attrs={"title": f"InOSim trials over draws: {design.name}", "design": design.model_dump_json(),
               "seed": seed, "draws_source": draws.source, "trials_per_draw": n_trials,
               "truth_patients": settings.truth_patients, "relevant_difference": settings.relevant_difference,
               "benefit": what, "benefit_endpoint": b.endpoint, "primary": design.primary_test.name,
               "sample_size_design": design.sample_size, "null": int(design.null),
               "uncertainty": "Monte Carlo intervals: each draw's success rate and truth resampled (draws fixed)"},
    )


# ---------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------


def resampled_means(values: np.ndarray, n: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(draw, n) resampled means of each draw's trials, independently per draw (each has its own
    patients); ``values`` is (draw, trial).

    Indicators (a boolean ``values``: successes) are redrawn as another seed would give them: M
    trials at a rate from the Jeffreys posterior of each draw's rate, Beta(s + 1/2, M - s + 1/2) for
    s successes in M trials (a beta-binomial), so that a draw with no success (or no failure) still
    varies, and the share of draws with none varies as between seeds (what the quantiles of the
    power over draws hang on). Its variance is about twice the estimate's: the intervals of means
    are conservative by about sqrt(2). Other values by the bootstrap (trials drawn with replacement).
    """
    rng = np.random.default_rng(seed)
    n_draws, n_trials = values.shape
    if values.dtype == bool:
        hits = values.sum(axis=1)[:, None]
        return rng.binomial(n_trials, rng.beta(hits + 0.5, n_trials - hits + 0.5, size=(n_draws, n))) / n_trials
    idx = rng.integers(0, n_trials, size=(n_draws, n, n_trials))
    return np.take_along_axis(values.astype(float)[:, None, :], idx, axis=2).mean(axis=2)


def smooth_quantile(x: np.ndarray, q: float) -> np.ndarray:
    """Harrell-Davis quantile along axis 0: a Beta((n+1) q, (n+1)(1-q))-weighted mean of the order
    statistics. Smooth in the data, so a quantile of tied values (powers from M trials are multiples
    of 1/M) does not jump between them from one seed to the next, and its resampling SD is honest."""
    n = x.shape[0]
    w = np.diff(stats.beta.cdf(np.arange(n + 1) / n, (n + 1) * q, (n + 1) * (1 - q)))
    return np.tensordot(w, np.sort(x, axis=0), axes=(0, 0))


def resampled_figure(name: str, point: float, resampled: np.ndarray, unit: str = "%", note: str = "") -> Figure:
    """A figure with a 95% normal interval from the SD of its resampled values, rates kept in [0, 1].

    Not the resamples' quantiles: resampling a draw's trials adds their binomial noise again, so the
    resampled quantiles of the power over draws lie further out than the estimate's."""
    ok = resampled[np.isfinite(resampled)]
    half = Z_95 * float(np.std(ok, ddof=1)) if ok.size > 1 else math.nan
    lo, hi = point - half, point + half
    if unit == "%":
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    return Figure(name, float(point), float(lo), float(hi), unit, note)


def assurance_figures(ds: xr.Dataset) -> list[Figure]:
    """Assurance, power by NRM driver, the power distribution, the true benefit, and their joint figures.

    Every figure carries a 95% Monte Carlo interval (:func:`resampled_figure`: each draw's
    successes resampled (:func:`resampled_means`) and its truth redrawn within its Monte Carlo
    error, the draws fixed); rates in ``%`` are fractions, the
    benefit in ``pp`` percentage points. Quantiles over draws are Harrell-Davis quantiles
    (:func:`smooth_quantile`).
    """
    fig = resampled_figure
    main = ds.success.sel(sample_size=ds.attrs["sample_size_design"]).values
    n_draws, n_trials = main.shape
    power = main.mean(axis=1)
    power_b = resampled_means(main)  # (draw, resample)
    out = [fig("assurance: P(the trial succeeds)", power.mean(), power_b.mean(axis=0),
               note=f"{n_draws} draws x {n_trials} trials")]
    labels = ds.nrm_driver.values
    if len(set(labels)) > 1:
        for label in sorted(set(labels), key=lambda v: -np.sum(labels == v)):
            mask = labels == label
            out.append(fig(f"power if {NRM_DRIVER_TITLES.get(str(label), label)}", power[mask].mean(),
                           power_b[mask].mean(axis=0), note=f"{mask.mean():.0%} of draws"))
    for q in QUANTILES:
        out.append(fig(f"power over draws, {q:.0%} quantile", float(smooth_quantile(power, q)),
                       smooth_quantile(power_b, q)))
    out.append(fig(f"share of draws with power >= {POWERED:.0%}", float(np.mean(power >= POWERED)),
                   np.mean(power_b >= POWERED, axis=0), note=f"power of a draw: {n_trials} trials"))
    benefit = ds.true_benefit.isel(experimental=0).values
    se = ds.true_benefit_se.isel(experimental=0).values
    # the truths resampled too: each draw's benefit with its own Monte Carlo error
    benefit_b = benefit[:, None] + se[:, None] * np.random.default_rng(BOOTSTRAP_SEED).standard_normal(power_b.shape)
    for i, q in enumerate(QUANTILES):
        out.append(fig(f"true benefit over draws, {q:.0%} quantile", 100 * float(smooth_quantile(benefit, q)),
                       100 * smooth_quantile(benefit_b, q), "pp",
                       note="" if i else f"truth's MC SE {100 * np.sqrt(np.mean(se ** 2)):.2g} pp per draw"))
    relevant = float(ds.attrs["relevant_difference"])
    out.append(fig(f"P(success and true benefit >= {100 * relevant:g} pp)", np.mean(power * (benefit >= relevant)),
                   (power_b * (benefit_b >= relevant)).mean(axis=0)))
    harm, harm_b = benefit < 0, benefit_b < 0
    out.append(fig("share of draws with true harm (benefit < 0)", float(harm.mean()), harm_b.mean(axis=0)))
    if harm.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(fig("P(success | true harm)", power[harm].mean(),
                           (power_b * harm_b).sum(axis=0) / harm_b.sum(axis=0), note=f"{harm.sum()} draws"))
    for size in ds.sample_size.values:
        if size != ds.attrs["sample_size_design"]:
            at = ds.success.sel(sample_size=size).values
            out.append(fig(f"assurance at {size} patients", at.mean(), resampled_means(at).mean(axis=0),
                           note="the same patients"))
    return out


def assurance_verdict(ds: xr.Dataset, figures: list[Figure]) -> str:
    """One sentence: the probability of success over everything the model does not know, and what it hangs on."""
    first = figures[0]

    def pct(f: Figure) -> str:
        return f"{100 * f.estimate:.0f}%"

    text = (f"Assurance {100 * first.estimate:.1f}% ({100 * first.lower:.1f} to {100 * first.upper:.1f}, 95% MC "
            f"CI): over {ds.attrs['draws_source']}, this trial succeeds in about "
            f"{_one_in(first.estimate)} runs")
    by = [f for f in figures if f.name.startswith("power if")]
    if by:
        text += "; its power is " + ", ".join(f"{pct(f)} {f.name.removeprefix('power ')}" for f in by)
    share = next(f for f in figures if f.name.startswith("share of draws with power"))
    return text + f"; {pct(share)} of draws give it {POWERED:.0%} power."


def _one_in(p: float) -> str:
    """``p`` as 'N in 100' or '1 in N' words."""
    if p <= 0:
        return "none of its"
    return f"1 in {1 / p:.0f}" if p < 0.5 else f"{100 * p:.0f} in 100"


def format_assurance(figures: list[Figure], title: str) -> str:
    """:func:`simulator.trial.summary.format_figures`, where a figure that no resample of the trials moves
    says so ("no spread", not "every trial")."""
    return format_figures(figures, title).replace(" (every trial)", " (no spread)")
