"""Parameter specs: method-of-moments distributions, domains, ensemble defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from simulator.sensitivity.distributions import (
    ParameterSpec,
    SpecError,
    load_ensemble,
    moment_arguments,
    parameter_domain,
    resolve,
    varied_parameters,
)

MOMENTS_RTOL = 1e-9


@pytest.mark.parametrize(("distribution", "mean", "sd"), [("normal", -2.9, 0.43), ("beta", 0.54, 0.05),
                                                          ("gamma", 0.34, 0.3), ("lognormal", 0.07, 0.016)])
def test_moment_conversion_reproduces_mean_and_sd(distribution, mean, sd):
    p = resolve(ParameterSpec(name="x", mean=mean, sd=sd, distribution=distribution), baseline=mean)
    rv = p.frozen()
    assert rv.mean() == pytest.approx(mean, rel=MOMENTS_RTOL)
    assert rv.std() == pytest.approx(sd, rel=MOMENTS_RTOL)
    low, high = p.range
    assert rv.cdf(low) == pytest.approx(0.025) and rv.cdf(high) == pytest.approx(0.975)


@pytest.mark.parametrize(("distribution", "mean", "sd", "key"), [("beta", 0.5, 0.6, "sd"), ("beta", 1.5, 0.1, "mean"),
                                                                 ("gamma", -1.0, 0.1, "mean"),
                                                                 ("lognormal", 0.0, 0.1, "mean")])
def test_impossible_moments_are_refused_naming_the_key(distribution, mean, sd, key):
    with pytest.raises(SpecError, match=rf"^{key}: a {distribution} distribution"):
        moment_arguments(distribution, mean, sd)


def test_distributions_are_truncated_to_the_domain():
    # nrm_shape lives in (0.05, 5]; a wide lognormal would put mass below 0.05
    p = resolve(ParameterSpec(name="nrm_shape", mean=0.1, sd=0.2, distribution="lognormal"), baseline=0.3,
                domain=parameter_domain("nrm_shape"))
    x = p.ppf(np.linspace(0.0, 1.0, 101))
    assert parameter_domain("nrm_shape") == (0.05, 5.0)
    assert x.min() >= 0.05 and x.max() <= 5.0 and np.all(np.diff(x) > 0)


def test_bounds_outside_the_domain_are_refused():
    with pytest.raises(SpecError, match=r"^high: 1\.2 is outside the parameter's domain \[0, 1\]"):
        resolve(ParameterSpec(name="hsct_proceed_prob", low=0.4, high=1.2), baseline=0.5,
                domain=parameter_domain("hsct_proceed_prob"))


@pytest.mark.parametrize(("doc", "needle"), [({"name": "x", "low": 1.0}, "give both low and high"),
                                             ({"name": "x", "low": 1.0, "high": 0.5}, "must be below high"),
                                             ({"name": "x", "low": 0.0, "high": 1.0, "sd": 1.0}, "not both"),
                                             ({"name": "x", "distribution": "uniform"}, "needs low and high"),
                                             ({"name": "x", "sd": -1.0}, "greater than 0")])
def test_inconsistent_specs_are_refused(doc, needle):
    with pytest.raises(ValidationError, match=needle):
        ParameterSpec.model_validate(doc)


def test_defaults_come_from_the_calibrated_ensemble():
    ens = load_ensemble()
    draws = ens["parameters"].sel(parameter="sos_intercept_post_hsct").values
    assert "sos_intercept_post_hsct" in varied_parameters(ens) and "sos_dual_alkylator" not in varied_parameters(ens)
    p = resolve(ParameterSpec(name="sos_intercept_post_hsct"), baseline=-2.9, ensemble=draws,
                default_distribution="normal")
    assert p.source == "ensemble" and p.baseline == -2.9
    assert dict(p.args) == pytest.approx({"loc": draws.mean(), "scale": draws.std(ddof=1)})
    with pytest.raises(SpecError, match="no ensemble draws of sos_dual_alkylator"):
        resolve(ParameterSpec(name="sos_dual_alkylator"), baseline=0.7, ensemble=None)
    # without a family, the domain decides: a probability gets a beta
    q = resolve(ParameterSpec(name="p", mean=0.3, sd=0.1), baseline=0.3, domain=(0.0, 1.0))
    assert q.distribution == "beta" and not math.isnan(q.range[0])
