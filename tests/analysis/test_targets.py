"""The published-figure files: the further evidence loads, keeps its sources, and rejects bad input;
the published figures apply only in the pooled analysis' setting at the published cutoff."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, with_changes

from simulator import load_scenario
from simulator.analysis.targets import PUBLISHED_CUTOFF, evidence_path, load_evidence, published_not_comparable
from simulator.model.config import ConfigError

# The team's copy lives in ../shared next to the repository (or next to the worktrees' folder).
ROOT = Path(__file__).resolve().parents[2]
SHARED_COPY = next((p for p in (ROOT.parent / "shared" / "targets" / "hsct_sos_evidence.yaml",
                                ROOT.parents[1] / "shared" / "targets" / "hsct_sos_evidence.yaml")
                    if p.is_file()), ROOT.parent / "shared")


def test_evidence_loads_with_sources():
    ev = load_evidence()
    cont = ev.continuing_ino_in_remission
    assert cont.groups.more_than_3_cycles + cont.groups.three_or_fewer_cycles == 50
    assert cont.remission_duration_hazard_ratio.value == 0.35
    assert (cont.mrd_negative.more_than_3_cycles, cont.mrd_negative.three_or_fewer_cycles) == (0.88, 0.61)
    cited = {f.source for f in ev.sos_by_salvage_line} | {cont.source} | {q.source for q in ev.qualitative}
    assert cited <= set(ev.sources)
    first = ev.sos_by_salvage_line[0]
    lo, hi = first.ci()
    assert lo < first.k / first.n < hi


@pytest.mark.skipif(not SHARED_COPY.is_file(), reason="the team's shared evidence file is not on this machine")
def test_shipped_copy_matches_the_shared_file():
    assert yaml.safe_load(evidence_path().read_text()) == yaml.safe_load(SHARED_COPY.read_text())


@pytest.mark.parametrize("change, where", [
    (lambda d: d["sos_by_salvage_line"][0].update(k=99), "sos_by_salvage_line.0"),
    (lambda d: d["continuing_ino_in_remission"]["mrd_negative"].update(more_than_3_cycles=1.5),
     "continuing_ino_in_remission.mrd_negative.more_than_3_cycles"),
    (lambda d: d.pop("sos_grades"), "sos_grades: required key missing"),
])
def test_bad_evidence_file_names_file_and_key(tmp_path, change, where):
    doc = yaml.safe_load(evidence_path().read_text())
    change(doc)
    path = tmp_path / "evidence.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_evidence(path)
    assert str(err.value).startswith(f"{path}: {where}")
    assert "\n" not in str(err.value)


def test_the_pooled_scenario_at_the_published_cutoff_is_comparable_whatever_the_run_size():
    pooled = load_scenario(CONFIGS / "pooled_analysis.yaml")
    assert published_not_comparable(pooled, PUBLISHED_CUTOFF) is None
    assert published_not_comparable(with_changes(pooled, simulation={"patients": 500, "seed": 1}),
                                    PUBLISHED_CUTOFF) is None


def test_another_setting_or_cutoff_says_why_in_one_line():
    pooled = load_scenario(CONFIGS / "pooled_analysis.yaml")
    capped = published_not_comparable(with_changes(pooled, regimen={"cumulative_cap": 3.3}), PUBLISHED_CUTOFF)
    assert "in regimen" in capped and "\n" not in capped
    assert "follow_up_months" in published_not_comparable(
        with_changes(pooled, simulation={"follow_up_months": 60.0}), PUBLISHED_CUTOFF)
    assert "--cutoff 3.3" in published_not_comparable(pooled, 2.7)
