"""Published figures (calibration targets) and the table that sets simulated beside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.analysis.labels import display_unit, format_value
from simulator.analysis.outcomes import DEFAULT_CUTOFF, clopper_pearson
from simulator.analysis.text import paragraph, table
from simulator.model.config import ConfigError, Scenario, default_config_dir, validate
from simulator.model.files import default_scenario_path, load_scenario, read_yaml

GROUP_LABELS = {"le": "<=", "gt": ">", "all": "all"}
GROUP_KEYS = {"le33": "le", "gt33": "gt", "all": "all"}
PUBLISHED_CUTOFF = DEFAULT_CUTOFF  # mg/m2: the pooled analysis grouped its patients here
# What must match the pooled analysis' scenario for its figures to be comparable (not the
# parameters: comparing other parameter values with the figures is what calibration does).
PUBLISHED_SETTING = ("treatment", "then", "population", "regimen", "cohorts", "simulation.follow_up_months",
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
        return published_rate_ci(self.value, self.n)


def published_rate_ci(value: float, n: int) -> tuple[float, float]:
    """95% Clopper-Pearson interval of a published rate at its n (events rounded from the rate)."""
    return clopper_pearson(round(value * n), n)


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
        where = " and ".join([", ".join(differ[:-1]), differ[-1]] if len(differ) > 1 else differ)
        return (f"No published column: scenario '{scenario.name}' differs from the pooled analysis "
                f"({default_scenario_path().name}) in {where}, so the published figures do not describe it.")
    if abs(cutoff - PUBLISHED_CUTOFF) > 1e-9:
        return (f"No published column: the pooled analysis grouped patients at {PUBLISHED_CUTOFF:g} mg/m², "
                f"this run at {cutoff:g} mg/m² (use --cutoff {PUBLISHED_CUTOFF:g} to compare).")
    return None


def comparison_table(summary: xr.Dataset, publication: Publication | None) -> str:
    """Format simulated figures (with 95% Monte Carlo CIs) beside the published ones.

    Every metric with a published value for any group is listed; the remaining
    metrics of the summary follow below a rule, without a published value. With
    ``publication`` None (not comparable, see :func:`published_not_comparable`)
    the table has no published column. To fit 100 columns the dose groups stand side
    by side and all patients follow in a table of their own.
    """
    published = {(t.id, t.group): t for t in publication.targets} if publication else {}
    pub_sizes = publication.group_sizes if publication else {}
    groups = list(summary.group.values)
    cutoff = summary.attrs["cutoff_mg_m2"]
    total = int(summary.attrs["patients"])
    ids = list(summary.metric.values)
    with_target = [m for m in ids if any((m, g) in published for g in groups)]
    rest = [m for m in ids if m not in with_target]

    def cell(estimate: float, lower: float, upper: float, unit: str, target: float | None) -> tuple[str, str]:
        value = f"{format_value(estimate, unit)} ({format_value(lower, unit)}-{format_value(upper, unit)})"
        return value, "" if target is None else format_value(target, unit)

    def rows(panel: list[str]) -> list[tuple[str, str, list[tuple[str, str]]]]:
        out = []
        if "all" not in panel:
            sizes = dict(zip(groups, summary["group_size"].values))
            out.append(("patients in group", "%", [
                cell(sizes[g] / total, *clopper_pearson(int(sizes[g]), total), "%",
                     pub_sizes[g] / pub_sizes["all"] if publication else None) for g in panel]))
        for block in (with_target, rest):
            if block is rest and rest and with_target:
                out.append(("", "", []))  # the rule
            for m in block:
                row = summary.sel(metric=m)
                unit = str(row.unit.values)
                out.append((str(row.label.values), display_unit(unit), [
                    cell(float(row.estimate.sel(group=g)), float(row.lower.sel(group=g)),
                         float(row.upper.sel(group=g)), unit,
                         published[m, g].value if (m, g) in published else None) for g in panel]))
        return out

    panels = [groups[:-1], groups[-1:]] if len(groups) > 1 else [groups]
    tables = [rows(panel) for panel in panels]
    everything = [r for panel_rows in tables for r in panel_rows]
    label_w = max(len("figure"), *(len(r[0]) for r in everything))
    unit_w = max(len("unit"), *(len(r[1]) for r in everything))
    sim_w = max(len("simulated (95% CI)"), *(len(c[0]) for r in everything for c in r[2]))
    pub_w = max(len("pub."), *(len(c[1]) for r in everything for c in r[2])) if publication else 0
    cell_w = sim_w + (2 + pub_w if publication else 0)
    lines = []
    for panel, panel_rows in zip(panels, tables):
        heads = [f"{GROUP_LABELS[g]} {cutoff:g} mg/m²" if g != "all" else "all patients" for g in panel]
        sub = f"{'simulated (95% CI)':<{sim_w}}" + (f"  {'pub.':<{pub_w}}" if publication else "")
        head = [f"{'figure':<{label_w}} {'unit':<{unit_w}} " + "  ".join(f"{h:<{cell_w}}" for h in heads),
                f"{'':<{label_w}} {'':<{unit_w}} " + "  ".join(sub for _ in panel)]
        width = len(head[0].rstrip())
        lines += ([""] if lines else []) + [h.rstrip() for h in head]
        for label, unit, cells in panel_rows:
            if not cells:
                lines.append("-" * width)
                continue
            text = "  ".join(f"{v:<{sim_w}}" + (f"  {p:<{pub_w}}" if publication else "") for v, p in cells)
            lines.append(f"{label:<{label_w}} {unit:<{unit_w}} {text}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- further evidence
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]


class _Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EvidenceFigure(_Evidence):
    """One published share: its value, events ``k`` of ``n`` patients where given, source and status."""

    id: str
    value: Fraction
    n: Count
    k: Count | None = None
    source: str
    status: str

    @model_validator(mode="after")
    def _k_within_n(self) -> EvidenceFigure:
        if self.k is not None and self.k > self.n:
            raise ValueError(f"k ({self.k}) exceeds n ({self.n})")
        return self

    def ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval at the published n (k rounded from the value if not given)."""
        return published_rate_ci(self.value, self.n) if self.k is None else clopper_pearson(self.k, self.n)


class SosGrades(_Evidence):
    """SOS/VOD cases by worst grade in a safety population of ``n`` patients."""

    n: Count
    any_grade: Count
    grade_3: Count
    grade_4: Count
    grade_5: Count
    source: str
    status: str


class ContinuationGroups(_Evidence):
    """Responders not transplanted, by InO cycles received (patients)."""

    more_than_3_cycles: Count
    three_or_fewer_cycles: Count


class ContinuationHazardRatio(_Evidence):
    """Hazard ratio of remission duration, > 3 vs <= 3 cycles."""

    value: Annotated[float, Field(gt=0.0)]
    p: Fraction
    contrast: str


class ContinuationMrd(_Evidence):
    """MRD negativity by group (shares of the group) and the test's p-value."""

    more_than_3_cycles: Fraction
    three_or_fewer_cycles: Fraction
    p: Fraction


class ContinuationEvidence(_Evidence):
    """The observational "continue vs stop InO in remission" contrast (guarantee-time biased)."""

    groups: ContinuationGroups
    remission_duration_hazard_ratio: ContinuationHazardRatio
    mrd_negative: ContinuationMrd
    source: str
    status: str
    caution: str


class QualitativeEvidence(_Evidence):
    """A statement without a number, with its source."""

    source: str
    text: str


class Evidence(_Evidence):
    """Figures on what drives post-HSCT SOS/NRM, relapse after InO stops and the paths to
    transplant (``configs/targets/hsct_sos_evidence.yaml``); ``sources`` maps ids to citations."""

    sources: dict[str, str]
    sos_by_salvage_line: list[EvidenceFigure]
    sos_grades: SosGrades
    transplant_paths: list[EvidenceFigure]
    continuing_ino_in_remission: ContinuationEvidence
    qualitative: list[QualitativeEvidence]


def evidence_path() -> Path:
    """The shipped copy of the further evidence on post-HSCT SOS/NRM and transplant paths."""
    return default_config_dir() / "targets" / "hsct_sos_evidence.yaml"


def load_evidence(path: str | Path | None = None) -> Evidence:
    """Read and validate the further evidence file (a :class:`ConfigError` names file and key)."""
    path = Path(path) if path else evidence_path()
    return validate(Evidence, read_yaml(path), path)


@dataclass(frozen=True)
class EvidenceRow:
    """A simulated figure beside the published one, both with 95% intervals.

    ``unit`` is ``%`` for shares (stored as fractions) or ``HR`` for hazard ratios; the simulated
    interval is Monte Carlo; ``published_interval`` says in ``note`` how it was derived.
    """

    figure: str
    unit: str
    simulated: float
    simulated_interval: tuple[float, float]
    published: float
    published_interval: tuple[float, float]
    source: str
    note: str


def format_rows(rows: list[EvidenceRow]) -> str:
    """The rows as a text table (shares in %; intervals are 95%: Monte Carlo for simulated), each row's
    source with a numbered note below the table on how the published interval was derived."""
    def cell(value: float, interval: tuple[float, float], unit: str) -> str:
        return f"{format_value(value, unit)} ({format_value(interval[0], unit)}-{format_value(interval[1], unit)})"

    notes = list(dict.fromkeys(r.note for r in rows))  # each once, numbered in order
    cells = [("figure", "unit", "simulated", "published", "source"), ("", "", "(95% MC CI)", "(95% CI)", "")]
    for r in rows:
        cells.append((r.figure, r.unit, cell(r.simulated, r.simulated_interval, r.unit),
                      cell(r.published, r.published_interval, r.unit), f"{r.source} [{notes.index(r.note) + 1}]"))
    return "\n".join(table(cells, "<<<<<") + [paragraph(f"[{k}] {note}") for k, note in enumerate(notes, 1)])
