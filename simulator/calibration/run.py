"""The whole calibration run: fit, sample, write the parameter file and the ensemble.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from simulator.calibration.figures import all_figures
from simulator.calibration.fit import default_setting, fit, identification
from simulator.calibration.parameters import FIT_PARAMETERS
from simulator.calibration.posterior import ensemble_dataset, sample_posterior
from simulator.model.config import (
    default_config_dir,
    load_parameters,
)
from simulator.sweep.storage import atomic_path, write_netcdf


# ----------------------------------------------------------------------------- files
def write_parameter_file(template: Path, values: dict[str, float], out: Path, header: str) -> Path:
    """Copy the documented ``template`` with ``values`` substituted, keeping its comments."""
    lines = []
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


def calibrate(out_dir: str | Path, size: CalibrationSize = FULL, seed: int = 20251125, log=print) -> dict:
    """Fit from the starting values and write ``default.yaml`` and ``posterior.nc`` to ``out_dir``.

    Returns
    -------
    dict
        Paths written, the fitted values, ESS and timings.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    template = default_config_dir() / "parameters" / "starting.yaml"
    start = load_parameters(template)
    t0 = time.perf_counter()
    log(f"Fitting {len(FIT_PARAMETERS)} parameters to {sum(f.fitted for f in all_figures())} figures "
        f"({size.fit_patients:,} patients per study per evaluation)")
    result = fit(default_setting(size.fit_patients, seed, start), size.starts, size.max_nfev, log=log)
    t_fit = time.perf_counter() - t0
    values = {p.name: p.from_free(float(z)) for p, z in zip(FIT_PARAMETERS, result["free"])}
    fitted = start.model_copy(update=values)
    log(f"Sampling the posterior: SMC with {size.particles} particles, {size.smc_patients:,} patients each")
    post = sample_posterior(default_setting(size.smc_patients, seed, fitted), result["free"], result["jac"],
                            size.particles, size.moves, prior_centre=start, seed=seed, log=log)
    t_all = time.perf_counter() - t0
    header = (f"# STATUS: FITTED by `inosim calibrate` ({'quick' if size is QUICK else 'full'}, seed {seed}) "
              f"from starting.yaml; -log-likelihood {result['cost']:.2f}.\n"
              "# STATUS: Do not edit by hand: edit starting.yaml and re-run `inosim calibrate`.\n")
    param_path = write_parameter_file(template, values, out_dir / "default.yaml", header)
    fitted_figures = [f for f in all_figures() if f.fitted]
    (out_dir / "identification.txt").write_text(identification(result["jac"], fitted_figures) + "\n")
    info = {"method": "sequential Monte Carlo with likelihood tempering from the Laplace approximation",
            "tempering_steps": post["steps"], "acceptance_rate": post["acceptance"],
            "unique_draws": post["unique"], "patients_per_evaluation": size.smc_patients, "seed": seed,
            "fit_neg_log_likelihood": result["cost"]}
    ens = ensemble_dataset(post["free"], fitted, info)
    ens_path = write_netcdf(ens, out_dir / "posterior.nc")
    log(f"Done in {t_all:.0f} s (fit {t_fit:.0f} s); {post['steps']} tempering steps, acceptance "
        f"{post['acceptance']:.2f}, {post['unique']} distinct sets in the ensemble of {size.particles}")
    return {"parameters": param_path, "posterior": ens_path, "values": values, "seconds": t_all,
            "fit_seconds": t_fit, "cost": result["cost"]}
