"""Per-trial figures in bulk against the one-group summaries of simulator.analysis.outcomes and lifelines."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from simulator.analysis.outcomes import km_median, km_survival_at, median_ci, patient_columns
from simulator.analysis.trial_metrics import CURVE_MONTHS, TRIAL_METRICS, mc_summary, trial_figures
from simulator.model import kernel as K
from simulator.sweep.experiment import simulate_replicates

TRIALS, PATIENTS = 6, 150


@pytest.fixture(scope="module")
def trials(label):
    records = simulate_replicates(label, seed=5, patients=PATIENTS, first_replicate=3, replicates=TRIALS)
    return records, patient_columns(records)


def _one_trial(d: dict, r: int, mask: np.ndarray) -> tuple[dict, np.ndarray]:
    rows = slice(r * PATIENTS, (r + 1) * PATIENTS)
    sub = {k: (v[0][rows], v[1][rows]) if isinstance(v, tuple) else v[rows] for k, v in d.items()}
    return sub, mask[rows]


def _reference_value(m, d: dict, mask: np.ndarray) -> float:
    """The figure of one trial computed with the one-group functions of simulator.analysis.outcomes."""
    among = m.among(d) & mask
    if not among.any():
        return np.nan
    if m.kind in ("rate", "mean"):
        return float(np.mean(np.asarray(m.value(d), dtype=float)[among]))
    if m.kind == "median":
        return median_ci(np.asarray(m.value(d), dtype=float)[among])[0]
    time, event = m.value(d)
    if m.kind == "km_median":
        return km_median(time[among], event[among])[0]
    if m.kind == "km_survival":
        return km_survival_at(time[among], event[among], m.horizon_months)[0]
    kmf = KaplanMeierFitter().fit(time[among], event[among])
    return float(restricted_mean_survival_time(kmf, t=m.horizon_months))


@pytest.mark.parametrize("subgroup", ["all", "random half"])
def test_every_metric_matches_one_trial_at_a_time(trials, subgroup):
    _, d = trials
    n = TRIALS * PATIENTS
    mask = np.ones(n, bool) if subgroup == "all" else np.random.default_rng(1).random(n) < 0.5
    bulk, _ = trial_figures(d, TRIALS, PATIENTS, mask, curves=False)
    for m in TRIAL_METRICS:
        for r in range(TRIALS):
            expected = _reference_value(m, *_one_trial(d, r, mask))
            np.testing.assert_allclose(bulk[m.id][r], expected, rtol=1e-9, atol=1e-12, err_msg=f"{m.id}, trial {r}")


def test_curves_match_kaplan_meier_at_every_month(trials):
    _, d = trials
    _, curves = trial_figures(d, TRIALS, PATIENTS)
    for name, key in (("os_curve", "os"), ("pfs_curve", "pfs")):
        assert curves[name].shape == (TRIALS, len(CURVE_MONTHS)) and curves[name].dtype == np.float32
        sub, mask = _one_trial(d, 2, np.ones(TRIALS * PATIENTS, bool))
        time, event = sub[key]
        expected = [km_survival_at(time, event, t)[0] for t in CURVE_MONTHS]
        np.testing.assert_allclose(curves[name][2], expected, atol=1e-7)  # float32 storage


def test_mc_summary_is_a_t_interval_over_defined_replicates():
    x = np.array([[1.0, 2.0, 3.0, np.nan], [np.nan, np.nan, 5.0, np.nan]])
    est, lo, hi, n = mc_summary(x)
    assert list(n) == [3, 1] and est[0] == 2.0
    half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert lo[0] == pytest.approx(2.0 - half) and hi[0] == pytest.approx(2.0 + half)
    assert est[1] == 5.0 and np.isnan(lo[1]) and np.isnan(hi[1])  # one replicate: no interval


def _other_deaths(scenario, **parameters) -> dict[str, float]:
    from conftest import with_changes

    from simulator import simulate

    ds = simulate(with_changes(scenario, parameters=parameters), n_patients=4000, seed=8)
    d = patient_columns(ds)
    ids = ("deaths_progression", "deaths_other_progression_free", "deaths_other_after_progression")
    chosen = tuple(m for m in TRIAL_METRICS if m.id in ids)
    figures, _ = trial_figures(d, 1, len(d["hsct"]), metrics=chosen, curves=False)
    out = {k: float(v[0]) for k, v in figures.items()}
    out["cause_other"] = float(np.mean(d["death_cause"] == K.CAUSE_OTHER))
    return out


def test_other_deaths_split_by_progression(label):
    """Cause 4 splits into two rows that add up to it, and each row holds what its label says."""
    shipped = _other_deaths(label)
    assert shipped["deaths_other_progression_free"] + shipped["deaths_other_after_progression"] == pytest.approx(
        shipped["cause_other"], abs=1e-12)
    assert shipped["deaths_other_after_progression"] > 5 * shipped["deaths_other_progression_free"] > 0
    # without the background hazard, nobody dies of other causes before progressing
    assert _other_deaths(label, death_rate_other=0.0)["deaths_other_progression_free"] == 0.0
    # with every death after progression recorded as the disease, the after-progression row empties
    none = _other_deaths(label, death_rate_other=0.0, death_after_progression_disease_share=1.0)
    assert none["cause_other"] == 0.0
    # and with none recorded as the disease, it takes them all
    every = _other_deaths(label, death_rate_other=0.0, death_after_progression_disease_share=0.0)
    assert every["deaths_progression"] == 0.0 and every["deaths_other_after_progression"] > 0.4
    labels = {m.id: m.label for m in TRIAL_METRICS}
    assert "infection" in labels["deaths_other_after_progression"]
    assert "progression-free" in labels["deaths_other_progression_free"]
