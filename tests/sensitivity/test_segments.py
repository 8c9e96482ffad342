"""Answers by patient segment: masks on the same simulated patients, not new simulations."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONFIGS

from simulator import load_scenario
from simulator.analysis.segments import ALL_PATIENTS, splits
from simulator.sensitivity.models import SimulatorModel, segment_key, share_key
from simulator.sensitivity.strategies import compare_strategies, format_segment_answers, segment_signs

BY = ("age_55", "salvage_line", "transplant_eligible", "prior_hsct", "ph_positive", "bilirubin_high")
SMALL = dict(patients=80, fitted_replicates=4, replicates=2, draws=6, per_structure=1, seed=11)


def _two():
    return load_scenario(CONFIGS / "two_cycles_then_stop.yaml")


@pytest.fixture(scope="module")
def by_age(label):
    return compare_strategies(label, {"two_cycles_then_stop": _two()}, ("os_24_months",), by=["age_55"], **SMALL)


def test_unknown_or_repeated_split_is_one_line_naming_the_valid_ones():
    with pytest.raises(KeyError) as exc:
        splits(["age_55,eligible"])
    message = exc.value.args[0]
    assert message.startswith("no segment split 'eligible'") and "\n" not in message
    assert all(name in message for name in ("age_<years>", *BY[1:]))
    with pytest.raises(KeyError, match="age cuts lie in 19-100 years"):
        splits(["age_5"])
    with pytest.raises(KeyError, match="'prior_hsct' named twice"):
        splits(["prior_hsct", "age_60,prior_hsct"])
    assert [s.id for s in splits(["age_60, ph_positive"])] == ["age_60", "ph_positive"]


def test_segments_are_the_records_covariates():
    """Double programming: every split's masks against the record columns read directly."""
    records = {"age": np.array([30.0, 54.9, 55.0, 70.0]), "salvage": np.array([1, 2, 2, 1]),
               "transplant_eligible": np.array([1, 0, 1, 0]), "prior_hsct": np.array([0, 0, 1, 1]),
               "ph_positive": np.array([1, 0, 0, 0]), "bilirubin_high": np.array([0, 1, 0, 0])}
    expected = {"age < 55": [1, 1, 0, 0], "age >= 55": [0, 0, 1, 1], "first salvage": [1, 0, 0, 1],
                "second salvage": [0, 1, 1, 0], "HSCT-ineligible": [0, 1, 0, 1], "HSCT-eligible": [1, 0, 1, 0],
                "no prior HSCT": [1, 1, 0, 0], "prior HSCT": [0, 0, 1, 1], "Ph-negative": [0, 1, 1, 1],
                "Ph-positive": [1, 0, 0, 0], "bilirubin < ULN": [1, 0, 1, 1], "bilirubin >= ULN": [0, 1, 0, 0]}
    masks = {name: mask.astype(int).tolist() for s in splits(BY) for name, mask in s.masks(records).items()}
    assert masks == expected


def test_segments_weighted_by_their_patients_are_the_whole_population(label):
    """Per trial and exactly: a rate over every patient, and its paired difference, is the segments'
    rates weighted by their shares of the trial's patients, for every split (same patients, masks only)."""
    metrics = ["cr_cri", "sos_any", {"metric": "cr_cri", "strategy": "two", "minus": "base", "name": "d"}]
    model = SimulatorModel(label, metrics, strategies={"two": _two()}, patients=120, replicates=5, seed=4,
                           segments=splits(BY))
    out = model.evaluate([], np.empty((1, 0)))
    for split in splits(BY):
        shares = [out[share_key(g)] for g in split.segments]
        np.testing.assert_allclose(sum(shares), 1.0, rtol=0, atol=1e-14)
        for name in ("cr_cri", "sos_any", "d"):
            within = [np.nan_to_num(out[segment_key(name, g)]) for g in split.segments]  # NaN: an empty segment
            np.testing.assert_allclose(sum(w * v for w, v in zip(shares, within)), out[name], rtol=0, atol=1e-14)
    # the whole population is what a model without segments gives, bit for bit
    plain = SimulatorModel(label, metrics, strategies={"two": _two()}, patients=120, replicates=5, seed=4)
    whole = plain.evaluate([], np.empty((1, 0)))
    assert all(np.array_equal(whole[k], out[k]) for k in whole)


def test_the_answers_add_up_over_segments_and_leave_the_whole_unchanged(label):
    """One trial at the fitted values: the segments' fitted differences weighted by their shares are the
    whole population's; the whole population's answers are those of a comparison without ``by``."""
    sizes = {**SMALL, "fitted_replicates": 1}
    ds = compare_strategies(label, {"two": _two()}, ("cr_cri", "os_24_months"), by=["age_55,salvage_line"], **sizes)
    plain = compare_strategies(label, {"two": _two()}, ("cr_cri", "os_24_months"), **sizes)
    whole = ds.sel(segment=ALL_PATIENTS, drop=True)
    for name in plain.data_vars:
        np.testing.assert_array_equal(whole[name].values, plain[name].values)
    assert list(ds.segment.values) == [ALL_PATIENTS, "age < 55", "age >= 55", "first salvage", "second salvage"]
    fitted = ds.fitted.sel(metric="cr_cri", strategy="two")
    for split in ("age_55", "salvage_line"):
        part = ds.split == split
        np.testing.assert_allclose((ds.share[part] * fitted[part]).sum(), fitted.sel(segment=ALL_PATIENTS),
                                   rtol=0, atol=1e-14)


def test_a_scenario_against_itself_differs_by_exactly_zero_in_every_segment(label):
    ds = compare_strategies(label, {"same": label}, ("os_24_months", "cr_cri"), by=list(BY), **SMALL)
    for name in ("fitted", "posterior_mean", "posterior_lower", "posterior_upper", "draw_difference"):
        values = ds[name].values
        assert np.isfinite(values).all() and (values == 0).all(), name
    assert (ds.prob_better.values == 0).all()  # never better: 0 is not > 0
    assert set(segment_signs(ds, "same", "os_24_months").values()) == {0}
    text = format_segment_answers(ds)
    assert "no segment differs in sign: in none can the difference be told from 0" in text.replace("\n", " ")
    assert max(len(line) for line in text.splitlines()) <= 100


def test_segments_with_a_known_answer(label):
    """HSCT needs transplant eligibility, so among ineligible patients no strategy changes the HSCT rate
    (exactly 0); eligibility falls with age, so older patients are transplanted less often; an age cut
    above every simulated patient leaves one segment of everyone and one of no one."""
    assert label.population.transplant_eligibility.odds_ratio_per_decade < 1
    ds = compare_strategies(label, {"two": _two()}, ("hsct", "cr_cri"), by=["transplant_eligible", "age_55",
                                                                             "age_100"], **SMALL)
    ineligible = ds.sel(segment="HSCT-ineligible", metric="hsct", strategy="two")
    for name in ("fitted", "posterior_mean", "posterior_lower", "posterior_upper"):
        assert float(ineligible[name]) == 0.0
    assert float(ds.sel(segment="HSCT-eligible", metric="hsct", strategy="two").posterior_mean) != 0
    assert float(ds.share.sel(segment="age >= 100")) == 0.0 and float(ds.share.sel(segment="age < 100")) == 1.0
    assert np.isnan(ds.fitted.sel(segment="age >= 100")).all()
    np.testing.assert_array_equal(ds.fitted.sel(segment="age < 100"), ds.fitted.sel(segment=ALL_PATIENTS))
    text = format_segment_answers(ds)
    assert "undefined for age >= 100 (no patient in its denominator)" in text.replace("\n", " ")
    row = next(line for line in text.splitlines() if line.startswith("  age >= 100"))  # the table, then drivers
    assert row.split()[3:6] == ["0%", "0", "undefined:"]  # share, patients
    model = SimulatorModel(label, ["hsct"], patients=400, replicates=5, seed=2, segments=splits(["age_55"]))
    out = model.evaluate([], np.empty((1, 0)))
    assert np.mean(out[segment_key("hsct", "age >= 55")]) < np.mean(out[segment_key("hsct", "age < 55")]) - 0.1


@pytest.mark.parametrize(("lower", "upper", "says"), [
    ([0.01, -0.05], [0.05, -0.01], "the sign differs between segments: better for age < 55 (P); worse for "
                                   "age >= 55 (P)"),
    ([0.01, 0.02], [0.05, 0.05], "better in every segment (age < 55 (P), age >= 55 (P)); no segment differs in sign"),
    ([-0.05, -0.05], [-0.01, 0.01], "no segment differs in sign: worse for age < 55 (P); cannot be told from 0 "
                                    "for age >= 55 (P)"),
    ([-0.05, np.nan], [0.01, np.nan], "in none can the difference be told from 0; undefined for age >= 55"),
])
def test_the_lead_sentence_says_which_segments_differ_in_sign(by_age, lower, upper, says):
    ds = by_age.copy(deep=True)
    for name, values in (("posterior_lower", lower), ("posterior_upper", upper)):
        ds[name].loc[{"segment": ["age < 55", "age >= 55"]}] = np.array(values)[:, None, None]
    ds["prob_better"][:] = 0.5
    line = format_segment_answers(ds).split("\n\n")[0].replace("\n", " ")
    assert says.replace("(P)", "(0.50)") in line
    assert line.startswith("By patient segment, Two cycles, then stop vs label dosing, Overall survival at 24 months")
