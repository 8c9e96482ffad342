"""Model structures: the mechanisms the published figures cannot tell apart, each selectable.

On the label, a responder's cumulative dose after k cycles is 0.3 + 1.5 k mg/m2, so the
pooled dose analysis alone cannot say whether post-HSCT non-relapse mortality (NRM) rises
with the cumulative dose, with the number of InO cycles before HSCT, with the time from
the first dose to HSCT, or only with the pre-transplant state of those who reach a
transplant late; nor whether continued InO holds remissions, nor whether a prior HSCT
lowers the chance of a second one. Each alternative is a :class:`ModelStructure`. A
structure is a constraint on the parameter vector: the slopes it does not use are fixed
at 0, the ones it uses are fitted (:mod:`simulator.calibration`), so the kernel needs no
switch and an ensemble mixing structures is just a set of parameter vectors.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import BaseModel, ConfigDict

# parameters each choice uses (all others in STRUCTURE_PARAMETERS are fixed at 0)
NRM_DRIVERS = {
    "cumulative_dose": ("nrm_cumulative_dose_slope",),  # log-HR per mg/m2 from 3.3
    "cycles_before_hsct": ("nrm_cycles_slope",),  # log-HR per InO cycle from 2
    "time_to_hsct": ("nrm_time_to_hsct_slope",),  # log-HR per month from first dose to HSCT, from 3
    "pretransplant_state": ("nrm_salvage2", "nrm_dual_alkylator"),  # no InO-exposure term at all
}
RELAPSE_ON_TREATMENT = {"effect": ("relapse_on_treatment",), "none": ()}
PRIOR_HSCT_TRANSPLANT = {"lowers": ("hsct_prior_hsct",), "none": ()}
STRUCTURE_PARAMETERS = frozenset(
    name for table in (NRM_DRIVERS, RELAPSE_ON_TREATMENT, PRIOR_HSCT_TRANSPLANT)
    for names in table.values() for name in names)


class ModelStructure(BaseModel):
    """Which mechanism carries each contested effect.

    Attributes
    ----------
    nrm_driver : {"cumulative_dose", "cycles_before_hsct", "time_to_hsct", "pretransplant_state"}
        What raises post-HSCT NRM beyond age, prior HSCT and SOS: the cumulative InO dose
        (mg/m2), the number of InO cycles before HSCT, the time from the first dose to HSCT
        (months), or only the pre-transplant state (second salvage, dual-alkylator
        conditioning), with no InO-exposure term.
    relapse_on_treatment : {"effect", "none"}
        Whether the relapse hazard in remission changes while InO cycles continue.
    prior_hsct_transplant : {"lowers", "none"}
        Whether a prior allogeneic HSCT changes the chance of being transplant-eligible
        (a log-odds effect, fitted under "lowers").
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    nrm_driver: Literal["cumulative_dose", "cycles_before_hsct", "time_to_hsct", "pretransplant_state"] = \
        "cumulative_dose"
    relapse_on_treatment: Literal["effect", "none"] = "effect"
    prior_hsct_transplant: Literal["lowers", "none"] = "none"

    @property
    def id(self) -> str:
        """A short name, also the file name of the structure's fitted parameters."""
        return f"{self.nrm_driver}-{self.relapse_on_treatment}-{self.prior_hsct_transplant}"

    @property
    def used(self) -> frozenset[str]:
        """Structure parameters this structure uses (fitted)."""
        return frozenset(NRM_DRIVERS[self.nrm_driver] + RELAPSE_ON_TREATMENT[self.relapse_on_treatment]
                         + PRIOR_HSCT_TRANSPLANT[self.prior_hsct_transplant])

    @property
    def unused(self) -> frozenset[str]:
        """Structure parameters fixed at 0 under this structure."""
        return STRUCTURE_PARAMETERS - self.used

    def describe(self) -> str:
        """One line for tables: NRM driver, relapse on treatment, prior HSCT."""
        return (f"NRM driven by {self.nrm_driver.replace('_', ' ')}; continued InO "
                f"{'changes' if self.relapse_on_treatment == 'effect' else 'does not change'} relapse; "
                f"prior HSCT {'lowers' if self.prior_hsct_transplant == 'lowers' else 'does not change'} "
                "transplant eligibility")


def all_structures() -> list[ModelStructure]:
    """Every combination of the alternatives, in a fixed order."""
    return [ModelStructure(nrm_driver=a, relapse_on_treatment=b, prior_hsct_transplant=c)
            for a, b, c in itertools.product(NRM_DRIVERS, RELAPSE_ON_TREATMENT, PRIOR_HSCT_TRANSPLANT)]


def structure_from_id(text: str) -> ModelStructure:
    """The structure named by :attr:`ModelStructure.id`."""
    for s in all_structures():
        if s.id == text:
            return s
    raise ValueError(f"unknown model structure {text!r}; known: {', '.join(s.id for s in all_structures())}")
