"""From a validated design to simulated trials: the one conversion point, chunks, the Dataset.

:func:`trial_arrays` turns a :class:`~simulator.trial.design.Design` into plain arrays and
integer codes (:class:`TrialArrays`); :func:`run_chunk` simulates a block of trials with the
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
from scipy import integrate, optimize, stats

from simulator.model import kernel as K
from simulator.model.simulation import ModelArrays, model_arrays, record_columns, run_kernel_ids
from simulator.trial import engine as E
from simulator.trial.boundaries import design_bounds
from simulator.trial.design import (
    BINARY_ENDPOINTS,
    BINARY_TESTS,
    LOWER_IS_BETTER,
    MAX_SLOTS,
    TIME_ENDPOINTS,
    TIME_TESTS,
    Design,
    Dropout,
    arm_scenarios,
    load_design,
)

assert MAX_SLOTS == E.MAX_SLOTS, "design and engine must agree on the patient-id stride"
CHUNK_SLOTS = 400_000  # patient slots per chunk (bounds the memory of the model's records)
AGE_STRATUM_YEARS = 55.0
DUNNETT_RANGE = 12.0  # the Dunnett quadrature integrates the shared normal factor over +-12 SD  # the age_55 stratification factor: age >= 55 years
TEST_CODES = {name: i for i, name in enumerate(TIME_TESTS + BINARY_TESTS)}  # engine.T_* order
ESTIMANDS = {
    "logrank": ("hazard ratio, experimental vs control (Peto, exp((O-E)/V))", "1"),
    "maxcombo": ("none (MaxCombo has no single estimand)", "1"),
    "cox": ("hazard ratio, experimental vs control (Cox)", "1"),
    "rmst": ("difference in restricted mean survival time, experimental - control", "month"),
    "milestone": ("difference in Kaplan-Meier survival at the milestone, experimental - control", "1"),
    "proportions": ("difference in proportions, experimental - control", "1"),
    "fisher": ("difference in proportions, experimental - control", "1"),
    "cmh": ("Mantel-Haenszel risk difference, experimental - control", "1"),
}
RESULT_FIELDS = ("statistic", "p_value", "z", "estimate", "ci_lower", "ci_upper")  # engine res columns
DECISIONS = "1 efficacy (reject H0 favouring experimental), 2 harm (two-sided), -1 futility, 0 continue, -9 not done"


@dataclass(frozen=True)
class TrialArrays:
    """A design as the kernels see it (see :mod:`simulator.trial.engine`)."""

    n_slots: int
    arm_names: tuple[str, ...]
    control: int
    ratios: np.ndarray
    block_mult: int
    strata: tuple[str, ...]
    enroll_rates: np.ndarray
    enroll_ends: np.ndarray
    random_entry: bool
    drop_rate: np.ndarray
    model: tuple[ModelArrays | None, ...]
    pe_rates: tuple[np.ndarray | None, ...]
    pe_ends: tuple[np.ndarray | None, ...]
    looks: np.ndarray
    tests: np.ndarray
    test_names: tuple[str, ...]
    comparisons: np.ndarray
    primary: int
    info_fraction: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    sided: int
    z_ci: float
    observed: bool
    spend_code: int
    spend_param: float
    alpha_cmp: float
    planned_final: float
    binding: bool
    sel_look: int
    sel_rule: int
    sel_weight: float
    sel_threshold: float
    sel_eval: float

    @property
    def n_strata(self) -> int:
        """Number of strata (2 ** factors)."""
        return 1 << len(self.strata)


def _ends(durations: list[float]) -> np.ndarray:
    return np.append(np.cumsum(durations), np.inf).astype(float)


def dropout_rate(d: Dropout) -> float:
    """Exponential dropout rate per month."""
    return d.rate if d.rate is not None else -math.log1p(-d.probability) / d.months


def comparison_alpha(design: Design) -> float:
    """One-sided alpha of each experimental-vs-control comparison (Bonferroni or Dunnett).

    Dunnett: the critical value c with P(max_k Z_k > c) = alpha for the K experimental arms'
    z statistics, correlated sqrt(r_j r_k / ((r_j + r_c)(r_k + r_c))) through the shared
    control (r: allocation ratios), by quadrature over the shared factor; valid after
    selection because dropping arms only lowers the maximum.
    """
    alpha = design.alpha / design.sided
    exp = [a for a in design.arms if a.name != design.control]
    if len(exp) == 1 or design.selection is None:
        return alpha if len(exp) == 1 else alpha / len(exp)
    if design.selection.multiplicity == "bonferroni":
        return alpha / len(exp)
    rc = next(a.ratio for a in design.arms if a.name == design.control)
    w = np.array([math.sqrt(a.ratio / (a.ratio + rc)) for a in exp])  # Z_k = w_k X + sqrt(1 - w_k^2) Y_k

    def excess(c: float) -> float:  # P(max_k Z_k > c) - alpha, one-dimensional quadrature over X
        def density(x: float) -> float:
            return stats.norm.pdf(x) * np.prod(stats.norm.cdf((c - w * x) / np.sqrt(1.0 - w * w)))
        return 1.0 - integrate.quad(density, -DUNNETT_RANGE, DUNNETT_RANGE, epsabs=1e-13)[0] - alpha

    c = optimize.brentq(excess, stats.norm.isf(alpha), stats.norm.isf(alpha / len(exp)) + 0.5, xtol=1e-10)
    return float(stats.norm.sf(c))


def planned_information(design: Design) -> np.ndarray:
    """Planned information fraction of each look."""
    looks = design.analyses
    if all(a.information is not None for a in looks):
        return np.array([a.information for a in looks], dtype=float)
    if len(looks) == 1:
        return np.ones(1)
    events = np.array([a.events for a in looks], dtype=float)
    return events / events[-1]


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


def trial_arrays(design: Design, folder: str | Path = ".", source: str | Path = "design") -> TrialArrays:
    """Convert a validated design into the kernels' arrays (the one conversion point).

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
    names = tuple(a.name for a in design.arms)
    control = names.index(design.control)
    control_arm = design.arms[control]
    model, pe_rates, pe_ends = [], [], []
    for arm in design.arms:
        pe = (control_arm if design.null else arm).piecewise_exponential
        scenario = scenarios[arm.name]
        model.append(None if scenario is None else _trial_model(model_arrays(scenario)))
        pe_rates.append(None if pe is None else np.array(pe.rates, dtype=float))
        pe_ends.append(None if pe is None else _ends(pe.durations))
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
        tests[j, E.Q_LOWER_BETTER] = t.endpoint in LOWER_IS_BETTER
    alpha_cmp = comparison_alpha(design)
    info = planned_information(design)
    upper, lower = _bounds(design, alpha_cmp, info)
    primary = design.primary_test
    sel = design.selection
    drop = [dropout_rate(a.dropout or design.dropout) for a in design.arms]
    if design.null:
        drop = [drop[control]] * len(drop)
    return TrialArrays(
        n_slots=design.sample_size, arm_names=names, control=control, ratios=ratios,
        block_mult=block // int(ratios.sum()), strata=tuple(design.randomization.strata),
        enroll_rates=np.array(design.enrollment.rates, dtype=float),
        enroll_ends=_ends(design.enrollment.durations), random_entry=design.enrollment.random,
        drop_rate=np.array(drop, dtype=float), model=tuple(model), pe_rates=tuple(pe_rates),
        pe_ends=tuple(pe_ends), looks=looks, tests=tests, test_names=tuple(t.name for t in design.tests),
        comparisons=np.array([i for i in range(len(names)) if i != control], dtype=np.int64),
        primary=[t.name for t in design.tests].index(primary.name), info_fraction=info, upper=upper,
        lower=lower, sided=design.sided, z_ci=float(stats.norm.isf(design.alpha / design.sided)),
        observed=design.spending.information == "observed", spend_code=["obf", "pocock", "hsd", "power"].index(
            design.spending.function), spend_param=design.spending.param, alpha_cmp=alpha_cmp,
        planned_final=float(design.sample_size if primary.endpoint in BINARY_ENDPOINTS
                            else design.analyses[-1].events or math.nan),  # used with observed information
        binding=design.spending.binding,
        sel_look=-1 if sel is None else sel.look - 1, sel_rule=0 if sel is None or sel.rule == "best" else 1,
        sel_weight=0.0 if sel is None else sel.weight,
        sel_threshold=0.0 if sel is None or sel.threshold is None else sel.threshold,
        sel_eval=0.0 if sel is None else sel.evaluation_months)


# ---------------------------------------------------------------------------------------
# patients
# ---------------------------------------------------------------------------------------


def _model_outcomes(arrays: ModelArrays, seed: int, ids: np.ndarray):
    """Endpoints (months; 1/0) and stratification covariates of the patients ``ids`` under one arm."""
    r = record_columns(*run_kernel_ids(arrays, seed, ids))
    death = np.nan_to_num(r["death_day"], nan=np.inf) / K.MONTH
    progression = np.nan_to_num(r["progression_day"], nan=np.inf) / K.MONTH
    tte = np.stack([death, np.minimum(progression, death)])
    binary = np.stack([r["best_response"], r["sos_post_hsct"], r["grade3_ae"]]).astype(np.int8)
    covariates = {"salvage_line": r["salvage"] == 2, "age_55": r["age"] >= AGE_STRATUM_YEARS,
                  "prior_hsct": r["prior_hsct"] == 1}
    return tte, binary, covariates


def _fill_outcomes(ta: TrialArrays, seed: int, first_trial: int, arm: np.ndarray, mask: np.ndarray,
                   tte: np.ndarray, binary: np.ndarray) -> None:
    """Simulate the strategy-arm slots where ``mask`` holds, each under its arm, into ``tte`` and ``binary``."""
    n = arm.shape[1]
    flat_tte = tte.reshape(tte.shape[0], -1)
    flat_binary = binary.reshape(binary.shape[0], -1)
    for a in range(len(ta.arm_names)):
        idx = np.flatnonzero(mask & (arm == a))
        if idx.size == 0:
            continue
        ids = (first_trial + idx // n) * MAX_SLOTS + idx % n
        flat_tte[:, idx], flat_binary[:, idx], _ = _model_outcomes(ta.model[a], seed, ids)


def _strata(ta: TrialArrays, seed: int, first_trial: int, n_trials: int, tte, binary) -> np.ndarray:
    """Stratum codes; the covariates come from simulating every slot under the control arm
    (whose outcomes are kept for the slots randomised to it)."""
    n = ta.n_slots
    stratum = np.zeros((n_trials, n), dtype=np.int64)
    if not ta.strata:
        return stratum
    ids = (np.arange(first_trial, first_trial + n_trials, dtype=np.int64)[:, None] * MAX_SLOTS
           + np.arange(n)).ravel()
    t_c, b_c, cov = _model_outcomes(ta.model[ta.control], seed, ids)
    for bit, factor in enumerate(ta.strata):
        stratum |= cov[factor].reshape(n_trials, n).astype(np.int64) << bit
    tte[:] = t_c.reshape(tte.shape)
    binary[:] = b_c.reshape(binary.shape)
    return stratum


def _pe_tables(ta: TrialArrays) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-exponential rates and period ends of every arm, padded to one width."""
    width = max(r.size for r in ta.pe_rates)
    rates = np.array([np.pad(r, (0, width - r.size), mode="edge") for r in ta.pe_rates])
    ends = np.array([np.pad(e, (0, width - e.size), constant_values=np.inf) for e in ta.pe_ends])
    return rates, ends


@dataclass(frozen=True)
class TrialPatients:
    """The patients of a chunk of trials as the analysis sees them (see :mod:`simulator.trial.engine`).

    ``arm`` is final (after any dose selection); ``alive`` (trial, arm) marks the arms
    compared from the selection look on; ``selected`` and ``utility`` are None without selection.
    """

    entry: np.ndarray
    drop_u: np.ndarray
    stratum: np.ndarray
    arm: np.ndarray
    tte: np.ndarray
    binary: np.ndarray
    alive: np.ndarray
    selected: np.ndarray | None
    utility: np.ndarray | None


def trial_patients(ta: TrialArrays, seed: int, first_trial: int, n_trials: int) -> TrialPatients:
    """Entry, randomisation, outcomes (and dose selection) of trials ``first_trial ..``.

    Slot ``i`` of trial ``r`` is model patient ``r * MAX_SLOTS + i``, simulated under the one
    arm it ends up in; its entry, dropout and block draws are its own streams.
    """
    n = ta.n_slots
    n_arms = len(ta.arm_names)
    piecewise = ta.model[0] is None
    entry = np.empty((n_trials, n))
    drop_u = np.empty((n_trials, n))
    pe_u = np.empty((n_trials, n) if piecewise else (0, 0))
    E.slot_draws(seed, first_trial, ta.enroll_rates, ta.enroll_ends, ta.random_entry, entry, drop_u, pe_u)
    tte = np.full((len(TIME_ENDPOINTS), n_trials, n), np.inf)
    binary = np.zeros((len(BINARY_ENDPOINTS), n_trials, n), dtype=np.int8)
    stratum = _strata(ta, seed, first_trial, n_trials, tte, binary)
    arm = np.empty((n_trials, n), dtype=np.int64)
    alive = np.ones((n_trials, n_arms), dtype=np.int8)
    never = np.full(n_trials, np.inf)
    E.randomise(seed, first_trial, entry, stratum, ta.n_strata, ta.ratios, ta.block_mult, never, alive, arm)
    if piecewise:
        E.piecewise_fill(arm, pe_u, *_pe_tables(ta), tte)
    else:  # with strata, the control arm's slots were simulated already
        _fill_outcomes(ta, seed, first_trial, arm, (arm != ta.control) | (not ta.strata), tte, binary)
    if ta.sel_look < 0:
        return TrialPatients(entry, drop_u, stratum, arm, tte, binary, alive, None, None)
    selected = np.empty((n_trials, n_arms), dtype=np.int8)
    utility = np.empty((n_trials, n_arms))
    sel_cut = np.empty(n_trials)
    E.select_arms(seed, first_trial, entry, arm, tte, binary, drop_u, ta.drop_rate, ta.looks, ta.sel_look, ta.control,
                  ta.sel_rule, ta.sel_weight, ta.sel_threshold, ta.sel_eval, selected, utility, sel_cut)
    second = np.empty_like(arm)
    E.randomise(seed, first_trial, entry, stratum, ta.n_strata, ta.ratios, ta.block_mult, sel_cut,
                selected, second)
    _fill_outcomes(ta, seed, first_trial, second, second != arm, tte, binary)
    return TrialPatients(entry, drop_u, stratum, second, tte, binary, selected, selected, utility)


def run_chunk(ta: TrialArrays, seed: int, first_trial: int, n_trials: int) -> dict[str, np.ndarray]:
    """Simulate and analyse trials ``first_trial .. first_trial + n_trials - 1``.

    A pure function of its arguments: the same trials give bit-identical results in any
    chunk, on any thread count or worker.

    Returns
    -------
    dict of numpy.ndarray
        ``res`` (trial, look, test x comparison, 6), ``events``, ``patients``, ``decision``,
        ``cut``, ``enrolled``, ``stop_look``, and with selection ``selected`` and
        ``utility`` (trial, arm).
    """
    p = trial_patients(ta, seed, first_trial, n_trials)
    out: dict[str, np.ndarray] = {}
    if p.selected is not None:
        out.update(selected=p.selected, utility=p.utility)
    n_looks = ta.looks.shape[0]
    m = len(ta.test_names) * ta.comparisons.size
    res = np.empty((n_trials, n_looks, m, len(RESULT_FIELDS)))
    events = np.empty((n_trials, n_looks, m), dtype=np.int64)
    patients = np.empty((n_trials, n_looks, m), dtype=np.int64)
    decision = np.empty((n_trials, n_looks, m), dtype=np.int8)
    cut = np.empty((n_trials, n_looks))
    enrolled = np.empty((n_trials, n_looks), dtype=np.int64)
    stop_look = np.empty(n_trials, dtype=np.int64)
    E.analyse(p.entry, p.arm, p.stratum, ta.n_strata, p.tte, p.binary, p.drop_u, ta.drop_rate, ta.looks,
              ta.tests, ta.control, ta.comparisons, ta.primary, ta.upper, ta.lower, ta.sided, ta.z_ci, ta.observed,
              ta.spend_code, ta.spend_param, ta.alpha_cmp, ta.planned_final, ta.binding, p.alive, ta.sel_look,
              res, events, patients, decision, cut, enrolled, stop_look)
    out.update(res=res, events=events, patients=patients, decision=decision, cut=cut, enrolled=enrolled,
               stop_look=stop_look)
    return out


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
    size = chunk_trials or max(1, CHUNK_SLOTS // ta.n_slots)
    return [ChunkTask(ta, seed, first, min(size, n_trials - first)) for first in range(0, n_trials, size)]


def test_labels(design: Design) -> list[str]:
    """Names along the ``test`` dimension: ``test`` or ``test: arm`` with several experimental arms."""
    exp = design.experimental
    return [t.name if len(exp) == 1 else f"{t.name}: {a}" for t in design.tests for a in exp]


def to_dataset(design: Design, ta: TrialArrays, parts: list[dict[str, np.ndarray]], seed: int) -> xr.Dataset:
    """Concatenate chunk results into the trial Dataset (see :func:`simulate_trials`)."""
    from simulator import __version__

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
    data["efficacy_bound"] = ("look", ta.upper, {"units": "1", "long_name": "planned efficacy z bound"})
    data["futility_bound"] = ("look", ta.lower, {"units": "1", "long_name": "planned futility z bound"})
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
            "look": np.arange(1, ta.looks.shape[0] + 1),
            "test": test_labels(design),
            "arm": list(ta.arm_names),
            "test_name": ("test", [t.name for t in tests]),
            "test_type": ("test", [t.type for t in tests]),
            "endpoint": ("test", [t.endpoint for t in tests]),
            "experimental": ("test", [a for _ in design.tests for a in exp]),
            "estimand": ("test", [ESTIMANDS[t.type][0] for t in tests]),
            "estimate_units": ("test", [ESTIMANDS[t.type][1] for t in tests]),
        },
        attrs={
            "title": f"InOSim trial simulation: {design.name}",
            "design": design.model_dump_json(),
            "seed": seed,
            "control": design.control,
            "primary": design.primary_test.name,
            "alpha": design.alpha,
            "sided": design.sided,
            "alpha_per_comparison": ta.alpha_cmp,
            "null": int(design.null),
            "inosim_version": __version__,
            "time_origin": "calendar months from the first patient's entry",
        },
    )
    for name, (unit, what) in attrs.items():
        ds[name].attrs.update(units=unit, long_name=what)
    return ds


def simulate_trials(design: Design | str | Path, *, n_trials: int | None = None, seed: int | None = None,
                    folder: str | Path | None = None, chunk_trials: int | None = None, dask: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Simulate the design's trials on the virtual patients.

    Parameters
    ----------
    design : Design, str or Path
        A validated design, or a design file.
    n_trials, seed : int, optional
        Override the design's ``n_trials`` and ``seed``.
    folder : str or Path, optional
        Folder the design's scenario files are relative to (default: the design file's,
        or the working directory for a Design object).
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

    if not isinstance(design, Design):
        path = Path(design)
        design = load_design(path)
        folder = path.parent if folder is None else folder
        source = path
    else:
        source = "design"
    ta = trial_arrays(design, folder or ".", source)
    seed = design.seed if seed is None else int(seed)
    n_trials = design.n_trials if n_trials is None else int(n_trials)
    tasks = plan_chunks(ta, seed, n_trials, chunk_trials)
    parts: list[dict[str, np.ndarray] | None] = [None] * len(tasks)
    with scheduler(dask) as map_tasks:
        for done, (position, result) in enumerate(map_tasks(_run_task, tasks), start=1):
            parts[position] = result
            if progress is not None:
                progress(done, len(tasks))
    return to_dataset(design, ta, parts, seed)


def sample_size_search(design: Design, sizes: list[int], *, target: float = 0.8, folder: str | Path = ".",
                       n_trials: int | None = None, seed: int | None = None,
                       dask: str | None = None) -> xr.Dataset:
    """Power of the primary test over nested sample sizes, and the smallest size reaching ``target``.

    Each size keeps the design but for ``sample_size`` and event targets scaled by
    ``size / sample_size`` (rounded; a look's share of the events is kept). Trial ``r``
    holds the same patients in every slot at every size (trial-scoped ids), so the curve
    is smooth: sizes differ only by the patients added and the cuts that move.

    Returns
    -------
    xarray.Dataset
        ``power``, ``lower``, ``upper`` (95% Clopper-Pearson Monte Carlo CI) over
        ``sample_size``; ``attrs['smallest_size']``: the smallest size whose power estimate
        reaches ``target`` (-1 if none), ``attrs['smallest_size_lower']``: the same for the
        CI's lower limit.
    """
    from simulator.analysis.outcomes import clopper_pearson

    power, lower, upper = [], [], []
    for size in sizes:
        scale = size / design.sample_size
        looks = [a.model_copy(update={"events": None if a.events is None else max(1, round(a.events * scale))})
                 for a in design.analyses]
        d = design.model_copy(update={"sample_size": size, "analyses": looks})
        ds = simulate_trials(d, n_trials=n_trials, seed=seed, folder=folder, dask=dask)
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
