"""Patient segments: one-way splits of the virtual patients by a baseline covariate.

A split (``age_55``, ``salvage_line``, ``transplant_eligible``, ``prior_hsct``,
``ph_positive``, ``bilirubin_high``) divides every trial's patients into segments by the
baseline covariates in their records. A figure of a segment is the same figure computed on
a mask of the records (:func:`simulator.analysis.trial_metrics.trial_figures`), not a new
simulation: a segment's difference between two strategies is paired like the whole
population's (common random numbers), and the segments of a split, each weighted by its
share of the patients, add up to the whole population for any figure over every patient.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALL_PATIENTS = "all patients"  # the segment that is the whole population
AGE_PATTERN = re.compile(r"age_(\d+)")  # age_<years>: younger than <years> vs <years> and older
AGE_RANGE = (19, 100)  # years a cut may take: the simulated patients are adults


@dataclass(frozen=True)
class Split:
    """A one-way split of the patients into segments by a baseline covariate.

    Parameters
    ----------
    id : str
        What ``--by`` names it (``age_55``).
    segments : tuple of str
        The segments' clinical titles, in the order of ``code``'s values.
    code : callable
        ``code(records)`` -> each patient's segment index (0, 1, ...), from columns of
        :func:`simulator.model.simulation.record_columns`.
    """

    id: str
    segments: tuple[str, ...]
    code: Callable[[Mapping[str, np.ndarray]], np.ndarray]

    def masks(self, records: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each segment's patients as a boolean mask over the records."""
        code = np.asarray(self.code(records))
        return {name: code == k for k, name in enumerate(self.segments)}


def _flag(column: str) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """Segment 1 where the record's 0/1 column is set, 0 elsewhere."""
    return lambda d: np.asarray(d[column]).astype(np.int64)


SPLITS = {
    "salvage_line": Split("salvage_line", ("first salvage", "second salvage"),
                          lambda d: np.asarray(d["salvage"]).astype(np.int64) - 1),
    "transplant_eligible": Split("transplant_eligible", ("HSCT-ineligible", "HSCT-eligible"),
                                 _flag("transplant_eligible")),
    "prior_hsct": Split("prior_hsct", ("no prior HSCT", "prior HSCT"), _flag("prior_hsct")),
    "ph_positive": Split("ph_positive", ("Ph-negative", "Ph-positive"), _flag("ph_positive")),
    "bilirubin_high": Split("bilirubin_high", ("bilirubin < ULN", "bilirubin >= ULN"), _flag("bilirubin_high")),
}
VALID = ("age_<years> (e.g. age_55)", *SPLITS)


def age_split(years: int) -> Split:
    """Patients younger than ``years`` at the first dose, and those ``years`` and older."""
    return Split(f"age_{years}", (f"age < {years}", f"age >= {years}"),
                 lambda d: (np.asarray(d["age"]) >= years).astype(np.int64))


def split(name: str) -> Split:
    """The split named ``name``: ``age_<years>`` or a key of :data:`SPLITS`.

    Raises
    ------
    KeyError
        One line naming the unknown split and every valid one.
    """
    age = AGE_PATTERN.fullmatch(name)
    if age and AGE_RANGE[0] <= int(age.group(1)) <= AGE_RANGE[1]:
        return age_split(int(age.group(1)))
    if name in SPLITS:
        return SPLITS[name]
    why = f"age cuts lie in {AGE_RANGE[0]}-{AGE_RANGE[1]} years; " if age else ""
    raise KeyError(f"no segment split '{name}' ({why}valid: {', '.join(VALID)})")


def splits(names: Sequence[str]) -> tuple[Split, ...]:
    """The splits named, each name possibly a comma list (``age_55,salvage_line``).

    Raises
    ------
    KeyError
        One line: an unknown split (with every valid one), or one named twice.
    """
    ids = [part.strip() for text in names for part in text.split(",") if part.strip()]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise KeyError(f"segment split '{twice[0]}' named twice")
    return tuple(split(i) for i in ids)
