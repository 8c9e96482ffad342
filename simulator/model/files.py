"""Scenario and parameter files: the strict YAML loader, ``extends``, parameter files,
and the one way a scenario is built from another (:func:`derive_scenario`).

Every YAML file the program reads (scenarios, parameters, experiments, sensitivity
and trial designs, published targets) goes through :func:`read_yaml`. Every error is
a :class:`~simulator.model.config.ConfigError` of one line naming the file and the
key path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from simulator.model.config import (
    ConfigError,
    Parameters,
    Scenario,
    deep_merge,
    default_config_dir,
    validate,
)
from simulator.model.extrapolation import warn_outside_calibration
from simulator.model.structure import ModelStructure

MAX_YAML_BYTES = 1_000_000
MAX_YAML_DEPTH = 50  # levels of nesting; a scenario needs about 5


# ----------------------------------------------------------------------------- YAML
class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML this program does not accept (aliases, deep nesting, duplicate keys)."""


class _StrictLoader(yaml.SafeLoader):
    """Safe loader that refuses anchors and aliases (no alias bombs), nesting deeper than
    :data:`MAX_YAML_DEPTH` (the composer recurses) and duplicate keys (naming their key path)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._paths: dict[int, str] = {}  # id(node) -> key path, set by the enclosing collection

    def compose_node(self, parent, index):  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(None, None, "YAML aliases are not allowed", event.start_mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _path(self, node, part: Any) -> str:
        parent = self._paths.get(id(node))
        return f"{parent}.{part}" if parent else str(part)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        self.flatten_mapping(node)
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            path = self._path(node, key)
            line = key_node.start_mark.line + 1
            try:
                if key in first_line:
                    raise _Refused(None, None, f"{path}: duplicate key (first on line {first_line[key]})",
                                   key_node.start_mark)
                first_line[key] = line
            except TypeError:  # an unhashable key: the base class says so
                break
            self._paths[id(value_node)] = path
        return super().construct_mapping(node, deep)

    def construct_sequence(self, node, deep=False):  # type: ignore[override]
        for i, item in enumerate(node.value):
            self._paths[id(item)] = self._path(node, i)
        return super().construct_sequence(node, deep)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping safely; raise :class:`ConfigError` naming the file.

    Refused in one line: an empty file, malformed YAML, anchors and aliases, nesting
    deeper than :data:`MAX_YAML_DEPTH` levels, and a key given twice in one mapping
    (named by its key path, e.g. ``regimen.max_cycles``). A file read before and not
    changed since (same inode, modification time and size) is not parsed again; the
    caller gets its own copy.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror})") from None
    return copy.deepcopy(_parsed_yaml(path, (stat.st_ino, stat.st_mtime_ns, stat.st_size)))


@lru_cache(maxsize=64)
def _parsed_yaml(path: Path, version: tuple[int, int, int]) -> dict:
    """:func:`read_yaml`'s parse of one version of a file (a command reads the shipped parameter
    files once per scenario it loads)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror})") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: file larger than {MAX_YAML_BYTES} bytes")
    try:
        doc = yaml.load(data, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        kind = "" if isinstance(exc, _Refused) else "malformed YAML: "
        raise ConfigError(f"{path}: {where}{kind}{problem}") from None
    if doc is None:
        raise ConfigError(f"{path}: the file is empty (expected a mapping of keys)")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(doc).__name__}")
    return doc


# ----------------------------------------------------------------------------- parameter files
def load_parameter_file(path: str | Path) -> tuple[Parameters, ModelStructure | None]:
    """Load and validate a parameter file: its values and the structure it was fitted under.

    A parameter file maps parameter names to values; an optional ``model:`` mapping
    names the :class:`~simulator.model.structure.ModelStructure` the values belong to.
    """
    doc = read_yaml(path)
    doc.pop("description", None)
    structure = doc.pop("model", None)
    return validate(Parameters, doc, path), (None if structure is None else
                                             validate(ModelStructure, structure, f"{path}: model"))


def load_parameters(path: str | Path) -> Parameters:
    """Load and validate a parameter file's values (see :func:`load_parameter_file`)."""
    return load_parameter_file(path)[0]


def structure_parameter_file(structure: ModelStructure) -> Path:
    """The shipped fitted parameter file of a model structure."""
    return default_config_dir() / "parameters" / "structures" / f"{structure.id}.yaml"


PARAMETER_SPEC_KEYS = ("file", "overrides")
DEFAULT_PARAMETERS_FILE = "parameters/default.yaml"
COMPARATORS_FILE = "parameters/comparators.yaml"
COMPARATOR_ENSEMBLE_FILE = "parameters/comparators_posterior.nc"  # the modules' posterior ensemble


def shipped_comparators() -> dict:
    """The shipped comparator parameters (``configs/parameters/comparators.yaml``) as a mapping."""
    doc = read_yaml(default_config_dir() / COMPARATORS_FILE)
    doc.pop("description", None)
    return doc


def is_parameter_spec(section: Any) -> bool:
    """Whether a ``parameters`` section is ``{file, overrides}`` rather than a mapping of values."""
    return isinstance(section, dict) and any(k in section for k in PARAMETER_SPEC_KEYS)


def resolve_parameters(spec: dict, source: str | Path, base_dir: Path, base: dict | None = None,
                       default_file: str = DEFAULT_PARAMETERS_FILE) -> tuple[dict, ModelStructure | None]:
    """The parameter values a ``{file: PATH, overrides: {name: value}}`` section names.

    ``file`` is resolved against ``base_dir``, then the shipped ``configs/``.
    Without ``file`` the overrides apply to ``base`` (e.g. the values of the
    scenario a strategy overrides) or, if none is given, to ``default_file`` (the
    shipped ``parameters/default.yaml``, or a model structure's fit).

    Returns
    -------
    (dict, ModelStructure or None)
        The values, and the structure the file was fitted under (None without a
        file or when the file names none).

    Raises
    ------
    ConfigError
        Naming ``source`` and ``parameters.<key>``.
    """
    unknown = set(spec) - set(PARAMETER_SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{source}: parameters.{sorted(unknown)[0]}: unknown key "
                          "(put values under parameters.overrides)")
    overrides = spec.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: parameters.overrides: expected a mapping")
    fitted_under = None
    if "file" in spec or base is None:
        file = spec.get("file", default_file)
        if not isinstance(file, str):
            raise ConfigError(f"{source}: parameters.file: expected a path, got {file!r}")
        candidates = [base_dir / file, default_config_dir() / file]
        path = next((p for p in candidates if p.is_file()), candidates[0])
        parameters, fitted_under = load_parameter_file(path)
        base = parameters.model_dump()
    unknown = set(overrides) - set(base)
    if unknown:
        raise ConfigError(f"{source}: parameters.overrides.{sorted(unknown)[0]}: unknown parameter")
    return {**base, **overrides}, fitted_under


# ----------------------------------------------------------------------------- scenarios
MAX_EXTENDS_DEPTH = 8


def _extend(doc: dict, source: str | Path, base_dir: Path, depth: int) -> dict:
    """Resolve ``extends: OTHER.yaml``: this file's keys merged onto the other's."""
    if "extends" not in doc:
        return dict(doc)
    if depth >= MAX_EXTENDS_DEPTH:
        raise ConfigError(f"{source}: extends: more than {MAX_EXTENDS_DEPTH} levels (a cycle?)")
    doc = dict(doc)
    target = doc.pop("extends")
    if not isinstance(target, str):
        raise ConfigError(f"{source}: extends: expected a file name, got {target!r}")
    path = base_dir / target
    base = _extend(read_yaml(path), path, path.parent, depth + 1)
    base.pop("name", None)
    base.pop("description", None)
    return deep_merge(base, doc)


def scenario_from_dict(doc: dict, source: str | Path, base_dir: Path | None = None) -> Scenario:
    """Validate a scenario mapping, resolving ``parameters.file`` against ``base_dir``.

    ``extends: OTHER.yaml`` (relative to ``base_dir``) takes every key of that
    scenario and merges this one's onto it. The ``parameters`` section is either a
    full mapping of values, or
    ``{file: PATH, overrides: {name: value}}`` (see :func:`resolve_parameters`); it
    defaults to the shipped ``parameters/default.yaml``. The ``comparators`` section (the
    other treatments' parameters) holds the values that differ from the shipped
    ``parameters/comparators.yaml``. Doses and parameters far
    outside what the model was calibrated on are warned about
    (:mod:`simulator.model.extrapolation`).
    """
    base_dir = base_dir or Path.cwd()
    doc = _extend(doc, source, base_dir, depth=0)
    asked = validate(ModelStructure, doc["model"], f"{source}: model") if "model" in doc else None
    default_file = (DEFAULT_PARAMETERS_FILE if asked is None
                    else str(structure_parameter_file(asked).relative_to(default_config_dir())))
    spec = doc.get("parameters", {"file": default_file})
    if is_parameter_spec(spec):
        doc["parameters"], fitted_under = resolve_parameters(spec, source, base_dir, default_file=default_file)
        if asked is not None and fitted_under is not None and asked != fitted_under:
            raise ConfigError(f"{source}: model: the parameter file holds parameters of structure "
                              f"{fitted_under.id}, not {asked.id} (leave parameters.file out to use that "
                              "structure's fit)")
        if asked is None and fitted_under is not None:
            doc["model"] = fitted_under.model_dump()
    comparators = doc.get("comparators", {})
    if not isinstance(comparators, dict):
        raise ConfigError(f"{source}: comparators: expected a mapping of parameter values, got {comparators!r}")
    doc["comparators"] = {**shipped_comparators(), **comparators}
    scenario = validate(Scenario, doc, source)
    warn_outside_calibration(scenario, source)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file.

    Parameters
    ----------
    path : str or Path
        Scenario file; a ``parameters.file`` inside it is resolved relative to the
        scenario's folder, then to the shipped ``configs/``.

    Returns
    -------
    Scenario
        The validated, fully resolved scenario (parameter values included).

    Raises
    ------
    ConfigError
        One line naming the file and the key path.
    """
    path = Path(path)
    return scenario_from_dict(read_yaml(path), path, path.parent)


def derive_scenario(base: Scenario, overrides: Mapping[str, Any], source: str | Path, *,
                    warn: bool = True) -> Scenario:
    """``base`` with ``overrides`` merged in, validated: the one way a scenario is built from another.

    Trial arms, sensitivity strategies, sweep grid points, the dose contrast's capped
    strategy and the calibration's settings are all built here.

    Parameters
    ----------
    base : Scenario
        The scenario the overrides change.
    overrides : mapping
        Keys to change, nested as in a scenario file (``{"regimen": {"max_cycles": 2}}``);
        merged by :func:`~simulator.model.config.deep_merge` (mappings key by key, any
        other value replaced).
    source : str or Path
        Where the overrides were written, e.g. ``trial.yaml: trial.arms.1.overrides``;
        it begins every error and warning.
    warn : bool
        Warn (:class:`~simulator.model.extrapolation.OutsideCalibrationWarning`, one
        line each) of every dosing quantity or parameter outside the calibration that
        the overrides bring; those ``base`` already has are its own file's to warn
        about.

    Returns
    -------
    Scenario

    Raises
    ------
    ConfigError
        One line: ``source: key.path: what is wrong``.
    """
    scenario = validate(Scenario, deep_merge(base.model_dump(), dict(overrides)), source)
    if warn:
        warn_outside_calibration(scenario, source, base=base)
    return scenario


def default_scenario_path() -> Path:
    """The shipped default scenario (the pooled analysis)."""
    return default_config_dir() / "pooled_analysis.yaml"
