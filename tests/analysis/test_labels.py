"""The display table: every metric, regimen key and parameter has a display name; rate differences in pp."""

from __future__ import annotations

from simulator.analysis.labels import (
    AXES,
    PARAMETERS,
    axis_label,
    display_unit,
    humanise,
    metric_label,
    parameter_label,
    strategy_title,
)
from simulator.analysis.trial_metrics import TRIAL_METRICS
from simulator.model.config import Regimen
from simulator.model.kernel import PARAMETER_NAMES


def test_every_parameter_and_regimen_key_is_in_the_table():
    assert set(PARAMETERS) == set(PARAMETER_NAMES)
    assert {f"regimen.{k}" for k in Regimen.model_fields} <= set(AXES)
    assert axis_label("parameters.nrm_rate") == parameter_label("nrm_rate")


def test_units_rates_in_percent_their_differences_in_percentage_points():
    for m in TRIAL_METRICS:
        label, diff = metric_label(m.id), metric_label(m.id, difference=True)
        assert label.name[0].isupper() and label.unit
        assert (label.unit, diff.unit) == (("%", "pp") if m.unit == "%" else (display_unit(m.unit),) * 2)
    assert metric_label("cumulative_dose_mean_mg_m2").unit == "mg/m²"
    assert axis_label("regimen.cumulative_cap").text() == "Cumulative dose cap (mg/m²)"
    assert axis_label("regimen.max_cycles").text() == "Maximum cycles"


def test_names_outside_the_table_still_read():
    assert strategy_title("two_cycles_then_stop") == "Two cycles, then stop"
    assert strategy_title("my_new_idea") == humanise("my_new_idea") == "My new idea"
    assert axis_label("regimen.some_future_key").text() == "Some future key"
