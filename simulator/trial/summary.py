"""Operating characteristics of a simulated design, with Monte Carlo confidence intervals.

Everything is read off the Dataset of :func:`simulator.trial.simulate_trials` (and, for
bias, coverage and correct selection, the truth of :mod:`simulator.trial.truth`):

* rejection (power, or type I error of a null run) of every test, and of the primary test by
  look, with futility stops by look;
* expected sample size, events and duration at the stop;
* median observed estimate, bias and CI coverage (on the log scale for hazard ratios), at
  the look where each trial stopped, against the truth at that look;
* with dose selection: P(select each arm), P(correct selection) (the arm with the best true
  utility) and the winner's-curse bias of the selected arm's interim utility;
* analytic figures beside the simulated ones: the boundaries, Schoenfeld's events and the
  power the boundaries give under the true hazard ratio.

Proportions carry Clopper-Pearson intervals, means Student-t intervals, medians
order-statistic intervals; all are Monte Carlo uncertainty of the finite number of trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special  # normal quantiles as scipy.stats.norm's, bit for bit (0.8 s faster to import)

from simulator.analysis.outcomes import clopper_pearson, median_ci
from simulator.analysis.trial_metrics import mc_summary
from simulator.trial import engine as E
from simulator.trial.boundaries import GRID_R, crossing_probabilities_nb

RATIO_ESTIMANDS = ("logrank", "cox")  # estimates that are hazard ratios: bias on the log scale


@dataclass(frozen=True)
class Figure:
    """One operating characteristic: estimate and Monte Carlo CI, unit, what it is."""

    name: str
    estimate: float
    lower: float
    upper: float
    unit: str
    note: str = ""


def _rate(hits: np.ndarray, name: str, note: str = "") -> Figure:
    k, n = int(np.sum(hits)), int(np.size(hits))
    lo, hi = clopper_pearson(k, n)
    return Figure(name, k / n if n else np.nan, lo, hi, "%", note)


def _mean(values: np.ndarray, name: str, unit: str, note: str = "") -> Figure:
    est, lo, hi, _ = mc_summary(np.asarray(values, dtype=float))
    return Figure(name, float(est), float(lo), float(hi), unit, note)


def at_stop(ds: xr.Dataset, var: str) -> xr.DataArray:
    """``var`` at the look where each trial stopped."""
    return ds[var].isel(look=(ds.stop_look - 1).clip(0))


def rejected(ds: xr.Dataset) -> xr.DataArray:
    """(trial, test): the test crossed its efficacy bound (favouring experimental) at some look."""
    return (ds.decision == E.EFFICACY).any("look")


def primary_tests(ds: xr.Dataset) -> list[str]:
    """Labels of the primary test, one per experimental arm."""
    return [str(t) for t in ds.test.values if ds.test_name.sel(test=t).item() == ds.attrs["primary"]]


def operating_characteristics(ds: xr.Dataset, truth: xr.Dataset | None = None) -> list[Figure]:
    """The operating characteristics of a simulated design.

    Parameters
    ----------
    ds : xarray.Dataset
        Result of :func:`simulator.trial.simulate_trials`.
    truth : xarray.Dataset, optional
        Result of :func:`simulator.trial.truth.true_values`: adds bias, coverage and correct
        selection.

    Returns
    -------
    list of Figure
        Rates in ``%`` are fractions (0..1); times in months.
    """
    prim = primary_tests(ds)
    out = rejections(ds)
    stop = ds.stop_look.values
    first = ds.decision.sel(test=prim)
    for k in ds.look.values:
        here = stop == k
        eff = ((first.sel(look=k) == E.EFFICACY).any("test").values | (first.sel(look=k) == E.HARM).any("test").values)
        fut = (first.sel(look=k) == E.FUTILITY).all("test").values
        out.append(_rate(here & eff, f"stop at look {k} for efficacy"))
        if np.isfinite(ds.futility_bound.sel(look=k).item()) and k < ds.sizes["look"]:
            out.append(_rate(here & fut, f"stop at look {k} for futility"))
    out.append(_mean(at_stop(ds, "enrolled").values, "expected sample size", "patients"))
    done = at_stop(ds, "decision").sel(test=prim) != E.NOT_REACHED
    events = at_stop(ds, "events").sel(test=prim).where(done).max("test")
    out.append(_mean(events.values, "expected events at the stop (primary test's two arms)", "events"))
    out.append(_mean(at_stop(ds, "cut_time").values, "expected duration", "months",
                     "first patient in to the last look's cut-off"))
    for t in ds.test.values:
        est = at_stop(ds, "estimate").sel(test=t).values
        est = est[np.isfinite(est)]
        if est.size == 0:
            continue
        unit = str(ds.estimate_units.sel(test=t).item())
        m, lo, hi = median_ci(est)
        out.append(Figure(f"median estimate at stop: {t}", m, lo, hi, unit, str(ds.estimand.sel(test=t).item())))
        if truth is not None:
            out += _bias_coverage(ds, truth, str(t))
    if "selected" in ds:
        out += _selection(ds, truth)
    return out


def rejections(ds: xr.Dataset) -> list[Figure]:
    """How often the primary test (any arm) and each test reject: the power, or of a null run
    (``attrs['null']``, e.g. :func:`simulator.trial.run.null_arrays`) the type I error."""
    what = "type I error" if ds.attrs["null"] else "power"
    rej = rejected(ds)
    out = [_rate(rej.sel(test=primary_tests(ds)).any("test").values, f"{what}: primary test rejects (any arm)",
                 f"{ds.attrs['primary']}, one-sided alpha {ds.attrs['alpha'] / ds.attrs['sided']:g} per side")]
    return out + [_rate(rej.sel(test=t).values, f"{what}: {t}") for t in ds.test.values]


def _bias_coverage(ds: xr.Dataset, truth: xr.Dataset, t: str) -> list[Figure]:
    """Bias and CI coverage of each trial's estimate at its stopping look, against that look's truth."""
    by_look = truth.true_estimate.sel(test=t).values
    true = by_look[(ds.stop_look.values - 1).clip(0)]
    est = at_stop(ds, "estimate").sel(test=t).values
    lo = at_stop(ds, "ci_lower").sel(test=t).values
    hi = at_stop(ds, "ci_upper").sel(test=t).values
    ok = np.isfinite(est) & np.isfinite(true)
    if not ok.any():
        return []
    ratio = ds.test_type.sel(test=t).item() in RATIO_ESTIMANDS
    err = np.log(est[ok]) - np.log(true[ok]) if ratio else est[ok] - true[ok]
    final = by_look[-1]
    out = [_mean(err, f"bias: {t}", "log HR" if ratio else str(ds.estimate_units.sel(test=t).item()),
                 f"truth at each trial's stopping look; at the final look {final:.4g}")]
    if np.isfinite(lo[ok]).any():
        out.append(_rate((lo[ok] <= true[ok]) & (true[ok] <= hi[ok]), f"CI coverage: {t}",
                         f"nominal {100 * (1 - 2 * ds.attrs['alpha'] / ds.attrs['sided']):g}%"))
    return out


def _selection(ds: xr.Dataset, truth: xr.Dataset | None) -> list[Figure]:
    control = ds.attrs["control"]
    exp = [a for a in ds.arm.values if a != control]
    sel = ds.selected.sel(arm=exp)
    out = [_rate(sel.sel(arm=a).values == 1, f"P(select {a})") for a in exp]
    if truth is None:
        return out
    true_u = truth.true_utility.sel(arm=exp)
    order = np.argsort(-true_u.values)
    if true_u.values[order[0]] > true_u.values[order[1]]:  # under the null all arms tie: none is correct
        best = exp[order[0]]
        out.append(_rate(sel.sel(arm=best).values == 1, "P(correct selection)", f"true best utility: {best}"))
    chosen = (sel == 1) & (sel.sum("arm") == 1)
    bias = (ds.utility.sel(arm=exp) - true_u).where(chosen).sum("arm", min_count=1).values
    out.append(_mean(bias[np.isfinite(bias)], "winner's curse: selected arm's interim utility - truth", "1"))
    return out


def analytic(ds: xr.Dataset, truth: xr.Dataset | None = None) -> list[Figure]:
    """Analytic figures: the bounds, and with the truth Schoenfeld's events and the power they give.

    Schoenfeld: D = (z_alpha + z_beta)^2 / (r (1 - r) log(HR)^2) events for power 1 - beta
    (r: share randomised to the experimental arm); the group-sequential power is the crossing
    probability of the planned bounds at the planned events under drift
    sqrt(r (1 - r)) |log HR| per event (recursive integration).
    """
    out = []
    for k in ds.look.values:
        b = ds.efficacy_bound.sel(look=k).item()
        out.append(Figure(f"efficacy bound, look {k}", b, np.nan, np.nan, "z",
                          f"nominal one-sided p {special.ndtr(-b):.5f}"))
        f = ds.futility_bound.sel(look=k).item()
        if np.isfinite(f):
            out.append(Figure(f"futility bound, look {k}", f, np.nan, np.nan, "z"))
    if truth is None:
        return out
    import json

    design = json.loads(ds.attrs["design"])
    looks = design["analyses"]
    prim = primary_tests(ds)[0]
    hr_tests = [t for t in ds.test.values if ds.test_type.sel(test=t).item() == "cox"
                and ds.experimental.sel(test=t).item() == ds.experimental.sel(test=prim).item()]
    if not hr_tests or any(a["events"] is None for a in looks):
        return out
    hr = float(truth.true_estimate.sel(test=hr_tests[0]).isel(look=-1))
    ratios = {a["name"]: a["ratio"] for a in design["arms"]}
    r = ratios[str(ds.experimental.sel(test=prim).item())]
    share = r / (r + ratios[ds.attrs["control"]])
    alpha = ds.attrs["alpha_per_comparison"]
    for power in (0.8, 0.9):
        d = (-special.ndtri(alpha) - special.ndtri(1 - power)) ** 2 / (share * (1 - share) * np.log(hr) ** 2)
        out.append(Figure(f"Schoenfeld events for {power:.0%} power (fixed design)", d, np.nan, np.nan, "events",
                          f"true Cox HR {hr:.3f}"))
    info = np.array([a["events"] for a in looks], dtype=float)
    theta = np.sqrt(share * (1 - share)) * -np.log(hr)
    up, _ = crossing_probabilities_nb(info, ds.efficacy_bound.values.astype(float),
                                      ds.futility_bound.values.astype(float), theta, GRID_R)
    out.append(Figure("analytic power (Schoenfeld drift, planned bounds and events)", float(up.sum()),
                      np.nan, np.nan, "%", f"true Cox HR {hr:.3f}; proportional hazards assumed"))
    return out


WIDTH = 100  # characters: a note that would pass it goes on a line of its own


def _decimals(half_width: float) -> int:
    """Decimals that show a Monte Carlo half-width to two significant digits (0 to 4)."""
    if not np.isfinite(half_width) or half_width <= 0:
        return 1
    return int(min(max(1 - math.floor(math.log10(half_width)), 0), 4))


def format_figures(figures: list[Figure], title: str) -> str:
    """A plain-text table: rates in %, every simulated figure with its 95% Monte Carlo CI in parentheses,
    estimate and interval to the same decimals (two significant digits of the CI's half-width); a
    figure that does not vary over trials (a fixed sample size) without an interval."""
    lines = [title]
    width = max(len(f.name) for f in figures) + 2
    for f in figures:
        scale = 100.0 if f.unit == "%" else 1.0
        unit = {"%": "%", "1": ""}.get(f.unit, f" {f.unit}")
        est, lo, hi = f.estimate * scale, f.lower * scale, f.upper * scale
        if np.isnan(f.lower):
            value = f"{est:.4g}{unit}"
        elif lo == hi == est:
            value = f"{est:.4g}{unit} (every trial)"
        else:
            d = _decimals((hi - lo) / 2)
            value = f"{est:.{d}f}{unit} ({lo:.{d}f} to {hi:.{d}f})"
        line = f"  {f.name:<{width}}{value}"
        note = f"  [{f.note}]" if f.note else ""
        lines += [line + note] if len(line + note) <= WIDTH or not note else [line, f"    {note.strip()}"]
    return "\n".join(lines)


def verdict(ds: xr.Dataset, figures: list[Figure], planned: list[Figure], null: list[Figure] | None = None) -> str:
    """What the primary test does and, for a power run, whether the design is powered; with a
    null run, its type I error beside the power.

    ``figures``: :func:`operating_characteristics`; ``planned``: :func:`analytic` (with the
    truth); ``null``: :func:`rejections` of the same design's null run.
    """
    first = figures[0]
    rate = _percent(first, 1)
    alpha = 100 * ds.attrs["alpha"] / ds.attrs["sided"]
    if ds.attrs["null"]:
        return (f"Under the null (every arm gets the control's strategy) the primary test rejects in {rate} of "
                f"trials; nominal {alpha:g}% per side.")
    events = next((f for f in planned if f.name.startswith("Schoenfeld events for 80%")), None)
    need = ""
    if events is not None:
        hr = float(events.note.split("HR ")[1])
        need = (f"; the true hazard ratio ({hr:.3f}) needs about {events.estimate:,.0f} events for 80% power in a "
                "fixed design" if hr < 1 else
                f"; the true hazard ratio ({hr:.3f}) does not favour the experimental arm, so no number of events "
                "gives this one-sided test power")
    word = "Powered" if first.lower >= 0.8 else ("Underpowered" if first.upper < 0.8 else "Power uncertain")
    type_one = "" if null is None else (
        f" Type I error {_percent(null[0], 2, f'; nominal {alpha:g}% per side')}, from the same trials with every "
        "arm given the control's strategy.")
    return f"{word}: the primary test rejects in {rate} of trials{need}.{type_one}"


def _percent(f: Figure, decimals: int, note: str = "") -> str:
    """A rate and its Monte Carlo CI in percent."""
    return (f"{100 * f.estimate:.{decimals}f}% ({100 * f.lower:.{decimals}f} to {100 * f.upper:.{decimals}f}, "
            f"95% MC CI{note})")
