"""Experiments: sweeps of dosing strategies over the same virtual patients.

An experiment file names a base scenario, sweep axes, and the size of the simulated
trials::

    name: dose_cutoff_sweep
    scenario: ../configs/label_dosing.yaml     # relative to this file
    axes:                                      # any scenario key path: a list of values
      regimen.cumulative_cap: [1.8, 3.3, null]
      regimen.max_cycles: [1, 2, 6]
      parameters.overrides.nrm_rate: [0.01, 0.02]
      strategy:                                # or named strategies: a scenario file
        label: ../configs/label_dosing.yaml    # (replaces the base) or overrides
        low_start: {regimen: {cycle1_doses: [0.6, 0.3, 0.3]}}
        low_nrm: {parameters: {overrides: {nrm_rate: 0.01}}}
    reference: {regimen.max_cycles: 6}         # optional; default: the base's values
    replicates: 200                            # trials per grid point
    patients: 338                              # patients per trial
    seed: 2025

Model parameters are written as in a scenario file: ``parameters.overrides.NAME``
as an axis, ``{parameters: {overrides: {...}}}`` (optionally with ``file``) in a
strategy. The base scenario is kept fully resolved, so internally both become its
``parameters.NAME`` (the one canonical form; writing it directly works too).

Every grid point is validated before any work starts. Replicate ``r`` holds
patients ``r * patients .. (r + 1) * patients - 1`` at every grid point: the same
virtual patients (common random numbers), so differences between grid points are
paired trial by trial.

The unit of work is :func:`run_chunk`, a pure function of a :class:`ChunkSpec`
(one grid point, a block of replicates) returning a small Dataset; a sweep runs the
chunks, here or on a dask cluster (:mod:`simulator.runtime.scaleout`), saves each one
atomically as it finishes (so ``--resume`` redoes none that finished, whatever
scheduler ran them), and assembles them into the results Dataset (:func:`run_sweep`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from simulator.analysis.labels import NO_LIMIT, axis_label
from simulator.analysis.outcomes import CONFIDENCE, POOLED_ANALYSIS_PATIENTS, patient_columns
from simulator.analysis.trial_metrics import (
    CURVE_MONTHS,
    CURVES,
    FRACTION_UNIT,
    MC_STATS,
    TRIAL_METRICS,
    mc_summary,
    netcdf_unit,
    trial_figures,
)
from simulator.model.config import ConfigError, Scenario, deep_merge, validate
from simulator.model.files import (
    derive_scenario,
    is_parameter_spec,
    load_scenario,
    read_yaml,
    resolve_parameters,
)
from simulator.model.simulation import model_arrays, record_columns, run_kernel
from simulator.runtime.scaleout import scheduler
from simulator.runtime.storage import atomic_path, is_netcdf, read_netcdf, write_netcdf

DEFAULT_REPLICATES = 200
DEFAULT_SEED = 2025
STRATEGY_AXIS = "strategy"
MAX_PATIENTS_PER_CHUNK = 2_000_000  # bounds a chunk's memory (about 0.5 kB per patient)
RESERVED_DIMS = ("replicate", "month", "metric", "unit", "label")  # names used in the results
FIXED_KEYS = {"simulation.patients": "patients", "simulation.seed": "seed"}
PARTIAL_SUFFIX = ".partial"
CHUNK_PATTERN = "chunk-{point:06d}-{first:07d}-{count:07d}.npz"  # flat grid index, replicate block
CHUNK_GLOB = "chunk-*.npz"
PARAMETER_OVERRIDES = "parameters.overrides."  # as a scenario file writes a parameter


class _ExperimentFile(BaseModel):
    """The keys of an experiment file (values checked before any work starts)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str
    description: str = ""
    scenario: str = Field(description="base scenario file, relative to the experiment file")
    axes: Annotated[dict[str, Any], Field(min_length=1)]  # shapes checked per axis, with key paths
    reference: dict[str, Any] = {}
    replicates: Annotated[int, Field(ge=2, le=1_000_000)] = DEFAULT_REPLICATES
    patients: Annotated[int, Field(ge=1, le=10_000_000)] = POOLED_ANALYSIS_PATIENTS
    seed: Annotated[int, Field(ge=0, lt=2**63)] = DEFAULT_SEED


@dataclass(frozen=True)
class Axis:
    """One sweep dimension: its values, their labels and scenario overrides."""

    name: str  # dimension name in the results
    key: str  # a scenario key path, or "strategy"
    labels: tuple[str, ...]  # coordinate values in the results
    values: tuple[Any, ...]  # as written in the file
    overrides: tuple[dict, ...]  # merged onto the base scenario, one per value

    def coordinates(self) -> dict[str, tuple]:
        """The axis' coordinate in the results, and any coordinates beside it on its dimension.

        A numeric axis is stored as numbers (float, or int if every value is a whole
        number), a null value (no cap) as ``inf`` with a string ``<name>_label``
        coordinate beside it (``none`` for inf), for plots that need finite values;
        a list-valued axis (e.g. cycle-1 doses) by its labels (``0.8/0.5/0.5``), with
        the numeric ``<name>_total`` (the sum of the list) beside it; every other
        axis (strategy names, booleans, mappings) by its labels.
        """
        label = axis_label(self.key)
        attrs = {"key_path": self.key, "long_name": label.name, "values": json.dumps(list(self.values))}
        if label.unit:
            attrs["units"] = label.unit
        if self.key != STRATEGY_AXIS and all(_is_number(v) or v is None for v in self.values) \
                and any(_is_number(v) for v in self.values):
            kind = int if all(isinstance(v, int) for v in self.values) else float
            values = np.array([math.inf if v is None else v for v in self.values], dtype=kind)
            if None not in self.values:
                return {self.name: (self.name, values, attrs)}
            attrs["inf_means"] = "null in the experiment file: no cap or limit"
            return {self.name: (self.name, values, attrs),
                    f"{self.name}_label": (self.name, list(self.labels), {"long_name": f"{label.name}, as labelled"})}
        coords = {self.name: (self.name, list(self.labels), attrs)}
        if self.key != STRATEGY_AXIS and all(isinstance(v, list) and v and all(map(_is_number, v))
                                             for v in self.values):
            coords[f"{self.name}_total"] = (self.name, np.array([float(sum(v)) for v in self.values]), {
                "long_name": f"{label.name}, total", **({"units": label.unit} if label.unit else {})})
        return coords


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: base scenario, axes, reference point and sizes."""

    name: str
    description: str
    source: str
    base: dict
    axes: tuple[Axis, ...]
    reference: tuple[int, ...]  # index of the reference value on each axis
    replicates: int
    patients: int
    seed: int

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values on each axis."""
        return tuple(len(a.labels) for a in self.axes)

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimension names of the axes."""
        return tuple(a.name for a in self.axes)

    def describe(self, index: tuple[int, ...]) -> str:
        """``dim=label, ...`` of a grid point."""
        return ", ".join(f"{a.name}={a.labels[i]}" for a, i in zip(self.axes, index))

    def scenario_at(self, index: tuple[int, ...]) -> Scenario:
        """The validated scenario of one grid point (raises :class:`ConfigError`).

        Warns of what its overrides bring outside the calibration (see
        :func:`~simulator.model.files.derive_scenario`).
        """
        overrides: dict = {}
        for axis, i in zip(self.axes, index):
            overrides = deep_merge(overrides, axis.overrides[i])
        source = self.source
        for axis, i in zip(self.axes, index):
            if axis.key == STRATEGY_AXIS:
                source = f"{source}: axes.{STRATEGY_AXIS}.{axis.labels[i]}"
        try:
            return derive_scenario(validate(Scenario, self.base, self.source), overrides, source)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (grid point {self.describe(index)})") from None

    def to_json(self) -> str:
        """Everything needed to rebuild the experiment (stored in the results' attrs)."""
        return json.dumps({
            "name": self.name, "description": self.description, "source": self.source,
            "base_scenario": self.base,
            "axes": [{"name": a.name, "key": a.key, "labels": list(a.labels), "values": list(a.values),
                      "overrides": list(a.overrides)} for a in self.axes],
            "reference": {a.name: a.labels[i] for a, i in zip(self.axes, self.reference)},
            "replicates": self.replicates, "patients": self.patients, "seed": self.seed,
        })

    def fingerprint(self) -> str:
        """A hash of what determines the results (not the file's location).

        Finished chunks of a sweep are reused only under the same fingerprint.
        """
        from simulator import __version__

        doc = json.loads(self.to_json())
        doc.pop("source")
        doc["program"] = {"version": __version__, "metrics": [m.id for m in TRIAL_METRICS],
                          "curves": list(CURVES), "months": CURVE_MONTHS.tolist()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def experiment_from_json(text: str, source: str | Path) -> Experiment:
    """Rebuild an :class:`Experiment` from :meth:`Experiment.to_json` (e.g. a results file)."""
    doc = json.loads(text)
    axes = tuple(Axis(a["name"], a["key"], tuple(a["labels"]), tuple(a["values"]), tuple(a["overrides"]))
                 for a in doc["axes"])
    reference = tuple(a.labels.index(doc["reference"][a.name]) for a in axes)
    return Experiment(doc["name"], doc["description"], str(source), doc["base_scenario"], axes,
                      reference, doc["replicates"], doc["patients"], doc["seed"])


# ----------------------------------------------------------------------------- loading
def _label(value: Any) -> str:
    """A short coordinate label: ``none``, ``3.3``, ``0.8/0.5/0.5``."""
    if value is None:
        return NO_LIMIT
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "/".join(_label(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nest(key: str, value: Any) -> dict:
    """``a.b.c`` and a value as ``{a: {b: {c: value}}}``."""
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _canonical_key(key: str) -> str:
    """The resolved scenario's key path: ``parameters.overrides.X`` is ``parameters.X``."""
    if key.startswith(PARAMETER_OVERRIDES):
        return "parameters." + key.removeprefix(PARAMETER_OVERRIDES)
    return key


def _check_key_path(base: dict, written: str, source: str) -> None:
    """Refuse a key path (as written in the file) that names no key of the resolved base scenario."""
    if written in FIXED_KEYS:
        raise ConfigError(f"{source}: axes.{written}: set by the experiment's "
                          f"'{FIXED_KEYS[written]}', not sweepable")
    node: Any = base
    parts = _canonical_key(written).split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "the scenario"
            raise ConfigError(f"{source}: axes.{written}: unknown key path ('{part}' is not a key of {where})")
        node = node[part]


def _load_base(path: Path, where: str) -> dict:
    """A scenario file named by an experiment, fully resolved; errors say where it was named."""
    try:
        return load_scenario(path).model_dump()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _override_set(value: dict, base: dict, where: str, folder: Path) -> dict:
    """A strategy's overrides with a ``{file, overrides}`` parameters section resolved to values."""
    out = copy.deepcopy(value)
    spec = out.get("parameters")
    if is_parameter_spec(spec):
        out["parameters"], fitted_under = resolve_parameters(spec, where, folder, base["parameters"])
        if fitted_under is not None:  # a parameter file of another model structure brings its structure
            out["model"] = fitted_under.model_dump()
    return out


def _strategy_axis(values: Any, base: dict, source: str, folder: Path) -> Axis:
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"{source}: axes.{STRATEGY_AXIS}: expected a mapping of strategy name to "
                          "a scenario file or a mapping of overrides")
    where = f"{source}: axes.{STRATEGY_AXIS}"
    overrides = [_load_base(folder / v, f"{where}.{k}") if isinstance(v, str)
                 else _override_set(v, base, f"{where}.{k}", folder) if isinstance(v, dict)
                 else v for k, v in values.items()]  # anything else is refused at validation
    return Axis(STRATEGY_AXIS, STRATEGY_AXIS, tuple(values), tuple(values.values()), tuple(overrides))


def _key_axis(written: str, values: Any, base: dict, source: str, name: str) -> Axis:
    _check_key_path(base, written, source)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{source}: axes.{written}: expected a non-empty list of values")
    labels = tuple(_label(v) for v in values)
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{source}: axes.{written}: values must differ, got {values!r}")
    key = _canonical_key(written)
    return Axis(name, key, labels, tuple(values), tuple(_nest(key, v) for v in values))


def _dim_names(keys: list[str], source: str) -> list[str]:
    """Dimension names: the last part of each key path, the whole path where those clash."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = [s if short.count(s) == 1 else k.replace(".", "_") for s, k in zip(short, keys)]
    for key, name in zip(keys, names):
        if name in RESERVED_DIMS:
            raise ConfigError(f"{source}: axes.{key}: '{name}' is a reserved dimension name")
    return names


def _reference(axes: tuple[Axis, ...], base: dict, given: dict, source: str) -> tuple[int, ...]:
    """Reference index per axis: as given, else the base scenario's value, else the first."""
    unknown = set(given) - {a.key for a in axes}
    if unknown:
        raise ConfigError(f"{source}: reference.{sorted(unknown)[0]}: not an axis of this experiment")
    out = []
    for axis in axes:
        if axis.key in given:
            wanted = _label(given[axis.key])
            if wanted not in axis.labels:
                raise ConfigError(f"{source}: reference.{axis.key}: {given[axis.key]!r} is not "
                                  f"one of the axis' values {list(axis.values)!r}")
            out.append(axis.labels.index(wanted))
            continue
        node: Any = base
        for part in axis.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        matches = [i for i, v in enumerate(axis.values) if axis.key != STRATEGY_AXIS and v == node]
        out.append(matches[0] if matches else 0)
    return tuple(out)


def load_experiment(path: str | Path, *, replicates: int | None = None, patients: int | None = None,
                    seed: int | None = None) -> Experiment:
    """Load an experiment file and validate every grid point before any work.

    Parameters
    ----------
    path : str or Path
        Experiment YAML; its ``scenario`` and strategy files are relative to it.
    replicates, patients, seed : int, optional
        Override the file's trials per grid point, patients per trial and seed
        (validated as if written in the file).

    Returns
    -------
    Experiment

    Raises
    ------
    ConfigError
        One line naming the file and the key path (and the grid point, if one fails).
    """
    path = Path(path)
    source = str(path)
    sizes = {"replicates": replicates, "patients": patients, "seed": seed}
    doc = read_yaml(path) | {k: v for k, v in sizes.items() if v is not None}
    spec = validate(_ExperimentFile, doc, source)
    base = _load_base(path.parent / spec.scenario, f"{source}: scenario")
    written = list(spec.axes)
    keys = [_canonical_key(k) for k in written]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ConfigError(f"{source}: axes.{written[i]}: the same key as axes.{written[keys.index(key)]}")
    names = _dim_names(keys, source)
    axes = tuple(_strategy_axis(spec.axes[k], base, source, path.parent) if k == STRATEGY_AXIS
                 else _key_axis(k, spec.axes[k], base, source, name) for k, name in zip(written, names))
    reference = {_canonical_key(k): v for k, v in spec.reference.items()}
    exp = Experiment(
        name=spec.name, description=spec.description, source=source, base=base, axes=axes,
        reference=_reference(axes, base, reference, source),
        replicates=spec.replicates, patients=spec.patients, seed=spec.seed)
    for index in np.ndindex(exp.shape):
        exp.scenario_at(index)
    return exp


def strategies_experiment(paths: list[str | Path], *, replicates: int, patients: int,
                          seed: int) -> Experiment:
    """An experiment comparing scenario files (the first is the reference) on the same patients."""
    scenarios = [load_scenario(p) for p in paths]
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ConfigError(f"{paths[0]}: scenario names must differ to compare them, got {names}")
    dumps = tuple(s.model_dump() for s in scenarios)
    axis = Axis(STRATEGY_AXIS, STRATEGY_AXIS, tuple(names), tuple(str(p) for p in paths), dumps)
    return Experiment("compare", "scenario files compared on the same virtual patients",
                      str(paths[0]), dumps[0], (axis,), (0,), replicates, patients, seed)


# ----------------------------------------------------------------------------- the unit of work
@dataclass(frozen=True)
class ChunkSpec:
    """One grid point and a block of replicates: everything :func:`run_chunk` needs."""

    index: tuple[int, ...]
    scenario: Scenario
    seed: int
    patients: int  # per replicate
    first_replicate: int
    replicates: int


def simulate_replicates(scenario: Scenario, seed: int, patients: int, first_replicate: int,
                        replicates: int) -> dict[str, np.ndarray]:
    """Patient records of replicates ``first_replicate ..`` (``patients`` each), in order, as
    :func:`simulator.model.simulation.record_columns`.

    Replicate ``r`` is patients ``r * patients .. (r + 1) * patients - 1``, whatever
    the scenario: the same virtual patients at every grid point.
    """
    first = first_replicate * patients
    return record_columns(*run_kernel(model_arrays(scenario), seed, first, replicates * patients))


def chunk_dataset(spec: ChunkSpec, values: np.ndarray, curves: np.ndarray) -> xr.Dataset:
    """A chunk's results as returned by :func:`run_chunk`."""
    replicate = np.arange(spec.first_replicate, spec.first_replicate + spec.replicates)
    return xr.Dataset(
        {"values": (("metric", "replicate"), values),
         "curves": (("curve", "replicate", "month"), curves)},
        coords={"metric": [m.id for m in TRIAL_METRICS], "curve": list(CURVES), "replicate": replicate,
                "month": CURVE_MONTHS},
        attrs={"index": list(spec.index)})


def run_chunk(spec: ChunkSpec) -> xr.Dataset:
    """Simulate one chunk and reduce it to per-replicate figures (a pure function).

    Returns
    -------
    xarray.Dataset
        ``values`` (metric, replicate) in the metrics' units (rates as fractions)
        and ``curves`` (curve, replicate, month): Kaplan-Meier OS and PFS per
        replicate; ``attrs['index']`` is the grid position.
    """
    records = simulate_replicates(spec.scenario, spec.seed, spec.patients, spec.first_replicate,
                                  spec.replicates)
    metrics, curves = trial_figures(patient_columns(records), spec.replicates, spec.patients)
    return chunk_dataset(spec, np.stack([metrics[m.id] for m in TRIAL_METRICS]),
                         np.stack([curves[name] for name in CURVES]))


def plan_chunks(exp: Experiment, replicates_per_chunk: int | None = None) -> list[ChunkSpec]:
    """The chunks of a sweep: every grid point, in blocks of replicates.

    Parameters
    ----------
    exp : Experiment
    replicates_per_chunk : int, optional
        Replicates per block (default: as many as fit in
        :data:`MAX_PATIENTS_PER_CHUNK` patients). Results do not depend on it.
    """
    if replicates_per_chunk is not None and replicates_per_chunk < 1:
        raise ValueError(f"replicates_per_chunk must be at least 1, got {replicates_per_chunk}")
    per_chunk = min(exp.replicates, replicates_per_chunk or max(1, MAX_PATIENTS_PER_CHUNK // exp.patients))
    chunks = []
    for index in np.ndindex(exp.shape):
        scenario = exp.scenario_at(index)
        for first in range(0, exp.replicates, per_chunk):
            chunks.append(ChunkSpec(tuple(int(i) for i in index), scenario, exp.seed, exp.patients,
                                    first, min(per_chunk, exp.replicates - first)))
    return chunks


# ----------------------------------------------------------------------------- assembling
def assemble(exp: Experiment, chunks: Iterator[tuple[ChunkSpec, xr.Dataset]]) -> xr.Dataset:
    """Place chunk results on the grid and add the pooled estimates.

    Returns
    -------
    xarray.Dataset
        One variable per metric over (axes..., replicate); ``os_curve`` and
        ``pfs_curve`` over (axes..., replicate, month); ``pooled_estimate``,
        ``pooled_lower``, ``pooled_upper`` and ``pooled_n`` over (metric, axes...):
        the mean over replicates with its Monte Carlo CI.

        Each axis is a dimension named after the last part of its key path
        (``cumulative_cap``), with the key path, display name and unit in its
        attributes (see :meth:`Axis.coordinates`): numeric axes hold numbers, so
        ``ds.sel(cumulative_cap=3.3)``, ``ds.sel(max_cycles=2)`` and
        ``ds.sel(cumulative_cap=np.inf)`` (no cap) work, and ``ds.to_dataframe()``
        has numeric index levels; list-valued axes hold labels
        (``ds.sel(cycle1_doses="0.6/0.3/0.3")``) with their total beside them
        (``cycle1_doses_total``, mg/m2); ``strategy`` holds names. A 2-D
        ``ds.plot`` over an axis with ``inf`` needs finite coordinates:
        ``ds.swap_dims(cumulative_cap="cumulative_cap_label")``.
    """
    from simulator import __version__

    n_m, n_c, n_t = len(TRIAL_METRICS), len(CURVES), len(CURVE_MONTHS)
    values = np.full((n_m, *exp.shape, exp.replicates), np.nan)
    curves = np.full((n_c, *exp.shape, exp.replicates, n_t), np.nan, dtype=np.float32)
    for spec, ds in chunks:
        block = slice(spec.first_replicate, spec.first_replicate + spec.replicates)
        values[(slice(None), *spec.index, block)] = ds["values"].values
        curves[(slice(None), *spec.index, block)] = ds["curves"].values
    dims = (*exp.dims, "replicate")
    data_vars = {}
    for m, v in zip(TRIAL_METRICS, values):
        data_vars[m.id] = (dims, v, {"units": netcdf_unit(m), "long_name": m.label, "kind": m.kind})
    for (name, (_, title)), c in zip(CURVES.items(), curves):
        data_vars[name] = ((*dims, "month"), c, {"units": FRACTION_UNIT,
                                                  "long_name": f"Kaplan-Meier {title} per replicate"})
    pooled = mc_summary(values, axis=-1)
    for stat, arr in zip(MC_STATS, pooled):
        data_vars[f"pooled_{stat}"] = (("metric", *exp.dims), arr, {
            "long_name": f"{stat} of the mean over replicates ({CONFIDENCE:.0%} Monte Carlo CI, t)",
            "units": "see the metric's unit coordinate"} if stat != "n" else {
            "long_name": "replicates where the figure is defined", "units": "1"})
    coords = {name: c for a in exp.axes for name, c in a.coordinates().items()}
    coords |= {
        "replicate": np.arange(exp.replicates),
        "month": ("month", CURVE_MONTHS, {"units": "month", "long_name": "months from the first dose"}),
        "metric": [m.id for m in TRIAL_METRICS],
        "unit": ("metric", [netcdf_unit(m) for m in TRIAL_METRICS]),
        "label": ("metric", [m.label for m in TRIAL_METRICS]),
    }
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"InOSim experiment: {exp.name}",
        "experiment": exp.to_json(),
        "experiment_name": exp.name,
        "inosim_version": __version__,
        "seed": exp.seed,
        "replicates": exp.replicates,
        "patients_per_replicate": exp.patients,
        "reference": json.dumps({a.name: a.labels[i] for a, i in zip(exp.axes, exp.reference)}),
        "confidence": CONFIDENCE,
        "common_random_numbers": "replicate r holds the same virtual patients at every grid point",
        "estimate": "pooled_* = mean over replicates of the per-trial figure; replicates where it "
                    "is undefined (empty denominator, median not reached) are left out",
        "time_origin": "day 0 = first inotuzumab dose; months = days / 30.4375",
    })


# ----------------------------------------------------------------------------- running, resuming
def partial_dir(out: str | Path) -> Path:
    """Where a sweep writing ``out`` keeps its finished chunks until it completes."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def _save_chunk(path: Path, ds: xr.Dataset, fingerprint: str) -> None:
    """Checkpoint a finished chunk (its two arrays, exactly) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, values=ds["values"].values, curves=ds["curves"].values,
                 fingerprint=np.array(fingerprint))


def _chunk_file(spec: ChunkSpec, shape: tuple[int, ...]) -> str:
    """The checkpoint's name: what it holds, so a resume with other chunk sizes reuses only matches."""
    point = int(np.ravel_multi_index(spec.index, shape))
    return CHUNK_PATTERN.format(point=point, first=spec.first_replicate, count=spec.replicates)


def _finished_chunks(plan: list[ChunkSpec], shape: tuple[int, ...], fingerprint: str, folder: Path,
                     resume: bool) -> dict[int, xr.Dataset]:
    """Chunks an interrupted sweep of the same experiment finished; clear the folder otherwise."""
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    position = {_chunk_file(spec, shape): i for i, spec in enumerate(plan)}
    done = {}
    for path in sorted(folder.glob(CHUNK_GLOB)):
        with np.load(path) as saved:
            if str(saved["fingerprint"]) != fingerprint:
                raise ConfigError(f"{folder}: holds an unfinished sweep of a different experiment, "
                                  "size or program version; run without --resume to start over")
            if path.name in position:  # else: a block of other chunk sizes, computed again
                i = position[path.name]
                done[i] = chunk_dataset(plan[i], saved["values"], saved["curves"])
    return done


def run_sweep(exp: Experiment, out: str | Path | None = None, *, resume: bool = False,
              progress: Callable[[int, int], Any] | None = None, dask: str | None = None,
              replicates_per_chunk: int | None = None) -> xr.Dataset:
    """Run every chunk of an experiment and return (and optionally save) the results.

    Parameters
    ----------
    exp : Experiment
        From :func:`load_experiment`.
    out : str or Path, optional
        netCDF file to write atomically. Finished chunks are kept in
        ``out + '.partial/'`` until the file is complete, so an interrupted sweep
        can go on with ``resume=True``.
    resume : bool
        Reuse the finished chunks of an interrupted sweep of the same experiment
        (whatever scheduler ran them); the result is bit-identical to an
        uninterrupted run.
    progress : callable, optional
        Called as ``progress(done, total)`` with chunk counts, after each chunk
        (and once before the first).
    dask : str, optional
        Run the chunks on a dask.distributed cluster: ``local:N`` (a LocalCluster
        of N worker processes, started and stopped here) or a scheduler address
        (``tcp://host:8786``); see :func:`simulator.runtime.scaleout.scheduler`. Default:
        in this process. The results are bit-identical either way.
    replicates_per_chunk : int, optional
        Replicate block size (see :func:`plan_chunks`); the results do not depend on it.

    Returns
    -------
    xarray.Dataset
        See :func:`assemble`.
    """
    plan = plan_chunks(exp, replicates_per_chunk)
    fingerprint = exp.fingerprint()
    folder = partial_dir(out) if out is not None else None
    with scheduler(dask) as map_tasks:  # connects (or fails) before any file is touched
        results = _finished_chunks(plan, exp.shape, fingerprint, folder, resume) if folder is not None else {}
        if progress:
            progress(len(results), len(plan))
        todo = [i for i in range(len(plan)) if i not in results]
        for k, ds in map_tasks(run_chunk, [plan[i] for i in todo]):
            i = todo[k]
            results[i] = ds
            if folder is not None:
                _save_chunk(folder / _chunk_file(plan[i], exp.shape), ds, fingerprint)
            if progress:
                progress(len(results), len(plan))
    ds = assemble(exp, ((spec, results[i]) for i, spec in enumerate(plan)))
    if out is not None:
        write_netcdf(ds, out)
        shutil.rmtree(folder)
    return ds


def load_results(path: str | Path) -> xr.Dataset:
    """Read a results file of :func:`run_sweep`; raise :class:`ConfigError` if it is none."""
    try:
        if not is_netcdf(path):
            raise ConfigError(f"{path}: not a results file of 'inosim sweep' (a netCDF file, not YAML or text); "
                              "make one with `inosim sweep EXPERIMENT.yaml --out results.nc`")
        ds = read_netcdf(path)
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read results ({exc})") from None
    if "experiment" not in ds.attrs:
        raise ConfigError(f"{path}: not the results of 'inosim sweep' (no experiment in its attributes)")
    return ds


def sweep_axes(ds: xr.Dataset) -> list[str]:
    """The axis dimensions of a results Dataset, in order."""
    return list(json.loads(ds.attrs["reference"]))


def axis_labels(ds: xr.Dataset) -> dict[str, tuple[str, ...]]:
    """Each axis' values as labelled in the experiment (``none``, ``3.3``, ``0.8/0.5/0.5``), in order."""
    return {a["name"]: tuple(a["labels"]) for a in json.loads(ds.attrs["experiment"])["axes"]}
