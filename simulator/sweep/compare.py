"""Comparing strategies: paired differences, and the observational vs causal dose contrast.

Every grid point of a sweep holds the same virtual patients in replicate ``r``, so
a difference between two grid points is computed trial by trial (paired); its
Monte Carlo interval comes from the spread of the paired differences. How much
variance that pairing (common random numbers, CRN) saves is reported as
``1 - Var(paired differences) / (Var(A) + Var(B))``: the second term is the
variance the difference would have with independent patients per strategy.

:func:`dose_contrast` sets the pooled analysis' observational comparison (label
dosing, patients grouped by their realised cumulative dose) beside the causal one
(the same patients, everyone capped at the cutoff)::

    observational = Y(<= cutoff) - Y(> cutoff)                       under label dosing
    dose          = Y(> cutoff group, capped) - Y(> cutoff group, label)  the cap's effect on them
    selection     = observational - dose = Y(<= cutoff) - Y(> cutoff group, capped)

A cap at the cutoff changes nothing for a patient whose label-dosing course stayed at
or below it (the same draws give the same course), so ``dose`` is the whole causal
effect of the cap, concentrated on the > cutoff group; ``selection`` is the part of
the published difference that remains when both groups get at most the cutoff: who
responds, who is transplant-eligible, who lives long enough to receive more cycles.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from simulator.analysis.outcomes import DEFAULT_CUTOFF, group_masks, patient_columns
from simulator.analysis.trial_metrics import (
    MC_STATS,
    TRIAL_METRICS,
    mc_summary,
    netcdf_unit,
    trial_figures,
)
from simulator.model.config import Scenario
from simulator.model.files import derive_scenario
from simulator.sweep.experiment import axis_labels, simulate_replicates, sweep_axes

BY_ID = {m.id: m for m in TRIAL_METRICS}
# Columns of the dose contrast: groups (label dosing unless "capped"), then contrasts.
GROUP_COLUMNS = ("le", "gt", "gt_capped", "all", "all_capped")
CONTRAST_COLUMNS = ("observational", "dose", "selection", "everyone_capped")
HIGHER, LOWER = 1, -1
# The metrics a summary leads with, and which direction is better for the patient.
HEADLINE = {"cr_cri": HIGHER, "hsct": HIGHER, "post_hsct_nrm": LOWER, "sos_any": LOWER,
            "os_median_months": HIGHER, "os_24_months": HIGHER, "os_rmst_24_months": HIGHER}
HEADLINE_METRICS = tuple(HEADLINE)
NO_LIMIT_WORDS = ("none", "null", "inf")  # ways to name a null (inf) value of a numeric axis


@dataclass(frozen=True)
class IntervalKind:
    """One kind of uncertainty interval of a difference: its variables and what it covers.

    Tables print one interval column per kind, so another kind (parameter,
    structural) is one more entry with its own variables in the differences Dataset.
    """

    name: str
    title: str
    lower: str  # variable names in the Dataset of :func:`paired_differences`
    upper: str
    covers: str  # one plain sentence


MONTE_CARLO = IntervalKind(
    "monte_carlo", "Monte Carlo", "lower", "upper",
    "{confidence:.0%} Monte Carlo CIs: they cover only the error of simulating a finite number of patients "
    "({replicates} trials of {patients} patients per grid point), not uncertainty in the model's parameters "
    "or structure.")


def _position(ds: xr.Dataset, dim: str, value: str | float) -> int:
    """Index of ``value`` on axis ``dim``: its label, or a number equal to its value (or total).

    Raises
    ------
    KeyError
        Naming the axis and listing its values.
    """
    text = str(value)
    labels = axis_labels(ds)[dim]
    if text in labels:
        return labels.index(text)
    numeric = [c for c in (dim, f"{dim}_total") if c in ds.coords and np.issubdtype(ds[c].dtype, np.number)]
    try:
        number = math.inf if text.strip().lower() in NO_LIMIT_WORDS else float(text)
    except ValueError:
        number = None
    for coord in numeric if number is not None else ():
        hits = np.flatnonzero(np.isclose(ds[coord].values.astype(float), number, rtol=0, atol=1e-9)
                              | (ds[coord].values == number))
        if len(hits) == 1:
            return int(hits[0])
    raise KeyError(f"{dim}: no value '{text}' (values: {', '.join(labels)})")


def resolve_point(ds: xr.Dataset, assignments: dict[str, str | float]) -> dict[str, int]:
    """Positions of ``{axis: value}`` on the results' axes (values as labels or numbers, e.g.
    ``{"cumulative_cap": 3.3}``, ``{"cumulative_cap": "none"}`` or ``np.inf``).

    Raises
    ------
    KeyError
        Naming the unknown axis or value.
    """
    axes = sweep_axes(ds)
    unknown = sorted(set(assignments) - set(axes))
    if unknown:
        raise KeyError(f"no axis '{unknown[0]}' (axes: {', '.join(axes)})")
    return {dim: _position(ds, dim, text) for dim, text in assignments.items()}


def reference_index(ds: xr.Dataset, reference: dict[str, str | float] | None = None) -> dict[str, int]:
    """Position of the reference grid point: the results' own, with ``dim: value`` changes.

    Raises
    ------
    KeyError
        Naming the unknown dimension or value.
    """
    return resolve_point(ds, json.loads(ds.attrs["reference"]) | (reference or {}))


def point_label(ds: xr.Dataset, index: dict[str, int]) -> str:
    """``dim=label,...`` of a grid point: what ``--at`` and ``--reference`` accept."""
    labels = axis_labels(ds)
    return ",".join(f"{d}={labels[d][i]}" for d, i in index.items())


def _stack_metrics(ds: xr.Dataset) -> xr.DataArray:
    """The per-replicate metric variables as one array over (metric, axes..., replicate)."""
    ids = [str(m) for m in ds.metric.values]
    return xr.concat([ds[m] for m in ids], dim="metric").assign_coords(metric=ids)


def _nanvar(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanvar(x, axis=-1, ddof=1)


def paired_differences(ds: xr.Dataset, reference: dict[str, str | float] | None = None) -> xr.Dataset:
    """Paired differences of every grid point from the reference, for every metric.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of :func:`simulator.sweep.experiment.run_sweep`.
    reference : dict, optional
        ``{dim: value}`` changes to the results' reference grid point (labels or numbers).

    Returns
    -------
    xarray.Dataset
        Over (metric, axes...): ``estimate``, ``lower``, ``upper`` (95% Monte Carlo
        CI, see :data:`MONTE_CARLO`) and ``n`` of the mean paired difference (grid
        point minus reference), in the metric's unit; ``reference_value`` and
        ``value`` (means over the same replicates); ``crn_variance_saving``,
        1 - Var(paired) / (Var + Var), NaN where the two grid points give identical
        trials. ``attrs['reference']``: the reference as ``{dim: label}`` (JSON).
    """
    values = _stack_metrics(ds)
    index = reference_index(ds, reference)
    ref = values.isel(index)
    a, b = values.values, xr.broadcast(ref, values)[0].transpose(*values.dims).values
    valid = ~np.isnan(a) & ~np.isnan(b)
    a, b = np.where(valid, a, np.nan), np.where(valid, b, np.nan)
    diff = a - b
    est, lo, hi, n = mc_summary(diff)
    _, reference_lower, reference_upper, _ = mc_summary(b)
    var_paired, var_independent = _nanvar(diff), _nanvar(a) + _nanvar(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        saving = np.where(var_paired > 0, 1.0 - var_paired / var_independent, np.nan)
    dims = values.dims[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, reference_value = np.nanmean(a, axis=-1), np.nanmean(b, axis=-1)
    labels = axis_labels(ds)
    return xr.Dataset(
        {"estimate": (dims, est), "lower": (dims, lo), "upper": (dims, hi), "n": (dims, n),
         "value": (dims, value), "reference_value": (dims, reference_value),
         "reference_lower": (dims, reference_lower), "reference_upper": (dims, reference_upper),
         "crn_variance_saving": (dims, saving)},
        coords={**{name: c for name, c in ds.coords.items() if set(c.dims) <= set(dims)},
                "unit": ds["unit"], "label": ds["label"]},
        attrs={"reference": json.dumps({d: labels[d][i] for d, i in index.items()}),
               "experiment": ds.attrs["experiment"], "experiment_name": ds.attrs["experiment_name"],
               "replicates": ds.attrs["replicates"], "patients_per_replicate": ds.attrs["patients_per_replicate"],
               "confidence": ds.attrs["confidence"]})


# ----------------------------------------------------------------------------- the key table
def capped(scenario: Scenario, cutoff: float) -> Scenario:
    """The scenario with every patient's cumulative dose capped at ``cutoff`` mg/m2."""
    return derive_scenario(scenario, {"regimen": {"cumulative_cap": cutoff}}, "dose contrast")


def dose_contrast(reference: Scenario, cutoff: float = DEFAULT_CUTOFF, *, seed: int, patients: int,
                  replicates: int) -> xr.Dataset:
    """The observational and the causal contrast at a cumulative-dose cutoff, per replicate.

    Parameters
    ----------
    reference : Scenario
        The strategy the publication observed (label dosing).
    cutoff : float
        Cumulative-dose cutoff, mg/m2: groups by realised dose, and the cap.
    seed, patients, replicates : int
        As in a sweep: replicate ``r`` holds the same virtual patients as there.

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``lower``, ``upper`` (Monte Carlo CI) and ``n`` over (metric,
        column); columns :data:`GROUP_COLUMNS` (``le``/``gt``: realised dose <= / >
        cutoff under label dosing; ``gt_capped``: the same > cutoff patients when
        capped; ``all``/``all_capped``: everyone) and :data:`CONTRAST_COLUMNS` (see
        the module docstring; ``everyone_capped`` = all_capped - all). Rates are
        fractions. ``share_gt`` (estimate, lower, upper): patients > cutoff.
    """
    label_records = simulate_replicates(reference, seed, patients, 0, replicates)
    capped_records = simulate_replicates(capped(reference, cutoff), seed, patients, 0, replicates)
    masks = group_masks(label_records, cutoff)
    d_label, d_capped = patient_columns(label_records), patient_columns(capped_records)

    def figures(d: dict, mask: np.ndarray) -> np.ndarray:
        metrics, _ = trial_figures(d, replicates, patients, mask, curves=False)
        return np.stack([metrics[m.id] for m in TRIAL_METRICS])

    le, gt = figures(d_label, masks["le"]), figures(d_label, masks["gt"])
    gt_capped = figures(d_capped, masks["gt"])
    everyone, everyone_capped = figures(d_label, masks["all"]), figures(d_capped, masks["all"])
    # the three contrasts over the same replicates, so that observational = dose + selection
    paired = ~(np.isnan(le) | np.isnan(gt) | np.isnan(gt_capped))
    le_p, gt_p, gt_capped_p = (np.where(paired, x, np.nan) for x in (le, gt, gt_capped))
    columns = {"le": le, "gt": gt, "gt_capped": gt_capped, "all": everyone, "all_capped": everyone_capped,
               "observational": le_p - gt_p, "dose": gt_capped_p - gt_p, "selection": le_p - gt_capped_p,
               "everyone_capped": everyone_capped - everyone}
    order = (*GROUP_COLUMNS, *CONTRAST_COLUMNS)
    stats = mc_summary(np.stack([columns[c] for c in order], axis=1))
    share = mc_summary(masks["gt"].reshape(replicates, patients).mean(axis=1))
    dims = ("metric", "column")
    return xr.Dataset(
        {name: (dims, s) for name, s in zip(MC_STATS, stats)},
        coords={"metric": [m.id for m in TRIAL_METRICS], "column": list(order),
                "unit": ("metric", [netcdf_unit(m) for m in TRIAL_METRICS]),
                "label": ("metric", [m.label for m in TRIAL_METRICS])},
        attrs={"cutoff_mg_m2": cutoff, "reference_scenario": reference.name, "seed": seed,
               "patients_per_replicate": patients, "replicates": replicates,
               "share_gt": [float(x) for x in share[:3]]})
