"""From a validated scenario to per-patient records: arrays in, named columns (or a Dataset) out.

This is the single conversion point between configuration objects and the
numba kernel (:mod:`simulator.model.kernel`), which sees only numbers and arrays,
and the one reading of the kernel's records (:func:`record_columns`); an xarray
Dataset is built from those columns only for the user (:func:`records_to_dataset`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from simulator.model import kernel as K
from simulator.model.config import Population, Regimen, Scenario, resolve_cohorts

AGE_TABLE_POINTS = 1025

# (kernel field, variable name, unit, description); the kernel's F_*/I_* constants
# are the layout these must match.
FLOAT_FIELDS = (
    (K.F_CUM_DOSE, "cumulative_dose", "mg/m2", "cumulative inotuzumab dose received"),
    (K.F_STARTING_DOSE, "starting_dose", "mg/m2", "planned dose of cycle 1"),
    (K.F_RESPONSE_DAY, "response_day", "day", "day of first CR/CRi (NaN: none)"),
    (K.F_HSCT_DAY, "hsct_day", "day", "day of allogeneic HSCT (NaN: none)"),
    (K.F_PROGRESSION_DAY, "progression_day", "day", "day of progression or relapse (NaN: none)"),
    (K.F_DEATH_DAY, "death_day", "day", "day of death (NaN: alive at censoring)"),
    (K.F_PFS_MONTHS, "pfs_months", "month", "progression-free survival time"),
    (K.F_OS_MONTHS, "os_months", "month", "overall survival time"),
    (K.F_AGE, "age", "year", "age at first dose"),
    (K.F_BLASTS, "marrow_blasts", "%", "bone marrow blasts at baseline"),
    (K.F_CENSOR_DAY, "censor_day", "day", "administrative censoring (data cut-off) day"),
    (K.F_LAST_DOSE_DAY, "last_dose_day", "day", "day of the last inotuzumab dose (NaN: none)"),
    (K.F_RELAPSE_POST_HSCT_DAY, "relapse_post_hsct_day", "day", "day of relapse after HSCT (NaN: none)"),
    (K.F_TREATMENT_END_DAY, "treatment_end_day", "day", "day the treatment ended (NaN: after censoring)"),
    (K.F_THEN_START_DAY, "then_start_day", "day", "day the next treatment of a sequence started (NaN: none)"),
)
INT_FIELDS = (
    (K.I_COHORT, "cohort", "1", "index into attrs['cohorts']"),
    (K.I_CYCLES, "cycles", "cycle", "treatment cycles with at least one dose"),
    (K.I_DOSES, "doses_given", "dose", "individual doses given"),
    (K.I_BEST_RESPONSE, "best_response", "1", "1 = CR/CRi, 0 = no CR/CRi"),
    (K.I_RESPONSE_CYCLE, "response_cycle", "cycle", "cycle of first CR/CRi (0: none)"),
    (K.I_MRD_NEG, "mrd_negative", "1", "MRD negativity reached during treatment"),
    (K.I_G3AE, "grade3_ae", "1", "any grade >=3 adverse event during treatment"),
    (K.I_SAE, "serious_ae", "1", "any serious adverse event during treatment"),
    (K.I_DISC_AE, "discontinued_ae", "1", "treatment discontinued for an adverse event"),
    (K.I_HSCT, "hsct", "1", "allogeneic HSCT after inotuzumab"),
    (K.I_SOS, "sos", "1", "SOS/VOD at any time"),
    (K.I_SOS_GRADE, "sos_grade", "1", "worst SOS grade: 0 none, 1 grade 1-2, 3 grade 3-4, 5 fatal"),
    (K.I_SOS_POST, "sos_post_hsct", "1", "SOS/VOD after HSCT"),
    (K.I_SOS_POST_GRADE, "sos_post_hsct_grade", "1", "grade of SOS after HSCT: 0 none, 1 grade 1-2, 3 grade 3-4, 5 fatal"),
    (K.I_DEATH_CAUSE, "death_cause", "1",
     "0 alive or censored, 1 progression or relapse, 2 non-relapse after HSCT (incl. SOS), "
     "3 toxicity during treatment, 4 other: other causes before any progression, or after "
     "progression/relapse recorded as infection or later-therapy toxicity"),
    (K.I_PFS_EVENT, "pfs_event", "1", "1 = progression, relapse or death observed"),
    (K.I_OS_EVENT, "os_event", "1", "1 = death observed"),
    (K.I_SALVAGE, "salvage", "1", "salvage line (1 or 2)"),
    (K.I_PRIOR_HSCT, "prior_hsct", "1", "prior allogeneic HSCT"),
    (K.I_PH, "ph_positive", "1", "Philadelphia chromosome positive"),
    (K.I_BILI, "bilirubin_high", "1", "baseline bilirubin >= ULN"),
    (K.I_ELIGIBLE, "transplant_eligible", "1", "latent transplant eligibility"),
    (K.I_HSCT_IN_REMISSION, "hsct_in_remission", "1", "HSCT done while in the treatment's CR/CRi"),
    (K.I_TREATMENT, "treatment", "1", "treatment code: index into attrs['treatments']"),
    (K.I_CRS_GRADE, "crs_grade", "1", "cytokine release syndrome: 0 none, 1 grade 1-2, 3 grade >=3"),
    (K.I_NEUROLOGIC, "neurologic_g3", "1", "grade >=3 neurologic event"),
    (K.I_CART_STAGE, "cart_stage", "1", "CAR-T: 1 leukapheresis only, 2 manufactured not infused, 3 infused (0: not CAR-T)"),
    (K.I_THEN_RESPONSE, "then_response", "1", "CR/CRi on the next treatment of a sequence"),
)
RECORD_BYTES = 8 * len(FLOAT_FIELDS) + 4 * len(INT_FIELDS) + 8  # float64, int32 and the int64 patient id


@dataclass(frozen=True)
class ModelArrays:
    """A scenario as the kernel sees it (see :func:`simulator.model.kernel.simulate_patient`)."""

    pop: np.ndarray
    age_table: np.ndarray
    reg: np.ndarray
    doses: np.ndarray
    days: np.ndarray
    n_doses: np.ndarray
    par: np.ndarray
    tpar: np.ndarray
    fu: np.ndarray


def _logit(p: float) -> float:
    """log(p / (1 - p)), with -inf and inf at 0 and 1."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


def _population_row(p: Population, weight_cum: float) -> np.ndarray:
    row = np.empty(K.N_POP)
    row[K.POP_WEIGHT_CUM] = weight_cum
    row[K.POP_SALVAGE2] = p.salvage2
    row[K.POP_PRIOR_HSCT] = p.prior_hsct
    row[K.POP_PH] = p.ph_positive
    row[K.POP_BLASTS_LT50] = p.marrow_blasts.below_50
    row[K.POP_BLASTS_50_90] = p.marrow_blasts.from_50_to_90
    row[K.POP_BILI] = p.bilirubin_high
    e = p.transplant_eligibility
    row[K.POP_ELIG_LOGIT40] = _logit(e.at_age_40)
    row[K.POP_ELIG_SLOPE] = math.log(e.odds_ratio_per_decade)
    return row


def _age_table(p: Population) -> np.ndarray:
    from scipy import special  # the beta quantiles, bit for bit scipy.stats.beta's (0.8 s faster to import)

    a = p.age
    q = np.linspace(0.0, 1.0, AGE_TABLE_POINTS)
    return special.betaincinv(a.beta_a, a.beta_b, q) * (a.max - a.min) + a.min


def _regimen_row(r: Regimen, treatment: str, then: str | None) -> np.ndarray:
    row = np.empty(K.N_REG)
    row[K.REG_TREATMENT] = K.TREATMENTS.index(treatment)
    row[K.REG_THEN] = K.NO_TREATMENT if then is None else K.TREATMENTS.index(then)
    row[K.REG_LEN_C1] = r.cycle1_length_days
    row[K.REG_LEN_LATER] = r.later_length_days
    row[K.REG_MAX_CYCLES] = r.max_cycles
    row[K.REG_CAP] = math.inf if r.cumulative_cap is None else r.cumulative_cap
    row[K.REG_HSCT_CYCLES] = r.hsct_cycles
    row[K.REG_HSCT_EXTRA_MRD] = float(r.hsct_extra_cycle_if_mrd_positive)
    row[K.REG_STOP_AFTER] = r.stop_if_no_response_after
    row[K.REG_REDUCTION] = r.dose_reduction
    row[K.REG_DUAL_ALKYLATOR] = r.dual_alkylator_conditioning
    row[K.REG_C1_EXTENSION] = r.cycle1_extension_in_cr_days
    return row


def model_arrays(scenario: Scenario) -> ModelArrays:
    """Convert a scenario into the kernel's arrays (the one conversion point)."""
    cohorts = resolve_cohorts(scenario)
    weights = np.array([c.weight for c in cohorts], dtype=float)
    weight_cum = np.cumsum(weights) / weights.sum()
    weight_cum[-1] = 1.0
    nc = len(cohorts)
    doses = np.zeros((nc, 3, K.MAX_DOSES_PER_CYCLE))
    days = np.zeros((nc, 3, K.MAX_DOSES_PER_CYCLE))
    n_doses = np.zeros((nc, 3), dtype=np.int64)
    for i, c in enumerate(cohorts):
        r = c.regimen
        for kind, d, dd in (
            (K.KIND_CYCLE1, r.cycle1_doses, r.cycle1_days),
            (K.KIND_IN_CR, r.later_doses_in_cr, r.later_days),
            (K.KIND_NOT_IN_CR, r.later_doses_not_in_cr, r.later_days),
        ):
            n_doses[i, kind] = len(d)
            doses[i, kind, : len(d)] = d
            days[i, kind, : len(d)] = dd
    par = scenario.parameters
    return ModelArrays(
        pop=np.stack([_population_row(c.population, w) for c, w in zip(cohorts, weight_cum)]),
        age_table=np.stack([_age_table(c.population) for c in cohorts]),
        reg=np.stack([_regimen_row(c.regimen, scenario.treatment, scenario.then) for c in cohorts]),
        doses=doses,
        days=days,
        n_doses=n_doses,
        par=np.array([getattr(par, name) for name in K.PARAMETER_NAMES], dtype=float),
        tpar=scenario.comparators.vector(),
        fu=np.array([[c.follow_up_months, c.accrual_months] for c in cohorts]),
    )


def run_kernel(arrays: ModelArrays, seed: int, first_patient: int, n: int, *,
               out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the jitted kernel for patients ``first_patient .. first_patient + n - 1``.

    Parameters
    ----------
    out : (out_float, out_int), optional
        Record arrays to write into, shapes (N_FLOAT, n) and (N_INT, n) (int32), e.g.
        reused across repeated runs; new arrays by default.

    Returns
    -------
    (out_float, out_int) : ndarray, shapes (N_FLOAT, n) and (N_INT, n)
        Per-patient records in the kernel's ``F_*`` and ``I_*`` layouts.
    """
    if out is None:
        out = (np.empty((K.N_FLOAT, n)), np.empty((K.N_INT, n), dtype=np.int32))
    out_float, out_int = out
    a = arrays
    K.simulate_patients(seed, first_patient, a.pop, a.age_table, a.reg, a.doses, a.days,
                        a.n_doses, a.par, a.tpar, a.fu, out_float, out_int)
    return out_float, out_int


def run_kernel_ids(arrays: ModelArrays, seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the jitted kernel for the patients whose global ids are ``ids`` (any order, gaps allowed).

    Returns
    -------
    (out_float, out_int) : ndarray, shapes (N_FLOAT, n) and (N_INT, n)
        Column ``i`` holds exactly what :func:`run_kernel` gives patient ``ids[i]``.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    out_float = np.empty((K.N_FLOAT, ids.shape[0]))
    out_int = np.empty((K.N_INT, ids.shape[0]), dtype=np.int32)
    a = arrays
    K.simulate_patient_ids(seed, ids, a.pop, a.age_table, a.reg, a.doses, a.days, a.n_doses, a.par, a.tpar,
                           a.fu, out_float, out_int)
    return out_float, out_int


def run_parameter_sets(arrays: ModelArrays, par_sets: np.ndarray, seed: int, n: int,
                       first_patient: int | np.ndarray = 0, tpar_sets: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Run patients under each parameter vector (sensitivity analyses, parameter ensembles).

    Parameters
    ----------
    arrays : ModelArrays
        The scenario; its ``par`` is ignored in favour of ``par_sets``.
    par_sets : ndarray, shape (n_sets, len(kernel.PARAMETER_NAMES))
        One parameter vector per row, in ``kernel.PARAMETER_NAMES`` order.
    seed : int
        Generator seed.
    first_patient : int or ndarray of int, shape (n_sets,)
        Global id of the first patient: one shared by every set (the same patients under
        every set: common random numbers), or one per set.
    n : int
        Patients per set.
    tpar_sets : ndarray, shape (n_sets, len(kernel.COMPARATOR_PARAMETER_NAMES)), optional
        The treatment modules' parameters of each set (default: ``arrays.tpar`` for every
        set); the sets sharing a row run in one kernel call.

    Returns
    -------
    (out_float, out_int) : ndarray, shapes (N_FLOAT, n_sets, n) and (N_INT, n_sets, n)
        ``[:, s, :]`` holds exactly the records :func:`run_kernel` gives with
        ``par = par_sets[s]`` and that set's first patient.
    """
    par_sets = np.ascontiguousarray(par_sets, dtype=float)
    if par_sets.ndim != 2 or par_sets.shape[1] != len(K.PARAMETER_NAMES):
        raise ValueError(f"par_sets must have shape (n_sets, {len(K.PARAMETER_NAMES)}), "
                         f"got {par_sets.shape}")
    n_sets = par_sets.shape[0]
    out_float = np.empty((K.N_FLOAT, n_sets, n))
    out_int = np.empty((K.N_INT, n_sets, n), dtype=np.int32)
    a = arrays
    firsts = np.broadcast_to(np.asarray(first_patient, dtype=np.int64), (n_sets,)).copy()
    if tpar_sets is None:
        K.simulate_parameter_sets(seed, firsts, a.pop, a.age_table, a.reg, a.doses, a.days,
                                  a.n_doses, par_sets, a.tpar, a.fu, out_float, out_int)
        return out_float, out_int
    tpars, group = np.unique(np.asarray(tpar_sets, dtype=float), axis=0, return_inverse=True)
    for g, tpar in enumerate(tpars):
        sets = np.flatnonzero(group.ravel() == g)
        f, i = np.empty((K.N_FLOAT, len(sets), n)), np.empty((K.N_INT, len(sets), n), dtype=np.int32)
        K.simulate_parameter_sets(seed, firsts[sets], a.pop, a.age_table, a.reg, a.doses, a.days,
                                  a.n_doses, np.ascontiguousarray(par_sets[sets]), np.ascontiguousarray(tpar),
                                  a.fu, f, i)
        out_float[:, sets], out_int[:, sets] = f, i
    return out_float, out_int


def record_columns(out_float: np.ndarray, out_int: np.ndarray) -> dict[str, np.ndarray]:
    """The kernel's records as named columns: the one reading of its ``F_*`` and ``I_*`` layouts.

    Parameters
    ----------
    out_float, out_int : ndarray, shapes (N_FLOAT, ...) and (N_INT, ...)
        Records as :func:`run_kernel`, :func:`run_kernel_ids` or :func:`run_parameter_sets`
        return them.

    Returns
    -------
    dict of str to ndarray
        One column per field of :data:`FLOAT_FIELDS` and :data:`INT_FIELDS`, named as the
        variables of :func:`records_to_dataset`; each a view of its row (no copy), of shape
        ``out_float.shape[1:]``.
    """
    return {name: out[idx] for fields, out in ((FLOAT_FIELDS, out_float), (INT_FIELDS, out_int))
            for idx, name, _, _ in fields}


def records_to_dataset(out_float: np.ndarray, out_int: np.ndarray, scenario: Scenario,
                       seed: int, first_patient: int = 0) -> xr.Dataset:
    """:func:`record_columns` as a Dataset with dimension ``patient`` and units in attrs (for the user)."""
    from simulator import __version__

    n = out_float.shape[1]
    described = {name: {"units": unit, "long_name": what} for _, name, unit, what in FLOAT_FIELDS + INT_FIELDS}
    data_vars = {name: ("patient", column, described[name])
                 for name, column in record_columns(out_float, out_int).items()}
    cohorts = [c.name for c in resolve_cohorts(scenario)]
    return xr.Dataset(
        data_vars,
        coords={"patient": np.arange(first_patient, first_patient + n, dtype=np.int64)},
        attrs={
            "title": f"InOSim patient records: {scenario.name}",
            "scenario": scenario.model_dump_json(),
            "scenario_name": scenario.name,
            "seed": seed,
            "cohorts": json.dumps(cohorts),
            "treatments": json.dumps(K.TREATMENTS),
            "inosim_version": __version__,
            "time_origin": "day 0 = first inotuzumab dose; months = days / 30.4375",
        },
    )


def simulate(scenario: Scenario, n_patients: int | None = None, seed: int | None = None,
             *, first_patient: int = 0) -> xr.Dataset:
    """Simulate virtual patients through the scenario's dosing strategy.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario (see :func:`simulator.load_scenario`).
    n_patients : int, optional
        Number of patients; defaults to ``scenario.simulation.patients``.
    seed : int, optional
        Random seed; defaults to ``scenario.simulation.seed``.
    first_patient : int, optional
        Global id of the first patient. Patient ``i`` draws the same numbers
        whatever chunk it is simulated in and whatever the strategy.

    Returns
    -------
    xarray.Dataset
        One record per patient along dimension ``patient``; units in each
        variable's ``units`` attribute; the resolved scenario (JSON) in
        ``attrs['scenario']``.
    """
    n = scenario.simulation.patients if n_patients is None else int(n_patients)
    seed = scenario.simulation.seed if seed is None else int(seed)
    if n < 1:
        raise ValueError(f"n_patients must be at least 1, got {n}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    out_float, out_int = run_kernel(model_arrays(scenario), seed, first_patient, n)
    return records_to_dataset(out_float, out_int, scenario, seed, first_patient)
