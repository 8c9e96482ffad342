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
import warnings

import numpy as np
import xarray as xr

from simulator.analysis.outcomes import (
    DEFAULT_CUTOFF,
    every_patient,
    group_masks,
    patient_columns,
)
from simulator.analysis.trial_metrics import (
    FRACTION_UNIT,
    MC_STATS,
    TRIAL_METRICS,
    mc_summary,
    netcdf_unit,
    trial_figures,
)
from simulator.model.config import Scenario, deep_merge
from simulator.sweep.experiment import simulate_replicates, sweep_axes

BY_ID = {m.id: m for m in TRIAL_METRICS}
# Columns of the dose contrast: groups (label dosing unless "capped"), then contrasts.
GROUP_COLUMNS = ("le", "gt", "gt_capped", "all", "all_capped")
CONTRAST_COLUMNS = ("observational", "dose", "selection", "everyone_capped")
HEADLINE_METRICS = ("cr_cri", "hsct", "post_hsct_nrm", "sos_any", "os_median_months", "os_24_months",
                    "os_rmst_24_months")
LABEL_WIDTH = 46


def reference_index(ds: xr.Dataset, reference: dict[str, str] | None = None) -> dict[str, int]:
    """Position of the reference grid point: the results' own, with ``dim: label`` changes.

    Raises
    ------
    KeyError
        Naming the unknown dimension or label.
    """
    axes = sweep_axes(ds)
    unknown = sorted(set(reference or {}) - set(axes))
    if unknown:
        raise KeyError(f"no axis '{unknown[0]}' (axes: {', '.join(axes)})")
    out = {}
    for dim, label in (json.loads(ds.attrs["reference"]) | (reference or {})).items():
        values = [str(v) for v in ds[dim].values]
        if label not in values:
            raise KeyError(f"{dim}: no value '{label}' (values: {', '.join(values)})")
        out[dim] = values.index(label)
    return out


def _stack_metrics(ds: xr.Dataset) -> xr.DataArray:
    """The per-replicate metric variables as one array over (metric, axes..., replicate)."""
    ids = [str(m) for m in ds.metric.values]
    return xr.concat([ds[m] for m in ids], dim="metric").assign_coords(metric=ids)


def _nanvar(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanvar(x, axis=-1, ddof=1)


def paired_differences(ds: xr.Dataset, reference: dict[str, str] | None = None) -> xr.Dataset:
    """Paired differences of every grid point from the reference, for every metric.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of :func:`simulator.sweep.experiment.run_sweep`.
    reference : dict, optional
        ``{dim: label}`` changes to the results' reference grid point.

    Returns
    -------
    xarray.Dataset
        Over (metric, axes...): ``estimate``, ``lower``, ``upper`` (95% Monte Carlo
        CI) and ``n`` of the mean paired difference (grid point minus reference), in
        the metric's unit; ``reference_value`` and ``value`` (means over the same
        replicates); ``crn_variance_saving``, 1 - Var(paired) / (Var + Var), NaN
        where the two grid points give identical trials.
    """
    values = _stack_metrics(ds)
    ref = values.isel(reference_index(ds, reference))
    a, b = values.values, xr.broadcast(ref, values)[0].transpose(*values.dims).values
    valid = ~np.isnan(a) & ~np.isnan(b)
    a, b = np.where(valid, a, np.nan), np.where(valid, b, np.nan)
    diff = a - b
    est, lo, hi, n = mc_summary(diff)
    var_paired, var_independent = _nanvar(diff), _nanvar(a) + _nanvar(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        saving = np.where(var_paired > 0, 1.0 - var_paired / var_independent, np.nan)
    dims = values.dims[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, reference_value = np.nanmean(a, axis=-1), np.nanmean(b, axis=-1)
    return xr.Dataset(
        {"estimate": (dims, est), "lower": (dims, lo), "upper": (dims, hi), "n": (dims, n),
         "value": (dims, value), "reference_value": (dims, reference_value),
         "crn_variance_saving": (dims, saving)},
        coords={**{d: ds[d] for d in dims}, "unit": ds["unit"], "label": ds["label"]},
        attrs={"reference": json.dumps({d: str(ds[d].values[i])
                                        for d, i in reference_index(ds, reference).items()}),
               "replicates": ds.attrs["replicates"], "patients_per_replicate": ds.attrs["patients_per_replicate"],
               "confidence": ds.attrs["confidence"]})


def crn_saving_summary(diffs: xr.Dataset) -> str:
    """One sentence: the median variance saving of CRN over metrics and grid points."""
    saving = diffs["crn_variance_saving"]
    overall = float(saving.median(skipna=True))
    per_metric = ", ".join(f"{m} {100 * float(saving.sel(metric=m).median(skipna=True)):.0f}%"
                           for m in HEADLINE_METRICS if m in saving.metric)
    return (f"Common random numbers: paired differences have {100 * overall:.0f}% less variance than "
            f"with independent patients per strategy (median over metrics and grid points; "
            f"{per_metric}); i.e. as precise as {1 / (1 - overall):.1f}x as many independent replicates.")


def format_pooled(ds: xr.Dataset, metrics: tuple[str, ...] = HEADLINE_METRICS) -> str:
    """Pooled estimates (mean over replicates +- half the 95% CI) per grid point, as text."""
    dims = sweep_axes(ds)
    units = {m: str(ds.unit.sel(metric=m).values) for m in metrics}
    heads = [f"{m} ({_unit_label(units[m])})" for m in metrics]
    width = max(len(h) for h in heads) + 2
    indices = list(np.ndindex(*(ds.sizes[d] for d in dims)))
    points = [", ".join(f"{d}={ds[d].values[i]}" for d, i in zip(dims, index)) for index in indices]
    point_width = max(len(p) for p in points) + 2
    lines = [f"{'grid point':<{point_width}}" + "".join(f"{h:>{width}}" for h in heads)]
    for index, point in zip(indices, points):
        cell = ds.isel(dict(zip(dims, index)))
        row = []
        for m in metrics:
            r = cell.sel(metric=m)
            half = (float(r.pooled_upper) - float(r.pooled_lower)) / 2
            row.append(f"{_fmt(float(r.pooled_estimate), units[m])} +-{_fmt(half, units[m])}")
        lines.append(f"{point:<{point_width}}" + "".join(f"{c:>{width}}" for c in row))
    return "\n".join(lines)


def _fmt(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "NA"
    return f"{100 * value:.1f}" if unit == FRACTION_UNIT else f"{value:.2f}"


def _fmt_ci(est: float, lo: float, hi: float, unit: str) -> str:
    return f"{_fmt(est, unit)} ({_fmt(lo, unit)}, {_fmt(hi, unit)})"


def _unit_label(unit: str) -> str:
    return "%" if unit == FRACTION_UNIT else unit


def format_paired(diffs: xr.Dataset, metrics: tuple[str, ...] | None = None) -> str:
    """The paired differences as text: a block per non-reference grid point."""
    ids = [m for m in map(str, diffs.metric.values) if metrics is None or m in metrics]
    dims = [d for d in diffs["estimate"].dims if d != "metric"]
    ref = json.loads(diffs.attrs["reference"])
    lines = [f"Paired differences, grid point minus reference ({', '.join(f'{d}={v}' for d, v in ref.items())}); "
             f"{diffs.attrs['confidence']:.0%} Monte Carlo CIs over {diffs.attrs['replicates']} replicates "
             f"of {diffs.attrs['patients_per_replicate']} patients; rates in %, differences in percentage points."]
    for index in np.ndindex(*(diffs.sizes[d] for d in dims)):
        point = {d: str(diffs[d].values[i]) for d, i in zip(dims, index)}
        if point == ref:
            continue
        lines += ["", ", ".join(f"{d}={v}" for d, v in point.items()),
                  f"  {'metric':<{LABEL_WIDTH}} {'unit':<6} {'reference':>9} {'this':>9}  "
                  f"{'difference (95% CI)':<26} {'CRN saving':>10}"]
        cell = diffs.isel(dict(zip(dims, index)))
        for m in ids:
            r = cell.sel(metric=m)
            unit = str(r.unit.values)
            saving = float(r.crn_variance_saving)
            lines.append(
                f"  {str(r.label.values):<{LABEL_WIDTH}} {_unit_label(unit):<6} "
                f"{_fmt(float(r.reference_value), unit):>9} {_fmt(float(r.value), unit):>9}  "
                f"{_fmt_ci(float(r.estimate), float(r.lower), float(r.upper), unit):<26} "
                f"{'' if saving != saving else f'{100 * saving:.0f}%':>10}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the key table
def capped(scenario: Scenario, cutoff: float) -> Scenario:
    """The scenario with every patient's cumulative dose capped at ``cutoff`` mg/m2."""
    return Scenario.model_validate(deep_merge(scenario.model_dump(), {"regimen": {"cumulative_cap": cutoff}}))


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


def format_dose_contrast(c: xr.Dataset) -> str:
    """The key table: observational (grouped by realised dose) beside causal (capped) contrasts."""
    cut = f"{c.attrs['cutoff_mg_m2']:g}"
    share = c.attrs["share_gt"]
    heads = (f"<={cut}", f">{cut}", f"observed <={cut} - >{cut}", f"dose: >{cut} capped - label",
             "selection (obs. - dose)", "dose share", "everyone capped - label")
    lines = [
        f"Observational vs causal contrast at {cut} mg/m2 (reference: {c.attrs['reference_scenario']}; "
        f"{c.attrs['replicates']} replicates x {c.attrs['patients_per_replicate']} patients; the same "
        "patients under both strategies)",
        f"Patients above {cut} mg/m2 under the reference: {_fmt_ci(*share, FRACTION_UNIT)} %. "
        "Groups by realised cumulative dose, as the pooled analysis did. Columns:",
        f"  observed: the published contrast;  dose: what capping the >{cut} group at {cut} changes for "
        "those same patients (causal);",
        "  selection: the rest of the observed contrast (who responds, is transplant-eligible, lives to get "
        "more cycles);  dose share = dose / observed;",
        "  everyone capped - label: the strategy's effect on the whole population.  Rates in %, differences "
        "in percentage points; 95% Monte Carlo CIs.",
        "",
        f"{'metric':<{LABEL_WIDTH}} {'unit':<6} {heads[0]:>7} {heads[1]:>7}  {heads[2]:<24} {heads[3]:<24} "
        f"{heads[4]:<24} {heads[5]:>10}  {heads[6]:<24}",
    ]
    for m in map(str, c.metric.values):
        r = c.sel(metric=m)
        unit = str(r.unit.values)
        cell = {col: _fmt_ci(float(r.estimate.sel(column=col)), float(r.lower.sel(column=col)),
                             float(r.upper.sel(column=col)), unit) for col in CONTRAST_COLUMNS}
        obs, dose = r.sel(column="observational"), r.sel(column="dose")
        clear = float(obs.lower) > 0 or float(obs.upper) < 0  # the observed contrast is not ~0
        share_txt = f"{100 * float(dose.estimate) / float(obs.estimate):.0f}%" if clear else "-"
        label = str(r.label.values) + ("" if BY_ID[m].among is every_patient else " *")
        lines.append(
            f"{label:<{LABEL_WIDTH}} {_unit_label(unit):<6} "
            f"{_fmt(float(r.estimate.sel(column='le')), unit):>7} {_fmt(float(r.estimate.sel(column='gt')), unit):>7}  "
            f"{cell['observational']:<24} {cell['dose']:<24} {cell['selection']:<24} {share_txt:>10}  "
            f"{cell['everyone_capped']:<24}")
    lines += ["", "* The denominator is chosen after baseline (responders, transplanted patients, deaths): "
              f"the dose column compares the same >{cut} group, not the same patients within it; the rows "
              "over all patients (e.g. 'died of NRM after HSCT') are the causal per-patient contrasts."]
    return "\n".join(lines)
