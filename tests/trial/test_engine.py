"""The engine against trusted answers: rpact's design, the null distribution, the cut rule,
common random numbers across designs, one arm per patient, reproducibility."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from designs import RPACT, SELECTION, STRATEGIES, write_design
from scipy import stats

from simulator.model import kernel as K
from simulator.model.simulation import record_columns, run_kernel_ids
from simulator.trial import engine as E
from simulator.trial import load_design, operating_characteristics, simulate_trials, trial_arrays, true_values
from simulator.trial.run import MAX_SLOTS, model_outcomes, trial_patients

Z_TOL = 3.0  # Monte Carlo tolerance, in standard errors (two-sided, ~1 in 370 false alarms)


def _design(tmp_path, trial, **changes):
    path = write_design(tmp_path, trial, **changes)
    return load_design(path), path


def test_reproduces_rpact_piecewise_exponential_design(tmp_path):
    """rpact 3.3.4: power 0.7997 and mean analysis time 27.96 months (10,000 trials each side).

    Tolerance: Z_TOL combined Monte Carlo standard errors of the two simulations,
    sqrt(2 p (1 - p) / 10,000) for the power and sqrt(2) sd / sqrt(10,000) for the time."""
    design, path = _design(tmp_path, RPACT)
    ds = simulate_trials(path)
    n = ds.sizes["trial"]
    power = float((ds.decision.sel(look=1, test="logrank") == E.EFFICACY).mean())
    assert abs(power - 0.7997) < Z_TOL * math.sqrt(2 * 0.7997 * 0.2003 / n)
    cut = ds.cut_time.sel(look=1).values
    assert abs(cut.mean() - 27.96) < Z_TOL * math.sqrt(2) * cut.std() / math.sqrt(n)
    # the look is at exactly 250 events, the 250th included
    assert (ds.events.sel(look=1, test="logrank") == 250).all()
    # Peto's one-step hazard ratio (log-rank) stays within 5% of the Cox estimate at HR ~0.7
    hr = ds.estimate.sel(look=1)
    assert float(abs(np.log(hr.sel(test="logrank") / hr.sel(test="cox"))).max()) < 0.05


def test_null_z_is_standard_normal_and_rejects_at_alpha(tmp_path):
    """Identical strategy arms (the null switch): over 40,000 trials the log-rank z has mean 0,
    SD 1 and a standard normal distribution (KS), and rejects at one-sided 0.025 within Z_TOL
    binomial standard errors. At 180 events: with 60 the log-rank z's SD is about 1.01 for the
    model's event times (1.009-1.013 over three seeds), a small-sample property of the statistic
    that 40,000 trials resolve (3 SEs of an SD are 0.011), not an error of the engine."""
    design, path = _design(tmp_path, STRATEGIES, null=True, sample_size=240, n_trials=40_000,
                           randomization={"block_size": 2}, analyses=[{"events": 180}], spending={},
                           tests=[{"name": "logrank", "type": "logrank", "endpoint": "os"}])
    ds = simulate_trials(path)
    z = ds.z.sel(look=1, test="logrank").values
    n = z.size
    assert abs(z.mean()) < Z_TOL / math.sqrt(n)
    assert abs(z.std() - 1.0) < Z_TOL / math.sqrt(2 * n)
    assert stats.kstest(z, "norm").pvalue > 0.001
    reject = (ds.decision.sel(look=1, test="logrank") == E.EFFICACY).mean().item()
    assert abs(reject - 0.025) < Z_TOL * math.sqrt(0.025 * 0.975 / n)


def test_cut_at_kth_event_includes_it(tmp_path):
    design, path = _design(tmp_path, RPACT, n_trials=200, analyses=[{"events": 37}, {"events": 101}],
                           spending={"function": "power", "param": 30.0})  # no stop at look 1
    ta = trial_arrays(design, tmp_path)
    ds = simulate_trials(path)
    assert (ds.stop_look == 2).all()
    assert (ds.events.sel(test="logrank") == [37, 101]).all()
    p = trial_patients(ta, design.seed, 0, 200).slots
    dropout = -np.log(p.drop_u) / ta.constants.drop_rate[p.arm]
    seen = np.where(p.tte[0] <= dropout, p.entry + p.tte[0], np.inf)
    kth = np.sort(seen, axis=1)[:, [36, 100]]
    np.testing.assert_array_equal(ds.cut_time.values, kth)


def test_simtrial_cut_rule(tmp_path):
    """cut = min(max(calendar, events, previous + gap, last entry + min follow-up), max extension)."""
    looks = [{"events": 50, "calendar": 20.0}, {"events": 60, "gap": 6.0}, {"events": 390, "max_extension": 30.0},
             {"min_follow_up": 12.0, "information": 1.0}]
    looks = [{**a, "information": (k + 1) / 4} for k, a in enumerate(looks)]
    design, path = _design(tmp_path, RPACT, n_trials=50, analyses=looks, spending={"function": "power", "param": 30.0})
    ta = trial_arrays(design, tmp_path)
    ds = simulate_trials(path)
    p = trial_patients(ta, design.seed, 0, 50).slots
    dropout = -np.log(p.drop_u) / ta.constants.drop_rate[p.arm]
    seen = np.sort(np.where(p.tte[0] <= dropout, p.entry + p.tte[0], np.inf), axis=1)
    c1 = np.maximum(20.0, seen[:, 49])
    c2 = np.maximum(seen[:, 59], c1 + 6.0)
    c3 = np.maximum(np.minimum(seen[:, 389], 30.0), c2)
    c4 = np.maximum(p.entry[:, -1] + 12.0, c3)
    got = ds.cut_time.values
    reached = np.isfinite(got)  # a trial that stopped early has no later cuts
    assert reached[:, 0].all() and reached[:, -1].mean() > 0.8
    np.testing.assert_array_equal(got[reached], np.stack([c1, c2, c3, c4], axis=1)[reached])


def test_design_change_never_changes_a_patients_outcome(tmp_path):
    """Trial-scoped ids: a smaller N, faster enrolment or other looks leave every slot's
    randomisation and outcome unchanged (nested N)."""
    big, _ = _design(tmp_path, STRATEGIES, name="big.yaml")
    small, _ = _design(tmp_path, STRATEGIES, sample_size=60, enrollment={"rates": [20.0]},
                       analyses=[{"events": 20}], spending={})
    a = trial_patients(trial_arrays(big, tmp_path), 5, 0, 24).slots
    b = trial_patients(trial_arrays(small, tmp_path), 5, 0, 24).slots
    np.testing.assert_array_equal(a.arm[:, :60], b.arm)
    np.testing.assert_array_equal(a.tte[:, :, :60], b.tte)
    np.testing.assert_array_equal(a.binary_time[:, :, :60], b.binary_time)
    np.testing.assert_array_equal(a.drop_u[:, :60], b.drop_u)
    assert not np.array_equal(a.entry[:, :60], b.entry)


@pytest.mark.parametrize("trial", [STRATEGIES, SELECTION], ids=["strata", "selection"])
def test_each_patient_in_one_arm_with_that_arms_outcome(tmp_path, trial):
    """Every slot's outcomes are the model's for its patient id under the one arm it ended in
    (after selection and re-randomisation too), and ids never repeat."""
    design, _ = _design(tmp_path, trial)
    ta = trial_arrays(design, tmp_path)
    p = trial_patients(ta, design.seed, 2, 6)
    s = p.slots
    ids = (2 + np.arange(6))[:, None] * MAX_SLOTS + np.arange(design.sample_size)
    assert np.unique(ids).size == ids.size
    for a, model in enumerate(ta.model):
        mask = s.arm == a
        tte, binary_time, _ = model_outcomes(model, design.seed, ids[mask])
        np.testing.assert_array_equal(s.tte[:, mask], tte)
        np.testing.assert_array_equal(s.binary_time[:, mask], binary_time)
    if p.selected is not None:
        late = s.arm[s.entry > 6.0]  # after the selection look (calendar 6): control or the selected arm
        assert all(p.selected[t, a] for t, row in enumerate(s.arm) for a in row[s.entry[t] > 6.0])
        assert late.size > 0


def test_permuted_blocks_balance_each_stratum(tmp_path):
    design, _ = _design(tmp_path, STRATEGIES)
    ta = trial_arrays(design, tmp_path)
    p = trial_patients(ta, design.seed, 0, 24).slots
    for t in range(24):
        for s in range(ta.constants.n_strata):
            arms = p.arm[t, p.stratum[t] == s]
            full = arms[: arms.size - arms.size % 4]
            assert (full == 0).sum() == (full == 1).sum()
            assert abs((arms == 0).sum() - (arms == 1).sum()) <= 2


def test_model_censors_nothing(tmp_path):
    """The trial layer alone censors: under the arms' models every death shows, however late."""
    design, _ = _design(tmp_path, STRATEGIES)
    ta = trial_arrays(design, tmp_path)
    of, _ = run_kernel_ids(ta.model[0], 1, np.arange(5000))
    assert np.isinf(of[K.F_CENSOR_DAY]).all()
    assert not np.isnan(of[K.F_DEATH_DAY]).any()  # everybody dies at some time (other-cause hazard)


def test_bit_identical_across_chunking(tmp_path):
    path = write_design(tmp_path, SELECTION)
    a = simulate_trials(path)
    b = simulate_trials(path, chunk_trials=7)
    assert a.identical(b)


def test_bit_identical_across_threads(tmp_path):
    path = write_design(tmp_path, STRATEGIES)
    code = ("import sys, hashlib; from simulator.trial import simulate_trials; ds = simulate_trials(sys.argv[1]); "
            "print(hashlib.sha256(b''.join(ds[v].values.tobytes() for v in sorted(ds.data_vars))).hexdigest())")
    out = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                             check=True)
        out.append(run.stdout.strip())
    assert out[0] == out[1]
    assert len(out[0]) == 64


def test_kernels_compile_once_for_every_kind_of_design(tmp_path):
    """The design reaches the kernels as one typed named tuple whose fields keep their types
    whatever the design (piecewise or strategy arms, strata, selection, observed information,
    two-sided), so every kernel has one specialisation (the truth's calls included)."""
    observed = {"analyses": [{"events": 100}, {"events": 250}], "sided": 2,
                "spending": {"function": "pocock", "information": "observed"}}
    for i, (trial, changes) in enumerate([(RPACT, {}), (RPACT, observed), (STRATEGIES, {}), (SELECTION, {})]):
        path = write_design(tmp_path, trial, name=f"d{i}.yaml", n_trials=3, **changes)
        simulate_trials(path)
        true_values(trial_arrays(load_design(path), tmp_path), 1, 20.0, n=500)
    for kernel in (E.slot_draws, E.randomise, E.piecewise_fill, E.select_arms, E.analyse, E.time_test,
                   E.binary_test):
        assert len(kernel.signatures) == 1, (kernel.py_func.__name__, kernel.signatures)


def test_weighted_logrank_reports_no_hazard_ratio(tmp_path):
    """A Fleming-Harrington weighted log-rank test has no hazard-ratio estimand (exp of its
    weighted (O-E)/V is none): its estimate is NaN and so labelled, in the Dataset and the
    summary; the plain log-rank keeps Peto's hazard ratio."""
    tests = RPACT["tests"] + [{"name": "fh", "type": "logrank", "endpoint": "os", "gamma": 0.5}]
    design, path = _design(tmp_path, RPACT, n_trials=50, tests=tests)
    ds = simulate_trials(path)
    assert np.isnan(ds.estimate.sel(test="fh")).all() and np.isnan(ds.ci_lower.sel(test="fh")).all()
    assert np.isfinite(ds.z.sel(test="fh")).all() and np.isfinite(ds.estimate.sel(test="logrank")).all()
    assert "hazard ratio" not in ds.estimand.sel(test="fh").item()
    assert "hazard ratio" in ds.estimand.sel(test="logrank").item()
    truth = true_values(trial_arrays(design, tmp_path), 1, [28.0], n=2000)
    assert np.isnan(truth.true_estimate.sel(test="fh")).all()
    names = [f.name for f in operating_characteristics(ds, truth)]
    assert "power: fh" in names and not any(n.endswith(": fh") and "power" not in n for n in names)


def _records(ta, seed, slots, first_trial):
    """Each slot's kernel record under its arm (the raw columns, read without the trial layer)."""
    n_trials, n = slots.arm.shape
    ids = (first_trial + np.arange(n_trials))[:, None] * MAX_SLOTS + np.arange(n)
    cols = {}
    for a, model in enumerate(ta.model):
        mask = slots.arm == a
        r = record_columns(*run_kernel_ids(model, seed, ids[mask]))
        for k in ("response_day", "hsct_day", "last_dose_day", "best_response", "sos_post_hsct", "grade3_ae"):
            cols.setdefault(k, np.full((n_trials, n), np.nan))[mask] = r[k]
    return cols


def test_binary_outcomes_count_when_seen_by_the_cut_and_before_dropout(tmp_path):
    """A response counts from its response day, a post-HSCT SOS from the transplant day and a
    grade >= 3 adverse event from the last dose (the records' dates), and only by the look's
    cut and before dropout: the selection utilities and the binary tests' event counts
    recomputed from the kernel's records. In the dose-selection design much happens after the
    3-month read (here: a 1-month read, 10% monthly dropout)."""
    design, path = _design(tmp_path, SELECTION, n_trials=40, dropout={"rate": 0.1},
                           tests=SELECTION["tests"] + [{"name": "sos", "type": "proportions",
                                                        "endpoint": "sos_post_hsct"},
                                                       {"name": "ae", "type": "proportions", "endpoint": "grade3_ae"}])
    ta = trial_arrays(design, tmp_path)
    ds = simulate_trials(path)
    s = trial_patients(ta, design.seed, 0, 40).slots
    rec = _records(ta, design.seed, s, 0)
    dropout = -np.log(s.drop_u) / ta.constants.drop_rate[s.arm]

    def seen(day, happened, cut):
        t = np.where(happened == 1, day / K.MONTH, np.inf)
        return (t <= dropout) & (s.entry + t <= cut)

    cut = ds.cut_time.values  # (trial, look)
    # binary tests: events (in the two compared arms) seen at each look among patients followed 0 months
    for test, day, flag in (("cr", "response_day", "best_response"), ("sos", "hsct_day", "sos_post_hsct"),
                            ("ae", "last_dose_day", "grade3_ae")):
        for k in range(2):
            for t in range(40):
                if not np.isfinite(cut[t, k]):
                    continue
                label = f"{test}: low"
                if ds.decision.sel(test=label).values[t, k] == E.NOT_REACHED:
                    continue
                pair = np.isin(s.arm[t], [0, 1]) & (s.entry[t] <= cut[t, k])
                want = int((seen(rec[day], rec[flag], cut[t, k])[t] & pair).sum())
                assert ds.events.sel(test=label).values[t, k] == want, (test, k, t)
    # selection: utility = P(CR/CRi seen) - 2 P(SOS seen) among the patients followed 1 month (all
    # entered before the selection, so in their first arm)
    c = cut[:, 0]
    unseen = 0  # outcomes that happen, but after the selection's cut or dropout
    for t in range(40):
        followed = s.entry[t] + 1.0 <= c[t]
        for a, name in ((1, "low"), (2, "capped")):
            m = followed & (s.arm[t] == a)
            cr = seen(rec["response_day"], rec["best_response"], c[t])[t][m].sum()
            sos = seen(rec["hsct_day"], rec["sos_post_hsct"], c[t])[t][m].sum()
            unseen += rec["sos_post_hsct"][t][m].sum() - sos + rec["best_response"][t][m].sum() - cr
            assert ds.utility.sel(arm=name).values[t] == pytest.approx((cr - 2.0 * sos) / m.sum(), abs=1e-12)
    assert unseen > 0  # what the count by the cut changes
