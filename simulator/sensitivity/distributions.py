"""Parameter uncertainty for sensitivity analyses: specs, distributions, the calibrated ensemble.

A :class:`ParameterSpec` names a parameter and says how it varies, in one of two ways:

* **bounds** ``low``/``high``: uniform between them; a one-way analysis uses the two ends;
* **mean and SD** with a ``distribution``: converted by the method of moments into
  ``beta`` (probabilities), ``gamma`` or ``lognormal`` (positive quantities) or
  ``normal`` (log odds, log hazard ratios); a one-way analysis uses its
  :data:`ONE_WAY_QUANTILES` (the central 95%).

For model parameters a missing mean or SD comes from the calibrated ensemble
(``configs/parameters/posterior.nc``: the ensemble's mean and SD of the parameter), and a
missing distribution from the scale the calibration fitted it on (log -> lognormal,
logit -> beta, identity -> normal) or, for parameters it did not fit, from the
parameter's domain. Every distribution is truncated to the parameter's domain (the
constraints of :class:`simulator.model.config.Parameters`), which changes nothing where the
domain holds all but a negligible share of it and keeps every draw valid otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from simulator.model.config import ConfigError, Parameters, default_config_dir, validate
from simulator.model.files import COMPARATOR_ENSEMBLE_FILE
from simulator.runtime.storage import read_netcdf

ONE_WAY_QUANTILES = (0.025, 0.975)  # a distribution's one-way range (and Morris range)
ENSEMBLE_FILE = ("parameters", "posterior.nc")  # under the shipped configs/
FAMILIES = {  # distribution name -> scipy family (keyword arguments in UncertainParameter.args)
    "uniform": stats.uniform,
    "normal": stats.norm,
    "beta": stats.beta,
    "gamma": stats.gamma,
    "lognormal": stats.lognorm,
}
CALIBRATION_SCALES = {"id": "normal", "log": "lognormal", "logit": "beta"}  # FitParameter.transform ->
Distribution = Literal["uniform", "normal", "beta", "gamma", "lognormal"]


class SpecError(ConfigError):
    """A sensitivity specification that cannot be used, as ``key.path: what is wrong``."""


class ParameterSpec(BaseModel):
    """How one parameter varies: bounds, or mean and SD of a distribution (see the module docstring).

    Parameters
    ----------
    name : str
        A model parameter (``simulator.model.kernel.PARAMETER_NAMES``), or an input of a
        :class:`simulator.sensitivity.FunctionModel`.
    low, high : float, optional
        Uniform bounds, in the parameter's unit.
    mean, sd : float, optional
        Mean and standard deviation (defaults: the calibrated ensemble's).
    distribution : {"uniform", "normal", "beta", "gamma", "lognormal"}, optional
        The family (default: see the module docstring).
    baseline : float, optional
        The value other analyses hold the parameter at (default: the scenario's).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: Annotated[str, Field(min_length=1)]
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    sd: Annotated[float, Field(gt=0.0)] | None = None
    distribution: Distribution | None = None
    baseline: float | None = None

    @model_validator(mode="after")
    def _one_way_of_saying_it(self) -> ParameterSpec:
        bounds = (self.low is not None, self.high is not None)
        if any(bounds):
            if not all(bounds):
                raise ValueError("give both low and high")
            if not self.low < self.high:
                raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
            if self.mean is not None or self.sd is not None:
                raise ValueError("give either low and high, or mean and sd, not both")
            if self.distribution not in (None, "uniform"):
                raise ValueError(f"low and high define a uniform distribution, not {self.distribution}")
        elif self.distribution == "uniform":
            raise ValueError("a uniform distribution needs low and high")
        return self


def spec_from(model: type[BaseModel], key: str, item: str | dict | BaseModel, where: str) -> Any:
    """A spec of type ``model`` from a bare name (the value of ``key``), a mapping of its keys, or a spec.

    Raises
    ------
    ConfigError
        ``where: key: what is wrong``.
    """
    if isinstance(item, model):
        return item
    return validate(model, {key: item} if isinstance(item, str) else item, where)


def moment_arguments(distribution: str, mean: float, sd: float) -> dict[str, float]:
    """scipy arguments of the distribution with this mean and SD (method of moments).

    Raises
    ------
    SpecError
        Where no such distribution exists (e.g. a beta whose SD is too large for its mean).
    """
    if distribution == "normal":
        return {"loc": mean, "scale": sd}
    if distribution == "beta":
        if not 0.0 < mean < 1.0:
            raise SpecError(f"mean: a beta distribution needs a mean in (0, 1), got {mean:g}")
        common = mean * (1.0 - mean) / sd**2 - 1.0
        if common <= 0.0:
            raise SpecError(f"sd: a beta distribution with mean {mean:g} needs sd < "
                            f"{math.sqrt(mean * (1.0 - mean)):.4g}, got {sd:g}")
        return {"a": mean * common, "b": (1.0 - mean) * common}
    if mean <= 0.0:
        raise SpecError(f"mean: a {distribution} distribution needs a positive mean, got {mean:g}")
    if distribution == "gamma":
        return {"a": (mean / sd) ** 2, "scale": sd**2 / mean}
    if distribution == "lognormal":
        sigma2 = math.log1p((sd / mean) ** 2)
        return {"s": math.sqrt(sigma2), "scale": math.exp(math.log(mean) - sigma2 / 2.0)}
    raise SpecError(f"distribution: {distribution} is not given by mean and sd")


@dataclass(frozen=True)
class UncertainParameter:
    """A resolved spec: a (truncated) distribution, its one-way range and a baseline value."""

    name: str
    distribution: str  # a key of FAMILIES
    args: tuple[tuple[str, float], ...]  # scipy keyword arguments
    domain: tuple[float, float]  # the distribution is truncated to it
    baseline: float
    source: str  # where the mean and SD came from: "given" or "ensemble"

    def frozen(self) -> Any:
        """The scipy distribution before truncation."""
        return FAMILIES[self.distribution](**dict(self.args))

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        """Quantiles of the distribution truncated to the domain (q in [0, 1])."""
        rv = self.frozen()
        lo, hi = rv.cdf(self.domain[0]), rv.cdf(self.domain[1])
        return rv.ppf(lo + np.asarray(q, dtype=float) * (hi - lo))

    @property
    def range(self) -> tuple[float, float]:
        """The one-way range: the bounds of a uniform, else the :data:`ONE_WAY_QUANTILES`."""
        q = (0.0, 1.0) if self.distribution == "uniform" else ONE_WAY_QUANTILES
        low, high = self.ppf(np.array(q))
        return float(low), float(high)

    def describe(self) -> str:
        """``lognormal (mean 0.07, sd 0.016; ensemble)`` or ``uniform 0 to 1.2``."""
        if self.distribution == "uniform":
            low, high = self.range
            return f"uniform {low:.4g} to {high:.4g}"
        rv = self.frozen()
        return f"{self.distribution} (mean {rv.mean():.4g}, sd {rv.std():.4g}; {self.source})"


def resolve(spec: ParameterSpec, *, baseline: float, domain: tuple[float, float] = (-math.inf, math.inf),
            ensemble: np.ndarray | None = None, default_distribution: str | None = None) -> UncertainParameter:
    """Turn a spec into a distribution, filling what it leaves out.

    Parameters
    ----------
    spec : ParameterSpec
    baseline : float
        The value used when the spec gives none (the scenario's value of the parameter).
    domain : (float, float)
        Values the parameter may take; the distribution is truncated to it.
    ensemble : ndarray, optional
        The calibrated ensemble's draws of this parameter (None: not fitted); the
        default mean and SD.
    default_distribution : str, optional
        The family when the spec names none (default: by domain).

    Raises
    ------
    SpecError
        ``key: what is wrong`` (key relative to the spec).
    """
    lo, hi = domain
    base = spec.baseline if spec.baseline is not None else baseline
    if spec.low is not None:
        for key, value in (("low", spec.low), ("high", spec.high)):
            if not lo <= value <= hi:
                raise SpecError(f"{key}: {value:g} is outside the parameter's domain [{lo:g}, {hi:g}]")
        return UncertainParameter(spec.name, "uniform", (("loc", spec.low), ("scale", spec.high - spec.low)),
                                  domain, base, "given")
    fitted = ensemble is not None and np.ptp(ensemble) > 0
    if spec.sd is None and not fitted:
        raise SpecError(f"name: no ensemble draws of {spec.name} to take its mean and sd from (not "
                        "fitted); give low and high, or mean and sd")
    mean = spec.mean if spec.mean is not None else (float(np.mean(ensemble)) if fitted else base)
    sd = spec.sd if spec.sd is not None else float(np.std(ensemble, ddof=1))
    distribution = spec.distribution or default_distribution or domain_distribution(domain)
    source = "given" if spec.mean is not None and spec.sd is not None else "ensemble"
    return UncertainParameter(spec.name, distribution, tuple(moment_arguments(distribution, mean, sd).items()),
                              domain, base, source)


def domain_distribution(domain: tuple[float, float]) -> str:
    """The family for a domain: beta on [0, 1], gamma on [0, inf), normal otherwise."""
    lo, hi = domain
    if lo >= 0.0 and hi <= 1.0:
        return "beta"
    if lo >= 0.0 and hi == math.inf:
        return "gamma"
    return "normal"


def parameter_domain(name: str) -> tuple[float, float]:
    """Bounds of a model parameter from the constraints of :class:`simulator.model.config.Parameters`."""
    lo, hi = -math.inf, math.inf
    for c in Parameters.model_fields[name].metadata:  # annotated_types Ge, Gt, Le, Lt
        lo = float(getattr(c, "ge", getattr(c, "gt", lo)))
        hi = float(getattr(c, "le", getattr(c, "lt", hi)))
    return lo, hi


def default_ensemble_path() -> Path:
    """The shipped calibrated ensemble (``configs/parameters/posterior.nc``)."""
    return default_config_dir().joinpath(*ENSEMBLE_FILE)


def load_comparator_ensemble(source: str | Path | xr.Dataset | None = None) -> xr.Dataset:
    """The treatment modules' posterior ensemble: ``parameters`` over (draw, parameter) of
    ``COMPARATOR_PARAMETER_NAMES``; default: the shipped one (``configs/parameters/comparators_posterior.nc``,
    :func:`simulator.calibration.comparators.comparator_ensemble`). See :func:`load_ensemble`."""
    return load_ensemble(source if source is not None else default_config_dir() / COMPARATOR_ENSEMBLE_FILE)


def load_ensemble(source: str | Path | xr.Dataset | None = None) -> xr.Dataset:
    """A parameter ensemble: ``parameters`` over (draw, parameter), as ``inosim calibrate`` writes it.

    Parameters
    ----------
    source : str, Path or xarray.Dataset, optional
        A netCDF file or a Dataset; default: the shipped calibrated ensemble.

    Raises
    ------
    ConfigError
        If the file cannot be read or holds no such variable.
    """
    if isinstance(source, xr.Dataset):
        ds, where = source, "ensemble"
    else:
        path = Path(source) if source is not None else default_ensemble_path()
        where = str(path)
        try:
            ds = read_netcdf(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the ensemble ({exc})") from None
    if "parameters" not in ds or ds["parameters"].dims != ("draw", "parameter"):
        raise ConfigError(f"{where}: expected a variable 'parameters' over (draw, parameter)")
    return ds


def varied_parameters(ensemble: xr.Dataset) -> list[str]:
    """The ensemble's uncertain parameters: those marked ``fitted``, else those whose draws differ."""
    names = [str(n) for n in ensemble.parameter.values]
    if "fitted" in ensemble.coords:
        return [n for n, f in zip(names, ensemble["fitted"].values) if f]
    values = ensemble["parameters"].values
    return [n for j, n in enumerate(names) if np.ptp(values[:, j]) > 0]
