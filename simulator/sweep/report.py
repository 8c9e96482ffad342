"""Comparison reports as text, CSV or JSON: what ``inosim compare`` and ``inosim sweep`` print.

The text report leads with a summary a reader takes in at once: one sentence on what
the intervals cover, the best and worst grid points per headline metric against the
reference, and the observational-vs-causal tables. Full paired-difference tables
follow only for the grid points asked for (``at``) or all of them (``show_all``).
Names and units come from :mod:`simulator.analysis.labels`; rates are shown in %,
their differences in percentage points (pp). Every text fits :data:`simulator.analysis.text.WIDTH`
columns; what does not (every metric at every grid point) is in CSV and JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from simulator.analysis.labels import (
    NO_LIMIT,
    PERCENT,
    axis_label,
    display_unit,
    format_interval,
    format_value,
    scale,
    strategy_title,
)
from simulator.analysis.outcomes import every_patient
from simulator.analysis.text import paragraph, table
from simulator.sweep.compare import (
    BY_ID,
    CONTRAST_COLUMNS,
    HEADLINE,
    HEADLINE_METRICS,
    MONTE_CARLO,
    IntervalKind,
    point_label,
)
from simulator.sweep.experiment import axis_labels, sweep_axes

FORMATS = ("table", "csv", "json")
DEFAULT_TOP = 1  # the summary fits a screen; --top N shows more
INDENT = "  "
# Column titles of the grid table of ``inosim sweep`` (its legend spells each out).
COLUMN_TITLES = {"cr_cri": "CR/CRi", "hsct": "HSCT", "post_hsct_nrm": "NRM", "sos_any": "SOS/VOD",
                 "os_median_months": "med. OS", "os_24_months": "OS 24m", "os_rmst_24_months": "RMST 24m"}


@dataclass(frozen=True)
class CompareView:
    """What a comparison report shows: metrics, grid points, how many per end, the format."""

    metrics: tuple[str, ...] = HEADLINE_METRICS  # the summary and the dose contrast
    full_metrics: tuple[str, ...] | None = None  # full tables, CSV and JSON; None: ``metrics``
    at: dict[str, int] | None = None  # select grid points: {axis: position}; None: no selection
    top: int = DEFAULT_TOP
    show_all: bool = False  # full paired-difference tables for every grid point
    format: str = "table"
    intervals: tuple[IntervalKind, ...] = (MONTE_CARLO,)

    @property
    def every_metric(self) -> tuple[str, ...]:
        """The metrics of the full tables, CSV and JSON."""
        return self.full_metrics or self.metrics


# ----------------------------------------------------------------------------- helpers
def _signed(value: float, unit: str) -> str:
    text = format_value(value, unit)
    return text if text == "NA" or text.startswith("-") else f"+{text}"


def _diff_ci(r: xr.Dataset, kind: IntervalKind, unit: str) -> str:
    return (f"{_signed(float(r.estimate), unit)} ({_signed(float(r[kind.lower]), unit)}, "
            f"{_signed(float(r[kind.upper]), unit)})")


def _reference_text(diffs: xr.Dataset) -> str:
    """The reference in words: ``Cumulative dose cap none, Maximum cycles 6, ...``."""
    exp = {a["name"]: a["key"] for a in json.loads(diffs.attrs["experiment"])["axes"]}
    parts = []
    for dim, value in json.loads(diffs.attrs["reference"]).items():
        label = axis_label(exp[dim])
        parts.append(strategy_title(value) if exp[dim] == "strategy" else
                     f"{label.name} {value}" + (f" {label.unit}" if label.unit and value != NO_LIMIT else ""))
    return ", ".join(parts)


def _points(diffs: xr.Dataset, at: dict[str, int] | None) -> list[dict[str, int]]:
    """Every grid point (or those matching ``at``) except the reference, in grid order."""
    dims = sweep_axes(diffs)
    ref = json.loads(diffs.attrs["reference"])
    labels = axis_labels(diffs)
    out = []
    for index in np.ndindex(*(diffs.sizes[d] for d in dims)):
        point = dict(zip(dims, map(int, index)))
        if {d: labels[d][i] for d, i in point.items()} == ref:
            continue
        if at and any(point[d] != i for d, i in at.items()):
            continue
        out.append(point)
    return out


def intervals_sentence(diffs: xr.Dataset, intervals: tuple[IntervalKind, ...] = (MONTE_CARLO,)) -> str:
    """One plain sentence per interval kind: what it covers."""
    return " ".join(k.covers.format(confidence=diffs.attrs["confidence"], replicates=diffs.attrs["replicates"],
                                    patients=diffs.attrs["patients_per_replicate"]) for k in intervals)


def crn_saving_summary(diffs: xr.Dataset, metrics: tuple[str, ...] = HEADLINE_METRICS) -> str:
    """One sentence, wrapped: the median variance saving of CRN over metrics and grid points, and per
    metric of ``metrics`` (none: the saving of each is in the full tables).

    Metrics whose paired differences have no variance (identical trials) are left
    out; if none has any, the sentence says so.
    """
    saving = diffs["crn_variance_saving"]
    if not np.isfinite(saving.values).any():
        return ("Common random numbers: the grid points give identical trials for every metric "
                "(no variance to save).")
    overall = float(saving.median(skipna=True))
    per_metric = [(m, float(saving.sel(metric=m).median(skipna=True))) for m in metrics]
    listed = ", ".join(f"{BY_ID[m].label} {100 * v:.0f}%" for m, v in per_metric if v == v)
    return paragraph(f"Common random numbers: paired differences have {100 * overall:.0f}% less variance than "
                     f"with independent patients per strategy (median over metrics and grid points"
                     + (f"; {listed}" if listed else "") + f"); i.e. as precise as {1 / (1 - overall):.1f}x as "
                     "many independent replicates.")


# ----------------------------------------------------------------------------- summary
def _units(unit: str) -> str:
    """The unit column of a table holding values and their differences: ``%/pp``, or ``months``."""
    value, difference = display_unit(unit), display_unit(unit, difference=True)
    return value if value == difference else f"{value}/{difference}"


def format_summary(diffs: xr.Dataset, view: CompareView) -> str:
    """Best and worst grid points per metric against the reference, with their intervals.

    Where a metric has a better direction (:data:`simulator.sweep.compare.HEADLINE`)
    the ranking runs from best to worst for the patient, else from highest to lowest.
    With at most ``2 * top`` grid points every one is listed.
    """
    points = _points(diffs, view.at)
    kind = view.intervals[0]
    lines = [paragraph(f"Difference from the reference ({_reference_text(diffs)}), best and worst of "
                       f"{len(points)} grid points per metric; {kind.title} CI; grid points with the same "
                       "difference are listed once:")]
    for m in view.metrics:
        cell = diffs.sel(metric=m)
        unit = str(cell.unit.values)
        direction = HEADLINE.get(m, 1)
        stats = np.array([[float(cell[v].isel(p)) for v in ("estimate", kind.lower, kind.upper)] for p in points])
        order = np.argsort(-np.nan_to_num(direction * stats[:, 0], nan=-np.inf), kind="stable")
        groups: list[list[int]] = []  # grid points with identical differences, best first
        for k in order:
            same = groups and np.array_equal(stats[groups[-1][0]], stats[k], equal_nan=True)
            groups[-1:] = [groups[-1] + [k]] if same else [*groups[-1:], [k]]
        shown = groups if len(groups) <= 2 * view.top else [*groups[:view.top], None, *groups[-view.top:]]
        ends = ("best", "worst") if m in HEADLINE else ("highest", "lowest")
        ref = format_interval(*(float(cell[v].isel(points[0])) for v in
                                ("reference_value", "reference_lower", "reference_upper")), unit) if points else "NA"
        lines += ["", paragraph(f"{BY_ID[m].label} ({display_unit(unit)}; reference {ref}); difference in "
                                f"{display_unit(unit, difference=True)}:")]
        rows = []
        for rank, group in enumerate(shown):
            if group is None:
                rows.append(("...", "", ""))
                continue
            tag = ends[0] if rank == 0 else ends[1] if rank == len(shown) - 1 else ""
            more = f" (+{len(group) - 1} more)" if len(group) > 1 else ""
            rows.append((tag, _diff_ci(cell.isel(points[group[0]]), kind, unit),
                         point_label(diffs, points[group[0]]) + more))
        lines += table(rows, "><<", indent=INDENT)
    return "\n".join(lines)


def format_paired(diffs: xr.Dataset, view: CompareView) -> str:
    """Full paired-difference tables of ``view.every_metric``: a block per grid point (those of
    ``view.at``, or all).

    The difference carries the first interval kind of ``view.intervals``; every
    further kind adds a column.
    """
    ref = json.loads(diffs.attrs["reference"])
    first, *more = view.intervals
    lines = [paragraph(f"Paired differences, grid point minus reference ({','.join(f'{d}={v}' for d, v in ref.items())}); "
                       "rates in %, differences in percentage points (pp).")]
    head = [("metric", "unit", "reference", "this", "difference", *(f"{k.title} CI" for k in more), "CRN"),
            ("", "", "", "", f"({first.title} CI)", *("" for _ in more), "saving")]
    for point in _points(diffs, view.at):
        cell = diffs.isel(point)
        rows = []
        for m in view.every_metric:
            r = cell.sel(metric=m)
            unit = str(r.unit.values)
            saving = float(r.crn_variance_saving)
            rows.append((BY_ID[m].label, _units(unit), format_value(float(r.reference_value), unit),
                         format_value(float(r.value), unit), _diff_ci(r, first, unit),
                         *(f"({_signed(float(r[k.lower]), unit)}, {_signed(float(r[k.upper]), unit)})" for k in more),
                         "" if saving != saving else f"{100 * saving:.0f}%"))
        lines += ["", point_label(diffs, point), *table(head + rows, "<<>><" + "<" * len(more) + ">", indent=INDENT)]
    return "\n".join(lines)


def format_pooled(ds: xr.Dataset, metrics: tuple[str, ...] = HEADLINE_METRICS) -> str:
    """The grid at a glance: each grid point's mean over replicates of ``metrics`` (titled by
    :data:`COLUMN_TITLES`), then a legend with the largest half-width of their 95% Monte Carlo CIs.

    Every metric with its CI is :func:`pooled_frame`.
    """
    dims = sweep_axes(ds)
    labels = axis_labels(ds)
    units = {m: str(ds.unit.sel(metric=m).values) for m in metrics}
    titles = {m: COLUMN_TITLES.get(m, m) for m in metrics}
    rows = [(*dims, *titles.values()), (*("" for _ in dims), *(display_unit(units[m]) for m in metrics))]
    for index in np.ndindex(*(ds.sizes[d] for d in dims)):
        cell = ds.isel(dict(zip(dims, map(int, index))))
        rows.append((*(labels[d][i] for d, i in zip(dims, index)),
                     *(format_value(float(cell.pooled_estimate.sel(metric=m)), units[m]) for m in metrics)))
    half = (ds.pooled_upper - ds.pooled_lower) / 2
    legend = "; ".join(f"{titles[m]}: {BY_ID[m].label}, +-{format_value(float(half.sel(metric=m).max()), units[m])}"
                       for m in metrics)
    return "\n".join(table(rows, "<" * len(dims) + ">" * len(metrics)) + [
        "", paragraph(f"Columns, with the largest half-width of their 95% Monte Carlo CIs: {legend}.")])


def pooled_frame(ds: xr.Dataset) -> pd.DataFrame:
    """Every metric at every grid point: mean over replicates and its 95% Monte Carlo CI, display units."""
    dims = sweep_axes(ds)
    labels = axis_labels(ds)
    metrics = [str(m) for m in ds.metric.values]
    stats = {s: ds[f"pooled_{s}"].transpose(*dims, "metric").values for s in ("estimate", "lower", "upper")}
    factors = [scale(str(u)) for u in ds.unit.sel(metric=metrics).values]
    rows = []
    for index in np.ndindex(*(ds.sizes[d] for d in dims)):
        point = {d: labels[d][i] for d, i in zip(dims, index)}
        for j, m in enumerate(metrics):
            rows.append({**point, "metric": m, "metric_name": BY_ID[m].label,
                         "unit": display_unit(str(ds.unit.sel(metric=m).values)),
                         **{s: factors[j] * float(v[index][j]) for s, v in stats.items()}})
    return pd.DataFrame(rows)


def format_dose_contrast(c: xr.Dataset) -> str:
    """The key tables: observational (grouped by realised dose) beside causal (capped) contrasts.

    Two tables, to fit the width: the groups, the observed contrast and the cap's effect on
    everyone; then the observed contrast split into dose and selection.
    """
    cut = f"{c.attrs['cutoff_mg_m2']:g}"
    share = c.attrs["share_gt"]
    groups = [("metric", "unit", f"<={cut}", f">{cut}", "observed", "everyone capped"),
              ("", "", "", "", f"<={cut} - >{cut}", "- label")]
    split = [("metric", "unit", "dose", "selection", "dose"), ("", "", f">{cut} capped - label", "obs. - dose", "share")]
    for m in map(str, c.metric.values):
        r = c.sel(metric=m)
        unit = str(r.unit.values)
        cell = {col: format_interval(float(r.estimate.sel(column=col)), float(r.lower.sel(column=col)),
                                     float(r.upper.sel(column=col)), unit) for col in CONTRAST_COLUMNS}
        obs, dose = r.sel(column="observational"), r.sel(column="dose")
        clear = float(obs.lower) > 0 or float(obs.upper) < 0  # the observed contrast is not ~0
        share_txt = f"{100 * float(dose.estimate) / float(obs.estimate):.0f}%" if clear else "-"
        label = BY_ID[m].label + ("" if BY_ID[m].among is every_patient else " *")
        groups.append((label, _units(unit), format_value(float(r.estimate.sel(column="le")), unit),
                       format_value(float(r.estimate.sel(column="gt")), unit), cell["observational"],
                       cell["everyone_capped"]))
        split.append((label, display_unit(unit, difference=True), cell["dose"], cell["selection"], share_txt))
    return "\n".join([
        paragraph(f"Observational vs causal contrast at {cut} mg/m² (reference: "
                  f"{strategy_title(c.attrs['reference_scenario'])}; {c.attrs['replicates']} trials x "
                  f"{c.attrs['patients_per_replicate']} patients; the same patients under both strategies). "
                  f"Patients above {cut} mg/m² under the reference: {format_interval(*share, PERCENT)} %. Rates "
                  "in %, differences in percentage points (pp); 95% Monte Carlo CIs."),
        "",
        paragraph(f"Groups by realised cumulative dose under the reference, as the pooled analysis did. observed: "
                  f"<={cut} minus >{cut}, the published contrast; everyone capped - label: the strategy's effect on "
                  "the whole population."),
        *table(groups, "<<>><<"),
        "",
        paragraph(f"The observed contrast = dose + selection. dose: what capping the >{cut} group at {cut} "
                  "changes for those same patients (causal); selection: the rest (who responds, is "
                  "transplant-eligible, lives to get more cycles); dose share = dose / observed."),
        *table(split, "<<<<>"),
        "",
        paragraph("* The denominator is chosen after baseline (responders, transplanted patients, deaths): "
                  f"the dose column compares the same >{cut} group, not the same patients within it; the rows "
                  "over all patients (e.g. 'died of NRM after HSCT') are the causal per-patient contrasts."),
    ])


# ----------------------------------------------------------------------------- machine-readable
def differences_frame(diffs: xr.Dataset, view: CompareView) -> pd.DataFrame:
    """The paired differences as a long table: one row per metric and grid point, display units."""
    rows = []
    labels = axis_labels(diffs)
    for point in _points(diffs, view.at):
        cell = diffs.isel(point)
        for m in view.every_metric:
            r = cell.sel(metric=m)
            unit = str(r.unit.values)
            k = scale(unit)
            row = {"metric": m, "metric_name": BY_ID[m].label,
                   **{d: labels[d][i] for d, i in point.items()},
                   "value_unit": display_unit(unit), "reference_value": k * float(r.reference_value),
                   "value": k * float(r.value), "difference_unit": display_unit(unit, difference=True),
                   "difference": k * float(r.estimate)}
            for kind in view.intervals:
                row[f"{kind.name}_lower"] = k * float(r[kind.lower])
                row[f"{kind.name}_upper"] = k * float(r[kind.upper])
            row["crn_variance_saving"] = float(r.crn_variance_saving)
            rows.append(row)
    return pd.DataFrame(rows)


def contrast_frame(c: xr.Dataset) -> pd.DataFrame:
    """The dose contrast as a long table (metric, column), display units."""
    rows = []
    for m in map(str, c.metric.values):
        unit = str(c.unit.sel(metric=m).values)
        for col in map(str, c.column.values):
            r = c.sel(metric=m, column=col)
            rows.append({"metric": m, "metric_name": BY_ID[m].label, "column": col,
                         "unit": display_unit(unit, difference=col in CONTRAST_COLUMNS),
                         **{s: scale(unit) * float(r[s]) for s in ("estimate", "lower", "upper")}})
    return pd.DataFrame(rows)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (NaN as null)."""
    return json.loads(frame.to_json(orient="records"))


# ----------------------------------------------------------------------------- the report
def compare_report(diffs: xr.Dataset, contrast: xr.Dataset | None, view: CompareView) -> str:
    """The whole report of ``inosim compare`` in ``view.format``.

    ``table``: the summary of ``view.metrics`` (intervals sentence, CRN saving, best
    and worst per metric, the dose contrast), then full tables of ``view.every_metric``
    for ``view.at`` or with ``view.show_all``. ``csv``: the paired differences of
    ``view.every_metric`` as a long table. ``json``: ``{reference, intervals,
    differences, dose_contrast}``, of ``view.every_metric``.
    """
    if view.format == "csv":
        return differences_frame(diffs, view).to_csv(index=False).rstrip("\n")
    if view.format == "json":
        doc = {"reference": json.loads(diffs.attrs["reference"]),
               "intervals": {k.name: intervals_sentence(diffs, (k,)) for k in view.intervals},
               "differences": _records(differences_frame(diffs, view)),
               "dose_contrast": None if contrast is None else _records(
                   contrast_frame(contrast.sel(metric=list(view.every_metric))))}
        return json.dumps(doc, indent=1)
    full = view.at is not None or view.show_all
    blocks = [paragraph(intervals_sentence(diffs, view.intervals)),
              crn_saving_summary(diffs, () if full else view.metrics), format_summary(diffs, view)]
    if contrast is not None:
        blocks.append(format_dose_contrast(contrast.sel(metric=list(view.metrics))))
    if full:
        blocks.append(format_paired(diffs, view))
    else:
        blocks.append(paragraph("Full paired-difference tables: --at AXIS=VALUE,... (some grid points) or --all; "
                                "--format csv|json for every metric at every grid point; all of them are in the "
                                "results file."))
    return "\n\n".join(blocks)
