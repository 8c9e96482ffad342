"""What a trial is worth before the dosing decision: EVSI by regression, beside EVPI; which driver it points to.

A trial over draws (:func:`simulator.trial.assurance.simulate_assurance`) gives, for each draw
``k`` of the posterior ensemble, its true benefit ``b_k`` (experimental minus control, per
patient) and ``M`` simulated trials with their summaries ``x_km`` (each test's estimate at
the stop). The expected value of sample information by the regression method (Strong,
Oakley, Brennan & Breeze 2015) fits ``g(x) ~ E[b | x]`` by least squares on an additive cubic
B-spline basis of the summaries (a generalised additive model without a penalty) and gives

    EVSI = mean_km max(g(x_km), 0) - max(mean_k b_k, 0),

the gain from choosing after seeing the trial rather than now. Finitely many draws let the
fit follow noise, which makes the estimate positive even for a useless trial; the mean of the
same estimate over permutations of the draws (the noise floor) is subtracted, as for the
partial EVPI of :func:`simulator.sensitivity.strategies.value_of_information`. Beside it:
EVPI = mean max(b_k, 0) - max(mean b_k, 0) and the partial EVPI of the model structure and of
the NRM driver (what knowing them would be worth).

The same regression of the indicator of each NRM driver on the summaries gives the
probability of each driver after the trial (:func:`driver_discrimination`): the share of
simulated trials whose most probable driver is the true one says whether the design tells
the mechanisms apart.

:func:`ensemble_draws` reads a calibrated ensemble into the trial layer's draws.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.interpolate import BSpline

from simulator.analysis.labels import NRM_DRIVER_TITLES
from simulator.sensitivity.distributions import load_ensemble, varied_parameters
from simulator.sensitivity.strategies import VOI_SEED, partial_evpi
from simulator.trial.assurance import Z_95, Draws, parameter_draws, resampled_figure, resampled_means
from simulator.trial.run import TrialArrays
from simulator.trial.summary import Figure

SPLINE_KNOTS = 4  # interior knots per summary (at its quantiles): cubic B-splines with 8 columns each
EVSI_PERMUTATIONS = 20  # permutations of the draws for the noise floor of the EVSI
EVSI_RESAMPLES = 40  # resampled trial indices for the EVSI's Monte Carlo interval
GRAM_TOLERANCE = 1e-12  # relative eigenvalue of the Gram matrix below which a basis direction is dropped
STRUCTURE_PERMUTATIONS = 200  # permutations for the partial EVPI's noise floor (cheap)


def ensemble_draws(ta: TrialArrays, ensemble: str | xr.Dataset | None = None, k: int | None = None) -> Draws:
    """``k`` draws (evenly spaced; default all) of a calibrated ensemble for the design's strategy arms.

    Each draw sets the ensemble's uncertain parameters (:func:`~simulator.sensitivity.distributions.
    varied_parameters`) in every arm's model; the others keep the arm's values. The draws'
    structures come from ``draw_structure`` ("" without it).
    """
    ens = load_ensemble(ensemble)
    names = [str(n) for n in ens["parameter"].values]
    varied = varied_parameters(ens)
    columns = [names.index(n) for n in varied]
    structure = ([str(s) for s in ens["draw_structure"].values] if "draw_structure" in ens.coords
                 else [""] * ens.sizes["draw"])
    source = ensemble if isinstance(ensemble, str) else "the shipped posterior ensemble" if ensemble is None \
        else "an ensemble"
    return parameter_draws(ta, varied, ens["parameters"].values[:, columns], structure, k, str(source))


# ---------------------------------------------------------------------------------------
# regression
# ---------------------------------------------------------------------------------------


def spline_basis(x: np.ndarray, knots: int = SPLINE_KNOTS) -> np.ndarray:
    """Additive cubic B-spline basis: for each column of ``x`` (rows, p) its B-splines with interior
    knots at its quantiles, and a constant column. Columns with one value add nothing."""
    blocks = [np.ones((x.shape[0], 1))]
    for j in range(x.shape[1]):
        v = x[:, j]
        lo, hi = float(v.min()), float(v.max())
        if hi <= lo:
            continue
        inner = np.unique(np.quantile(v, np.linspace(0, 1, knots + 2)[1:-1]))
        inner = inner[(inner > lo) & (inner < hi)]
        t = np.concatenate([[lo] * 4, inner, [hi] * 4])
        blocks.append(BSpline.design_matrix(np.clip(v, lo, hi), t, 3).toarray())
    return np.hstack(blocks)


def regression_fit(basis: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares fitted values of ``y`` (rows, or rows x columns: several at once) on ``basis``.

    The projection onto the basis' column space through the eigenvectors of its Gram matrix
    (directions with eigenvalues below ``GRAM_TOLERANCE`` of the largest dropped, so a
    rank-deficient basis is fine); a small eigenproblem instead of an SVD of the whole basis,
    which is slow when the BLAS threads compete with numba's.
    """
    w, v = np.linalg.eigh(basis.T @ basis)
    keep = w > GRAM_TOLERANCE * w[-1]
    coef = v[:, keep] @ ((v[:, keep].T @ (basis.T @ y)) / (w[keep][:, None] if y.ndim > 1 else w[keep]))
    return basis @ coef


def trial_summaries(ds: xr.Dataset) -> np.ndarray:
    """(draw, trial, p): each test's estimate at the stop (log for hazard ratios), or its z where no
    trial has an estimate (MaxCombo); an undefined value takes the summary's median."""
    est = ds.estimate.values.copy()
    ratio = ds.ratio.values
    with np.errstate(divide="ignore", invalid="ignore"):
        est[..., ratio] = np.log(est[..., ratio])
    est[~np.isfinite(est)] = np.nan
    none = np.all(np.isnan(est), axis=(0, 1))
    est[..., none] = ds.z.values[..., none]
    est[~np.isfinite(est)] = np.nan
    keep = ~np.all(np.isnan(est), axis=(0, 1))
    est = est[..., keep]
    median = np.nanmedian(est.reshape(-1, est.shape[-1]), axis=0)
    return np.where(np.isnan(est), median, est)


def _gain(fitted: np.ndarray, y_mean: float) -> float:
    return float(np.mean(np.maximum(fitted, 0.0)) - max(y_mean, 0.0))


def regression_evsi(benefit: np.ndarray, summaries: np.ndarray, permutations: int = EVSI_PERMUTATIONS,
                    resamples: int = 0, seed: int = VOI_SEED) -> dict[str, float]:
    """EVSI by regression of each draw's benefit on its trials' summaries.

    Parameters
    ----------
    benefit : numpy.ndarray
        (K,) each draw's incremental benefit (positive = the experimental arm is better).
    summaries : numpy.ndarray
        (K, M, p) the summaries of the M trials simulated under each draw.
    permutations : int
        Permutations of the draws whose mean estimate is the noise floor.
    resamples : int
        Refits on each draw's trials resampled (draws fixed): their SD gives a 95% Monte Carlo
        interval around the estimate (0: none).

    Returns
    -------
    dict
        ``evsi`` (noise floor removed, at least 0), ``raw``, ``noise_floor``, and with
        ``resamples`` its ``lower`` and ``upper`` limits, in the unit of ``benefit``.
    """
    n_draws, n_trials = summaries.shape[:2]
    basis = spline_basis(summaries.reshape(n_draws * n_trials, -1))
    mean = float(benefit.mean())
    y = np.repeat(benefit, n_trials)
    raw = _gain(regression_fit(basis, y), mean)
    rng = np.random.default_rng(seed)
    shuffled = np.stack([np.repeat(benefit[rng.permutation(n_draws)], n_trials) for _ in range(permutations)], 1)
    floor = float(np.mean([_gain(f, mean) for f in regression_fit(basis, shuffled).T])) if n_draws > 1 else 0.0
    out = {"evsi": max(raw - floor, 0.0), "raw": raw, "noise_floor": floor}
    if resamples:
        cells = np.arange(n_draws * n_trials).reshape(n_draws, n_trials)
        again = []
        for _ in range(resamples):  # each draw's trials resampled on their own (each draw has its own patients)
            rows = np.take_along_axis(cells, rng.integers(0, n_trials, (n_draws, n_trials)), axis=1).ravel()
            again.append(max(_gain(regression_fit(basis[rows], y[rows]), mean) - floor, 0.0))
        # a normal interval from the resamples' SD: resampled rows repeat, which the fit follows, so the
        # resamples' own quantiles sit above the estimate
        half = Z_95 * float(np.std(again, ddof=1))
        out["lower"], out["upper"] = max(out["evsi"] - half, 0.0), out["evsi"] + half
    return out


def evpi(benefit: np.ndarray) -> float:
    """EVPI = mean max(b, 0) - max(mean b, 0)."""
    return float(np.mean(np.maximum(benefit, 0.0)) - max(benefit.mean(), 0.0))


def evpi_half_width(benefit: np.ndarray, se: np.ndarray, n: int = EVSI_RESAMPLES * 5, seed: int = VOI_SEED) -> float:
    """Half-width of a 95% Monte Carlo interval of the EVPI from the truth's error per draw (``se``):
    the SD of the EVPI of ``benefit + se * N(0, 1)``."""
    rng = np.random.default_rng(seed)
    return Z_95 * float(np.std([evpi(benefit + se * rng.standard_normal(benefit.size)) for _ in range(n)], ddof=1))


def value_of_trial(ds: xr.Dataset, resamples: int = EVSI_RESAMPLES) -> xr.Dataset:
    """EVSI of the design (first experimental arm vs control), EVPI and the partial EVPIs, per patient.

    The Monte Carlo interval of the EVSI comes from refits on each draw's trials resampled (draws
    fixed); the truth's own error per draw is in the trial Dataset (``true_benefit_se``).

    Returns
    -------
    xarray.Dataset
        Scalars ``evsi``, ``evsi_lower``, ``evsi_upper``, ``evsi_noise_floor``, ``evpi`` (with
        ``evpi_lower``, ``evpi_upper`` from the truth's Monte Carlo error), ``expected_benefit``;
        ``evppi`` over ``input`` ("model structure", "NRM driver" where the draws carry
        structures), in the benefit's unit (fractions).
    """
    benefit = ds.true_benefit.isel(experimental=0).values
    main = regression_evsi(benefit, trial_summaries(ds), resamples=resamples)
    half = evpi_half_width(benefit, ds.true_benefit_se.isel(experimental=0).values)
    inputs, values = [], []
    perms = [np.random.default_rng(VOI_SEED + i).permutation(len(benefit)) for i in range(STRUCTURE_PERMUTATIONS)]
    for coord, name in (("structure", "model structure"), ("nrm_driver", "NRM driver")):
        labels = ds[coord].values
        if len(set(labels)) > 1:
            inputs.append(name)
            values.append(partial_evpi(benefit, np.unique(labels, return_inverse=True)[1], perms)[0])
    return xr.Dataset(
        {"evsi": ((), main["evsi"]), "evsi_lower": ((), main["lower"]), "evsi_upper": ((), main["upper"]),
         "evsi_noise_floor": ((), main["noise_floor"]), "evpi": ((), evpi(benefit)),
         "evpi_lower": ((), max(evpi(benefit) - half, 0.0)), "evpi_upper": ((), evpi(benefit) + half),
         "expected_benefit": ((), float(benefit.mean())), "evppi": ("input", values)},
        coords={"input": inputs},
        attrs={"method": "regression on an additive cubic B-spline basis of the trial's estimates "
                         "(Strong et al. 2015), permutation noise floor removed",
               "benefit": ds.attrs["benefit"], "units": "1 (fraction of patients; x100: pp per patient)"})


def format_value_of_trial(v: xr.Dataset) -> str:
    """Two lines: the EVSI with its Monte Carlo interval, beside EVPI and the partial EVPIs."""
    pp = 100.0
    parts = [f"{name} {pp * float(x):.2f}" for name, x in zip(v.input.values, v.evppi.values)]
    return (f"Value of this trial's information for the decision (pp of {v.attrs['benefit']} per patient): "
            f"EVSI {pp * float(v.evsi):.2f} ({pp * float(v.evsi_lower):.2f} to {pp * float(v.evsi_upper):.2f}, "
            f"95% MC CI), beside EVPI {pp * float(v.evpi):.2f} ({pp * float(v.evpi_lower):.2f} to "
            f"{pp * float(v.evpi_upper):.2f})"
            + (f" and the partial EVPI of knowing the {'; '.join(parts)}" if parts else "") + ".")


# ---------------------------------------------------------------------------------------
# which NRM driver the trial points to
# ---------------------------------------------------------------------------------------


def driver_discrimination(ds: xr.Dataset) -> list[Figure]:
    """How often the trial's result points to the true NRM driver.

    P(driver | summaries) by regressing each driver's indicator on the summaries' spline basis
    (fitted values clipped at 0 and normalised); the trial points to its most probable driver.
    Beside it, guessing the driver most frequent in the ensemble without a trial. Intervals:
    each draw's trials resampled, the fit held fixed.
    """
    labels = ds.nrm_driver.values
    drivers = sorted(set(labels))
    if len(drivers) < 2:
        return []
    x = trial_summaries(ds)
    n_draws, n_trials = x.shape[:2]
    basis = spline_basis(x.reshape(n_draws * n_trials, -1))
    indicator = np.stack([np.repeat((labels == d).astype(float), n_trials) for d in drivers], axis=1)
    prob = regression_fit(basis, indicator).clip(0.0, None)
    prob /= np.maximum(prob.sum(axis=1, keepdims=True), 1e-12)
    truth = np.repeat(np.searchsorted(drivers, labels), n_trials)
    right = (prob.argmax(axis=1) == truth).reshape(n_draws, n_trials)
    own = prob[np.arange(truth.size), truth].reshape(n_draws, n_trials)
    prior = max(np.mean(labels == d) for d in drivers)

    def fig(name: str, values: np.ndarray, rows: np.ndarray, note: str = "") -> Figure:
        return resampled_figure(name, float(values[rows].mean()), resampled_means(values[rows]).mean(axis=0),
                                note=note)

    every = np.ones(n_draws, dtype=bool)
    out = [fig("P(the result points to the true NRM driver)", right, every,
               f"without a trial, the most frequent driver: {prior:.0%}"),
           fig("mean probability of the true driver after the trial", own, every)]
    for d in drivers:
        out.append(fig(f"  ... points to it if {NRM_DRIVER_TITLES.get(d, d)}", right, labels == d,
                       f"{np.mean(labels == d):.0%} of draws"))
    return out

