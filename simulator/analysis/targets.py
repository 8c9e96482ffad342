"""Published figures (calibration targets) and the table that sets simulated beside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from simulator.analysis.labels import display_unit, format_value
from simulator.analysis.outcomes import DEFAULT_CUTOFF, clopper_pearson
from simulator.model.config import (
    ConfigError,
    Scenario,
    default_config_dir,
    default_scenario_path,
    load_scenario,
    read_yaml,
)

GROUP_LABELS = {"le": "<=", "gt": ">", "all": "all"}
GROUP_KEYS = {"le33": "le", "gt33": "gt", "all": "all"}
PUBLISHED_CUTOFF = DEFAULT_CUTOFF  # mg/m2: the pooled analysis grouped its patients here
# What must match the pooled analysis' scenario for its figures to be comparable (not the
# parameters: comparing other parameter values with the figures is what calibration does).
PUBLISHED_SETTING = ("population", "regimen", "cohorts", "simulation.follow_up_months",
                     "simulation.accrual_months")


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


def _setting(scenario: Scenario) -> dict:
    doc = scenario.model_dump()
    out = {}
    for key in PUBLISHED_SETTING:
        node = doc
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def published_not_comparable(scenario: Scenario, cutoff: float) -> str | None:
    """Why the pooled analysis' figures do not apply to this run, in one line (None if they do).

    They apply to the pooled analysis' population, cohorts, regimens and follow-up
    (``configs/pooled_analysis.yaml``, whatever the parameters) grouped at the
    published cutoff of 3.3 mg/m2.
    """
    pooled = load_scenario(default_scenario_path())
    differ = [key for key, value in _setting(scenario).items() if value != _setting(pooled)[key]]
    if differ:
        return (f"No published column: scenario '{scenario.name}' differs from the pooled analysis "
                f"({default_scenario_path().name}) in {' and '.join([', '.join(differ[:-1]), differ[-1]] if len(differ) > 1 else differ)}, so the published figures do not "
                "describe it.")
    if abs(cutoff - PUBLISHED_CUTOFF) > 1e-9:
        return (f"No published column: the pooled analysis grouped patients at {PUBLISHED_CUTOFF:g} mg/m², "
                f"this run at {cutoff:g} mg/m² (use --cutoff {PUBLISHED_CUTOFF:g} to compare).")
    return None


def comparison_table(summary: xr.Dataset, publication: Publication | None) -> str:
    """Format simulated figures (with 95% Monte Carlo CIs) beside the published ones.

    Every metric with a published value for any group is listed; the remaining
    metrics of the summary follow below a rule, without a published value. With
    ``publication`` None (not comparable, see :func:`published_not_comparable`)
    the table has no published column.
    """
    published = {(t.id, t.group): t for t in publication.targets} if publication else {}
    pub_sizes = publication.group_sizes if publication else {}

    def pub(text: str) -> str:
        return f" {text:<8}" if publication else ""

    groups = list(summary.group.values)
    cutoff = summary.attrs["cutoff_mg_m2"]
    heads = [f"{GROUP_LABELS[g]} {cutoff:g} mg/m²" if g != "all" else "all patients" for g in groups]
    width = 44
    cell_width = 33 if publication else 24
    lines = [f"{'figure':<{width}} {'unit':<6} " + " ".join(f"{h:<{cell_width}}" for h in heads),
             f"{'':<{width}} {'':<6} " + " ".join(f"{'simulated (95% CI)':<24}{pub('pub.')}" for _ in groups)]
    sizes = summary["group_size"].values
    total = int(summary.attrs["patients"])
    cells = []
    for g, s in zip(groups, sizes):
        lo, hi = clopper_pearson(int(s), total)
        share = f"{format_value(s / total, '%')} ({format_value(lo, '%')}-{format_value(hi, '%')})"
        cells.append(f"{share:<24}" + (pub(format_value(pub_sizes[g] / pub_sizes["all"], "%")) if publication else ""))
    lines.append(f"{'patients in group':<{width}} {'%':<6} " + " ".join(cells))
    ids = list(summary.metric.values)
    with_target = [m for m in ids if any((m, g) in published for g in groups)]
    rest = [m for m in ids if m not in with_target]
    for block in (with_target, rest):
        if block is rest and rest and with_target:
            lines.append("-" * len(lines[0]))
        for m in block:
            row = summary.sel(metric=m)
            unit = str(row.unit.values)
            cells = []
            for g in groups:
                r = row.sel(group=g)
                est = (f"{format_value(float(r.estimate), unit)} ({format_value(float(r.lower), unit)}-"
                       f"{format_value(float(r.upper), unit)})")
                t = published.get((m, g))
                cells.append(f"{est:<24}{pub(format_value(t.value, unit) if t else '')}")
            lines.append(f"{str(row.label.values):<{width}} {display_unit(unit):<6} " + " ".join(cells))
    return "\n".join(lines)
