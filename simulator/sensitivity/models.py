"""Sensitivity models: what is analysed (metric specs, outputs) and how it is evaluated.

A *model* turns parameter sets into figures. :class:`SimulatorModel` runs the simulator:
every parameter set, and every strategy, simulates the same virtual patients (common
random numbers), and a set's figure is computed per replicate (trials of ``patients``
patients, as in :mod:`simulator.sweep.experiment`). :class:`FunctionModel` wraps a plain
function (an analytic test function, or a model of your own) so that it goes through
the same sampling and estimation code as the simulator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.analysis.outcomes import POOLED_ANALYSIS_PATIENTS, Metric, patient_columns
from simulator.analysis.segments import Split
from simulator.analysis.trial_metrics import (
    CURVE_HORIZON_MONTHS,
    CURVES,
    FRACTION_UNIT,
    TRIAL_METRICS,
    netcdf_unit,
    trial_figures,
)
from simulator.calibration.parameters import FIT_PARAMETERS, STRUCTURE_FIT_PARAMETERS
from simulator.model import kernel as K
from simulator.model.config import ComparatorParameters, Parameters, Scenario, validate
from simulator.model.files import derive_scenario
from simulator.model.simulation import (
    model_arrays,
    record_columns,
    run_parameter_sets,
)
from simulator.runtime.scaleout import scheduler
from simulator.sensitivity.distributions import (
    CALIBRATION_SCALES,
    ParameterSpec,
    SpecError,
    UncertainParameter,
    load_ensemble,
    parameter_domain,
    resolve,
    spec_from,
    varied_parameters,
)
from simulator.sweep.experiment import MAX_PATIENTS_PER_CHUNK

BASE = "base"  # the strategy name of the analysed scenario itself
DEFAULT_PATIENTS = POOLED_ANALYSIS_PATIENTS  # patients per replicate (a trial-sized replicate)
DEFAULT_REPLICATES = 20  # replicates per parameter set
DEFAULT_SEED = 2025
SURVIVAL_TIMES = (6.0, 12.0, 18.0, 24.0, 36.0)  # months: default time points of a survival curve
RESERVED_SUFFIXES = ("_change", "_baseline", "_convergence", "_samples", "_summary", "_rank_correlation")
RESERVED_NAMES = ("inputs",)  # variable names the results use themselves
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
METRIC_BY_ID = {m.id: m for m in TRIAL_METRICS}
KM_TEMPLATE = METRIC_BY_ID["os_24_months"]  # a km_survival figure over every patient
FIT_SCALE = {p.name: CALIBRATION_SCALES[p.transform] for p in (*FIT_PARAMETERS, *STRUCTURE_FIT_PARAMETERS.values())}


class MetricSpec(BaseModel):
    """A figure to analyse: a metric under a strategy, or the difference of two strategies.

    Parameters
    ----------
    metric : str
        A :data:`simulator.analysis.trial_metrics.TRIAL_METRICS` id, or ``os_curve``/``pfs_curve``
        (Kaplan-Meier survival read at ``times``).
    strategy : str
        ``base`` (the scenario) or a name of the analysis' ``strategies``.
    minus : str, optional
        Another strategy: the figure is ``strategy - minus`` on the same patients.
    times : list of float, optional
        Months at which a survival curve is read (default :data:`SURVIVAL_TIMES`).
    name : str, optional
        Variable name in the results (default from the other keys).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    metric: str
    strategy: str = BASE
    minus: str | None = None
    times: Annotated[list[Annotated[float, Field(gt=0.0, le=CURVE_HORIZON_MONTHS)]],
                     Field(min_length=1)] | None = None
    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetricSpec:
        if self.minus == self.strategy:
            raise ValueError(f"minus: the same strategy as strategy ('{self.strategy}')")
        if self.times is not None and self.metric not in CURVES:
            raise ValueError(f"times: only survival curves ({', '.join(CURVES)}) are read at time points")
        return self


@dataclass(frozen=True)
class Output:
    """One analysed figure: its variable name, label, netCDF unit and how it is computed."""

    name: str
    label: str
    unit: str  # "1" for fractions
    timed: bool  # read at the analysis' time points (a `time` dimension)
    metrics: tuple[Metric, ...] = ()  # the simulator's figures: one per time point, or one
    strategy: str = BASE
    minus: str | None = None


def _curve_metric(curve: str, t: float) -> Metric:
    """Kaplan-Meier survival of a curve of :data:`CURVES` at ``t`` months, over every patient."""
    pair, title = CURVES[curve]
    return replace(KM_TEMPLATE, id=f"{curve}_{t:g}", label=f"{title} at {t:g} months (KM)",
                   value=lambda d, pair=pair: d[pair], horizon_months=t)


def simulator_outputs(metrics: Sequence[str | dict | MetricSpec], strategies: Sequence[str]
                      ) -> tuple[tuple[Output, ...], tuple[float, ...]]:
    """Resolve metric specs into outputs, and the time points of the survival curves.

    Raises
    ------
    SpecError
        ``metrics.<i>.<key>: what is wrong``.
    """
    if not metrics:
        raise SpecError("metrics: name at least one metric")
    specs = [spec_from(MetricSpec, "metric", item, f"metrics.{i}") for i, item in enumerate(metrics)]
    asked = sorted({t for s in specs if s.times for t in s.times})
    times = tuple(asked) if asked else SURVIVAL_TIMES
    outputs: list[Output] = []
    for i, s in enumerate(specs):
        if s.metric in CURVES:
            chosen = tuple(_curve_metric(s.metric, t) for t in times)
            label, unit = f"{CURVES[s.metric][1]} (KM)", FRACTION_UNIT
        elif s.metric in METRIC_BY_ID:
            chosen = (METRIC_BY_ID[s.metric],)
            label, unit = chosen[0].label, netcdf_unit(chosen[0])
        else:
            raise SpecError(f"metrics.{i}.metric: unknown metric '{s.metric}' (known: "
                            f"{', '.join([*METRIC_BY_ID, *CURVES])})")
        for key in ("strategy", "minus"):
            value = getattr(s, key)
            if value is not None and value not in strategies:
                raise SpecError(f"metrics.{i}.{key}: unknown strategy '{value}' (known: {', '.join(strategies)})")
        if s.minus is not None:
            name = s.name or f"{s.metric}_{s.strategy}_minus_{s.minus}"
            label = f"{label}: {s.strategy} - {s.minus}"
        else:
            name = s.name or (s.metric if s.strategy == BASE else f"{s.metric}_{s.strategy}")
            label = label if s.strategy == BASE else f"{label} ({s.strategy})"
        if name in RESERVED_NAMES or name.endswith(RESERVED_SUFFIXES) or name in {o.name for o in outputs}:
            raise SpecError(f"metrics.{i}.name: '{name}' is reserved or used twice; give another name")
        outputs.append(Output(name, label, unit, s.metric in CURVES, chosen, s.strategy, s.minus))
    return tuple(outputs), (times if any(o.timed for o in outputs) else ())


# ----------------------------------------------------------------------------- models
def segment_key(name: str, segment: str) -> str:
    """Where :meth:`SimulatorModel.evaluate` puts output ``name`` within ``segment`` (``""``: every patient).

    Output names are identifiers, so ``"<name> in <segment>"`` cannot clash with one.
    """
    return f"{name} in {segment}" if segment else name


def share_key(segment: str) -> str:
    """Where :meth:`SimulatorModel.evaluate` puts the share of each trial's patients in ``segment``."""
    return f"share of {segment}"


def resolve_strategies(scenario: Scenario, strategies: Mapping[str, Scenario | Mapping] | None
                       ) -> dict[str, Scenario]:
    """The base scenario and the named strategies (scenarios, or overrides merged onto the base).

    A strategy may change the population, regimen or follow-up, never the parameters:
    those are what the analysis varies, from the base scenario's values.

    Raises
    ------
    SpecError, ConfigError
        Naming ``strategies.<name>``.
    """
    out = {BASE: scenario}
    for name, value in (strategies or {}).items():
        where = f"strategies.{name}"
        if name == BASE or not isinstance(name, str):
            raise SpecError(f"{where}: '{BASE}' is the analysed scenario itself; choose another name")
        if isinstance(value, Scenario):
            chosen = value
        elif isinstance(value, Mapping):
            chosen = derive_scenario(scenario, value, where)
        else:
            raise SpecError(f"{where}: expected a scenario or a mapping of overrides")
        if chosen.parameters != scenario.parameters:
            raise SpecError(f"{where}: its parameters differ from the scenario's; a strategy may change "
                            "the population, regimen or follow-up, the analysis varies the parameters")
        out[name] = chosen
    return out


class SimulatorModel:
    """The simulator as a sensitivity model: parameter sets in, per-replicate figures out.

    Parameters
    ----------
    scenario : Scenario
        The base scenario (strategy ``base``); its parameters are the baseline.
    metrics : sequence
        Metric specs (see :class:`MetricSpec`).
    strategies : mapping, optional
        Named strategies: scenarios, or overrides merged onto the base.
    patients, replicates : int
        Every parameter set simulates ``replicates`` trials of ``patients`` patients.
    seed : int
        Generator seed, shared by every parameter set and strategy.
    ensemble : str, Path or xarray.Dataset, optional
        Where specs without a mean or SD take them from (default: the shipped
        calibrated ensemble; read only when needed).
    dask : str, optional
        Run the chunks of parameter sets on a dask.distributed cluster (``local:N`` or
        a scheduler address, see :func:`simulator.runtime.scaleout.scheduler`); the results
        are bit-identical to an in-process run.
    segments : sequence of Split, optional
        Also every output within each segment of these splits (see :meth:`evaluate`):
        the same figures on a mask of each strategy's records, no new simulation.
    """

    def __init__(self, scenario: Scenario, metrics: Sequence[str | dict | MetricSpec], *,
                 strategies: Mapping[str, Scenario | Mapping] | None = None,
                 patients: int = DEFAULT_PATIENTS, replicates: int = DEFAULT_REPLICATES,
                 seed: int = DEFAULT_SEED, ensemble: str | Path | xr.Dataset | None = None,
                 dask: str | None = None, segments: Sequence[Split] = ()):
        if patients < 1 or replicates < 1:
            raise ValueError(f"patients and replicates must be at least 1, got {patients} and {replicates}")
        if not 0 <= seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {seed}")
        self.scenario = scenario
        self.strategies = resolve_strategies(scenario, strategies)
        self.outputs, self.times = simulator_outputs(metrics, tuple(self.strategies))
        self.patients, self.replicates, self.seed = patients, replicates, seed
        self.dask = dask
        self._ensemble_source = ensemble
        self._ensemble: xr.Dataset | None = None
        self.baseline = model_arrays(scenario).par
        self._metrics: dict[str, dict[str, Metric]] = {}  # strategy -> figures needed under it
        for o in self.outputs:
            for s in (o.strategy, o.minus):
                if s is not None:
                    self._metrics.setdefault(s, {}).update({m.id: m for m in o.metrics})
        self.segments = tuple(segments)
        names = self._segment_names()
        if len(set(names)) < len(names):
            raise ValueError(f"segments: a segment named twice among {names}")
        if self.segments:
            self._metrics.setdefault(BASE, {})  # the segments' shares are those of the base scenario's patients
        self._arrays = {s: model_arrays(self.strategies[s]) for s in self._metrics}

    def ensemble(self) -> xr.Dataset:
        """The calibrated ensemble the defaults come from (loaded on first use)."""
        if self._ensemble is None:
            self._ensemble = load_ensemble(self._ensemble_source)
        return self._ensemble

    def parameter(self, spec: ParameterSpec) -> UncertainParameter:
        """Resolve a spec of a model parameter (defaults from the scenario and the ensemble)."""
        if spec.name not in K.PARAMETER_NAMES:
            raise SpecError(f"name: unknown parameter '{spec.name}'")
        draws = None
        if spec.low is None and (spec.sd is None or spec.mean is None):
            ens = self.ensemble()
            if spec.name in varied_parameters(ens):
                draws = ens["parameters"].sel(parameter=spec.name).values
        return resolve(spec, baseline=float(self.baseline[K.PARAMETER_NAMES.index(spec.name)]),
                       domain=parameter_domain(spec.name), ensemble=draws,
                       default_distribution=FIT_SCALE.get(spec.name))

    def vectors(self, names: Sequence[str], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full parameter vectors: the baseline with the named columns replaced, each validated.

        Names of ``kernel.COMPARATOR_PARAMETER_NAMES`` (the treatment modules' parameters)
        are returned apart, as they replace those of each strategy's own modules.

        Returns
        -------
        (par, comparators) : ndarray, shapes (sets, len(PARAMETER_NAMES)) and (sets, k)
            ``comparators`` holds the values of the k named module parameters, in order.

        Raises
        ------
        ConfigError
            If a set breaks a constraint of :class:`simulator.model.config.Parameters`
            or :class:`simulator.model.config.ComparatorParameters`.
        """
        unknown = [n for n in names if n not in K.PARAMETER_NAMES and n not in K.COMPARATOR_PARAMETER_NAMES]
        if unknown:
            raise SpecError(f"parameters: unknown parameter '{unknown[0]}'")
        own = [j for j, n in enumerate(names) if n in K.PARAMETER_NAMES]
        modules = [j for j, n in enumerate(names) if n in K.COMPARATOR_PARAMETER_NAMES]
        out = np.tile(self.baseline, (len(values), 1))
        out[:, [K.PARAMETER_NAMES.index(names[j]) for j in own]] = values[:, own]
        tpar = np.tile(self.scenario.comparators.vector(), (len(values), 1))
        tpar[:, [K.COMPARATOR_PARAMETER_NAMES.index(names[j]) for j in modules]] = values[:, modules]
        for i in range(len(values)):
            where = f"parameter set {i} ({', '.join(f'{n}={v:.4g}' for n, v in zip(names, values[i]))})"
            validate(Parameters, dict(zip(K.PARAMETER_NAMES, out[i].tolist())), where)
            validate(ComparatorParameters, dict(zip(K.COMPARATOR_PARAMETER_NAMES, tpar[i].tolist())), where)
        return out, np.ascontiguousarray(values[:, modules])

    def evaluate(self, names: Sequence[str], values: np.ndarray,
                 progress: Callable[[int, int], Any] | None = None,
                 blocks: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every output for each row of ``values`` (the named parameters; others at baseline).

        Parameters
        ----------
        names : sequence of str
            The parameters that ``values`` sets: model parameters, or the treatment modules'
            (``kernel.COMPARATOR_PARAMETER_NAMES``, replacing every strategy's own).
        values : ndarray, shape (sets, len(names))
            One parameter set per row.
        progress : callable, optional
            ``progress(done, total)`` in parameter sets.
        blocks : ndarray of int, shape (sets,), optional
            The block of patients each set simulates: block ``b`` is patients
            ``b * patients * replicates`` onwards. Sets in the same block share their
            patients (common random numbers: what one-way, Morris and Sobol need); sets in
            different blocks have independent patients (what an ensemble of parameter draws
            needs, so that the Monte Carlo error of an average over draws falls with the
            number of draws). Default: every set in block 0.

        Returns
        -------
        dict of str to ndarray, shape (sets, times, replicates)
            ``times`` is 1 for outputs without time points. With ``segments``, also each
            output within each segment, keyed :func:`segment_key` (output, segment), and the
            share of the base scenario's patients in each segment of each trial, keyed
            :func:`share_key` (segment).
        """
        module_names = tuple(n for n in names if n in K.COMPARATOR_PARAMETER_NAMES)
        sets, modules = self.vectors(names, values)
        n_sets, reps = len(sets), self.replicates
        blocks = np.zeros(n_sets, dtype=np.int64) if blocks is None else np.asarray(blocks, dtype=np.int64)
        if blocks.shape != (n_sets,) or (blocks < 0).any():
            raise ValueError(f"blocks must be {n_sets} non-negative integers, got shape {blocks.shape}")
        per_chunk = max(1, MAX_PATIENTS_PER_CHUNK // (reps * self.patients))
        out: dict[str, np.ndarray] = {}
        if progress:
            progress(0, n_sets)
        starts = range(0, n_sets, per_chunk)
        done = 0
        with scheduler(self.dask) as map_tasks:
            for i, figures in map_tasks(self._chunk_figures,
                                          [(sets[s:s + per_chunk], module_names, modules[s:s + per_chunk],
                                            blocks[s:s + per_chunk]) for s in starts]):
                start = starts[i]
                size = min(per_chunk, n_sets - start)
                for o in self.outputs:
                    for segment in ("", *self._segment_names()):
                        value = np.stack([figures[o.strategy][segment_key(m.id, segment)] for m in o.metrics],
                                         axis=1)
                        if o.minus is not None:
                            value = value - np.stack([figures[o.minus][segment_key(m.id, segment)]
                                                      for m in o.metrics], axis=1)
                        out.setdefault(segment_key(o.name, segment), np.empty((n_sets, len(o.metrics), reps))
                                       )[start:start + size] = value
                for segment in self._segment_names():
                    out.setdefault(share_key(segment), np.empty((n_sets, 1, reps)))[start:start + size, 0] = \
                        figures[BASE][share_key(segment)]
                done += size
                if progress:
                    progress(done, n_sets)
        return out

    def _chunk_figures(self, task: tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]
                       ) -> dict[str, dict[str, np.ndarray]]:
        """The figures of a chunk of parameter sets (their module parameters and patient blocks)
        under every strategy needed."""
        sets, module_names, modules, blocks = task
        return {s: self._figures(s, sets, module_names, modules, blocks) for s in self._metrics}

    def _figures(self, strategy: str, sets: np.ndarray, module_names: tuple[str, ...], modules: np.ndarray,
                 blocks: np.ndarray) -> dict[str, np.ndarray]:
        """The figures needed under one strategy, per (set, replicate); each set simulates its block
        with the strategy's module parameters, the named ones (``module_names``: ``modules``) replaced."""
        reps, patients = self.replicates, self.patients
        arrays = self._arrays[strategy]
        tpar = None
        if module_names:
            tpar = np.tile(arrays.tpar, (len(sets), 1))
            tpar[:, [K.COMPARATOR_PARAMETER_NAMES.index(n) for n in module_names]] = modules
        out_float, out_int = run_parameter_sets(arrays, sets, self.seed, reps * patients,
                                                blocks * (reps * patients), tpar)
        records = patient_columns(record_columns(out_float.reshape(K.N_FLOAT, -1), out_int.reshape(K.N_INT, -1)))
        trials, metrics = len(sets) * reps, tuple(self._metrics[strategy].values())
        values, _ = trial_figures(records, trials, patients, metrics=metrics, curves=False)
        for split in self.segments:
            for segment, mask in split.masks(records).items():
                within, _ = trial_figures(records, trials, patients, mask=mask, metrics=metrics, curves=False)
                values |= {segment_key(k, segment): v for k, v in within.items()}
                values[share_key(segment)] = mask.reshape(trials, patients).mean(axis=1)
        return {k: v.reshape(len(sets), reps) for k, v in values.items()}

    def _segment_names(self) -> list[str]:
        """Every segment of every split, in order."""
        return [name for split in self.segments for name in split.segments]

    def attrs(self) -> dict[str, Any]:
        """What the results' attributes record about the model."""
        return {
            "scenario": self.scenario.model_dump_json(),
            "scenario_name": self.scenario.name,
            "strategies": json.dumps({n: s.model_dump(exclude={"parameters"}) for n, s in self.strategies.items()
                                      if n != BASE}),
            "patients_per_replicate": self.patients,
            "replicates": self.replicates,
            "common_random_numbers": "every strategy simulates the same patients; parameter sets in the same "
                                     f"block share them: block b is patients b * {self.patients * self.replicates} "
                                     f"onwards, seed {self.seed}",
        }


@dataclass(frozen=True)
class FunctionModel:
    """A plain function as a sensitivity model (an analytic test function, or a model of your own).

    Parameters
    ----------
    function : callable
        ``function(values)`` with ``values`` of shape (sets, k), columns in the order of
        the parameters given to the analysis, returns ``{output: ndarray (sets,)}``.
    output_names : tuple of str
        The outputs it returns.
    unit : str
        Their unit.
    """

    function: Callable[[np.ndarray], Mapping[str, np.ndarray]]
    output_names: tuple[str, ...]
    unit: str = FRACTION_UNIT

    @property
    def times(self) -> tuple[float, ...]:
        """No time points: every output is a number per parameter set."""
        return ()

    @property
    def outputs(self) -> tuple[Output, ...]:
        """One untimed output per name."""
        return tuple(Output(n, n, self.unit, False) for n in self.output_names)

    def select(self, metrics: Sequence[str] | None) -> FunctionModel:
        """The model restricted to some outputs (all if ``metrics`` is None)."""
        if metrics is None:
            return self
        unknown = [m for m in metrics if m not in self.output_names]
        if unknown:
            raise SpecError(f"metrics: unknown output '{unknown[0]}' (known: {', '.join(self.output_names)})")
        return replace(self, output_names=tuple(metrics))

    def parameter(self, spec: ParameterSpec) -> UncertainParameter:
        """Resolve a spec (explicit bounds or mean and SD); baseline: the spec's, else the median."""
        p = resolve(spec, baseline=math.nan)
        return p if not math.isnan(p.baseline) else replace(p, baseline=float(p.ppf(0.5)))

    def evaluate(self, names: Sequence[str], values: np.ndarray,
                 progress: Callable[[int, int], Any] | None = None,
                 blocks: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The function's outputs, shaped (sets, 1, 1) like :meth:`SimulatorModel.evaluate`.

        ``blocks`` (patient blocks) is accepted for the same call shape; a function has no patients.
        """
        result = self.function(np.asarray(values, dtype=float))
        if progress:
            progress(len(values), len(values))
        return {n: np.asarray(result[n], dtype=float).reshape(len(values), 1, 1) for n in self.output_names}

    def attrs(self) -> dict[str, Any]:
        """What the results' attributes record about the model."""
        return {"model": getattr(self.function, "__name__", type(self.function).__name__)}


Model = SimulatorModel | FunctionModel


def as_model(scenario: Scenario | Model, metrics: Sequence | None, options: dict) -> Model:
    """The model to analyse: the simulator on a scenario, or a model given as is.

    ``options`` are :class:`SimulatorModel`'s keyword arguments; a prepared
    :class:`SimulatorModel` keeps its own (strategies, sizes, seed).
    """
    if isinstance(scenario, FunctionModel):
        if options.get("strategies"):
            raise SpecError("strategies: apply to the simulator only")
        return scenario.select(metrics)
    if isinstance(scenario, SimulatorModel):
        if metrics is not None:
            raise SpecError("metrics: a prepared SimulatorModel carries its own metrics; pass None")
        return scenario
    return SimulatorModel(scenario, metrics or (), **options)


def resolve_parameters(model: Model, items: Sequence[str | dict | ParameterSpec | UncertainParameter]
                       ) -> tuple[UncertainParameter, ...]:
    """Resolve parameter specs against a model.

    Raises
    ------
    SpecError
        ``parameters.<i>.<key>: what is wrong``.
    """
    if not items:
        raise SpecError("parameters: name at least one parameter")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, UncertainParameter):
            out.append(item)
            continue
        spec = spec_from(ParameterSpec, "name", item, f"parameters.{i}")
        try:
            out.append(model.parameter(spec))
        except SpecError as exc:
            raise SpecError(f"parameters.{i}: {exc}") from None
    names = [p.name for p in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"parameters: '{twice[0]}' is given twice")
    return tuple(out)

