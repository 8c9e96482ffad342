"""Sensitivity files (``inosim sensitivity FILE``): validation and running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import xarray as xr
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.analysis.outcomes import CONFIDENCE
from simulator.model.config import ConfigError, Scenario, validate
from simulator.model.files import derive_scenario, load_scenario, read_yaml
from simulator.sensitivity.common import (
    DEFAULT_LEVELS,
    DEFAULT_MORRIS_N,
    DEFAULT_POINTS,
    DEFAULT_SOBOL_N,
)
from simulator.sensitivity.distributions import (
    ParameterSpec,
    UncertainParameter,
    load_ensemble,
)
from simulator.sensitivity.models import (
    DEFAULT_PATIENTS,
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    MetricSpec,
    SimulatorModel,
    resolve_parameters,
)
from simulator.sensitivity.morris import morris
from simulator.sensitivity.one_way import one_way
from simulator.sensitivity.psa import psa
from simulator.sensitivity.sobol import sobol


# ----------------------------------------------------------------------------- files
def _named(key: str) -> Callable[[Any], Any]:
    """A list item given as a bare string means ``{key: string}``."""
    return lambda v: {key: v} if isinstance(v, str) else v


class _SensitivityFile(BaseModel):
    """The keys of a sensitivity file (``inosim sensitivity``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str
    description: str = ""
    method: Literal["one_way", "psa", "sobol", "morris"]
    scenario: str = Field(description="base scenario file, relative to this file")
    strategies: dict[str, str | dict[str, Any]] = {}
    metrics: Annotated[list[Annotated[MetricSpec, BeforeValidator(_named("metric"))]], Field(min_length=1)]
    parameters: list[Annotated[ParameterSpec, BeforeValidator(_named("name"))]] = []
    ensemble: str | None = None
    draws: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=2, le=1 << 20)] | None = None
    points: Annotated[int, Field(ge=2, le=101)] | None = None
    levels: Annotated[int, Field(ge=2, le=20)] | None = None
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] = CONFIDENCE
    patients: Annotated[int, Field(ge=1, le=10_000_000)] = DEFAULT_PATIENTS
    replicates: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_REPLICATES
    seed: Annotated[int, Field(ge=0, lt=2**63)] = DEFAULT_SEED

    @model_validator(mode="after")
    def _keys_of_the_method(self) -> _SensitivityFile:
        applies = {"draws": ("psa",), "n": ("sobol", "morris"), "points": ("one_way",), "levels": ("morris",)}
        for key, methods in applies.items():
            if getattr(self, key) is not None and self.method not in methods:
                raise ValueError(f"{key}: applies to method {' or '.join(methods)} only")
        if self.method == "psa" and self.parameters:
            raise ValueError("parameters: psa varies the ensemble's fitted parameters; remove this key")
        if self.method != "psa" and not self.parameters:
            raise ValueError(f"parameters: required for method {self.method}")
        if self.method == "sobol" and self.n is not None and self.n & (self.n - 1):
            raise ValueError(f"n: must be a power of 2 for sobol, got {self.n}")
        return self


@dataclass(frozen=True)
class SensitivityConfig:
    """A validated sensitivity file: the model, its resolved parameters and the method's options."""

    name: str
    description: str
    source: str
    method: str
    model: SimulatorModel
    parameters: tuple[UncertainParameter, ...]
    ensemble: xr.Dataset | None
    options: dict


def load_sensitivity(path: str | Path, *, patients: int | None = None, replicates: int | None = None,
                     seed: int | None = None, dask: str | None = None) -> SensitivityConfig:
    """Load a sensitivity file and check everything that can be checked before simulating.

    Parameters
    ----------
    path : str or Path
        The YAML file; ``scenario``, ``strategies`` files and ``ensemble`` are relative to it.
    patients, replicates, seed : int, optional
        Override the file's sizes (validated as if written in it).
    dask : str, optional
        Run the parameter sets on a dask.distributed cluster (see :class:`SimulatorModel`).

    Raises
    ------
    ConfigError
        One line naming the file and the key path.
    """
    path = Path(path)
    source = str(path)
    sizes = {"patients": patients, "replicates": replicates, "seed": seed}
    spec = validate(_SensitivityFile, read_yaml(path) | {k: v for k, v in sizes.items() if v is not None}, source)
    try:
        scenario = load_scenario(path.parent / spec.scenario)
    except ConfigError as exc:
        raise ConfigError(f"{source}: scenario: {exc}") from None
    strategies: dict[str, Scenario] = {}
    for name, value in spec.strategies.items():
        where = f"{source}: strategies.{name}"
        if isinstance(value, str):
            try:
                strategies[name] = load_scenario(path.parent / value)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        else:  # overrides of the base scenario, built (and warned about) naming this file
            strategies[name] = derive_scenario(scenario, value, where)
    ensemble_path = path.parent / spec.ensemble if spec.ensemble else None
    try:
        ensemble = load_ensemble(ensemble_path)
        model = SimulatorModel(scenario, spec.metrics, strategies=strategies, patients=spec.patients,
                               replicates=spec.replicates, seed=spec.seed, ensemble=ensemble, dask=dask)
        params = resolve_parameters(model, spec.parameters) if spec.method != "psa" else ()
    except ConfigError as exc:  # SpecError included
        raise ConfigError(f"{source}: {exc}") from None
    options = {"one_way": {"points": spec.points or DEFAULT_POINTS},
               "psa": {"draws": spec.draws},
               "sobol": {"n": spec.n or DEFAULT_SOBOL_N, "confidence": spec.confidence},
               "morris": {"n": spec.n or DEFAULT_MORRIS_N, "levels": spec.levels or DEFAULT_LEVELS,
                          "confidence": spec.confidence}}[spec.method]
    return SensitivityConfig(spec.name, spec.description, source, spec.method, model, params,
                             ensemble if spec.method == "psa" else None, options)


def run_sensitivity(config: SensitivityConfig, progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Run a loaded sensitivity file; the result also records the file's name and description."""
    seed = config.model.seed
    if config.method == "psa":
        ds = psa(config.model, config.ensemble, None, seed=seed, progress=progress, **config.options)
    else:
        method = {"one_way": one_way, "sobol": sobol, "morris": morris}[config.method]
        ds = method(config.model, config.parameters, None, seed=seed, progress=progress, **config.options)
    return ds.assign_attrs(name=config.name, description=config.description, source=config.source)
