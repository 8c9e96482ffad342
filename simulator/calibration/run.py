"""The whole calibration run: fit, sample, write the parameter files and the ensemble.

:func:`calibrate` fits one model structure (the shipped default) carefully;
:func:`calibrate_structures` fits every structure of :mod:`simulator.model.structure`
the same way at a smaller size, weights them by their evidence (the Laplace approximation
of the marginal likelihood of the fitted figures at each structure's fit; the sequential
Monte Carlo sampler's estimate is reported beside it) and writes a combined ensemble that
carries the structure of each draw.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from simulator.calibration.figures import all_figures
from simulator.calibration.fit import default_setting, fit, identification
from simulator.calibration.posterior import ensemble_dataset, sample_posterior
from simulator.model.config import Parameters, default_config_dir
from simulator.model.files import load_parameters
from simulator.model.structure import ModelStructure, all_structures
from simulator.runtime.scaleout import scheduler
from simulator.runtime.storage import atomic_path, write_netcdf


# ----------------------------------------------------------------------------- files
def write_parameter_file(template: Path, values: dict[str, float], out: Path, header: str,
                         structure: ModelStructure) -> Path:
    """Copy the documented ``template`` with ``values`` substituted, keeping its comments.

    The file names the model structure the values belong to (``model:``).
    """
    s = structure
    lines = [f"model: {{nrm_driver: {s.nrm_driver}, relapse_on_treatment: {s.relapse_on_treatment}, "
             f"prior_hsct_transplant: {s.prior_hsct_transplant}}}"]
    for line in template.read_text().splitlines():
        if line.startswith("# STATUS:"):  # the template's status; ``header`` gives the new one
            continue
        m = re.match(r"^(\w+):(\s*)([^#\s]+)(\s*)(#.*)?$", line)
        if m and m.group(1) in values:
            name, sp, _, sp2, comment = m.groups()
            new = f"{name}:{sp}{values[name]:.6g}"
            column = len(name) + 1 + len(sp) + len(m.group(3)) + len(sp2)  # where the comment stood
            line = f"{new:<{column}}{' ' if len(new) >= column else ''}{comment}" if comment else new
        lines.append(line)
    with atomic_path(out) as tmp:
        tmp.write_text(header + "\n".join(lines) + "\n")
    return out


# ----------------------------------------------------------------------------- the whole run
@dataclass(frozen=True)
class CalibrationSize:
    """How hard the calibration works."""

    fit_patients: int
    starts: int
    max_nfev: int
    smc_patients: int
    particles: int  # the ensemble size
    moves: int  # Metropolis moves per tempering step


FULL = CalibrationSize(fit_patients=50_000, starts=3, max_nfev=60, smc_patients=30_000, particles=300, moves=2)
QUICK = CalibrationSize(fit_patients=10_000, starts=1, max_nfev=4, smc_patients=5_000, particles=200, moves=1)


STRUCTURES = CalibrationSize(fit_patients=20_000, starts=1, max_nfev=40, smc_patients=10_000, particles=128,
                              moves=1)
COMBINED_DRAWS = 400  # draws of the combined ensemble, shared among structures by weight
EVIDENCE_SEEDS = (20251125, 1, 2, 3)  # patient seeds of the structure fits: the first also samples posteriors


def _header(kind: str, seed: int, cost: float, structure: ModelStructure) -> str:
    return (f"# STATUS: FITTED by `inosim calibrate` ({kind}, seed {seed}) from starting.yaml under model "
            f"structure {structure.id}; -log-likelihood {cost:.2f}.\n"
            "# STATUS: Do not edit by hand: edit starting.yaml and re-run `inosim calibrate`.\n")


def fit_structure(structure: ModelStructure, size: CalibrationSize, seed: int, log=print,
                  warm: Parameters | None = None) -> dict:
    """Fit one model structure and sample its posterior.

    The prior is centred on ``starting.yaml`` (the structure parameters it does not use
    at 0); the fit starts from ``warm`` (default: the same values).

    Returns
    -------
    dict
        ``values`` (fitted, by name), ``parameters`` (the full fitted set), ``fit``
        (:func:`~simulator.calibration.fit.fit`'s result), ``posterior``
        (:func:`~simulator.calibration.posterior.sample_posterior`'s result) and
        ``seconds``.
    """
    t0 = time.perf_counter()
    start = load_parameters(default_config_dir() / "parameters" / "starting.yaml")
    centre = default_setting(0, seed, start, structure).pooled.parameters
    first = centre if warm is None else warm.model_copy(
        update={n: getattr(centre, n) for n in structure.used - ModelStructure().used})  # slopes warm has not fitted
    setting = default_setting(size.fit_patients, seed, first, structure)
    log(f"[{structure.id}] fitting {len(setting.fitted)} parameters to {sum(f.fitted for f in all_figures())} "
        f"figures ({size.fit_patients:,} patients per evaluation)")
    result = fit(setting, size.starts, size.max_nfev, log=log, prior_centre=centre)
    values = {p.name: p.from_free(float(z)) for p, z in zip(setting.fitted, result["free"])}
    fitted = setting.pooled.parameters.model_copy(update=values)
    log(f"[{structure.id}] sampling the posterior: SMC with {size.particles} particles, "
        f"{size.smc_patients:,} patients each")
    post = sample_posterior(default_setting(size.smc_patients, seed, fitted, structure), result["free"],
                            result["jac"], size.particles, size.moves, prior_centre=centre, seed=seed, log=log)
    return {"values": values, "parameters": fitted, "fit": result, "posterior": post,
            "seconds": time.perf_counter() - t0}


def _info(post: dict, size: CalibrationSize, seed: int, cost: float) -> dict:
    return {"method": "sequential Monte Carlo with likelihood tempering from the Laplace approximation",
            "tempering_steps": post["steps"], "acceptance_rate": post["acceptance"],
            "unique_draws": post["unique"], "patients_per_evaluation": size.smc_patients, "seed": seed,
            "fit_neg_log_likelihood": cost, "log_evidence_smc": post["log_evidence"]}


def calibrate(out_dir: str | Path, size: CalibrationSize = FULL, seed: int = 20251125, log=print) -> dict:
    """Fit the default model structure from the starting values; write ``default.yaml`` and ``posterior.nc``.

    Returns
    -------
    dict
        Paths written, the fitted values, the cost and timings.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    structure = ModelStructure()
    run = fit_structure(structure, size, seed, log)
    post, result = run["posterior"], run["fit"]
    kind = "quick" if size is QUICK else "full"
    template = default_config_dir() / "parameters" / "starting.yaml"
    param_path = write_parameter_file(template, run["parameters"].model_dump(), out_dir / "default.yaml",
                                      _header(kind, seed, result["cost"], structure), structure)
    fitted_figures = [f for f in all_figures() if f.fitted]
    (out_dir / "identification.txt").write_text(
        identification(result["jac"], fitted_figures, post["fitted"]) + "\n")
    ens = ensemble_dataset(post["free"], run["parameters"], post["fitted"], _info(post, size, seed, result["cost"]))
    ens_path = write_netcdf(ens, out_dir / "posterior.nc")
    log(f"Done in {run['seconds']:.0f} s; {post['steps']} tempering steps, acceptance "
        f"{post['acceptance']:.2f}, {post['unique']} distinct sets in the ensemble of {size.particles}")
    return {"parameters": param_path, "posterior": ens_path, "values": run["values"], "seconds": run["seconds"],
            "cost": result["cost"]}


def structure_weights(log_evidence: np.ndarray) -> np.ndarray:
    """Posterior model probabilities from log evidences under equal prior weights."""
    w = np.exp(log_evidence - np.max(log_evidence))
    return w / w.sum()


def draw_counts(weights: np.ndarray, total: int) -> np.ndarray:
    """Draws per structure proportional to ``weights`` (largest remainder), summing to ``total``."""
    exact = weights * total
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


def combined_ensemble(ensembles: list[xr.Dataset], structures: list[ModelStructure], log_evidence: np.ndarray,
                      log_evidence_smc: np.ndarray, total: int = COMBINED_DRAWS,
                      seeds: tuple[int, ...] | None = None) -> xr.Dataset:
    """One ensemble over structures: draws of each structure's posterior in proportion to its weight.

    Returns
    -------
    xarray.Dataset
        ``parameters`` (draw, parameter) with a ``structure`` coordinate on ``draw`` (the
        combined ensemble, what :func:`simulator.sensitivity.psa` and the comparisons
        read), ``structure_parameters`` (structure, particle, parameter) every structure's
        own ensemble, ``structure_weight`` and ``structure_log_evidence`` (structure).
    """
    log_evidence = np.atleast_2d(log_evidence)  # (seeds, structures)
    seeds = seeds if seeds is not None else tuple(range(log_evidence.shape[0]))
    weights, lower, upper = weight_spread(log_evidence)
    counts = draw_counts(weights, total)
    rows, labels = [], []
    for ens, s, n in zip(ensembles, structures, counts):
        size = ens.sizes["draw"]
        pick = np.linspace(0, size - 1, n).round().astype(int) if n else np.array([], dtype=int)
        rows.append(ens["parameters"].values[pick])
        labels += [s.id] * n
    particles = min(e.sizes["draw"] for e in ensembles)
    ids = [s.id for s in structures]
    return xr.Dataset(
        {"parameters": (("draw", "parameter"), np.concatenate(rows)),
         "structure_parameters": (("structure", "particle", "parameter"),
                                  np.stack([e["parameters"].values[:particles] for e in ensembles])),
         "structure_weight": ("structure", weights, {"units": "1", "long_name": "posterior model probability"}),
         "structure_weight_lower": ("structure", lower, {"units": "1", "long_name": "smallest weight of one seed"}),
         "structure_weight_upper": ("structure", upper, {"units": "1", "long_name": "largest weight of one seed"}),
         "structure_log_evidence_by_seed": (("seed", "structure"), log_evidence,
                                            {"units": "1", "long_name": "Laplace log evidence of each structure "
                                             "refitted with each seed's simulated patients"}),
         "structure_log_evidence": ("structure", log_evidence.mean(axis=0),
                                    {"units": "1", "long_name": "log marginal likelihood of the fitted figures "
                                     "(Laplace approximation at the fit, up to a constant shared by all "
                                     "structures), mean over seeds; gives the weights"}),
         "structure_log_evidence_smc": ("structure", log_evidence_smc,
                                        {"units": "1", "long_name": "the same, estimated along the SMC tempering "
                                         "path (a check; not used for the weights: see docs/structures.md)"})},
        coords={"draw": np.arange(total), "structure": ids, "seed": list(seeds), "draw_structure": ("draw", labels),
                "parameter": ensembles[0]["parameter"].values, "particle": np.arange(particles)},
        attrs={"description": "InOSim combined posterior ensemble over model structures: each structure's "
               "SMC posterior, mixed in proportion to its posterior model probability (equal prior "
               "weights, Laplace evidence at each structure's fit)",
               "structures": ", ".join(f"{s.id}: {s.describe()}" for s in structures)},
    )


def refit_evidence(task: tuple[ModelStructure, Parameters, CalibrationSize, int]) -> dict:
    """One structure refitted from its fit with other simulated patients (``seed``), no posterior.

    Returns
    -------
    dict
        ``cost`` (-log-likelihood with prior), ``log_evidence`` (Laplace) and ``converged``.
    """
    structure, parameters, size, seed = task
    start = load_parameters(default_config_dir() / "parameters" / "starting.yaml")
    centre = default_setting(0, seed, start, structure).pooled.parameters
    result = fit(default_setting(size.fit_patients, seed, parameters, structure), 1, size.max_nfev,
                 log=_quiet, prior_centre=centre)
    return {k: result[k] for k in ("cost", "log_evidence", "converged")}


def _quiet(*_: object) -> None:
    """A log that says nothing (tasks on a cluster; the caller logs their results)."""


def _fit_task(task: tuple[ModelStructure, CalibrationSize, int, Parameters]) -> dict:
    """:func:`fit_structure` as one task of a scheduler."""
    structure, size, seed, warm = task
    return fit_structure(structure, size, seed, _quiet, warm)


def weight_spread(log_evidence: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights from the mean log evidence over seeds, and their range over the seeds' own weights.

    Parameters
    ----------
    log_evidence : ndarray, shape (seeds, structures)

    Returns
    -------
    weight, lower, upper : ndarray, shape (structures,)
    """
    per_seed = np.array([structure_weights(z) for z in log_evidence])
    return structure_weights(log_evidence.mean(axis=0)), per_seed.min(axis=0), per_seed.max(axis=0)


def calibrate_structures(out_dir: str | Path, size: CalibrationSize = STRUCTURES,
                         seeds: tuple[int, ...] = EVIDENCE_SEEDS, log=print,
                         structures: list[ModelStructure] | None = None, dask: str | None = None) -> dict:
    """Fit every model structure, weight them by their Laplace evidence, write their files and the combined ensemble.

    With the first seed's patients each structure is fitted and its posterior sampled; with
    each further seed it is refitted from that fit (:func:`refit_evidence`), so its
    -log-likelihood and log evidence carry the spread that the simulated patients cause.
    The weights come from the mean log evidence over seeds; each weight's range is that of
    the weights of single seeds (:func:`weight_spread`). Writes ``structures/<id>.yaml``
    (each structure's fit), ``posterior.nc`` (the combined ensemble, see
    :func:`combined_ensemble`) and ``structures.txt`` to ``out_dir``. Every structure starts
    from the shipped default fit. ``dask``: run the structures as tasks on a cluster (see
    :func:`simulator.runtime.scaleout.scheduler`), e.g. ``local:2``.
    """
    out_dir = Path(out_dir)
    (out_dir / "structures").mkdir(parents=True, exist_ok=True)
    structures = structures or all_structures()
    warm = load_parameters(default_config_dir() / "parameters" / "default.yaml")
    template = default_config_dir() / "parameters" / "starting.yaml"
    runs: list[dict] = [{}] * len(structures)
    with scheduler(dask) as map_tasks:
        for i, run in map_tasks(_fit_task, [(s, size, seeds[0], warm) for s in structures]):
            runs[i] = run
            log(f"[{structures[i].id}] seed {seeds[0]}: -log-likelihood {run['fit']['cost']:.2f}, log evidence "
                f"{run['fit']['log_evidence']:.2f} (Laplace), {run['posterior']['log_evidence']:.2f} (SMC), "
                f"{'converged' if run['fit']['converged'] else 'NOT converged'} ({run['seconds']:.0f} s)")
        tasks = [(s, run["parameters"], size, seed) for seed in seeds[1:] for s, run in zip(structures, runs)]
        refits: list[dict] = [{}] * len(tasks)
        for i, r in map_tasks(refit_evidence, tasks):
            refits[i] = r
            log(f"[{tasks[i][0].id}] seed {tasks[i][3]}: -log-likelihood {r['cost']:.2f}, log evidence "
                f"{r['log_evidence']:.2f}{'' if r['converged'] else ' (NOT converged)'}")
    ensembles = []
    for s, run in zip(structures, runs):
        write_parameter_file(template, run["parameters"].model_dump(), out_dir / "structures" / f"{s.id}.yaml",
                             _header("structures", seeds[0], run["fit"]["cost"], s), s)
        ensembles.append(ensemble_dataset(run["posterior"]["free"], run["parameters"], run["posterior"]["fitted"],
                                          _info(run["posterior"], size, seeds[0], run["fit"]["cost"])))
    n = len(structures)
    by_seed = [[run["fit"] for run in runs]] + [refits[k * n:(k + 1) * n] for k in range(len(seeds) - 1)]
    cost = np.array([[r["cost"] for r in row] for row in by_seed])
    log_z = np.array([[r["log_evidence"] for r in row] for row in by_seed])
    log_z_smc = np.array([run["posterior"]["log_evidence"] for run in runs])
    combined = combined_ensemble(ensembles, structures, log_z, log_z_smc, seeds=seeds)
    path = write_netcdf(combined, out_dir / "posterior.nc")
    weight = combined["structure_weight"].values
    lower, upper = combined["structure_weight_lower"].values, combined["structure_weight_upper"].values
    (out_dir / "structures.txt").write_text(
        "structure\t-log-likelihood (mean over seeds, min-max)\tlog evidence, Laplace (mean, min-max)\t"
        "log evidence (SMC)\tweight (range over seeds)\n"
        + "\n".join(f"{s.id}\t{cost[:, j].mean():.2f} ({cost[:, j].min():.2f}-{cost[:, j].max():.2f})\t"
                    f"{log_z[:, j].mean():.2f} ({log_z[:, j].min():.2f}-{log_z[:, j].max():.2f})\t"
                    f"{log_z_smc[j]:.2f}\t{weight[j]:.3f} ({lower[j]:.3f}-{upper[j]:.3f})"
                    for j, s in enumerate(structures)) + "\n")
    return {"posterior": path, "weights": dict(zip([s.id for s in structures], weight)),
            "log_evidence": dict(zip([s.id for s in structures], log_z.mean(axis=0)))}

