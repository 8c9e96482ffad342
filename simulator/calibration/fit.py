"""The likelihood of the published figures and the least-squares fit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from simulator.analysis.outcomes import (
    DEFAULT_CUTOFF,
    group_masks,
    patient_columns,
)
from simulator.calibration.figures import Figure, Sim, all_figures
from simulator.calibration.parameters import (
    FD_STEP,
    FREE_BOUND,
    FitParameter,
    fit_parameters,
)
from simulator.model import kernel as K
from simulator.model.config import Parameters, Scenario, default_config_dir, resolve_cohorts
from simulator.model.files import derive_scenario, load_scenario
from simulator.model.simulation import model_arrays, record_columns, run_kernel
from simulator.model.structure import ModelStructure


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

    @property
    def fitted(self) -> tuple[FitParameter, ...]:
        """The parameters fitted under the scenario's model structure."""
        return fit_parameters(self.pooled.model)


INOVATE_COHORT = "inovate"


def default_setting(n_patients: int, seed: int = 20251125, parameters: Parameters | None = None,
                    structure: ModelStructure | None = None) -> Setting:
    """The shipped pooled scenario, optionally with other parameters and another model structure.

    Under another structure, the structure parameters it does not use are set to 0.
    """
    pooled = load_scenario(default_config_dir() / "pooled_analysis.yaml")
    parameters = parameters if parameters is not None else pooled.parameters
    structure = structure if structure is not None else pooled.model
    parameters = parameters.model_copy(update={n: 0.0 for n in structure.unused})
    return Setting(derive_scenario(pooled, {"parameters": parameters.model_dump(), "model": structure.model_dump()},
                                   "calibration setting", warn=False), n_patients, seed)


class Evaluator:
    """Simulates the pooled scenario for a parameter vector and computes every figure."""

    def __init__(self, setting: Setting, figures: list[Figure] | None = None,
                 prior_centre: Parameters | None = None):
        self.setting = setting
        self.figures = figures if figures is not None else all_figures()
        self.arrays = model_arrays(setting.pooled)
        # the prior is centred on the starting values, not on what is being simulated
        self.base = prior_centre if prior_centre is not None else setting.pooled.parameters
        self.fitted = setting.fitted
        self.fit_index = [K.PARAMETER_NAMES.index(p.name) for p in self.fitted]
        names = [c.name for c in resolve_cohorts(setting.pooled)]
        self.inovate_cohort = names.index(INOVATE_COHORT)

    def par_vector(self, free: np.ndarray) -> np.ndarray:
        par = self.arrays.par.copy()
        for idx, p, z in zip(self.fit_index, self.fitted, free):
            par[idx] = p.from_free(float(z))
        return par

    def simulate(self, par: np.ndarray) -> dict[str, dict]:
        a = dataclasses.replace(self.arrays, par=par)
        pooled = patient_columns(record_columns(*run_kernel(a, self.setting.seed, 0, self.setting.n_patients)))
        pooled["_groups"] = group_masks(pooled, DEFAULT_CUTOFF)
        keep = pooled["cohort"] == self.inovate_cohort
        inovate = {k: (v[0][keep], v[1][keep]) if isinstance(v, tuple) else v[keep]
                   for k, v in pooled.items() if k != "_groups"}
        return {"pooled": pooled, "inovate": inovate}

    def sims(self, par: np.ndarray) -> list[Sim]:
        data = self.simulate(par)
        return [f.compute(data[f.study]) for f in self.figures]

    def residuals(self, free: np.ndarray) -> np.ndarray:
        sims = self.sims(self.par_vector(free))
        r = [f.residual(s) for f, s in zip(self.figures, sims) if f.fitted]
        prior = [(z - z0) / p.prior_sd for z, z0, p in zip(free, self.start_free(), self.fitted)]
        return np.array(r + prior)

    def start_free(self) -> np.ndarray:
        return np.array([p.to_free(getattr(self.base, p.name)) for p in self.fitted])

    def log_prior_normaliser(self) -> float:
        """The log of the normal prior's normalising constant (free scale), for the evidence."""
        return -float(sum(math.log(p.prior_sd * math.sqrt(2.0 * math.pi)) for p in self.fitted))


# a fit has converged when a further step changes the cost by less than this share of it
# (about 0.03 at the costs here, 25-30): the criterion of scipy's least_squares (ftol)
CONVERGED_FTOL = 1e-3


def fit(setting: Setting, starts: int = 3, max_nfev: int = 400, seed: int = 1, log=print,
        prior_centre: Parameters | None = None) -> dict:
    """Multi-start least-squares fit of the fitted parameters (see the module docstring).

    The first start is the setting's own parameter values; the prior is centred on
    ``prior_centre`` (default: the same values).

    Returns
    -------
    dict
        ``free`` (best point, free scale), ``cost`` (minus log-likelihood incl. prior),
        ``jac`` (residual Jacobian there), ``evaluations``, per-start costs, ``converged``
        (the best start stopped on one of scipy's convergence tests: a step changed the
        cost by less than :data:`CONVERGED_FTOL` of it, or the step or gradient became
        negligible; not at ``max_nfev``) and ``log_evidence``.
    """
    from scipy import optimize  # here: only fitting needs it (0.1 s to import, on `inosim run`'s path)

    ev = Evaluator(setting, [f for f in all_figures() if f.fitted], prior_centre)
    z0 = ev.start_free()
    first = np.clip([p.to_free(getattr(setting.pooled.parameters, p.name)) for p in ev.fitted],
                    z0 - FREE_BOUND, z0 + FREE_BOUND)
    rng = np.random.default_rng(seed)
    prior_sd = np.array([p.prior_sd for p in ev.fitted])
    steps = FD_STEP * prior_sd

    def jacobian(z: np.ndarray) -> np.ndarray:
        # forward differences with absolute steps: with common random numbers the
        # residuals are smooth at this scale, while scipy's relative steps vanish at 0
        r0 = ev.residuals(z)
        return np.column_stack([(ev.residuals(z + np.eye(len(z))[j] * steps[j]) - r0) / steps[j]
                                for j in range(len(z))])

    best, costs, nfev = None, [], 0
    for s in range(starts):
        start = first if s == 0 else z0 + 0.3 * prior_sd * rng.standard_normal(len(z0))
        t0 = time.perf_counter()
        res = optimize.least_squares(ev.residuals, start, jac=jacobian, method="trf",
                                     bounds=(z0 - FREE_BOUND, z0 + FREE_BOUND), max_nfev=max_nfev,
                                     x_scale=prior_sd, ftol=CONVERGED_FTOL)
        nfev += res.nfev + res.njev * (len(z0) + 1)
        costs.append(float(res.cost))
        log(f"  start {s + 1}/{starts}: -log-likelihood {res.cost:.2f} after {res.nfev} iterations "
            f"({time.perf_counter() - t0:.0f} s)")
        if best is None or res.cost < best.cost:
            best = res
    return {"free": best.x, "cost": float(best.cost), "jac": best.jac, "evaluations": nfev, "costs": costs,
            "converged": bool(best.status > 0),
            "log_evidence": laplace_log_evidence(float(best.cost), best.jac, ev.log_prior_normaliser())}


def laplace_log_evidence(cost: float, jac: np.ndarray, log_prior_normaliser: float) -> float:
    """The Laplace approximation of the log marginal likelihood at the fit.

    The unnormalised log posterior is -0.5 |r(z)|^2 (figures and prior rows), with its
    maximum -``cost`` and Gauss-Newton Hessian J'J, so
    log Z = -cost + (d/2) log(2 pi) - 0.5 log det(J'J) + the prior's normalising constant.
    The figures' likelihood is up to a constant shared by every model structure, so only
    differences between structures mean anything.
    """
    sign, logdet = np.linalg.slogdet(jac.T @ jac)
    if sign <= 0:
        return -math.inf
    d = jac.shape[1]
    return -cost + 0.5 * d * math.log(2.0 * math.pi) - 0.5 * logdet + log_prior_normaliser


def identification(jac: np.ndarray, figures: list[Figure], fitted: tuple[FitParameter, ...], top: int = 3) -> str:
    """Which figures pin each fitted parameter: the largest |d residual / d parameter|.

    ``jac`` is the residual Jacobian at the fit (figure rows first, then the prior
    rows, which are left out); units are residual SDs per prior SD of the parameter.
    """
    sd = np.array([p.prior_sd for p in fitted])
    sens = np.abs(jac[: len(figures)]) * sd
    lines = [f"{'parameter':<40} most sensitive figures (|d residual| per prior SD)"]
    for j, p in enumerate(fitted):
        order = np.argsort(-sens[:, j])[:top]
        cells = "; ".join(f"{figures[i].key.split(':', 1)[1][:48]} ({sens[i, j]:.1f})" for i in order)
        lines.append(f"{p.name:<40} {cells}")
    return "\n".join(lines)
