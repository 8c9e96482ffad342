"""Published figures (calibration targets) and the table that sets simulated beside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from simulator.analysis.outcomes import clopper_pearson
from simulator.model.config import ConfigError, default_config_dir, read_yaml

GROUP_LABELS = {"le": "<=", "gt": ">", "all": "all"}
GROUP_KEYS = {"le33": "le", "gt33": "gt", "all": "all"}


@dataclass(frozen=True)
class Target:
    """One published figure: its id, group (le, gt, all), value and denominator."""

    id: str
    group: str
    value: float
    n: int | None
    what: str
    precision: float | None = None  # half the last reported digit where the text says more

    def ci(self) -> tuple[float, float] | None:
        """95% Clopper-Pearson interval of a rate at the published n (None without n)."""
        if self.n is None or not 0.0 <= self.value <= 1.0 or self.id.endswith(("_months", "_mg_m2")):
            return None
        return clopper_pearson(round(self.value * self.n), self.n)


def pooled_targets_path() -> Path:
    """The shipped copy of the pooled dose analysis' figures."""
    return default_config_dir() / "targets" / "pooled_dose_analysis.yaml"


@dataclass(frozen=True)
class Publication:
    """The published figures of one analysis and its group sizes (patients)."""

    targets: list[Target]
    group_sizes: dict[str, int]


def load_pooled_targets(path: str | Path | None = None) -> Publication:
    """Read the pooled dose analysis figures (groups ``le33``/``gt33`` become ``le``/``gt``)."""
    path = Path(path) if path else pooled_targets_path()
    doc = read_yaml(path)
    try:
        sizes = {GROUP_KEYS[g]: int(v["n"]) for g, v in doc["groups"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: groups: malformed ({exc})") from None
    sizes["all"] = sum(sizes.values())
    out = []
    for i, t in enumerate(doc.get("targets", [])):
        try:
            out.append(Target(t["id"], GROUP_KEYS[t["group"]], float(t["value"]), t.get("n"),
                              t.get("what", ""), t.get("precision")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: targets.{i}: malformed target ({exc})") from None
    return Publication(out, sizes)


def _fmt(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "NA"
    return f"{100 * value:.1f}" if unit == "%" else f"{value:.2f}"


def comparison_table(summary: xr.Dataset, publication: Publication) -> str:
    """Format simulated figures (with 95% Monte Carlo CIs) beside the published ones.

    Every metric with a published value for any group is listed; the remaining
    metrics of the summary follow below a rule, without a published value.
    """
    published = {(t.id, t.group): t for t in publication.targets}
    pub_sizes = publication.group_sizes
    groups = list(summary.group.values)
    cutoff = summary.attrs["cutoff_mg_m2"]
    heads = [f"{GROUP_LABELS[g]} {cutoff:g} mg/m2" if g != "all" else "all patients" for g in groups]
    width = 44
    lines = [f"{'figure':<{width}} {'unit':<6} " + " ".join(f"{h:<33}" for h in heads),
             f"{'':<{width}} {'':<6} " + " ".join(f"{'simulated (95% CI)':<24} {'pub.':<8}" for _ in groups)]
    sizes = summary["group_size"].values
    total = int(summary.attrs["patients"])
    cells = []
    for g, s in zip(groups, sizes):
        lo, hi = clopper_pearson(int(s), total)
        share = f"{_fmt(s / total, '%')} ({_fmt(lo, '%')}-{_fmt(hi, '%')})"
        cells.append(f"{share:<24} {_fmt(pub_sizes[g] / pub_sizes['all'], '%'):<8}")
    lines.append(f"{'patients in group':<{width}} {'%':<6} " + " ".join(cells))
    ids = list(summary.metric.values)
    with_target = [m for m in ids if any((m, g) in published for g in groups)]
    rest = [m for m in ids if m not in with_target]
    for block in (with_target, rest):
        if block is rest and rest:
            lines.append("-" * len(lines[0]))
        for m in block:
            row = summary.sel(metric=m)
            unit = str(row.unit.values)
            cells = []
            for g in groups:
                r = row.sel(group=g)
                est = f"{_fmt(float(r.estimate), unit)} ({_fmt(float(r.lower), unit)}-{_fmt(float(r.upper), unit)})"
                t = published.get((m, g))
                cells.append(f"{est:<24} {(_fmt(t.value, unit) if t else ''):<8}")
            unit_label = "%" if unit == "%" else unit
            lines.append(f"{str(row.label.values):<{width}} {unit_label:<6} " + " ".join(cells))
    return "\n".join(lines)
