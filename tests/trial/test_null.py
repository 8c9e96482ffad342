"""Type I error of the designs the engine's other null tests do not cover: dose selection,
several arms, stratified group-sequential looks, an overrunning final look.

Each runs the design under the null (every arm given the control's strategy or hazard) and
checks that the primary test rejects (in any arm) at most Z_TOL Monte Carlo standard errors
above the nominal one-sided alpha. Monte Carlo SE: with n independent trials rejecting with
probability a, the count is Binomial(n, a), so the rejection rate has SE sqrt(a (1 - a) / n),
evaluated at the nominal a (under H0 the rate should be a, or below it for a conservative
procedure such as Bonferroni's or Dunnett's after dropping an arm). Each also rejects in more
than a quarter of alpha, so a design that never rejects cannot pass.
"""

from __future__ import annotations

import math

from designs import LOG2, RPACT, SELECTION, STRATEGIES, write_design

from simulator.trial import load_design, rejections, simulate_trials

Z_TOL = 3.0  # Monte Carlo standard errors
ALPHA = 0.025  # one-sided, every design here


def _type_one_error(path) -> tuple[float, int]:
    design = load_design(path)
    assert design.null and design.alpha == ALPHA
    ds = simulate_trials(path)
    first = rejections(ds)[0]
    assert first.name == "type I error: primary test rejects (any arm)"
    return first.estimate, ds.sizes["trial"]


def _check(rate: float, n: int) -> None:
    se = math.sqrt(ALPHA * (1 - ALPHA) / n)
    assert ALPHA / 4 < rate <= ALPHA + Z_TOL * se, (rate, n, se)


def test_selection_null(tmp_path):
    """Dose selection at 6 months between two strategies (both given label dosing), OS log-rank at
    70 deaths with Dunnett's level: conservative once an arm is dropped."""
    path = write_design(tmp_path, SELECTION, null=True, n_trials=4000)
    _check(*_type_one_error(path))


def test_multi_arm_null(tmp_path):
    """Three experimental arms against one control, piecewise-exponential, two looks with
    O'Brien-Fleming spending on observed information, Bonferroni's alpha / 3 per comparison:
    the probability that any arm rejects."""
    arms = RPACT["arms"] + [{"name": f"other{i}", "piecewise_exponential": {"rates": [LOG2 / 8]}} for i in (1, 2)]
    path = write_design(tmp_path, RPACT, arms=arms, null=True, n_trials=4000, sample_size=800,
                        enrollment={"rates": [800 / 24], "random": False},
                        analyses=[{"events": 300}, {"events": 600}],
                        spending={"function": "obf", "information": "observed"})
    _check(*_type_one_error(path))


def test_stratified_group_sequential_null(tmp_path):
    """Strategy arms randomised in blocks within two stratification factors, stratified log-rank
    at three looks (60, 120, 180 deaths), Hwang-Shih-DeCani spending with non-binding futility."""
    path = write_design(tmp_path, STRATEGIES, null=True, n_trials=3000, sample_size=240,
                        analyses=[{"events": 60}, {"events": 120}, {"events": 180}], tests=[STRATEGIES["tests"][0]])
    _check(*_type_one_error(path))


def test_overrunning_final_look_null(tmp_path):
    """Observed-information Pocock spending, 200 planned deaths but a 30-month minimum follow-up
    (about 370 at the final look): the final look spends the rest of alpha at its actual information."""
    path = write_design(tmp_path, RPACT, null=True, n_trials=16_000,
                        analyses=[{"events": 100}, {"events": 200, "min_follow_up": 30}],
                        spending={"function": "pocock", "information": "observed"})
    _check(*_type_one_error(path))
