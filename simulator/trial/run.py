"""From a validated design to simulated trials: the one conversion point, chunks, the Dataset.

:func:`trial_arrays` turns a :class:`~simulator.trial.design.Design` into :class:`TrialArrays`:
the design, its arms' models and the kernels' :class:`~simulator.trial.engine.DesignConstants`
(plain arrays and integer codes), built once and passed whole; :func:`run_chunk` simulates a block of trials with the
kernels of :mod:`simulator.trial.engine` (no Python loop over trials or patients); and
:func:`simulate_trials` runs the chunks, here or on a dask cluster, and wraps the results
into an :class:`xarray.Dataset` over (trial, look, test).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import special

from simulator.model import kernel as K
from simulator.model.files import read_yaml
from simulator.model.simulation import ModelArrays, model_arrays, record_columns, run_kernel_ids
from simulator.trial import engine as E
from simulator.trial.boundaries import GRID_R, KIND_CODES, design_bounds, dunnett_alpha, information_fractions
from simulator.trial.design import (
    BINARY_ENDPOINTS,
    BINARY_TESTS,
    MAX_SLOTS,
    TIME_ENDPOINTS,
    TIME_TESTS,
    Design,
    Dropout,
    Test,
    arm_scenarios,
    design_from_dict,
    lower_is_better,
)

assert MAX_SLOTS == E.MAX_SLOTS, "design and engine must agree on the patient-id stride"
CHUNK_SLOTS = 400_000  # patient slots per chunk (bounds the memory of the model's records)
AGE_STRATUM_YEARS = 55.0  # the age_55 stratification factor: age >= 55 years
NRM_CAUSE = 2  # the kernel's death_cause of non-relapse death after HSCT (simulation.INT_FIELDS)
TEST_CODES = {name: i for i, name in enumerate(TIME_TESTS + BINARY_TESTS)}  # engine.T_* order
ESTIMANDS = {
    "logrank": ("hazard ratio, experimental vs control (Peto, exp((O-E)/V))", "1"),
    "weighted logrank": ("none (a Fleming-Harrington weighted log-rank test has no hazard-ratio estimand)", "1"),
    "maxcombo": ("none (MaxCombo has no single estimand)", "1"),
    "cox": ("hazard ratio, experimental vs control (Cox)", "1"),
    "rmst": ("difference in restricted mean survival time, experimental - control", "month"),
    "milestone": ("difference in Kaplan-Meier survival at the milestone, experimental - control", "1"),
    "proportions": ("difference in proportions, experimental - control", "1"),
    "fisher": ("difference in proportions, experimental - control", "1"),
    "cmh": ("Mantel-Haenszel risk difference, experimental - control", "1"),
}


def estimand(test: Test) -> tuple[str, str]:
    """What a test's ``estimate`` estimates, and its unit (:data:`ESTIMANDS`)."""
    weighted = test.type == "logrank" and (test.rho > 0.0 or test.gamma > 0.0)
    return ESTIMANDS["weighted logrank" if weighted else test.type]


RESULT_FIELDS = ("statistic", "p_value", "z", "estimate", "ci_lower", "ci_upper")  # engine res columns
DECISIONS = "1 efficacy (reject H0 favouring experimental), 2 harm (two-sided), -1 futility, 0 continue, -9 not done"


@dataclass(frozen=True)
class TrialArrays:
    """A validated design converted once: what every step of the trial layer reads.

    The one object passed around (as SALib's ``problem``): chunks of trials, the Dataset
    and the truth take it whole; the kernels get ``constants`` (see
    :mod:`simulator.trial.engine`).

    Attributes
    ----------
    design : Design
        The validated design.
    constants : DesignConstants
        The design as the kernels see it.
    model : tuple of ModelArrays or None
        Each arm's model without administrative censoring (None: piecewise-exponential arms).
    info_fraction : numpy.ndarray
        Planned information fraction of each look.
    """

    design: Design
    constants: E.DesignConstants
    model: tuple[ModelArrays | None, ...]
    info_fraction: np.ndarray


def _ends(durations: list[float]) -> np.ndarray:
    return np.append(np.cumsum(durations), np.inf).astype(float)


def dropout_rate(d: Dropout) -> float:
    """Exponential dropout rate per month."""
    return d.rate if d.rate is not None else -math.log1p(-d.probability) / d.months


def comparison_alpha(design: Design) -> float:
    """One-sided alpha of each experimental-vs-control comparison.

    All of it with one experimental arm; else Bonferroni's share, or with dose selection
    and ``multiplicity: dunnett`` Dunnett's level (:func:`~simulator.trial.boundaries.dunnett_alpha`).
    """
    alpha = design.alpha / design.sided
    exp = [a for a in design.arms if a.name != design.control]
    if len(exp) == 1:
        return alpha
    if design.selection is None or design.selection.multiplicity == "bonferroni":
        return alpha / len(exp)
    control_ratio = next(a.ratio for a in design.arms if a.name == design.control)
    return dunnett_alpha(alpha, [a.ratio for a in exp], control_ratio)


def _bounds(design: Design, alpha_cmp: float, info: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = design.spending
    f = s.futility
    if f is None:
        futility = None
    elif f.z is not None:
        futility = np.array(f.z, dtype=float)
    else:
        futility = {"beta": f.beta, "theta": f.theta, "spending": f.function, "param": f.param}
    b = design_bounds(info, alpha=alpha_cmp, spending=s.function, param=s.param, futility=futility,
                      binding=s.binding)
    return np.asarray(b.efficacy, dtype=float), np.asarray(b.futility, dtype=float)


def _trial_model(arrays: ModelArrays) -> ModelArrays:
    """The arm's model with no administrative censoring: the trial layer alone censors."""
    fu = np.zeros_like(arrays.fu)
    fu[:, 0] = np.inf
    return dataclasses.replace(arrays, fu=fu)


def _pe_tables(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-exponential hazards and period ends of every arm, padded to one width
    (with the last rate and inf); shape (0, 0) for strategy arms."""
    if design.arms[0].piecewise_exponential is None:
        return np.empty((0, 0)), np.empty((0, 0))
    control = next(a for a in design.arms if a.name == design.control)
    pe = [(control if design.null else a).piecewise_exponential for a in design.arms]
    width = max(len(p.rates) for p in pe)
    rates = np.array([np.pad(np.array(p.rates, dtype=float), (0, width - len(p.rates)), mode="edge") for p in pe])
    ends = np.array([np.pad(_ends(p.durations), (0, width - len(p.rates)), constant_values=np.inf) for p in pe])
    return rates, ends


def _convert(design: Design, model: tuple[ModelArrays | None, ...]) -> TrialArrays:
    """The design with its arms' models as :class:`TrialArrays` (no I/O)."""
    names = [a.name for a in design.arms]
    control = names.index(design.control)
    ratios = np.array([a.ratio for a in design.arms], dtype=np.int64)
    block = design.randomization.block_size or int(ratios.sum())
    looks = np.full((len(design.analyses), E.N_L), np.nan)
    for k, a in enumerate(design.analyses):
        looks[k, E.L_ENDPOINT] = TIME_ENDPOINTS.index(a.endpoint)
        for col, value in ((E.L_EVENTS, a.events), (E.L_CALENDAR, a.calendar), (E.L_MIN_FU, a.min_follow_up),
                           (E.L_GAP, a.gap), (E.L_MAX_EXT, a.max_extension)):
            if value is not None:
                looks[k, col] = value
    tests = np.zeros((len(design.tests), E.N_Q))
    for j, t in enumerate(design.tests):
        binary = t.endpoint in BINARY_ENDPOINTS
        tests[j, E.Q_TYPE] = TEST_CODES[t.type]
        tests[j, E.Q_ENDPOINT] = (BINARY_ENDPOINTS if binary else TIME_ENDPOINTS).index(t.endpoint)
        tests[j, E.Q_STRATIFIED] = t.stratified
        tests[j, E.Q_RHO] = t.rho
        tests[j, E.Q_GAMMA] = t.gamma
        tests[j, E.Q_EFRON] = t.ties == "efron"
        tests[j, E.Q_HORIZON] = t.tau if t.type == "rmst" else (t.time or 0.0)
        tests[j, E.Q_EVAL] = t.evaluation_months
        tests[j, E.Q_LOWER_BETTER] = lower_is_better(t.endpoint)
    alpha_cmp = comparison_alpha(design)
    info = information_fractions([a.information for a in design.analyses], [a.events for a in design.analyses])
    upper, lower = _bounds(design, alpha_cmp, info)
    primary = design.primary_test
    sel = design.selection
    drop = [dropout_rate(a.dropout or design.dropout) for a in design.arms]
    if design.null:
        drop = [drop[control]] * len(drop)
    pe_rates, pe_ends = _pe_tables(design)
    comparisons = np.array([i for i in range(len(names)) if i != control], dtype=np.int64)
    total = float(design.sample_size if primary.endpoint in BINARY_ENDPOINTS
                  else design.analyses[-1].events or math.nan)  # used with observed information
    pair = int(ratios[control] + ratios[comparisons[0]])  # the first comparison's share of it
    constants = E.DesignConstants(
        n_strata=1 << len(design.randomization.strata), ratios=ratios, block_mult=block // int(ratios.sum()),
        enroll_rates=np.array(design.enrollment.rates, dtype=float), enroll_ends=_ends(design.enrollment.durations),
        random_entry=design.enrollment.random, drop_rate=np.array(drop, dtype=float), pe_rates=pe_rates,
        pe_ends=pe_ends, looks=looks, tests=tests, control=control,
        comparisons=comparisons,
        primary=[t.name for t in design.tests].index(primary.name), upper=upper, lower=lower, sided=design.sided,
        z_ci=float(-special.ndtri(design.alpha / design.sided)), observed=design.spending.information == "observed",
        spend_code=KIND_CODES[design.spending.function], spend_param=float(design.spending.param),
        alpha_cmp=float(alpha_cmp),
        planned_final=total * pair / int(ratios.sum()),
        binding=design.spending.binding, grid_r=GRID_R,
        sel_look=-1 if sel is None else sel.look - 1, sel_rule=0 if sel is None or sel.rule == "best" else 1,
        sel_weight=0.0 if sel is None else float(sel.weight),
        sel_threshold=0.0 if sel is None or sel.threshold is None else float(sel.threshold),
        sel_eval=0.0 if sel is None else float(sel.evaluation_months))
    return TrialArrays(design=design, constants=constants, model=model, info_fraction=info)


def null_arrays(ta: TrialArrays) -> TrialArrays:
    """The same design under the null: every arm given the control's strategy (model, hazards,
    dropout), the arms' models reused (no scenario is loaded again). Its rejection rate is the
    design's type I error."""
    control = ta.constants.control
    return _convert(ta.design.model_copy(update={"null": True}), tuple(ta.model[control] for _ in ta.model))


def trial_arrays(design: Design, folder: str | Path = ".", source: str | Path = "design") -> TrialArrays:
    """Convert a validated design into :class:`TrialArrays` (the one conversion point).

    Parameters
    ----------
    design : Design
        Validated design.
    folder : str or Path
        Folder that scenario files in the design are relative to.
    source : str or Path
        Name used in error messages.
    """
    scenarios = arm_scenarios(design, folder, source)
    model = tuple(None if scenarios[a.name] is None else _trial_model(model_arrays(scenarios[a.name]))
                  for a in design.arms)
    return _convert(design, model)


def load_trial(path: str | Path, folder: str | Path | None = None) -> TrialArrays:
    """Load a design file and convert it (:func:`trial_arrays`), reading each arm's scenario once.

    The same checks and one-line errors as :func:`~simulator.trial.design.load_design`
    followed by :func:`trial_arrays`, which would read the scenarios twice. Scenario files
    are relative to ``folder`` (default: the design file's).
    """
    path = Path(path)
    return trial_arrays(design_from_dict(read_yaml(path), path), path.parent if folder is None else folder, path)


# ---------------------------------------------------------------------------------------
# patients
# ---------------------------------------------------------------------------------------


def model_outcomes(arrays: ModelArrays, seed: int, ids: np.ndarray):
    """Endpoints and stratification covariates of the patients ``ids`` under one arm.

    Returns
    -------
    tte : numpy.ndarray
        (time endpoint, patient): months from entry to death and to progression or death
        (inf: never).
    binary_time : numpy.ndarray
        (binary endpoint, patient): months from entry at which the outcome is known to have
        happened (inf: it never does). CR/CRi on its response day; post-HSCT SOS on the
        transplant day and a grade >= 3 adverse event on the day of the last dose, as the
        model's records hold neither an SOS onset day (a median 15 days after the
        transplant) nor an adverse event's day.
    covariates : dict of str to numpy.ndarray
        The stratification factors (bool per patient).
    """
    r = record_columns(*run_kernel_ids(arrays, seed, ids))

    def months(day: np.ndarray, happened: np.ndarray | bool = True) -> np.ndarray:
        return np.where(happened, np.nan_to_num(day, nan=np.inf), np.inf) / K.MONTH

    death = months(r["death_day"])
    binary_time = np.stack([months(r["response_day"], r["best_response"] == 1),
                            months(r["hsct_day"], r["sos_post_hsct"] == 1),
                            months(r["last_dose_day"], r["grade3_ae"] == 1)])
    # nrm: death without relapse after HSCT; a competing event (relapse, other death) leaves the time
    # infinite, so the patient stays at risk until censored: the subdistribution risk set of Fine and
    # Gray (1999) with censoring-complete data, under which the log-rank is Gray's test and 1 - KM the
    # cumulative incidence
    nrm = np.where(r["death_cause"] == NRM_CAUSE, death, np.inf)
    tte = np.stack([death, np.minimum(months(r["progression_day"]), death), nrm])
    covariates = {"salvage_line": r["salvage"] == 2, "age_55": r["age"] >= AGE_STRATUM_YEARS,
                  "prior_hsct": r["prior_hsct"] == 1}
    return tte, binary_time, covariates


def _fill_outcomes(ta: TrialArrays, seed: int, first_trial: int, arm: np.ndarray, mask: np.ndarray,
                   tte: np.ndarray, binary_time: np.ndarray) -> None:
    """Simulate the strategy-arm slots where ``mask`` holds, each under its arm, into ``tte`` and ``binary_time``."""
    n = arm.shape[1]
    flat_tte = tte.reshape(tte.shape[0], -1)
    flat_binary = binary_time.reshape(binary_time.shape[0], -1)
    for a, model in enumerate(ta.model):
        idx = np.flatnonzero(mask & (arm == a))
        if idx.size == 0:
            continue
        ids = (first_trial + idx // n) * MAX_SLOTS + idx % n
        flat_tte[:, idx], flat_binary[:, idx], _ = model_outcomes(model, seed, ids)


def _strata(ta: TrialArrays, seed: int, first_trial: int, n_trials: int, tte, binary_time) -> np.ndarray:
    """Stratum codes; the covariates come from simulating every slot under the control arm
    (whose outcomes are kept for the slots randomised to it)."""
    n = ta.design.sample_size
    stratum = np.zeros((n_trials, n), dtype=np.int64)
    if not ta.design.randomization.strata:
        return stratum
    ids = (np.arange(first_trial, first_trial + n_trials, dtype=np.int64)[:, None] * MAX_SLOTS
           + np.arange(n)).ravel()
    t_c, b_c, cov = model_outcomes(ta.model[ta.constants.control], seed, ids)
    for bit, factor in enumerate(ta.design.randomization.strata):
        stratum |= cov[factor].reshape(n_trials, n).astype(np.int64) << bit
    tte[:] = t_c.reshape(tte.shape)
    binary_time[:] = b_c.reshape(binary_time.shape)
    return stratum


@dataclass(frozen=True)
class TrialPatients:
    """The patients of a chunk of trials as the analysis sees them (see :mod:`simulator.trial.engine`).

    ``slots.arm`` is final (after any dose selection); ``alive`` (trial, arm) marks the arms
    compared from the selection look on; ``selected`` and ``utility`` are None without selection.
    """

    slots: E.Slots
    alive: np.ndarray
    selected: np.ndarray | None
    utility: np.ndarray | None


def trial_patients(ta: TrialArrays, seed: int, first_trial: int, n_trials: int) -> TrialPatients:
    """Entry, randomisation, outcomes (and dose selection) of trials ``first_trial ..``.

    Slot ``i`` of trial ``r`` is model patient ``r * MAX_SLOTS + i``, simulated under the one
    arm it ends up in; its entry, dropout and block draws are its own streams.
    """
    dc = ta.constants
    n = ta.design.sample_size
    n_arms = len(ta.model)
    piecewise = ta.model[0] is None
    entry = np.empty((n_trials, n))
    drop_u = np.empty((n_trials, n))
    pe_u = np.empty((n_trials, n) if piecewise else (0, 0))
    E.slot_draws(seed, first_trial, dc.enroll_rates, dc.enroll_ends, dc.random_entry, entry, drop_u, pe_u)
    tte = np.full((len(TIME_ENDPOINTS), n_trials, n), np.inf)
    binary_time = np.full((len(BINARY_ENDPOINTS), n_trials, n), np.inf)
    stratum = _strata(ta, seed, first_trial, n_trials, tte, binary_time)
    arm = np.empty((n_trials, n), dtype=np.int64)
    alive = np.ones((n_trials, n_arms), dtype=np.int8)
    never = np.full(n_trials, np.inf)
    E.randomise(dc, seed, first_trial, entry, stratum, never, alive, arm)
    if piecewise:
        E.piecewise_fill(arm, pe_u, dc.pe_rates, dc.pe_ends, tte)
    else:  # with strata, the control arm's slots were simulated already
        _fill_outcomes(ta, seed, first_trial, arm, (arm != dc.control) | (not ta.design.randomization.strata),
                       tte, binary_time)
    first = E.Slots(entry, drop_u, stratum, arm, tte, binary_time)
    if dc.sel_look < 0:
        return TrialPatients(first, alive, None, None)
    selected = np.empty((n_trials, n_arms), dtype=np.int8)
    utility = np.empty((n_trials, n_arms))
    sel_cut = np.empty(n_trials)
    E.select_arms(dc, seed, first_trial, first, selected, utility, sel_cut)
    second = np.empty_like(arm)
    E.randomise(dc, seed, first_trial, entry, stratum, sel_cut, selected, second)
    _fill_outcomes(ta, seed, first_trial, second, second != arm, tte, binary_time)
    return TrialPatients(first._replace(arm=second), selected, selected, utility)


def run_chunk(ta: TrialArrays, seed: int, first_trial: int, n_trials: int) -> dict[str, np.ndarray]:
    """Simulate and analyse trials ``first_trial .. first_trial + n_trials - 1``.

    A pure function of its arguments: the same trials give bit-identical results in any
    chunk, on any thread count or worker.

    Returns
    -------
    dict of numpy.ndarray
        The fields of :class:`~simulator.trial.engine.Results` (``res`` (trial, look, test x
        comparison, 6), ``events``, ``patients``, ``decision``, ``cut``, ``enrolled``,
        ``stop_look``), and with selection ``selected`` and ``utility`` (trial, arm).
    """
    return analyse_patients(ta, trial_patients(ta, seed, first_trial, n_trials))


def analyse_patients(ta: TrialArrays, p: TrialPatients) -> dict[str, np.ndarray]:
    """Analyse a chunk's patients (:func:`trial_patients`) as :func:`run_chunk` returns them."""
    dc = ta.constants
    out = E.empty_results(p.slots.entry.shape[0], dc.looks.shape[0], dc.tests.shape[0] * dc.comparisons.size)
    E.analyse(dc, p.slots, p.alive, out)
    parts = out._asdict()
    if p.selected is not None:
        parts.update(selected=p.selected, utility=p.utility)
    return parts


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of trials: a picklable unit of work for :func:`simulator.runtime.scaleout.scheduler`."""

    arrays: TrialArrays
    seed: int
    first_trial: int
    n_trials: int

    def __call__(self) -> dict[str, np.ndarray]:
        return run_chunk(self.arrays, self.seed, self.first_trial, self.n_trials)


def _run_task(task: ChunkTask) -> dict[str, np.ndarray]:
    return task()


def plan_chunks(ta: TrialArrays, seed: int, n_trials: int, chunk_trials: int | None = None) -> list[ChunkTask]:
    """Trials split into chunks of ``chunk_trials`` (default: about ``CHUNK_SLOTS`` slots each)."""
    size = chunk_trials or max(1, CHUNK_SLOTS // ta.design.sample_size)
    return [ChunkTask(ta, seed, first, min(size, n_trials - first)) for first in range(0, n_trials, size)]


def test_labels(design: Design) -> list[str]:
    """Names along the ``test`` dimension: ``test`` or ``test: arm`` with several experimental arms."""
    exp = design.experimental
    return [t.name if len(exp) == 1 else f"{t.name}: {a}" for t in design.tests for a in exp]


def to_dataset(ta: TrialArrays, parts: list[dict[str, np.ndarray]], seed: int) -> xr.Dataset:
    """Concatenate chunk results into the trial Dataset (see :func:`simulate_trials`)."""
    from simulator import __version__

    design, dc = ta.design, ta.constants
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n_trials = cat["stop_look"].size
    exp = design.experimental
    tests = [t for t in design.tests for _ in exp]
    dims3 = ("trial", "look", "test")
    data = {}
    for i, name in enumerate(RESULT_FIELDS):
        data[name] = (dims3, cat["res"][..., i])
    data["events"] = (dims3, cat["events"], {"units": "1", "long_name": "events (responders for binary endpoints) "
                                             "in the two compared arms"})
    data["patients"] = (dims3, cat["patients"], {"units": "1", "long_name": "patients analysed in the two arms"})
    data["decision"] = (dims3, cat["decision"], {"units": "1", "long_name": DECISIONS})
    data["cut_time"] = (("trial", "look"), cat["cut"], {"units": "month",
                                                      "long_name": "calendar time of the look's data cut-off"})
    data["enrolled"] = (("trial", "look"), cat["enrolled"], {"units": "1", "long_name": "patients enrolled by the cut"})
    data["stop_look"] = ("trial", cat["stop_look"] + 1, {"units": "1", "long_name": "look at which the trial stopped"})
    data["efficacy_bound"] = ("look", dc.upper, {"units": "1", "long_name": "planned efficacy z bound"})
    data["futility_bound"] = ("look", dc.lower, {"units": "1", "long_name": "planned futility z bound"})
    data["info_fraction"] = ("look", ta.info_fraction, {"units": "1", "long_name": "planned information fraction"})
    if "selected" in cat:
        data["selected"] = (("trial", "arm"), cat["selected"], {"units": "1", "long_name": "1 = arm continues"})
        data["utility"] = (("trial", "arm"), cat["utility"],
                           {"units": "1", "long_name": "P(CR/CRi) - weight x P(post-HSCT SOS) at selection"})
    attrs = {
        "statistic": ("1", "test statistic (z; MaxCombo: largest component z)"),
        "p_value": ("1", f"{'one' if design.sided == 1 else 'two'}-sided nominal p-value"),
        "z": ("1", "z compared with the bounds (> 0 favours experimental)"),
        "estimate": ("see estimand", "effect estimate"),
        "ci_lower": ("see estimand", f"lower {100 * (1 - 2 * design.alpha / design.sided):g}% confidence limit"),
        "ci_upper": ("see estimand", f"upper {100 * (1 - 2 * design.alpha / design.sided):g}% confidence limit"),
    }
    ds = xr.Dataset(
        data,
        coords={
            "trial": np.arange(n_trials),
            "look": np.arange(1, len(design.analyses) + 1),
            "test": test_labels(design),
            "arm": [a.name for a in design.arms],
            "test_name": ("test", [t.name for t in tests]),
            "test_type": ("test", [t.type for t in tests]),
            "endpoint": ("test", [t.endpoint for t in tests]),
            "experimental": ("test", [a for _ in design.tests for a in exp]),
            "estimand": ("test", [estimand(t)[0] for t in tests]),
            "estimate_units": ("test", [estimand(t)[1] for t in tests]),
        },
        attrs={
            "title": f"InOSim trial simulation: {design.name}",
            "design": design.model_dump_json(),
            "seed": seed,
            "control": design.control,
            "primary": design.primary_test.name,
            "alpha": design.alpha,
            "sided": design.sided,
            "alpha_per_comparison": dc.alpha_cmp,
            "null": int(design.null),
            "inosim_version": __version__,
            "time_origin": "calendar months from the first patient's entry",
        },
    )
    for name, (unit, what) in attrs.items():
        ds[name].attrs.update(units=unit, long_name=what)
    return ds


def simulate_trials(design: TrialArrays | Design | str | Path, *, n_trials: int | None = None,
                    seed: int | None = None, folder: str | Path | None = None, chunk_trials: int | None = None,
                    dask: str | None = None, progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Simulate the design's trials on the virtual patients.

    Parameters
    ----------
    design : TrialArrays, Design, str or Path
        A converted design (:func:`trial_arrays`: its scenarios are not loaded again), a
        validated design, or a design file.
    n_trials, seed : int, optional
        Override the design's ``n_trials`` and ``seed``.
    folder : str or Path, optional
        Folder the design's scenario files are relative to (default: the design file's,
        or the working directory for a Design object; unused for TrialArrays).
    chunk_trials : int, optional
        Trials per chunk (default: about ``CHUNK_SLOTS`` patient slots); results do not
        depend on it.
    dask : str, optional
        Run the chunks on a dask cluster (``local:N`` or a scheduler address); results are
        bit-identical.
    progress : callable, optional
        Called with (chunks done, chunks) as chunks finish.

    Returns
    -------
    xarray.Dataset
        Dimensions ``trial``, ``look`` (1-based), ``test`` (test x experimental arm),
        ``arm``. Per (trial, look, test): ``statistic``, ``p_value``, ``z``, ``estimate``,
        ``ci_lower``, ``ci_upper``, ``events``, ``patients``, ``decision``; per (trial,
        look): ``cut_time`` (months), ``enrolled``; per trial: ``stop_look``; per look: the
        planned ``efficacy_bound``, ``futility_bound``, ``info_fraction``; with selection,
        ``selected`` and ``utility`` per (trial, arm). Looks after the stop are NaN /
        ``-9``. The design (JSON) is in ``attrs['design']``.
    """
    from simulator.runtime.scaleout import scheduler

    if isinstance(design, TrialArrays):
        ta = design
    elif isinstance(design, Design):
        ta = trial_arrays(design, folder or ".")
    else:
        ta = load_trial(design, folder)
    seed = ta.design.seed if seed is None else int(seed)
    n_trials = ta.design.n_trials if n_trials is None else int(n_trials)
    tasks = plan_chunks(ta, seed, n_trials, chunk_trials)
    parts: list[dict[str, np.ndarray] | None] = [None] * len(tasks)
    with scheduler(dask) as map_tasks:
        for done, (position, result) in enumerate(map_tasks(_run_task, tasks), start=1):
            parts[position] = result
            if progress is not None:
                progress(done, len(tasks))
    return to_dataset(ta, parts, seed)


def resized(ta: TrialArrays, size: int) -> TrialArrays:
    """The design at ``size`` patients, event targets scaled by ``size / sample_size`` (rounded; a
    look's share of the events is kept), the arms' models unchanged."""
    design = ta.design
    scale = size / design.sample_size
    looks = [a.model_copy(update={"events": None if a.events is None else max(1, round(a.events * scale))})
             for a in design.analyses]
    return _convert(design.model_copy(update={"sample_size": size, "analyses": looks}), ta.model)


def sample_size_search(ta: TrialArrays, sizes: list[int], *, target: float = 0.8, n_trials: int | None = None,
                       seed: int | None = None, dask: str | None = None) -> xr.Dataset:
    """Power of the primary test over nested sample sizes, and the smallest size reaching ``target``.

    Each size keeps the design (``ta``, from :func:`trial_arrays`) but for ``sample_size``
    and event targets scaled by ``size / sample_size`` (rounded; a look's share of the
    events is kept), and the arms' models. Trial ``r`` holds the same patients in every
    slot at every size (trial-scoped ids), so the curve is smooth: sizes differ only by
    the patients added and the cuts that move.

    Returns
    -------
    xarray.Dataset
        ``power``, ``lower``, ``upper`` (95% Clopper-Pearson Monte Carlo CI) over
        ``sample_size``; ``attrs['smallest_size']``: the smallest size whose power estimate
        reaches ``target`` (-1 if none), ``attrs['smallest_size_lower']``: the same for the
        CI's lower limit.
    """
    from simulator.analysis.outcomes import clopper_pearson

    design = ta.design
    power, lower, upper = [], [], []
    for size in sizes:
        ds = simulate_trials(resized(ta, size), n_trials=n_trials, seed=seed, dask=dask)
        prim = [t for t in ds.test.values if ds.test_name.sel(test=t).item() == design.primary_test.name]
        hits = (ds.decision.sel(test=prim) == E.EFFICACY).any(("look", "test")).values
        k, n = int(hits.sum()), hits.size
        lo, hi = clopper_pearson(k, n)
        power.append(k / n)
        lower.append(lo)
        upper.append(hi)

    def smallest(values: list[float]) -> int:
        return next((s for s, v in zip(sizes, values) if v >= target), -1)

    return xr.Dataset(
        {"power": ("sample_size", power, {"units": "1", "long_name": "P(primary test rejects)"}),
         "lower": ("sample_size", lower, {"units": "1", "long_name": "95% Monte Carlo CI, lower"}),
         "upper": ("sample_size", upper, {"units": "1", "long_name": "95% Monte Carlo CI, upper"})},
        coords={"sample_size": list(sizes)},
        attrs={"target": target, "smallest_size": smallest(power), "smallest_size_lower": smallest(lower),
               "design": design.name, "null": int(design.null)})
