"""Calibration: fit the model parameters to published figures and quantify their uncertainty.

The model is fitted, not hand-set: starting values (``parameters/starting.yaml``)
are the prior centres; the fitted values go to ``parameters/default.yaml`` and a
posterior ensemble to ``parameters/posterior.nc``.

* **Figures.** Primary: every figure of the pooled dose analysis
  (``targets/pooled_dose_analysis.yaml``) plus the share of patients at <= 3.3 mg/m2,
  computed on the pooled scenario with patients grouped by realised cumulative dose
  exactly as in :func:`simulator.outcomes.summarize`. Secondary: INO-VATE figures
  (``targets/label_and_inovate.yaml``) computed on the pooled scenario's INO-VATE
  cohort (the INO-VATE arm under the regimen it received). Figures
  that are inputs of the model (population shares, SOS onset, fatal SOS share) or
  that we keep out of the fit are reported as *validation*.
* **Likelihood.** A rate is binomial at its published n; where n is not reported it
  is the simulated subgroup share times the published group size. A median is read
  on the probability scale: the simulated distribution's mass below the reported
  median must be 0.5 up to a normal error whose standard error is Greenwood's at
  the published n (for uncensored data, 0.5 / sqrt(n)), which is the
  Brookmeyer-Crowley interval inverted. Each figure contributes a deviance residual;
  the loss is half their sum of squares, i.e. minus the log-likelihood.
* **Fit.** :func:`scipy.optimize.least_squares` (trust-region reflective) on those
  residuals with finite differences, from several starts. The loss is a sum of
  squares, which Gauss-Newton methods exploit; common random numbers (one seed for
  every evaluation) make the residuals nearly smooth in the parameters, so finite
  differences are stable where Nelder-Mead would need thousands of evaluations.
* **Uncertainty.** A sequential Monte Carlo sampler (likelihood tempering from the
  Laplace approximation at the fit to the posterior, see :func:`sample_posterior`)
  gives an ensemble of parameter sets for probabilistic sensitivity analysis.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from scipy import optimize, stats

from simulator import kernel as K
from simulator.config import (
    Parameters,
    Scenario,
    default_config_dir,
    load_parameters,
    load_scenario,
    read_yaml,
    resolve_cohorts,
)
from simulator.outcomes import (
    DEFAULT_CUTOFF,
    METRICS,
    clopper_pearson,
    cumulative_incidence,
    group_masks,
    kaplan_meier,
    km_survival_at,
    patient_columns,
)
from simulator.simulation import model_arrays, records_to_dataset, run_kernel
from simulator.storage import atomic_path, write_netcdf
from simulator.targets import load_pooled_targets

Z95 = stats.norm.ppf(0.975)
INOVATE_N = 164  # patients in the INO-VATE InO arm
P_CLIP = 1e-6  # simulated probabilities are kept in [P_CLIP, 1 - P_CLIP] in the likelihood


# ----------------------------------------------------------------------------- fitted parameters
@dataclass(frozen=True)
class FitParameter:
    """A fitted parameter: its transform to an unbounded scale and its prior SD there."""

    name: str
    transform: str  # "id", "log" or "logit"
    prior_sd: float

    def to_free(self, x: float) -> float:
        if self.transform == "log":
            return math.log(x)
        if self.transform == "logit":
            return math.log(x / (1.0 - x))
        return x

    def from_free(self, z: float) -> float:
        if self.transform == "log":
            return math.exp(z)
        if self.transform == "logit":
            return 1.0 / (1.0 + math.exp(-z))
        return z


FIT_PARAMETERS = (
    FitParameter("resp_intercept_cycle1", "id", 1.5),
    FitParameter("resp_intercept_cycle2", "id", 1.5),
    FitParameter("resp_intercept_cycle3plus", "id", 1.5),
    FitParameter("resp_dose_slope", "id", 1.0),
    FitParameter("resp_sensitivity_sd", "log", 0.7),
    FitParameter("mrd_intercept", "id", 1.0),
    FitParameter("progression_rate_refractory", "log", 1.0),
    FitParameter("progression_resistance", "id", 1.0),
    FitParameter("death_rate_after_progression", "log", 0.7),
    FitParameter("death_after_progression_disease_share", "logit", 1.0),
    FitParameter("relapse_rate_remission", "log", 0.7),
    FitParameter("relapse_on_treatment", "id", 1.0),
    FitParameter("g3ae_intercept_cycle1", "id", 1.0),
    FitParameter("g3ae_intercept_later", "id", 1.0),
    FitParameter("sae_intercept_cycle1", "id", 1.0),
    FitParameter("sae_intercept_later", "id", 1.0),
    FitParameter("sae_not_in_remission", "id", 1.0),
    FitParameter("discontinue_intercept", "id", 1.0),
    FitParameter("discontinue_cumulative_slope", "id", 0.5),
    FitParameter("cycle_delay_mean_days", "log", 0.7),
    FitParameter("sos_intercept_treatment", "id", 1.0),
    FitParameter("sos_intercept_post_hsct", "id", 1.0),
    FitParameter("sos_cumulative_dose_slope", "id", 0.5),
    FitParameter("sos_age_per_decade", "id", 0.5),
    FitParameter("sos_prior_hsct", "id", 0.7),
    FitParameter("sos_salvage2", "id", 0.7),
    FitParameter("sos_severe_prob", "logit", 1.0),
    FitParameter("eligibility_log_odds_shift", "id", 1.0),
    FitParameter("hsct_proceed_prob", "logit", 1.0),
    FitParameter("hsct_late_rate", "log", 1.0),
    FitParameter("hsct_salvage_prob", "logit", 1.0),
    FitParameter("nrm_rate", "log", 0.7),
    FitParameter("nrm_shape", "log", 0.5),
    FitParameter("nrm_cumulative_dose_slope", "id", 0.5),
    FitParameter("relapse_rate_post_hsct", "log", 0.7),
    FitParameter("relapse_post_hsct_shape", "log", 0.5),
)
FIT_NAMES = tuple(p.name for p in FIT_PARAMETERS)
FREE_BOUND = 6.0  # fitted values stay within +-6 (free scale) of their starting values
FD_STEP = 0.05  # finite-difference step, in prior SDs


# ----------------------------------------------------------------------------- simulated figures
@dataclass(frozen=True)
class Sim:
    """A simulated figure.

    ``estimate`` and its Monte Carlo ``se``; ``n_den``/``n_group``: simulated patients in
    the denominator and in the whole group (to scale a published group size to the
    figure's own n). For medians, ``cdf`` gives the simulated probability below a value,
    ``quantile`` inverts it, and ``se_unit`` is the Greenwood SE of the curve near the
    median for one patient (the SE at n is se_unit / sqrt(n)).
    """

    estimate: float
    se: float
    n_den: int
    n_group: int
    cdf: Callable[[float], float] | None = None
    quantile: Callable[[float], float] | None = None
    se_unit: float = math.nan


def _rate(k: int, n: int, n_group: int) -> Sim:
    p = k / n if n else math.nan
    return Sim(p, math.sqrt(p * (1 - p) / n) if n else math.nan, n, n_group)


def _median_of_sample(x: np.ndarray, n_group: int) -> Sim:
    x = np.sort(x)
    n = len(x)
    if n == 0:
        return Sim(math.nan, math.nan, 0, n_group)

    def cdf(v: float) -> float:  # mid-distribution function: ties count half
        return (np.searchsorted(x, v, "left") + np.searchsorted(x, v, "right")) / 2 / n

    def quantile(q: float) -> float:
        return float(x[min(max(int(n * q), 0), n - 1)])

    half = Z95 * 0.5 / math.sqrt(n)
    return Sim(float(np.median(x)), (quantile(0.5 + half) - quantile(0.5 - half)) / (2 * Z95), n, n_group,
               cdf, quantile, 0.5)


def _km_median(time: np.ndarray, event: np.ndarray, n_group: int) -> Sim:
    n = len(time)
    if n == 0:
        return Sim(math.nan, math.nan, 0, n_group)
    t, s, se_log = kaplan_meier(time, event)

    def quantile(q: float) -> float:  # first time with S <= 1 - q
        idx = np.flatnonzero(s <= 1.0 - q)
        return float(t[idx[0]]) if len(idx) else math.inf

    def cdf(v: float) -> float:
        i = np.searchsorted(t, v, side="right") - 1
        return 0.0 if i < 0 else 1.0 - float(s[i])

    med = quantile(0.5)
    j = min(np.searchsorted(t, med), len(t) - 1)
    se_s = float(s[j] * se_log[j]) if np.isfinite(se_log[j]) else 0.5 / math.sqrt(n)
    return Sim(med, (quantile(0.5 + Z95 * se_s) - quantile(0.5 - Z95 * se_s)) / (2 * Z95), n, n_group,
               cdf, quantile, se_s * math.sqrt(n))


def _post_hsct_competing(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Months from HSCT to relapse (1), non-relapse death (2) or censoring (0), transplanted only."""
    h = d["hsct"]
    hday = d["hsct_day"][h]
    rel = d["relapse_post_hsct_day"][h]
    nrm = np.where(d["death_cause"][h] == K.CAUSE_NRM_POST_HSCT, d["death_day"][h], np.inf)
    end = np.fmin(np.fmin(np.nan_to_num(rel, nan=np.inf), nrm), d["censor_day"][h])
    cause = np.where(end == rel, 1, np.where(end == nrm, 2, 0))
    return (end - hday) / K.MONTH, cause


# ----------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Figure:
    """A published figure and how to compute it on simulated patients.

    ``study`` is "pooled" (pooled scenario, groups by realised dose) or "inovate"
    (the pooled scenario's INO-VATE cohort); ``group_size`` is the published size of the group the
    figure is a share of (to derive n where it is not reported).
    """

    key: str
    label: str
    study: str
    value: float
    n: int | None
    kind: str  # "rate" or "median"
    primary: bool
    fitted: bool
    group_size: int
    source: str
    compute: Callable[[dict], Sim]
    weight: float = 1.0  # < 1 where several figures come from the same patients
    reported_precision: float | None = None  # half the last reported digit, if not the default

    def n_used(self, sim: Sim) -> float:
        """The published n, or the simulated subgroup share times the group size."""
        if self.n is not None:
            return float(self.n)
        return max(sim.n_den / sim.n_group * self.group_size, 1.0) if sim.n_group else math.nan

    def interval(self, sim: Sim) -> tuple[float, float]:
        """95% interval of the published figure at its n (see the module docstring)."""
        n = self.n_used(sim)
        if self.kind == "rate":
            return clopper_pearson(round(self.value * n), round(n))
        se = sim.se_unit / math.sqrt(n)
        # the spread of medians at the published n, from the simulated curve, centred on
        # the published value and widened by its reporting precision
        return (self.value - self.precision - (sim.estimate - sim.quantile(0.5 - Z95 * se)),
                self.value + self.precision + (sim.quantile(0.5 + Z95 * se) - sim.estimate))

    def residual(self, sim: Sim) -> float:
        """Signed deviance residual of the published figure given the simulated one.

        A median counts as matched anywhere within its reporting precision (e.g. a
        median reported as 0.8 months is any value in [0.75, 0.85]).
        """
        n = self.n_used(sim)
        if not (np.isfinite(n) and np.isfinite(sim.estimate)):
            return 10.0  # the simulation produced no such patients: a large, finite penalty
        if self.kind == "rate":
            p = min(max(sim.estimate, P_CLIP), 1 - P_CLIP)
            v = min(max(self.value, P_CLIP), 1 - P_CLIP)
            dev = 2 * n * (v * math.log(v / p) + (1 - v) * math.log((1 - v) / (1 - p)))
            r = math.copysign(math.sqrt(max(dev, 0.0)), p - v)
        else:
            lo, hi = sim.cdf(self.value - self.precision), sim.cdf(self.value + self.precision)
            gap = lo - 0.5 if lo > 0.5 else (hi - 0.5 if hi < 0.5 else 0.0)
            r = gap / (max(sim.se_unit, 1e-9) / math.sqrt(n))
        return r * math.sqrt(self.weight)

    @property
    def precision(self) -> float:
        """Half the last reported digit (0.05 for 0.8, 0.005 for 2.09, 0.5 for 3), unless given."""
        if self.reported_precision is not None:
            return self.reported_precision
        text = repr(self.value)
        decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
        return 0.5 * 10.0 ** -decimals


def _pooled_figures() -> list[Figure]:
    pub = load_pooled_targets()
    by_id = {m.id: m for m in METRICS}
    figures = [Figure(
        "pooled:share_le33", "patients with cumulative dose <= 3.3 mg/m2", "pooled",
        pub.group_sizes["le"] / pub.group_sizes["all"], pub.group_sizes["all"], "rate", True, True,
        pub.group_sizes["all"], "pooled analysis: 161 of 338",
        lambda d: _rate(int(d["_groups"]["le"].sum()), len(d["hsct"]), len(d["hsct"])))]
    for t in pub.targets:
        metric = by_id[t.id]

        def compute(d: dict, metric=metric, group=t.group) -> Sim:
            mask = d["_groups"][group]
            among = metric.among(d) & mask
            n_group = int(mask.sum())
            if metric.kind == "rate":
                return _rate(int((metric.value(d) & among).sum()), int(among.sum()), n_group)
            if metric.kind == "km_median":
                time, event = metric.value(d)
                return _km_median(time[among], event[among], n_group)
            return _median_of_sample(metric.value(d)[among], n_group)

        kind = "rate" if metric.kind == "rate" else "median"
        figures.append(Figure(f"pooled:{t.id}:{t.group}", f"{t.what} [{t.group}]", "pooled", t.value,
                              t.n, kind, True, True, pub.group_sizes[t.group], "pooled analysis", compute,
                              reported_precision=t.precision))
    return figures


def _inovate_statistics() -> dict[str, tuple[bool, Callable[[dict, list], list[Sim]]]]:
    """INO-VATE figures by their `what` text: (fitted?, compute -> one Sim per value)."""
    def rate_by(mask_fn, value_fn):
        def compute(d, values):
            n_all = len(d["hsct"])
            out = []
            for mask in mask_fn(d):
                out.append(_rate(int((value_fn(d) & mask).sum()), int(mask.sum()), n_all))
            return out
        return compute

    age55 = lambda d: d["age"] >= 55  # noqa: E731
    every = lambda d: [np.ones_like(d["hsct"])]  # noqa: E731
    sos_tx = lambda d: d["sos"] & ~d["sos_post_hsct"]  # noqa: E731

    def post_hsct(which):
        def compute(d, values):
            t, cause = _post_hsct_competing(d)
            n_h = int(d["hsct"].sum())
            if which == "os":
                h = d["hsct"]
                os_t = (np.fmin(np.nan_to_num(d["death_day"][h], nan=np.inf), d["censor_day"][h])
                        - d["hsct_day"][h]) / K.MONTH
                est = [km_survival_at(os_t, d["os_event"][h], m)[0] for m in (12.0, 24.0)]
            else:
                est = [cumulative_incidence(t, cause, m, of=1 if which == "relapse" else 2)
                       for m in (12.0, 24.0)]
            return [Sim(e, math.sqrt(e * (1 - e) / max(n_h, 1)), n_h, len(d["hsct"])) for e in est]
        return compute

    def blasts_masks(d):
        b = d["marrow_blasts"]
        return [b < 50, (b >= 50) & (b <= 90), b > 90]

    def median_cycles(d, values):
        return [_median_of_sample(d["cycles"].astype(float), len(d["hsct"]))]

    return {
        "responders by cycle of first CR/CRi: cycle 1 / 2 / 3": (True, lambda d, v: [
            _rate(int((d["response_cycle"] == c).sum()), int(d["best_response"].sum()), len(d["hsct"]))
            for c in (1, 2, 3)]),
        "MRD negativity among CR/CRi (ITT218)": (True, rate_by(lambda d: [d["best_response"]],
                                                               lambda d: d["mrd_negative"])),
        "HSCT, age < 55 vs >= 55": (True, rate_by(lambda d: [~age55(d), age55(d)], lambda d: d["hsct"])),
        "SOS/VOD overall": (True, rate_by(every, lambda d: d["sos"])),
        "SOS/VOD without subsequent HSCT (up to 56 days after last dose)": (True, rate_by(every, sos_tx)),
        "SOS/VOD after HSCT": (True, rate_by(lambda d: [d["hsct"]], lambda d: d["sos_post_hsct"])),
        "post-HSCT SOS, age < 55 vs >= 55": (True, rate_by(
            lambda d: [d["hsct"] & ~age55(d), d["hsct"] & age55(d)], lambda d: d["sos_post_hsct"])),
        "SOS/VOD incl. post-HSCT, salvage 1 vs salvage 2": (True, rate_by(
            lambda d: [d["salvage"] == 1, d["salvage"] == 2], lambda d: d["sos"])),
        "SOS/VOD, no prior HSCT vs prior HSCT": (True, rate_by(
            lambda d: [d["prior_hsct"] == 0, d["prior_hsct"] == 1], lambda d: d["sos"])),
        "after HSCT: non-relapse mortality at 1 / 2 years": (True, post_hsct("nrm")),
        "after HSCT: relapse at 1 / 2 years": (True, post_hsct("relapse")),
        "after HSCT: overall survival at 1 / 2 years": (True, post_hsct("os")),
        # validation: inputs of the model or figures kept out of the fit
        "any HSCT": (False, rate_by(every, lambda d: d["hsct"])),
        "median number of cycles": (False, median_cycles),
        "CR/CRi by marrow blasts <50% / 50-90% / >90%": (False, rate_by(blasts_masks, lambda d: d["best_response"])),
        "fatal post-HSCT SOS, of post-HSCT SOS cases": (False, rate_by(
            lambda d: [d["sos_post_hsct"]], lambda d: d["sos_post_hsct_grade"] == K.SOS_FATAL)),
        "age >= 55, InO arm": (False, rate_by(every, age55)),
        "salvage 2 (two prior induction regimens)": (False, rate_by(every, lambda d: d["salvage"] == 2)),
        "Philadelphia chromosome positive": (False, rate_by(every, lambda d: d["ph_positive"] == 1)),
        "prior allogeneic HSCT": (False, rate_by(every, lambda d: d["prior_hsct"] == 1)),
        "marrow blasts <50% / 50-90% / >90%, InO arm": (False, _blast_shares),
    }


# Figures read off the same patients carry less information than independent ones: the
# three shares of responders by cycle are one multinomial (two degrees of freedom), and
# each 1- and 2-year pair after HSCT comes from the same 77 patients (nearly one figure).
SHARED_PATIENTS_WEIGHT = {
    "responders by cycle of first CR/CRi: cycle 1 / 2 / 3": 2 / 3,
    "after HSCT: non-relapse mortality at 1 / 2 years": 0.5,
    "after HSCT: relapse at 1 / 2 years": 0.5,
    "after HSCT: overall survival at 1 / 2 years": 0.5,
}


def _inovate_figures() -> list[Figure]:
    doc = read_yaml(default_config_dir() / "targets" / "label_and_inovate.yaml")
    known = _inovate_statistics()
    figures = []
    for entry in doc["population_inovate"] + doc["inovate_inO_arm"]:
        what = entry["what"]
        if what not in known or isinstance(entry["value"], str):
            continue
        fitted, compute = known[what]
        values = entry["value"] if isinstance(entry["value"], list) else [entry["value"]]
        for i, value in enumerate(values):
            def one(d, compute=compute, i=i, values=values):
                return compute(d, values)[i]
            suffix = f" [{i + 1}/{len(values)}]" if len(values) > 1 else ""
            kind = "median" if what.startswith("median") else "rate"
            figures.append(Figure(f"inovate:{what}{suffix}", what + suffix, "inovate", float(value),
                                  entry.get("n"),
                                  kind, False, fitted, INOVATE_N, entry.get("source", ""), one,
                                  weight=SHARED_PATIENTS_WEIGHT.get(what, 1.0)))
    return figures


def _blast_shares(d: dict, values: list) -> list[Sim]:
    b = d["marrow_blasts"]
    n = len(b)
    return [_rate(int(m.sum()), n, n) for m in (b < 50, (b >= 50) & (b <= 90), b > 90)]


def all_figures() -> list[Figure]:
    """Every published figure the calibration knows: primary, secondary and validation."""
    return _pooled_figures() + _inovate_figures()


# ----------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Setting:
    """What one evaluation simulates: the pooled scenario, its patients and seed.

    INO-VATE figures are computed on the scenario's ``inovate`` cohort: the INO-VATE
    InO arm under the regimen it received.
    """

    pooled: Scenario
    n_patients: int
    seed: int


INOVATE_COHORT = "inovate"


def default_setting(n_patients: int, seed: int = 20251125, parameters: Parameters | None = None) -> Setting:
    """The shipped pooled scenario, optionally with other parameters."""
    pooled = load_scenario(default_config_dir() / "pooled_analysis.yaml")
    if parameters is not None:
        pooled = pooled.model_copy(update={"parameters": parameters})
    return Setting(pooled, n_patients, seed)


class Evaluator:
    """Simulates the pooled scenario for a parameter vector and computes every figure."""

    def __init__(self, setting: Setting, figures: list[Figure] | None = None,
                 prior_centre: Parameters | None = None):
        self.setting = setting
        self.figures = figures if figures is not None else all_figures()
        self.arrays = model_arrays(setting.pooled)
        # the prior is centred on the starting values, not on what is being simulated
        self.base = prior_centre if prior_centre is not None else setting.pooled.parameters
        self.fit_index = [K.PARAMETER_NAMES.index(n) for n in FIT_NAMES]
        names = [c.name for c in resolve_cohorts(setting.pooled)]
        self.inovate_cohort = names.index(INOVATE_COHORT)

    def par_vector(self, free: np.ndarray) -> np.ndarray:
        par = self.arrays.par.copy()
        for idx, p, z in zip(self.fit_index, FIT_PARAMETERS, free):
            par[idx] = p.from_free(float(z))
        return par

    def simulate(self, par: np.ndarray) -> dict[str, dict]:
        a = dataclasses.replace(self.arrays, par=par)
        f, i = run_kernel(a, self.setting.seed, 0, self.setting.n_patients)
        ds = records_to_dataset(f, i, self.setting.pooled, self.setting.seed)
        pooled = patient_columns(ds)
        pooled["_groups"] = group_masks(ds, DEFAULT_CUTOFF)
        keep = ds["cohort"].values == self.inovate_cohort
        inovate = {k: (v[0][keep], v[1][keep]) if isinstance(v, tuple) else v[keep]
                   for k, v in pooled.items() if k != "_groups"}
        return {"pooled": pooled, "inovate": inovate}

    def sims(self, par: np.ndarray) -> list[Sim]:
        data = self.simulate(par)
        return [f.compute(data[f.study]) for f in self.figures]

    def residuals(self, free: np.ndarray) -> np.ndarray:
        sims = self.sims(self.par_vector(free))
        r = [f.residual(s) for f, s in zip(self.figures, sims) if f.fitted]
        prior = [(z - z0) / p.prior_sd for z, z0, p in zip(free, self.start_free(), FIT_PARAMETERS)]
        return np.array(r + prior)

    def start_free(self) -> np.ndarray:
        return np.array([p.to_free(getattr(self.base, p.name)) for p in FIT_PARAMETERS])


def fit(setting: Setting, starts: int = 3, max_nfev: int = 400, seed: int = 1, log=print) -> dict:
    """Multi-start least-squares fit of the fitted parameters (see the module docstring).

    Returns
    -------
    dict
        ``free`` (best point, free scale), ``cost`` (minus log-likelihood incl. prior),
        ``jac`` (residual Jacobian there), ``evaluations`` and per-start costs.
    """
    ev = Evaluator(setting, [f for f in all_figures() if f.fitted])
    z0 = ev.start_free()
    rng = np.random.default_rng(seed)
    prior_sd = np.array([p.prior_sd for p in FIT_PARAMETERS])
    steps = FD_STEP * prior_sd

    def jacobian(z: np.ndarray) -> np.ndarray:
        # forward differences with absolute steps: with common random numbers the
        # residuals are smooth at this scale, while scipy's relative steps vanish at 0
        r0 = ev.residuals(z)
        return np.column_stack([(ev.residuals(z + np.eye(len(z))[j] * steps[j]) - r0) / steps[j]
                                for j in range(len(z))])

    best, costs, nfev = None, [], 0
    for s in range(starts):
        start = z0 if s == 0 else z0 + 0.3 * prior_sd * rng.standard_normal(len(z0))
        t0 = time.perf_counter()
        res = optimize.least_squares(ev.residuals, start, jac=jacobian, method="trf",
                                     bounds=(z0 - FREE_BOUND, z0 + FREE_BOUND), max_nfev=max_nfev,
                                     x_scale=prior_sd)
        nfev += res.nfev + res.njev * (len(z0) + 1)
        costs.append(float(res.cost))
        log(f"  start {s + 1}/{starts}: -log-likelihood {res.cost:.2f} after {res.nfev} iterations "
            f"({time.perf_counter() - t0:.0f} s)")
        if best is None or res.cost < best.cost:
            best = res
    return {"free": best.x, "cost": float(best.cost), "jac": best.jac, "evaluations": nfev, "costs": costs}


def _ess(logw: np.ndarray) -> float:
    w = np.exp(logw - logw.max())
    return float(w.sum() ** 2 / np.sum(w**2))


def sample_posterior(setting: Setting, centre: np.ndarray, jac: np.ndarray, particles: int,
                     moves: int, prior_centre: Parameters, seed: int = 2, log=print) -> dict:
    """Posterior ensemble by a sequential Monte Carlo sampler with likelihood tempering.

    Particles start from the Laplace approximation q = N(centre, (J'J)^-1) (J includes
    the prior rows) and move through pi_b = q^(1-b) (likelihood x prior)^b as b goes
    from 0 to 1, each step as large as keeps the effective sample size at half the
    particles; after each reweighting the particles are resampled (systematically)
    and moved by ``moves`` random-walk Metropolis steps whose covariance is the
    particles' own (scaled 2.38^2 / d). This is the likelihood-based sibling of
    ABC-SMC; plain importance sampling from q fails in 36 dimensions because the
    posterior is far from Gaussian in some directions.
    """
    ev = Evaluator(setting, [f for f in all_figures() if f.fitted], prior_centre)
    rng = np.random.default_rng(seed)
    d = len(centre)
    cov = np.linalg.pinv(jac.T @ jac)
    q = stats.multivariate_normal(centre, cov, allow_singular=True)
    z0 = ev.start_free()
    lo, hi = z0 - FREE_BOUND, z0 + FREE_BOUND

    def log_post(z: np.ndarray) -> float:  # log likelihood + log prior (up to a constant)
        if np.any(z < lo) or np.any(z > hi):
            return -np.inf
        return -0.5 * float(np.sum(ev.residuals(z) ** 2))

    z = np.clip(np.atleast_2d(q.rvs(size=particles, random_state=rng)), lo, hi)
    lp = np.array([log_post(zi) for zi in z])
    lq = q.logpdf(z)
    beta, steps, accepted, proposed = 0.0, 0, 0, 0
    while beta < 1.0:
        delta = lp - lq
        if _ess((1.0 - beta) * delta) >= particles / 2:
            new_beta = 1.0
        else:  # bisection for the step that halves the effective sample size
            a, b = beta, 1.0
            for _ in range(50):
                mid = (a + b) / 2
                a, b = (mid, b) if _ess((mid - beta) * delta) >= particles / 2 else (a, mid)
            new_beta = max(a, beta + 1e-4)
        logw = (new_beta - beta) * delta
        beta = new_beta
        w = np.exp(logw - logw.max())
        w /= w.sum()
        idx = np.minimum(np.searchsorted(np.cumsum(w), (rng.random() + np.arange(particles)) / particles),
                         particles - 1)
        z, lp, lq = z[idx], lp[idx], lq[idx]
        scale = np.cov(z.T) * 2.38**2 / d + np.eye(d) * 1e-10
        chol = np.linalg.cholesky(scale)
        for _ in range(moves):
            prop = z + rng.standard_normal(z.shape) @ chol.T
            lp_new = np.array([log_post(zi) for zi in prop])
            lq_new = q.logpdf(prop)
            log_ratio = beta * (lp_new - lp) + (1 - beta) * (lq_new - lq)
            accept = np.log(rng.random(particles)) < log_ratio
            z[accept], lp[accept], lq[accept] = prop[accept], lp_new[accept], lq_new[accept]
            accepted += int(accept.sum())
            proposed += particles
        steps += 1
        log(f"  tempering step {steps}: beta {beta:.3f}, acceptance {accept.mean():.2f}")
    return {"free": z, "log_posterior": lp, "steps": steps, "acceptance": accepted / max(proposed, 1),
            "unique": int(len(np.unique(z, axis=0))), "particles": particles}


def identification(jac: np.ndarray, figures: list[Figure], top: int = 3) -> str:
    """Which figures pin each fitted parameter: the largest |d residual / d parameter|.

    ``jac`` is the residual Jacobian at the fit (figure rows first, then the prior
    rows, which are left out); units are residual SDs per prior SD of the parameter.
    """
    sd = np.array([p.prior_sd for p in FIT_PARAMETERS])
    sens = np.abs(jac[: len(figures)]) * sd
    lines = [f"{'parameter':<40} most sensitive figures (|d residual| per prior SD)"]
    for j, p in enumerate(FIT_PARAMETERS):
        order = np.argsort(-sens[:, j])[:top]
        cells = "; ".join(f"{figures[i].key.split(':', 1)[1][:48]} ({sens[i, j]:.1f})" for i in order)
        lines.append(f"{p.name:<40} {cells}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- files
def write_parameter_file(template: Path, values: dict[str, float], out: Path, header: str) -> Path:
    """Copy the documented ``template`` with ``values`` substituted, keeping its comments."""
    lines = []
    for line in template.read_text().splitlines():
        if line.startswith("# STATUS:"):  # the template's status; ``header`` gives the new one
            continue
        m = re.match(r"^(\w+):(\s*)([^#\s]+)(\s*)(#.*)?$", line)
        if m and m.group(1) in values:
            name, sp, _, sp2, comment = m.groups()
            new = f"{name}:{sp}{values[name]:.6g}"
            column = len(name) + 1 + len(sp) + len(m.group(3)) + len(sp2)  # where the comment stood
            line = f"{new:<{column}}{' ' if len(new) >= column else ''}{comment}" if comment else new
        lines.append(line)
    with atomic_path(out) as tmp:
        tmp.write_text(header + "\n".join(lines) + "\n")
    return out


def ensemble_dataset(free: np.ndarray, base: Parameters, info: dict) -> xr.Dataset:
    """The posterior ensemble as a Dataset: ``parameters`` (draw, parameter), natural scale."""
    full = np.tile([getattr(base, n) for n in K.PARAMETER_NAMES], (len(free), 1))
    for j, p in enumerate(FIT_PARAMETERS):
        full[:, K.PARAMETER_NAMES.index(p.name)] = [p.from_free(float(z)) for z in free[:, j]]
    return xr.Dataset(
        {"parameters": (("draw", "parameter"), full)},
        coords={"draw": np.arange(len(free)), "parameter": list(K.PARAMETER_NAMES),
                "fitted": ("parameter", [n in FIT_NAMES for n in K.PARAMETER_NAMES])},
        attrs={**info, "description": "InOSim posterior parameter ensemble (sequential Monte Carlo); "
               "fitted parameters vary, the others are fixed at their defaults"},
    )


# ----------------------------------------------------------------------------- check and report
@dataclass(frozen=True)
class CheckRow:
    """One figure in the calibration check."""

    figure: Figure
    sim: Sim
    interval: tuple[float, float]
    inside: bool

    @property
    def section(self) -> str:
        if self.figure.primary:
            return "primary"
        return "secondary" if self.figure.fitted else "validation"


def check(parameters: Parameters, n_patients: int = 200_000, seed: int = 20251125) -> list[CheckRow]:
    """Every figure beside its simulated value under ``parameters``.

    A figure is *inside* when the simulated value lies in the figure's 95% interval at
    its published n (module docstring).
    """
    ev = Evaluator(default_setting(n_patients, seed, parameters))
    rows = []
    for f, s in zip(ev.figures, ev.sims(ev.arrays.par)):
        lo, hi = f.interval(s) if np.isfinite(s.estimate) else (math.nan, math.nan)
        rows.append(CheckRow(f, s, (lo, hi), bool(lo <= s.estimate <= hi)))
    return rows


def _unit(f: Figure) -> tuple[str, float]:
    if f.kind == "rate":
        return "%", 100.0
    return ("mg/m2", 1.0) if "dose" in f.key else (("cycles", 1.0) if "cycles" in f.key else ("months", 1.0))


def format_check(rows: list[CheckRow], n_patients: int) -> str:
    """The check as text: one section each for primary, secondary and validation figures."""
    titles = {
        "primary": "PRIMARY TARGETS (pooled dose analysis; fitted)",
        "secondary": "SECONDARY TARGETS (INO-VATE arm, as received; fitted)",
        "validation": "VALIDATION (not used in the fit)",
    }
    out = [f"Calibration check: {n_patients:,} simulated patients per study; 'interval' is the "
           "reported figure's 95% interval at its published n (derived n where none was reported); "
           "simulated values carry their Monte Carlo standard error."]
    for section, title in titles.items():
        chosen = [r for r in rows if r.section == section]
        inside = sum(r.inside for r in chosen)
        out += ["", f"{title}: {inside}/{len(chosen)} inside",
                f"{'figure':<72} {'unit':<7} {'reported':>9} {'95% interval':>17} {'simulated':>17} {'n':>6}  inside"]
        for r in chosen:
            unit, k = _unit(r.figure)
            dp = 1 if unit == "%" else 2  # decimals
            lo, hi = r.interval
            n = r.figure.n_used(r.sim)
            out.append(
                f"{r.figure.label[:72]:<72} {unit:<7} {k * r.figure.value:>9.{dp}f} "
                f"{f'{k * lo:.{dp}f}-{k * hi:.{dp}f}':>17} "
                f"{f'{k * r.sim.estimate:.{dp}f} +- {k * r.sim.se:.{dp}f}':>17} "
                f"{n:>6.0f}{'' if r.figure.n is not None else '*'} {'yes' if r.inside else 'NO'}")
    out.append("\n* n not reported: simulated subgroup share x published group size.")
    return "\n".join(out)


def plot_check(rows: list[CheckRow], path: str | Path) -> Path:
    """Reported vs simulated, with the reported 95% intervals and Monte Carlo errors (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    colours = {"primary": "tab:blue", "secondary": "tab:orange", "validation": "tab:grey"}
    for ax, kind, title, unit in ((axes[0], "rate", "Rates and shares", "%"),
                                  (axes[1], "median", "Medians", "months, mg/m2 or cycles")):
        chosen = [r for r in rows if r.figure.kind == kind and np.isfinite(r.sim.estimate)]
        k = 100.0 if kind == "rate" else 1.0
        for section, colour in colours.items():
            sel = [r for r in chosen if r.section == section]
            if not sel:
                continue
            x = np.array([k * r.figure.value for r in sel])
            y = np.array([k * r.sim.estimate for r in sel])
            xerr = np.array([[k * (r.figure.value - r.interval[0]), k * (r.interval[1] - r.figure.value)]
                             for r in sel]).T
            yerr = np.array([Z95 * k * r.sim.se for r in sel])
            ax.errorbar(x, y, xerr=np.clip(xerr, 0, None), yerr=yerr, fmt="o", color=colour, ms=4,
                        capsize=2, label=f"{section} ({sum(r.inside for r in sel)}/{len(sel)} inside)")
            for r, xi, yi in zip(sel, x, y):
                if not r.inside:
                    ax.annotate(r.figure.key.split(":", 1)[1][:30], (xi, yi), fontsize=6)
        lim = [0, max([k * max(r.figure.value, r.sim.estimate) for r in chosen] + [1]) * 1.1]
        ax.plot(lim, lim, color="black", lw=0.8)
        ax.set(xlim=lim, ylim=lim, title=title, xlabel=f"reported ({unit}) with 95% interval at published n",
               ylabel=f"simulated ({unit}) with 95% Monte Carlo CI")
        ax.legend(fontsize=8)
    fig.suptitle("InOSim calibration: reported vs simulated")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- the whole run
@dataclass(frozen=True)
class CalibrationSize:
    """How hard the calibration works."""

    fit_patients: int
    starts: int
    max_nfev: int
    smc_patients: int
    particles: int  # the ensemble size
    moves: int  # Metropolis moves per tempering step


FULL = CalibrationSize(fit_patients=50_000, starts=3, max_nfev=60, smc_patients=30_000, particles=300, moves=2)
QUICK = CalibrationSize(fit_patients=10_000, starts=1, max_nfev=4, smc_patients=5_000, particles=200, moves=1)


def calibrate(out_dir: str | Path, size: CalibrationSize = FULL, seed: int = 20251125, log=print) -> dict:
    """Fit from the starting values and write ``default.yaml`` and ``posterior.nc`` to ``out_dir``.

    Returns
    -------
    dict
        Paths written, the fitted values, ESS and timings.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    template = default_config_dir() / "parameters" / "starting.yaml"
    start = load_parameters(template)
    t0 = time.perf_counter()
    log(f"Fitting {len(FIT_PARAMETERS)} parameters to {sum(f.fitted for f in all_figures())} figures "
        f"({size.fit_patients:,} patients per study per evaluation)")
    result = fit(default_setting(size.fit_patients, seed, start), size.starts, size.max_nfev, log=log)
    t_fit = time.perf_counter() - t0
    values = {p.name: p.from_free(float(z)) for p, z in zip(FIT_PARAMETERS, result["free"])}
    fitted = start.model_copy(update=values)
    log(f"Sampling the posterior: SMC with {size.particles} particles, {size.smc_patients:,} patients each")
    post = sample_posterior(default_setting(size.smc_patients, seed, fitted), result["free"], result["jac"],
                            size.particles, size.moves, prior_centre=start, seed=seed, log=log)
    t_all = time.perf_counter() - t0
    header = (f"# STATUS: FITTED by `inosim calibrate` ({'quick' if size is QUICK else 'full'}, seed {seed}) "
              f"from starting.yaml; -log-likelihood {result['cost']:.2f}.\n"
              "# STATUS: Do not edit by hand: edit starting.yaml and re-run `inosim calibrate`.\n")
    param_path = write_parameter_file(template, values, out_dir / "default.yaml", header)
    fitted_figures = [f for f in all_figures() if f.fitted]
    (out_dir / "identification.txt").write_text(identification(result["jac"], fitted_figures) + "\n")
    info = {"method": "sequential Monte Carlo with likelihood tempering from the Laplace approximation",
            "tempering_steps": post["steps"], "acceptance_rate": post["acceptance"],
            "unique_draws": post["unique"], "patients_per_evaluation": size.smc_patients, "seed": seed,
            "fit_neg_log_likelihood": result["cost"]}
    ens = ensemble_dataset(post["free"], fitted, info)
    ens_path = write_netcdf(ens, out_dir / "posterior.nc")
    log(f"Done in {t_all:.0f} s (fit {t_fit:.0f} s); {post['steps']} tempering steps, acceptance "
        f"{post['acceptance']:.2f}, {post['unique']} distinct sets in the ensemble of {size.particles}")
    return {"parameters": param_path, "posterior": ens_path, "values": values, "seconds": t_all,
            "fit_seconds": t_fit, "cost": result["cost"]}
