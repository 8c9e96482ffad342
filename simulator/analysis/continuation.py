"""The "continue vs stop InO in remission" contrast, analysed as the publication did.

The only published figure on continuing inotuzumab in remission (S7 in
``configs/targets/hsct_sos_evidence.yaml``) compares INO-VATE responders who did not proceed
to HSCT by the number of InO cycles they received (> 3 vs <= 3): remission-duration hazard
ratio 0.35, MRD negativity 88% vs 61%. It is guarantee-time biased: to receive a 4th cycle a
patient must stay in remission and on treatment for about three months, so early relapses
fall into the <= 3 group whatever InO does. :func:`continuation_analysis` runs the same
analysis on simulated patients, so that the model is compared with the figure through the
figure's own selection and grouping, never as a causal hazard ratio.

Definitions (S7 as read, INO-VATE protocol for remission duration):

- *responders not transplanted*: CR/CRi observed by the data cut-off (``best_response``)
  and no allogeneic HSCT by the data cut-off (``hsct == 0``), whether before or after a
  relapse. S7's 50 patients are INO-VATE's 121 responders minus the 71 who had a
  transplant at any time (the evidence file's ``responders_proceeding_to_hsct``), so
  responders transplanted only after relapse are excluded too.
- *groups*: InO cycles with at least one dose (``cycles``) > 3 vs <= 3.
- *remission duration*: from the first CR/CRi (``response_day``) to relapse or progression
  (``progression_day``) or death from any cause (``death_day``), whichever comes first,
  censored at the data cut-off (``censor_day``); months
  (:func:`simulator.analysis.outcomes.remission_duration`).
- *MRD negativity*: reached during treatment (``mrd_negative``), share of the group with
  Clopper-Pearson 95% intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from simulator.analysis.outcomes import (
    CONFIDENCE,
    HazardRatio,
    clopper_pearson,
    cox_hazard_ratio,
    remission_duration,
)
from simulator.analysis.targets import Evidence, EvidenceRow, published_rate_ci

CYCLES_SPLIT = 3  # cycles: the groups are > 3 and <= 3 InO cycles
RESPONDERS_TO_HSCT = "responders_proceeding_to_hsct"  # the evidence file's figure for the selection


@dataclass(frozen=True)
class Share:
    """``k`` of ``n`` patients, with its 95% Clopper-Pearson interval (fractions)."""

    k: int
    n: int

    @property
    def estimate(self) -> float:
        return self.k / self.n if self.n else math.nan

    def ci(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval (NaN without patients)."""
        return clopper_pearson(self.k, self.n)


@dataclass(frozen=True)
class ContinuationAnalysis:
    """The S7 analysis of one set of patient records.

    Attributes
    ----------
    patients : int
        Patients in the records.
    responders_without_hsct : Share
        Responders not transplanted, of all responders.
    more_cycles : Share
        Patients with > 3 cycles, of the responders not transplanted.
    hazard_ratio : HazardRatio
        Remission duration, > 3 vs <= 3 cycles (dimensionless; Cox, Efron ties, Wald 95% CI).
    mrd_more_cycles, mrd_fewer_cycles : Share
        MRD negativity in the > 3 and <= 3 groups.
    """

    patients: int
    responders_without_hsct: Share
    more_cycles: Share
    hazard_ratio: HazardRatio
    mrd_more_cycles: Share
    mrd_fewer_cycles: Share


def responders_without_hsct(ds: xr.Dataset) -> np.ndarray:
    """Mask of the S7 selection: CR/CRi and no HSCT by the data cut-off."""
    return (ds["best_response"].values == 1) & (ds["hsct"].values == 0)


def continuation_analysis(ds: xr.Dataset) -> ContinuationAnalysis:
    """The guarantee-time-biased "> 3 vs <= 3 cycles" analysis of responders not transplanted.

    Parameters
    ----------
    ds : xarray.Dataset
        Patient records from :func:`simulator.simulate` (an INO-VATE-like population, e.g.
        ``configs/label_dosing.yaml``, to compare with the published figure).

    Returns
    -------
    ContinuationAnalysis
        Group sizes, the Cox hazard ratio of remission duration and MRD negativity by
        group; intervals are Monte Carlo uncertainty on simulated records.
    """
    selected = responders_without_hsct(ds)
    more = ds["cycles"].values > CYCLES_SPLIT
    time, event = remission_duration(ds)
    mrd = ds["mrd_negative"].values == 1
    chosen_more, chosen_fewer = selected & more, selected & ~more
    return ContinuationAnalysis(
        patients=int(ds.sizes["patient"]),
        responders_without_hsct=Share(int(selected.sum()), int((ds["best_response"].values == 1).sum())),
        more_cycles=Share(int(chosen_more.sum()), int(selected.sum())),
        hazard_ratio=cox_hazard_ratio(time[selected], event[selected], more[selected]),
        mrd_more_cycles=Share(int((mrd & chosen_more).sum()), int(chosen_more.sum())),
        mrd_fewer_cycles=Share(int((mrd & chosen_fewer).sum()), int(chosen_fewer.sum())),
    )


def continuation_rows(result: ContinuationAnalysis, evidence: Evidence) -> list[EvidenceRow]:
    """The S7 figures beside their simulated values, ready for a validation report.

    The published hazard ratio comes with a p-value only; its interval is the Wald
    interval that p-value implies (log HR / its SE = the two-sided normal quantile).
    """
    from scipy import special

    proceeding = next(f for f in evidence.transplant_paths if f.id == RESPONDERS_TO_HSCT)
    evidence = evidence.continuing_ino_in_remission
    groups = evidence.groups
    n_more, n_fewer = groups.more_than_3_cycles, groups.three_or_fewer_cycles
    hr = evidence.remission_duration_hazard_ratio
    se = abs(math.log(hr.value)) / -special.ndtri(hr.p / 2)
    z = special.ndtri(0.5 + CONFIDENCE / 2)
    mrd = evidence.mrd_negative
    sim_hr = result.hazard_ratio
    cp = "Clopper-Pearson at the published n"
    return [
        EvidenceRow("responders not transplanted, of CR/CRi", "%", result.responders_without_hsct.estimate,
                    result.responders_without_hsct.ci(), 1.0 - proceeding.value,
                    tuple(1.0 - x for x in reversed(proceeding.ci())), proceeding.source,
                    f"{proceeding.status}; {cp}"),
        EvidenceRow("> 3 InO cycles, of responders not transplanted", "%", result.more_cycles.estimate,
                    result.more_cycles.ci(), n_more / (n_more + n_fewer),
                    clopper_pearson(n_more, n_more + n_fewer), evidence.source, cp),
        EvidenceRow("remission-duration HR, > 3 vs <= 3 cycles", "HR", sim_hr.estimate,
                    (sim_hr.lower, sim_hr.upper), hr.value,
                    (hr.value * math.exp(-z * se), hr.value * math.exp(z * se)), evidence.source,
                    f"Wald interval implied by the published p = {hr.p:g}; guarantee-time biased"),
        EvidenceRow("MRD negativity, > 3 cycles", "%", result.mrd_more_cycles.estimate,
                    result.mrd_more_cycles.ci(), mrd.more_than_3_cycles,
                    published_rate_ci(mrd.more_than_3_cycles, n_more), evidence.source, cp),
        EvidenceRow("MRD negativity, <= 3 cycles", "%", result.mrd_fewer_cycles.estimate,
                    result.mrd_fewer_cycles.ci(), mrd.three_or_fewer_cycles,
                    published_rate_ci(mrd.three_or_fewer_cycles, n_fewer), evidence.source, cp),
    ]
