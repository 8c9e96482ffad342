"""Published figures as simulated statistics: the pooled dose analysis (primary), INO-VATE
(secondary) and validation figures, each with its likelihood term.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from simulator.analysis.outcomes import (
    METRICS,
    clopper_pearson,
    cumulative_incidence,
    kaplan_meier,
    km_first_below,
    km_survival_at,
)
from simulator.analysis.targets import load_pooled_targets
from simulator.model import kernel as K
from simulator.model.config import default_config_dir
from simulator.model.files import read_yaml

Z95 = float(special.ndtri(0.975))
INOVATE_N = 164  # patients in the INO-VATE InO arm
INOVATE_ITT218_RESPONDERS = 88  # CR/CRi among the first 109 InO patients (ITT218, S2: 80.7%)
DURABILITY_MONTHS = 12.0  # INO-VATE's PFS milestone
P_CLIP = 1e-6  # simulated probabilities are kept in [P_CLIP, 1 - P_CLIP] in the likelihood



# ----------------------------------------------------------------------------- simulated figures
@dataclass(frozen=True)
class Sim:
    """A simulated figure.

    ``estimate`` and its Monte Carlo ``se``; ``n_den``/``n_group``: simulated patients in
    the denominator and in the whole group (to scale a published group size to the
    figure's own n). For medians, ``cdf`` gives the simulated probability below a value,
    ``quantile`` inverts it, and ``se_unit`` is the Greenwood SE of the curve near the
    median for one patient (the SE at n is se_unit / sqrt(n)).
    """

    estimate: float
    se: float
    n_den: int
    n_group: int
    cdf: Callable[[float], float] | None = None
    quantile: Callable[[float], float] | None = None
    se_unit: float = math.nan


def _rate(k: int, n: int, n_group: int) -> Sim:
    p = k / n if n else math.nan
    return Sim(p, math.sqrt(p * (1 - p) / n) if n else math.nan, n, n_group)


def _median_of_sample(x: np.ndarray, n_group: int) -> Sim:
    x = np.sort(x)
    n = len(x)
    if n == 0:
        return Sim(math.nan, math.nan, 0, n_group)

    def cdf(v: float) -> float:  # mid-distribution function: ties count half
        return (np.searchsorted(x, v, "left") + np.searchsorted(x, v, "right")) / 2 / n

    def quantile(q: float) -> float:
        return float(x[min(max(int(n * q), 0), n - 1)])

    half = Z95 * 0.5 / math.sqrt(n)
    return Sim(float(np.median(x)), (quantile(0.5 + half) - quantile(0.5 - half)) / (2 * Z95), n, n_group,
               cdf, quantile, 0.5)


def _km_median(time: np.ndarray, event: np.ndarray, n_group: int) -> Sim:
    n = len(time)
    if n == 0:
        return Sim(math.nan, math.nan, 0, n_group)
    t, s, se_log = kaplan_meier(time, event)

    def quantile(q: float) -> float:  # first time with S <= 1 - q
        x = km_first_below(t, s, 1.0 - q)
        return math.inf if math.isnan(x) else x

    def cdf(v: float) -> float:
        i = np.searchsorted(t, v, side="right") - 1
        return 0.0 if i < 0 else 1.0 - float(s[i])

    med = quantile(0.5)
    j = min(np.searchsorted(t, med), len(t) - 1)
    se_s = float(s[j] * se_log[j]) if np.isfinite(se_log[j]) else 0.5 / math.sqrt(n)
    return Sim(med, (quantile(0.5 + Z95 * se_s) - quantile(0.5 - Z95 * se_s)) / (2 * Z95), n, n_group,
               cdf, quantile, se_s * math.sqrt(n))


def _post_hsct_competing(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Months from HSCT to relapse (1), non-relapse death (2) or censoring (0), transplanted only."""
    h = d["hsct"]
    hday = d["hsct_day"][h]
    rel = d["relapse_post_hsct_day"][h]
    nrm = np.where(d["death_cause"][h] == K.CAUSE_NRM_POST_HSCT, d["death_day"][h], np.inf)
    end = np.fmin(np.fmin(np.nan_to_num(rel, nan=np.inf), nrm), d["censor_day"][h])
    cause = np.where(end == rel, 1, np.where(end == nrm, 2, 0))
    return (end - hday) / K.MONTH, cause


# ----------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Figure:
    """A published figure and how to compute it on simulated patients.

    ``study`` is "pooled" (pooled scenario, groups by realised dose) or "inovate"
    (the pooled scenario's INO-VATE cohort); ``group_size`` is the published size of the group the
    figure is a share of (to derive n where it is not reported).
    """

    key: str
    label: str
    study: str
    value: float
    n: int | None
    kind: str  # "rate" or "median"
    primary: bool
    fitted: bool
    group_size: int
    source: str
    compute: Callable[[dict], Sim]
    weight: float = 1.0  # < 1 where several figures come from the same patients
    reported_precision: float | None = None  # half the last reported digit, if not the default
    ci: tuple[float, float] | None = None  # the published 95% CI of a median, where one is reported

    def n_used(self, sim: Sim) -> float:
        """The published n, or the simulated subgroup share times the group size."""
        if self.n is not None:
            return float(self.n)
        return max(sim.n_den / sim.n_group * self.group_size, 1.0) if sim.n_group else math.nan

    def interval(self, sim: Sim) -> tuple[float, float]:
        """95% interval of the published figure at its n (see the module docstring)."""
        if self.ci is not None:
            return self.ci
        n = self.n_used(sim)
        if self.kind == "rate":
            return clopper_pearson(round(self.value * n), round(n))
        se = sim.se_unit / math.sqrt(n)
        # the spread of medians at the published n, from the simulated curve, centred on
        # the published value and widened by its reporting precision
        return (self.value - self.precision - (sim.estimate - sim.quantile(0.5 - Z95 * se)),
                self.value + self.precision + (sim.quantile(0.5 + Z95 * se) - sim.estimate))

    def residual(self, sim: Sim) -> float:
        """Signed deviance residual of the published figure given the simulated one.

        A median counts as matched anywhere within its reporting precision (e.g. a
        median reported as 0.8 months is any value in [0.75, 0.85]). A median with a
        published CI is read on the months scale: (simulated - published) / SE, the SE
        being the distance from the published value to the CI's limit on the simulated
        value's side divided by 1.96 (a normal approximation of the published estimate).
        """
        n = self.n_used(sim)
        if not (np.isfinite(n) and np.isfinite(sim.estimate)):
            return 10.0  # the simulation produced no such patients: a large, finite penalty
        if self.ci is not None:
            side = self.ci[1] if sim.estimate > self.value else self.ci[0]
            return (sim.estimate - self.value) / (abs(side - self.value) / Z95) * math.sqrt(self.weight)
        if self.kind == "rate":
            p = min(max(sim.estimate, P_CLIP), 1 - P_CLIP)
            v = min(max(self.value, P_CLIP), 1 - P_CLIP)
            dev = 2 * n * (v * math.log(v / p) + (1 - v) * math.log((1 - v) / (1 - p)))
            r = math.copysign(math.sqrt(max(dev, 0.0)), p - v)
        else:
            lo, hi = sim.cdf(self.value - self.precision), sim.cdf(self.value + self.precision)
            gap = lo - 0.5 if lo > 0.5 else (hi - 0.5 if hi < 0.5 else 0.0)
            r = gap / (max(sim.se_unit, 1e-9) / math.sqrt(n))
        return r * math.sqrt(self.weight)

    @property
    def precision(self) -> float:
        """Half the last reported digit (0.05 for 0.8, 0.005 for 2.09, 0.5 for 3), unless given."""
        if self.reported_precision is not None:
            return self.reported_precision
        text = repr(self.value)
        decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
        return 0.5 * 10.0 ** -decimals


def _pooled_figures() -> list[Figure]:
    pub = load_pooled_targets()
    by_id = {m.id: m for m in METRICS}
    figures = [Figure(
        "pooled:share_le33", "patients with cumulative dose <= 3.3 mg/m2", "pooled",
        pub.group_sizes["le"] / pub.group_sizes["all"], pub.group_sizes["all"], "rate", True, True,
        pub.group_sizes["all"], "pooled analysis: 161 of 338",
        lambda d: _rate(int(d["_groups"]["le"].sum()), len(d["hsct"]), len(d["hsct"])))]
    for t in pub.targets:
        metric = by_id[t.id]

        def compute(d: dict, metric=metric, group=t.group) -> Sim:
            mask = d["_groups"][group]
            among = metric.among(d) & mask
            n_group = int(mask.sum())
            if metric.kind == "rate":
                return _rate(int((metric.value(d) & among).sum()), int(among.sum()), n_group)
            if metric.kind == "km_median":
                time, event = metric.value(d)
                return _km_median(time[among], event[among], n_group)
            return _median_of_sample(metric.value(d)[among], n_group)

        kind = "rate" if metric.kind == "rate" else "median"
        figures.append(Figure(f"pooled:{t.id}:{t.group}", f"{t.what} [{t.group}]", "pooled", t.value,
                              t.n, kind, True, True, pub.group_sizes[t.group], "pooled analysis", compute,
                              reported_precision=t.precision))
    return figures


def _inovate_statistics() -> dict[str, tuple[bool, Callable[[dict, list], list[Sim]]]]:
    """INO-VATE figures by their `what` text: (fitted?, compute -> one Sim per value)."""
    def rate_by(mask_fn, value_fn):
        def compute(d, values):
            n_all = len(d["hsct"])
            out = []
            for mask in mask_fn(d):
                out.append(_rate(int((value_fn(d) & mask).sum()), int(mask.sum()), n_all))
            return out
        return compute

    age55 = lambda d: d["age"] >= 55  # noqa: E731
    every = lambda d: [np.ones_like(d["hsct"])]  # noqa: E731
    sos_tx = lambda d: d["sos"] & ~d["sos_post_hsct"]  # noqa: E731

    def post_hsct(which):
        def compute(d, values):
            t, cause = _post_hsct_competing(d)
            n_h = int(d["hsct"].sum())
            if which == "os":
                h = d["hsct"]
                os_t = (np.fmin(np.nan_to_num(d["death_day"][h], nan=np.inf), d["censor_day"][h])
                        - d["hsct_day"][h]) / K.MONTH
                est = [km_survival_at(os_t, d["os_event"][h], m)[0] for m in (12.0, 24.0)]
            else:
                est = [cumulative_incidence(t, cause, m, of=1 if which == "relapse" else 2)
                       for m in (12.0, 24.0)]
            return [Sim(e, math.sqrt(e * (1 - e) / max(n_h, 1)), n_h, len(d["hsct"])) for e in est]
        return compute

    def blasts_masks(d):
        b = d["marrow_blasts"]
        return [b < 50, (b >= 50) & (b <= 90), b > 90]

    def median_cycles(d, values):
        return [_median_of_sample(d["cycles"].astype(float), len(d["hsct"]))]

    return {
        "responders by cycle of first CR/CRi: cycle 1 / 2 / 3": (True, lambda d, v: [
            _rate(int((d["response_cycle"] == c).sum()), int(d["best_response"].sum()), len(d["hsct"]))
            for c in (1, 2, 3)]),
        "MRD negativity among CR/CRi (ITT218)": (True, rate_by(lambda d: [d["best_response"]],
                                                               lambda d: d["mrd_negative"])),
        "HSCT, age < 55 vs >= 55": (True, rate_by(lambda d: [~age55(d), age55(d)], lambda d: d["hsct"])),
        "SOS/VOD overall": (True, rate_by(every, lambda d: d["sos"])),
        "SOS/VOD without subsequent HSCT (up to 56 days after last dose)": (True, rate_by(every, sos_tx)),
        "SOS/VOD after HSCT": (True, rate_by(lambda d: [d["hsct"]], lambda d: d["sos_post_hsct"])),
        "post-HSCT SOS, age < 55 vs >= 55": (True, rate_by(
            lambda d: [d["hsct"] & ~age55(d), d["hsct"] & age55(d)], lambda d: d["sos_post_hsct"])),
        "SOS/VOD incl. post-HSCT, salvage 1 vs salvage 2": (True, rate_by(
            lambda d: [d["salvage"] == 1, d["salvage"] == 2], lambda d: d["sos"])),
        "SOS/VOD, no prior HSCT vs prior HSCT": (True, rate_by(
            lambda d: [d["prior_hsct"] == 0, d["prior_hsct"] == 1], lambda d: d["sos"])),
        "after HSCT: non-relapse mortality at 1 / 2 years": (True, post_hsct("nrm")),
        "after HSCT: relapse at 1 / 2 years": (True, post_hsct("relapse")),
        "after HSCT: overall survival at 1 / 2 years": (True, post_hsct("os")),
        # validation: inputs of the model or figures kept out of the fit
        "any HSCT": (False, rate_by(every, lambda d: d["hsct"])),
        "median number of cycles": (False, median_cycles),
        "CR/CRi by marrow blasts <50% / 50-90% / >90%": (False, rate_by(blasts_masks, lambda d: d["best_response"])),
        "fatal post-HSCT SOS, of post-HSCT SOS cases": (False, rate_by(
            lambda d: [d["sos_post_hsct"]], lambda d: d["sos_post_hsct_grade"] == K.SOS_FATAL)),
        "age >= 55, InO arm": (False, rate_by(every, age55)),
        "salvage 2 (two prior induction regimens)": (False, rate_by(every, lambda d: d["salvage"] == 2)),
        "Philadelphia chromosome positive": (False, rate_by(every, lambda d: d["ph_positive"] == 1)),
        "prior allogeneic HSCT": (False, rate_by(every, lambda d: d["prior_hsct"] == 1)),
        "marrow blasts <50% / 50-90% / >90%, InO arm": (False, _blast_shares),
    }


# Figures read off the same patients carry less information than independent ones: the
# three shares of responders by cycle are one multinomial (two degrees of freedom), and
# each 1- and 2-year pair after HSCT comes from the same 77 patients (nearly one figure).
SHARED_PATIENTS_WEIGHT = {
    "responders by cycle of first CR/CRi: cycle 1 / 2 / 3": 2 / 3,
    "after HSCT: non-relapse mortality at 1 / 2 years": 0.5,
    "after HSCT: relapse at 1 / 2 years": 0.5,
    "after HSCT: overall survival at 1 / 2 years": 0.5,
}


def _inovate_figures() -> list[Figure]:
    doc = read_yaml(default_config_dir() / "targets" / "label_and_inovate.yaml")
    known = _inovate_statistics()
    figures = []
    for entry in doc["population_inovate"] + doc["inovate_inO_arm"]:
        what = entry["what"]
        if what not in known or isinstance(entry["value"], str):
            continue
        fitted, compute = known[what]
        values = entry["value"] if isinstance(entry["value"], list) else [entry["value"]]
        for i, value in enumerate(values):
            def one(d, compute=compute, i=i, values=values):
                return compute(d, values)[i]
            suffix = f" [{i + 1}/{len(values)}]" if len(values) > 1 else ""
            kind = "median" if what.startswith("median") else "rate"
            figures.append(Figure(f"inovate:{what}{suffix}", what + suffix, "inovate", float(value),
                                  entry.get("n"),
                                  kind, False, fitted, INOVATE_N, entry.get("source", ""), one,
                                  weight=SHARED_PATIENTS_WEIGHT.get(what, 1.0)))
    return figures


def _blast_shares(d: dict, values: list) -> list[Sim]:
    b = d["marrow_blasts"]
    n = len(b)
    return [_rate(int(m.sum()), n, n) for m in (b < 50, (b >= 50) & (b <= 90), b > 90)]


def _evidence_figures() -> list[Figure]:
    """Validation figures of ``targets/hsct_sos_evidence.yaml`` (INO-VATE InO arm), never fitted.

    They separate pre-transplant state (salvage line) from dose and tell the transplant
    paths apart; the guarantee-time-biased continuation contrast of that file is
    reproduced by :mod:`simulator.analysis` through the same analysis, not here.
    """
    doc = read_yaml(default_config_dir() / "targets" / "hsct_sos_evidence.yaml")
    src = doc["sources"]

    def share(mask_fn, value_fn):
        def compute(d):
            mask = mask_fn(d)
            return _rate(int((value_fn(d) & mask).sum()), int(mask.sum()), len(d["hsct"]))
        return compute

    hsct = lambda d: d["hsct"].astype(bool)  # noqa: E731
    salvage = {1: lambda d: d["salvage"] == 1, 2: lambda d: d["salvage"] == 2}
    stats_by_id = {
        "sos_post_hsct_salvage1": share(lambda d: hsct(d) & salvage[1](d), lambda d: d["sos_post_hsct"] == 1),
        "sos_post_hsct_salvage2": share(lambda d: hsct(d) & salvage[2](d), lambda d: d["sos_post_hsct"] == 1),
        "sos_without_hsct_salvage1": share(lambda d: ~hsct(d) & salvage[1](d), lambda d: d["sos"] == 1),
        "sos_without_hsct_salvage2": share(lambda d: ~hsct(d) & salvage[2](d), lambda d: d["sos"] == 1),
        "responders_proceeding_to_hsct": share(lambda d: d["best_response"] == 1, hsct),
        "hsct_directly_after_cr_cri_without_further_induction": share(
            lambda d: np.ones(len(d["hsct"]), dtype=bool), lambda d: d["hsct_in_remission"] == 1),
    }
    figures = []
    for entry in doc["sos_by_salvage_line"] + doc["transplant_paths"]:
        if entry["id"] not in stats_by_id:
            continue  # extra therapy between InO and HSCT: the model has no such step
        source = " + ".join(src.get(s.strip(), s.strip()) for s in str(entry["source"]).split("+"))
        figures.append(Figure(f"evidence:{entry['id']}", entry["id"].replace("_", " "), "inovate",
                              float(entry["value"]), entry.get("n"), "rate", False, False, INOVATE_N, source,
                              stats_by_id[entry["id"]]))
    grades = doc["sos_grades"]
    figures.append(Figure("evidence:fatal_share_of_all_sos", "fatal SOS/VOD, of all SOS/VOD cases (grade 5)",
                          "inovate", grades["grade_5"] / grades["any_grade"], grades["any_grade"], "rate", False,
                          False, INOVATE_N, src[grades["source"]],
                          share(lambda d: d["sos"] == 1, lambda d: d["sos_grade"] == K.SOS_FATAL)))
    return figures


DURABILITY_LABELS = {
    "remission_duration_median_months": "INO-VATE: median duration of CR/CRi, responders (ITT218)",
    "pfs_median_months": "INO-VATE: median PFS, protocol definition (ITT326)",
    "pfs_12_months": "INO-VATE: PFS at 12 months, protocol definition (ITT326)",
}


def _durability_figures() -> list[Figure]:
    """How long InO remissions last in INO-VATE (``targets/durability.yaml``): primary, fitted.

    Remission duration (first CR/CRi to relapse, progression or death; a transplant does
    not censor it) among responders, and progression-free survival by the protocol's
    definition (death, progression, or new induction therapy without CR/CRi) among all,
    each on the INO-VATE cohort as treated. The protocol's fourth PFS event, HSCT without
    CR/CRi, comes only after a progression in the model.
    """
    doc = read_yaml(default_config_dir() / "targets" / "durability.yaml")
    src = doc["sources"]

    def remission_median(d: dict) -> Sim:
        t, e = d["remission"]
        r = d["best_response"]
        return _km_median(t[r], e[r], len(d["hsct"]))

    def pfs_median(d: dict) -> Sim:
        return _km_median(*d["pfs_protocol"], len(d["hsct"]))

    def pfs_at_12(d: dict) -> Sim:
        n = len(d["hsct"])
        s = km_survival_at(*d["pfs_protocol"], DURABILITY_MONTHS)[0]
        return Sim(s, math.sqrt(s * (1 - s) / n), n, n)

    # the responders of ITT218's InO arm (109 patients, 80.7% CR/CRi: S2)
    statistics = {"remission_duration_median_months": ("median", INOVATE_ITT218_RESPONDERS, remission_median),
                  "pfs_median_months": ("median", INOVATE_N, pfs_median),
                  "pfs_12_months": ("rate", INOVATE_N, pfs_at_12)}
    figures = []
    for entry in doc["inovate_ino_arm"]:
        if entry["id"] not in statistics:
            continue  # MRD figures: in the secondary targets (ITT218) or a hazard ratio (docs/evidence.md)
        kind, n, compute = statistics[entry["id"]]
        figures.append(Figure(f"durability:{entry['id']}", DURABILITY_LABELS[entry["id"]], "inovate",
                              float(entry["value"]), n, kind, True, True, n, src[entry["source"]], compute,
                              ci=tuple(entry["ci"]) if "ci" in entry else None))
    return figures


def all_figures() -> list[Figure]:
    """Every published figure the calibration knows: primary, secondary and validation."""
    return _pooled_figures() + _durability_figures() + _inovate_figures() + _evidence_figures()
