"""When the published figures apply: the pooled analysis' setting at the published cutoff."""

from __future__ import annotations

from conftest import CONFIGS, with_changes

from simulator import load_scenario
from simulator.analysis.targets import PUBLISHED_CUTOFF, published_not_comparable


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
