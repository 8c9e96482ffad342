"""Strategy answers with Monte Carlo, parameter and structural uncertainty."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import xarray as xr
from conftest import CONFIGS

from simulator import load_scenario
from simulator.model.kernel import PARAMETER_NAMES
from simulator.sensitivity.distributions import load_ensemble
from simulator.sensitivity.strategies import compare_strategies, format_strategy_answers, value_of_information

SMALL = dict(patients=100, fitted_replicates=20, replicates=20, seed=3)


def _scenarios():
    return load_scenario(CONFIGS / "label_dosing.yaml"), {"two": load_scenario(CONFIGS / "two_cycles_then_stop.yaml")}


def test_one_point_ensemble_gives_the_fitted_answer():
    """An ensemble holding only the fitted values, simulated on the same patients as the fitted
    run (same replicates): its posterior interval is that single estimate, exactly."""
    label, others = _scenarios()
    point = xr.Dataset({"parameters": (("draw", "parameter"),
                                       [[getattr(label.parameters, n) for n in PARAMETER_NAMES]])},
                       coords={"draw": [0], "parameter": list(PARAMETER_NAMES),
                               "fitted": ("parameter", [True] * len(PARAMETER_NAMES))})
    ds = compare_strategies(label, others, ("os_24_months", "post_hsct_nrm"), ensemble=point, **SMALL)
    np.testing.assert_array_equal(ds.posterior_mean.values, ds.fitted.values)
    assert (ds.posterior_lower <= ds.fitted).all() and (ds.fitted <= ds.posterior_upper).all()
    assert ds.sizes["structure"] == 0


def test_combined_ensemble_answer_by_structure_and_direction():
    label, others = _scenarios()
    ds = compare_strategies(label, others, ("os_24_months", "post_hsct_nrm"), draws=24, per_structure=2, **SMALL)
    ens = load_ensemble(None)
    assert list(ds.structure.values) == [str(s) for s in ens.structure.values]
    np.testing.assert_allclose(ds.structure_weight.sum(), 1.0)
    # post-HSCT NRM: lower is better, so P(better) is the share of draws with a negative difference
    assert str(ds.better.sel(metric="post_hsct_nrm").values) == "lower"
    assert ds.posterior_lower.sel(metric="post_hsct_nrm") < ds.posterior_upper.sel(metric="post_hsct_nrm")
    text = format_strategy_answers(ds)
    assert "MC 95% CI: Monte Carlo error of the simulated patients only" in text
    assert "P(better)" in text and "pp" in text


CHILD = """
import json, sys
from simulator import load_scenario
from simulator.sensitivity.strategies import compare_strategies
label = load_scenario(sys.argv[1] + "/label_dosing.yaml")
two = load_scenario(sys.argv[1] + "/two_cycles_then_stop.yaml")
ds = compare_strategies(label, {"two": two}, ("os_24_months", "post_hsct_nrm"), draws=16, per_structure=1,
                        patients=60, fitted_replicates=10, replicates=10, seed=9)
print(json.dumps({k: ds[k].values.tolist() for k in ds.data_vars}))
"""


def test_whole_ensemble_answer_bit_identical_across_threads():
    out = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        proc = subprocess.run([sys.executable, "-c", CHILD, str(CONFIGS)], capture_output=True, text=True,
                              env=env, check=True)
        out.append(json.loads(proc.stdout.splitlines()[-1]))
    assert out[0].keys() == out[1].keys()
    for key in out[0]:  # NaN counts as equal to NaN here
        np.testing.assert_array_equal(np.array(out[0][key], dtype=float), np.array(out[1][key], dtype=float))


def _answers(diff: np.ndarray, inputs: np.ndarray, structures: list[str]) -> xr.Dataset:
    n = len(diff)
    return xr.Dataset(
        {"draw_difference": (("draw", "strategy", "metric"), diff.reshape(n, 1, 1)),
         "draw_inputs": (("draw", "parameter"), inputs)},
        coords={"draw": np.arange(n), "strategy": ["two"], "metric": ["os_24_months"], "unit": ("metric", ["1"]),
                "parameter": ["a", "b"], "draw_structure": ("draw", structures)})


def test_value_of_information_closed_forms():
    """D = a - 1/2 with a uniform: EVPI = E[max(a - 1/2, 0)] = 1/8; learning a is worth all of it
    (a bin edge sits at 1/2) less a noise floor that is tiny here, learning the unrelated b nothing
    once the noise floor is removed; structures absent."""
    rng = np.random.default_rng(1)
    a = (np.arange(4000) + 0.5) / 4000
    b = rng.random(4000)
    voi = value_of_information(_answers(a - 0.5, np.column_stack([a, b]), [""] * 4000), "two", "os_24_months",
                               bins=4)
    assert abs(float(voi.evpi) - 0.125) < 1e-9
    # the floor: E[max(mean of 1,000 random draws, 0)] ~ SD 0.29 / sqrt(1000) x 0.4 = 0.004 per bin
    assert abs(float(voi.evppi.sel(input="a")) - 0.125) < 0.01 and bool(voi.flips.sel(input="a"))
    assert 0.0 < float(voi.noise_floor.sel(input="a")) < 0.01
    # b: its raw value is noise of the same size as the floor, so what remains is within ~2 floors of 0
    assert 0.0 <= float(voi.evppi.sel(input="b")) < 0.01 and not bool(voi.flips.sel(input="b"))
    assert "model structure" not in voi.input.values


def test_value_of_information_of_the_structure():
    """Two equally likely structures, one says +1 pp, the other -1 pp: the expected difference is 0
    and knowing the structure is worth the whole EVPI (0.5), and the answer flips between them."""
    d = np.repeat([1.0, -1.0], 50)
    voi = value_of_information(_answers(d, np.zeros((100, 2)), ["A"] * 50 + ["B"] * 50), "two", "os_24_months")
    assert float(voi.expected_difference) == 0.0 and float(voi.evpi) == 0.5
    # no noise: permuted draws give groups of mixed sign; the floor is their E[max(mean, 0)] > 0
    assert 0.3 < float(voi.evppi.sel(input="model structure")) <= 0.5
    assert bool(voi.flips.sel(input="model structure"))
