"""The other treatments against their pivotal trials: each module's figures, check and fit.

Each treatment module of the kernel (:func:`simulator.model.kernel.chemo_induction`, ...) is
fitted to its own trial's figures (``configs/targets/comparators.yaml``) in that trial's
population, the shipped scenario its :class:`Trial` names. Only the module's own parameters
(``configs/parameters/comparators.yaml``) are fitted, each with a normal prior on its free
scale; the shared model (covariates, natural history, transplant and the post-transplant
course) keeps the InO fit, so the figures a module does not fit (e.g. the course after a
transplant in the control arm) check the shared model on other patients.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from simulator.analysis.outcomes import cumulative_incidence, km_survival_at, patient_columns
from simulator.analysis.text import paragraph
from simulator.calibration.check import CheckRow
from simulator.calibration.figures import (
    Figure,
    Sim,
    _km_median,
    _median_of_sample,
    _post_hsct_competing,
    _rate,
)
from simulator.calibration.parameters import FD_STEP, FREE_BOUND, FitParameter
from simulator.calibration.run import COMBINED_DRAWS
from simulator.model import kernel as K
from simulator.model.config import ComparatorParameters, Scenario, default_config_dir
from simulator.model.files import (
    COMPARATOR_ENSEMBLE_FILE,
    COMPARATORS_FILE,
    derive_scenario,
    load_scenario,
    read_yaml,
    shipped_comparators,
)
from simulator.model.simulation import model_arrays, record_columns, run_kernel
from simulator.runtime.storage import write_netcdf

TRIAL_PATIENTS = 200_000  # simulated patients of a trial check
EFS_RESPONSE_DAYS = 84.0  # TOWER: no CR/CRh/CRi within 12 weeks is an event-free-survival event on day 0
TRIAL_SEED = 20251125
ENSEMBLE_DRAWS = COMBINED_DRAWS  # draws of the modules' posterior ensemble: one per draw of the InO ensemble
ENSEMBLE_SEED = 20251206
# what must match a trial's shipped scenario for its figures to describe a run (not the parameters)
TRIAL_SETTING = ("treatment", "then", "population", "cohorts", "simulation")


@dataclass(frozen=True)
class Prior:
    """A fitted parameter's normal prior: its centre (natural scale), its SD on the free scale
    (:class:`FitParameter`), and where the centre comes from."""

    parameter: FitParameter
    centre: float
    source: str


@dataclass(frozen=True)
class Trial:
    """One arm of a pivotal trial: its figures' section in the targets file (and the arm's place
    where the figures are lists, one per arm), the shipped scenario of its population (with
    ``overrides``, e.g. another treatment for the control arm) and the fitted parameters with
    their priors (none: every figure of the arm is validation)."""

    section: str
    title: str
    scenario: str
    priors: tuple[Prior, ...]
    arm: int = 0
    overrides: tuple[tuple[str, str], ...] = ()
    not_modelled: tuple[str, ...] = ()  # figures of the arm the treatment module does not simulate

    @property
    def fitted(self) -> tuple[FitParameter, ...]:
        return tuple(p.parameter for p in self.priors)


TRIALS = (
    Trial("standard_of_care_inovate", "INO-VATE control arm: standard chemotherapy (S1, S2, S4, S6)",
          "soc_inovate.yaml", (
              Prior(FitParameter("chemo_response_intercept", "id", 1.5), -0.8, "weak: about 30% CR/CRi"),
              Prior(FitParameter("chemo_course_days", "log", 0.3), 35.0,
                    "assumption: response assessed at count recovery, day 28-42 of an intensive salvage course"),
              Prior(FitParameter("chemo_fatal_toxicity", "logit", 1.0), 0.05,
                    "assumption: about 5% induction mortality of salvage chemotherapy"),
              Prior(FitParameter("chemo_progression_log_hr", "id", 1.0), 0.0,
                    "none: failed chemotherapy and failed InO alike"),
              Prior(FitParameter("chemo_relapse_log_hr", "id", 0.5), 0.6,
                    "S2: remission duration HR 0.55 InO vs standard care (log(1 / 0.55))"),
              Prior(FitParameter("chemo_hsct_prob", "logit", 1.0), 0.4, "weak"),
          )),
    Trial("blinatumomab_tower", "TOWER blinatumomab arm (S27, T17)", "blinatumomab_tower.yaml", (
        Prior(FitParameter("blina_response_intercept", "id", 1.5), 0.0, "weak: about 40% CR/CRh/CRi"),
        Prior(FitParameter("blina_fatal_toxicity", "logit", 1.0), 0.02,
              "assumption: about 2% fatal toxicity per cycle"),
        Prior(FitParameter("blina_progression_log_hr", "id", 1.0), 0.0,
              "none: failed blinatumomab and failed InO alike"),
        Prior(FitParameter("blina_relapse_log_hr", "id", 1.0), 0.0, "none: remissions alike"),
        Prior(FitParameter("blina_hsct_prob", "logit", 1.0), 0.4, "weak"),
    )),
    Trial("brexucabtagene_zuma3", "ZUMA-3 phase 2: brexucabtagene autoleucel (S28, T18, T19, T23)",
          "brexucabtagene_zuma3.yaml", (
              Prior(FitParameter("cart_dropout_after_progression", "logit", 1.0), 0.5,
                    "weak: half of those progressing while waiting are too sick to infuse"),
              Prior(FitParameter("cart_response_intercept", "id", 1.5), 1.0, "weak: about 70% CR/CRi"),
              Prior(FitParameter("cart_durable_prob", "logit", 1.0), 0.3,
                    "assumption: the plateau of CAR-T remission curves in adult ALL (about 30% of responders)"),
              Prior(FitParameter("cart_relapse_log_hr", "id", 1.0), 0.0, "none: remissions alike"),
          )),
    Trial("blinatumomab_tower", "TOWER chemotherapy arm: the INO-VATE-fitted module in TOWER's population (S27)",
          "blinatumomab_tower.yaml", (), arm=1, overrides=(("treatment", "soc_chemotherapy"),),
          not_modelled=("crs_grade3plus", "neurologic_grade3plus")),
)


def targets_path() -> Path:
    """The shipped copy of the comparators' published figures."""
    return default_config_dir() / "targets" / "comparators.yaml"


# ----------------------------------------------------------------------------- figures
def _share(value: Callable[[dict], np.ndarray], among: Callable[[dict], np.ndarray] | None = None
           ) -> Callable[[dict], Sim]:
    def compute(d: dict) -> Sim:
        n = len(d["hsct"])
        mask = np.ones(n, dtype=bool) if among is None else among(d)
        return _rate(int((value(d) & mask).sum()), int(mask.sum()), n)
    return compute


def _km_at(pair: str, months: float) -> Callable[[dict], Sim]:
    def compute(d: dict) -> Sim:
        n = len(d["hsct"])
        s = km_survival_at(*d[pair], months)[0]
        return Sim(s, math.sqrt(s * (1 - s) / n), n, n)
    return compute


def _efs_at(months: float) -> Callable[[dict], Sim]:
    """TOWER's event-free survival at ``months``: failing to reach CR/CRi within 12 weeks is an
    event on day 0; otherwise relapse or progression, or death, ends it."""
    def compute(d: dict) -> Sim:
        n = len(d["hsct"])
        responded = d["best_response"] & (np.nan_to_num(d["response_day"], nan=np.inf) <= EFS_RESPONSE_DAYS)
        end = np.fmin(np.nan_to_num(d["progression_day"], nan=np.inf), np.nan_to_num(d["death_day"], nan=np.inf))
        observed = end <= d["censor_day"]
        t = np.where(responded, np.where(observed, end, d["censor_day"]) / K.MONTH, 0.0)
        s = km_survival_at(t, np.where(responded, observed, True), months)[0]
        return Sim(s, math.sqrt(s * (1 - s) / n), n, n)
    return compute


def _median_cycles(d: dict) -> Sim:
    return _median_of_sample(d["cycles"].astype(float), len(d["hsct"]))


def _post_hsct_at(which: str, months: float) -> Callable[[dict], Sim]:
    """Among the transplanted: cumulative incidence of relapse or NRM, or OS, at ``months`` after HSCT."""
    def compute(d: dict) -> Sim:
        h = d["hsct"]
        n_h = int(h.sum())
        if which == "os":
            t = (np.fmin(np.nan_to_num(d["death_day"][h], nan=np.inf), d["censor_day"][h]) - d["hsct_day"][h]) / K.MONTH
            est = km_survival_at(t, d["os_event"][h], months)[0]
        else:
            t, cause = _post_hsct_competing(d)
            est = cumulative_incidence(t, cause, months, of=1 if which == "relapse" else 2)
        return Sim(est, math.sqrt(est * (1 - est) / max(n_h, 1)), n_h, len(h))
    return compute


def _infused(d: dict) -> np.ndarray:
    return d["cart_stage"] == K.CART_INFUSED


def _among_infused(value: Callable[[dict], np.ndarray]) -> Callable[[dict], Sim]:
    return _share(value, _infused)


def _os_from_infusion_median(d: dict) -> Sim:
    inf = _infused(d)
    return _km_median(d["os_months"][inf] - d["vein_to_vein_days"] / K.MONTH, d["os_event"][inf], int(inf.sum()))


def _remission_median(d: dict) -> Sim:
    t, e = d["remission"]
    r = d["best_response"]
    return _km_median(t[r], e[r], len(r))


# per figure: (label, kind, fitted?, statistic[, reading]). The key is the figure's id in the
# targets file, or "id@part" for one of several figures read from one entry by ``reading``:
# entry -> (value, n).
STATISTICS: dict[str, dict[str, tuple]] = {
    "standard_of_care_inovate": {
        "cr_cri": ("CR/CRi (ITT326)", "rate", True, _share(lambda d: d["best_response"])),
        "cr_cri_itt218": ("CR/CRi (ITT218)", "rate", False, _share(lambda d: d["best_response"])),
        "os_median_months": ("median OS", "median", True, lambda d: _km_median(*d["os"], len(d["hsct"]))),
        "os_24_months": ("OS at 24 months", "rate", True, _km_at("os", 24.0)),
        "pfs_median_months": ("median PFS, protocol definition", "median", True,
                              lambda d: _km_median(*d["pfs_protocol"], len(d["hsct"]))),
        "hsct_directly_after_cr_cri": ("HSCT directly after CR/CRi", "rate", True,
                                       _share(lambda d: d["hsct_in_remission"].astype(bool))),
        "hsct_any": ("any HSCT", "rate", False, _share(lambda d: d["hsct"])),
        "post_hsct_nrm_24_months": ("after HSCT: NRM at 24 months", "rate", False, _post_hsct_at("nrm", 24.0)),
        "post_hsct_relapse_24_months": ("after HSCT: relapse at 24 months", "rate", False,
                                        _post_hsct_at("relapse", 24.0)),
        "post_hsct_os_24_months": ("after HSCT: OS at 24 months", "rate", False, _post_hsct_at("os", 24.0)),
        "vod_any": ("SOS/VOD at any time", "rate", False, _share(lambda d: d["sos"])),
    },
    "blinatumomab_tower": {
        "cr_crh_cri": ("CR/CRh/CRi within 12 weeks", "rate", True, _share(
            lambda d: d["best_response"] & (np.nan_to_num(d["response_day"], nan=np.inf) <= EFS_RESPONSE_DAYS))),
        "os_median_months": ("median OS", "median", True, lambda d: _km_median(*d["os"], len(d["hsct"]))),
        "efs_6_months": ("EFS at 6 months", "rate", True, _efs_at(6.0)),
        "hsct_any": ("any HSCT", "rate", True, _share(lambda d: d["hsct"])),
        "cycles_median": ("median cycles", "median", False, _median_cycles),
        "crs_grade3plus": ("CRS grade >= 3 (an input)", "rate", False, _share(lambda d: d["crs_grade"] >= K.GRADE_SEVERE)),
        "crs_any_cycle1": ("CRS, any grade (an input)", "rate", False, _share(lambda d: d["crs_grade"] > 0)),
        "neurologic_grade3plus": ("neurologic event grade >= 3 (an input)", "rate", False,
                                  _share(lambda d: d["neurologic_g3"].astype(bool))),
    },
    "brexucabtagene_zuma3": {
        "enrolled_manufactured_infused@manufactured": (
            "manufactured, of enrolled (an input)", "rate", False,
            _share(lambda d: d["cart_stage"] >= K.CART_MANUFACTURED),
            lambda e: (e["value"][1] / e["value"][0], e["value"][0])),
        "enrolled_manufactured_infused@infused": (
            "infused, of manufactured", "rate", True,
            _share(_infused, lambda d: d["cart_stage"] >= K.CART_MANUFACTURED),
            lambda e: (e["value"][2] / e["value"][1], e["value"][1])),
        "cr_cri_infused": ("CR/CRi, of infused", "rate", True, _among_infused(lambda d: d["best_response"])),
        "os_median_months_infused_2y_update": ("median OS from infusion, infused", "median", True,
                                               _os_from_infusion_median),
        "dor_median_months_2y_update": ("median duration of remission", "median", True, _remission_median),
        "crs_any": ("CRS, any grade, of infused (an input)", "rate", False,
                    _among_infused(lambda d: d["crs_grade"] > 0)),
        "crs_grade3plus": ("CRS grade >= 3, of infused (an input)", "rate", False,
                           _among_infused(lambda d: d["crs_grade"] >= K.GRADE_SEVERE)),
        "cr_cri_by_prior_lines@one_line": (
            "CR/CRi, infused after one prior line", "rate", False,
            _share(lambda d: d["best_response"], lambda d: _infused(d) & (d["salvage"] == 1)),
            lambda e: (e["value"]["one_line"], e["n"][0])),
        "cr_cri_by_prior_lines@two_or_more": (
            "CR/CRi, infused after two or more lines", "rate", False,
            _share(lambda d: d["best_response"], lambda d: _infused(d) & (d["salvage"] == 2)),
            lambda e: (e["value"]["two_or_more"], e["n"][1])),
    },
}


def trial_figures(trial: Trial) -> list[Figure]:
    """The arm's published figures the model computes, in the targets file's order.

    A figure given per arm (a list) is the arm's; its n is the arm's where given, else the
    arm's randomised patients (or the largest n of the section); a figure of the control arm
    is never fitted (the control arm's module is fitted to its own trial).
    """
    doc = read_yaml(targets_path())
    sources = doc["sources"]
    entries = {e["id"]: e for e in doc[trial.section]}

    def arm(x):
        return x[trial.arm] if isinstance(x, list) else x

    arm_n = (arm(entries["randomised"]["value"]) if "randomised" in entries
             else entries["enrolled_manufactured_infused"]["value"][0] if "enrolled_manufactured_infused" in entries
             else max(int(e["n"]) for e in entries.values() if isinstance(e.get("n"), int)))
    known = STATISTICS[trial.section]
    out = []
    for entry in doc[trial.section]:
        for key, statistic in known.items():
            if (key.split("@")[0] != entry["id"] or entry["id"] in trial.not_modelled
                    or (trial.arm > 0 and not isinstance(entry["value"], list))):
                continue
            label, kind, fitted, compute = statistic[:4]
            if len(statistic) > 4:
                value, n = statistic[4](entry)
            else:
                value = arm(entry["value"])
                n = arm(entry["n"]) if "n" in entry else (arm_n if isinstance(entry["value"], list) else None)
            out.append(Figure(f"{trial.section}:{trial.arm}:{key}", label, trial.section, float(value), n, kind,
                              False, fitted and bool(trial.priors), arm_n, sources[entry["source"]], compute,
                              ci=tuple(entry["ci"]) if "ci" in entry else None))
    return out


# ----------------------------------------------------------------------------- evaluation
class TrialEvaluator:
    """Simulates a trial's scenario for values of the module's fitted parameters (common random numbers)."""

    def __init__(self, trial: Trial, scenario: Scenario, n_patients: int, seed: int):
        self.trial = trial
        self.figures = trial_figures(trial)
        self.arrays = model_arrays(scenario)
        self.n_patients, self.seed = n_patients, seed
        self.index = [K.COMPARATOR_PARAMETER_NAMES.index(p.name) for p in trial.fitted]

    def tpar_vector(self, free: np.ndarray) -> np.ndarray:
        tpar = self.arrays.tpar.copy()
        for idx, p, z in zip(self.index, self.trial.fitted, free):
            tpar[idx] = p.from_free(float(z))
        return tpar

    def sims(self, tpar: np.ndarray) -> list[Sim]:
        a = dataclasses.replace(self.arrays, tpar=tpar)
        d = patient_columns(record_columns(*run_kernel(a, self.seed, 0, self.n_patients)))
        d["vein_to_vein_days"] = tpar[K.T_VEIN_TO_VEIN]
        return [f.compute(d) for f in self.figures]

    def prior_free(self) -> np.ndarray:
        """The priors' centres on the free scale."""
        return np.array([p.parameter.to_free(p.centre) for p in self.trial.priors])

    def residuals(self, free: np.ndarray, centre: np.ndarray) -> np.ndarray:
        sims = self.sims(self.tpar_vector(free))
        r = [f.residual(s) for f, s in zip(self.figures, sims) if f.fitted]
        return np.array(r + [(z - z0) / p.prior_sd for z, z0, p in zip(free, centre, self.trial.fitted)])


def _jacobian(ev: TrialEvaluator, z: np.ndarray) -> np.ndarray:
    """Forward-difference Jacobian of the residuals (prior rows included) in absolute steps."""
    z0 = ev.prior_free()
    steps = FD_STEP * np.array([p.prior_sd for p in ev.trial.fitted])
    r0 = ev.residuals(z, z0)
    return np.column_stack([(ev.residuals(z + np.eye(len(z))[j] * steps[j], z0) - r0) / steps[j]
                            for j in range(len(z))])


def trial_scenario(trial: Trial) -> Scenario:
    """The shipped scenario of the arm's population and treatment."""
    scenario = load_scenario(default_config_dir() / trial.scenario)
    return derive_scenario(scenario, dict(trial.overrides), trial.title, warn=False) if trial.overrides else scenario


def fit_trial(trial: Trial, n_patients: int = 50_000, seed: int = TRIAL_SEED, max_nfev: int = 60,
              log=print) -> ComparatorParameters:
    """Fit the module's parameters to the trial's fitted figures: least squares on deviance
    residuals plus the normal prior rows (:class:`Prior`), from the priors' centres, with a
    forward-difference Jacobian in absolute steps, as :func:`simulator.calibration.fit.fit`.

    Returns
    -------
    ComparatorParameters
        The trial scenario's values with the fitted ones replaced.
    """
    from scipy import optimize  # here: only fitting needs it (0.1 s to import, on `inosim run`'s path)

    scenario = trial_scenario(trial)
    ev = TrialEvaluator(trial, scenario, n_patients, seed)
    z0 = ev.prior_free()
    prior_sd = np.array([p.prior_sd for p in trial.fitted])

    def residuals(z: np.ndarray) -> np.ndarray:
        return ev.residuals(z, z0)

    res = optimize.least_squares(residuals, z0, jac=lambda z: _jacobian(ev, z), method="trf", x_scale=prior_sd,
                                 bounds=(z0 - FREE_BOUND, z0 + FREE_BOUND), max_nfev=max_nfev, ftol=1e-3)
    log(f"{trial.section}: -log-likelihood {res.cost:.2f} after {res.nfev} iterations")
    values = {p.name: p.from_free(float(z)) for p, z in zip(trial.fitted, res.x)}
    return scenario.comparators.model_copy(update=values)


# ----------------------------------------------------------------------------- posterior
def laplace_draws(trial: Trial, comparators: ComparatorParameters, draws: int, rng: np.random.Generator,
                  n_patients: int = 50_000, seed: int = TRIAL_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws of the module's fitted parameters from the Laplace approximation at its fit.

    The posterior on the free scale is approximated by N(z*, (J'J)^-1): z* the fitted values
    (``comparators``), J the forward-difference Jacobian of the deviance residuals and the
    prior rows at z* (as :func:`fit_trial` computes it, on the same simulated patients).
    Draws outside the fit's bounds (the priors' centres +- ``FREE_BOUND``) are clipped to them.

    Returns
    -------
    (values, centre, cov)
        ``values`` (draws, fitted parameters) on the natural scale; ``centre`` and ``cov``
        the normal on the free scale.
    """
    scenario = trial_scenario(trial).model_copy(update={"comparators": comparators})
    ev = TrialEvaluator(trial, scenario, n_patients, seed)
    centre = np.array([p.to_free(getattr(comparators, p.name)) for p in trial.fitted])
    jac = _jacobian(ev, centre)
    cov = np.linalg.pinv(jac.T @ jac)
    z0 = ev.prior_free()
    z = np.clip(rng.multivariate_normal(centre, cov, size=draws), z0 - FREE_BOUND, z0 + FREE_BOUND)
    values = np.array([[p.from_free(float(v)) for p, v in zip(trial.fitted, row)] for row in z])
    return values, centre, cov


def comparator_ensemble(comparators: ComparatorParameters, draws: int = ENSEMBLE_DRAWS, seed: int = ENSEMBLE_SEED,
                        log=print) -> xr.Dataset:
    """The modules' posterior ensemble: each module's :func:`laplace_draws`, independently
    (the trials are independent), the parameters no trial fits fixed at ``comparators``.

    Returns
    -------
    xarray.Dataset
        ``parameters`` (draw, parameter) over ``COMPARATOR_PARAMETER_NAMES``, natural scale,
        with a boolean ``fitted`` coordinate, as :func:`simulator.sensitivity.distributions.load_ensemble`
        reads it.
    """
    rng = np.random.default_rng(seed)
    names = list(K.COMPARATOR_PARAMETER_NAMES)
    full = np.tile(comparators.vector(), (draws, 1))
    fitted = []
    for trial in (t for t in TRIALS if t.priors):
        values, _, cov = laplace_draws(trial, comparators, draws, rng)
        full[:, [names.index(p.name) for p in trial.fitted]] = values
        fitted += [p.name for p in trial.fitted]
        log(f"{trial.section}: Laplace SD on the free scale "
            + ", ".join(f"{p.name} {math.sqrt(c):.3g}" for p, c in zip(trial.fitted, np.diag(cov))))
    return xr.Dataset(
        {"parameters": (("draw", "parameter"), full)},
        coords={"draw": np.arange(draws), "parameter": names, "fitted": ("parameter", [n in fitted for n in names])},
        attrs={"description": "InOSim treatment modules' posterior ensemble: each module's Laplace approximation "
               "N(fit, (J'J)^-1) on the free scale at its fit (`inosim calibrate --comparators`, docs/comparators.md)",
               "seed": seed, "trial_seed": TRIAL_SEED},
    )


# ----------------------------------------------------------------------------- check
def trial_check(trial: Trial, scenario: Scenario | None = None, n_patients: int = TRIAL_PATIENTS,
                seed: int = TRIAL_SEED) -> list[CheckRow]:
    """The trial's figures beside their simulated values under ``scenario`` (default: the shipped one).

    A figure is *inside* when the simulated value lies in its 95% interval: the published CI
    where one is reported, else Clopper-Pearson (rates) or the spread of medians at its n.
    """
    scenario = scenario or trial_scenario(trial)
    ev = TrialEvaluator(trial, scenario, n_patients, seed)
    rows = []
    for f, s in zip(ev.figures, ev.sims(ev.arrays.tpar)):
        lo, hi = f.interval(s) if np.isfinite(s.estimate) else (math.nan, math.nan)
        rows.append(CheckRow(f, s, (lo, hi), bool(lo <= s.estimate <= hi)))
    return rows


def format_trial_check(trial: Trial, rows: list[CheckRow], n_patients: int) -> str:
    """The check as text: fitted figures first, then validation (not fitted)."""
    out = [paragraph(f"{trial.title}: {n_patients:,} simulated patients; 'interval' is the published 95% CI, "
                     "or the figure's 95% interval at its n; simulated +- its Monte Carlo SE.")]
    width = max(len("figure"), *(len(r.figure.label) for r in rows))
    for fitted, title in ((True, "fitted"), (False, "validation (not fitted)")):
        chosen = [r for r in rows if r.figure.fitted == fitted]
        if not chosen:
            continue
        out += [f"{title}: {sum(r.inside for r in chosen)}/{len(chosen)} inside",
                f"  {'figure':<{width}} {'unit':<6} {'published':>9} {'95% interval':>13} {'simulated':>14} {'n':>4}  "
                "inside"]
        for r in chosen:
            rate = r.figure.kind == "rate"
            unit, k = ("%", 100.0) if rate else (("cycles" if "cycles" in r.figure.key else "months"), 1.0)
            dp = 1 if rate else 2
            lo, hi = r.interval
            n = r.figure.n_used(r.sim)
            out.append(f"  {r.figure.label:<{width}} {unit:<6} {k * r.figure.value:>9.{dp}f} "
                       f"{f'{k * lo:.{dp}f}-{k * hi:.{dp}f}':>13} "
                       f"{f'{k * r.sim.estimate:.{dp}f} +- {k * r.sim.se:.{dp}f}':>14} {n:>4.0f}  "
                       f"{'yes' if r.inside else 'NO'}")
    return "\n".join(out)


def _setting(scenario: Scenario) -> dict:
    doc = scenario.model_dump()
    sim = dict(doc["simulation"])
    sim.pop("patients")
    sim.pop("seed")
    return {key: (sim if key == "simulation" else doc[key]) for key in TRIAL_SETTING}


def trial_of(scenario: Scenario) -> Trial | None:
    """The trial whose figures describe ``scenario``: the one whose shipped scenario has the same
    treatment (and no next one), population, cohorts and follow-up (whatever the parameters); None
    if none has."""
    return next((t for t in TRIALS if _setting(trial_scenario(t)) == _setting(scenario)), None)


def write_comparators(comparators: ComparatorParameters, fitted: list[str], path: Path) -> Path:
    """Write ``comparators`` as the shipped file is laid out (its comments kept), the fitted values
    replaced and its status line saying so."""
    text = (default_config_dir() / COMPARATORS_FILE).read_text()
    lines = text.splitlines()
    lines[0] = (f"# STATUS: FITTED by `inosim calibrate --comparators` (seed {TRIAL_SEED}): "
                + ", ".join(t.section for t in TRIALS if t.priors) + "; the priors are in "
                "simulator/calibration/comparators.py (TRIALS).")
    out = []
    for line in lines:
        name = line.split(":", 1)[0]
        if name in fitted:
            comment = line[line.index("#"):] if "#" in line else ""
            line = f"{f'{name}: {getattr(comparators, name):.6g}':<34} {comment}".rstrip()
        out.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    return path


def calibrate_comparators(out: Path, log=print) -> tuple[Path, Path]:
    """Fit every treatment module to its trial; write ``out/comparators.yaml`` and the modules'
    posterior ensemble at the fit (:func:`comparator_ensemble`) to ``out/comparators_posterior.nc``."""
    comparators = ComparatorParameters.model_validate(shipped_comparators())
    fitted = []
    for trial in (t for t in TRIALS if t.priors):
        values = fit_trial(trial, log=log)
        update = {p.name: getattr(values, p.name) for p in trial.fitted}
        comparators = comparators.model_copy(update=update)
        fitted += list(update)
    path = write_comparators(comparators, fitted, out / "comparators.yaml")
    return path, write_netcdf(comparator_ensemble(comparators, log=log), out / Path(COMPARATOR_ENSEMBLE_FILE).name)
