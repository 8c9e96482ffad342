"""Estimators and published figures: Clopper-Pearson, Kaplan-Meier, cumulative incidence and
medians; the observational grouping by realised dose (:func:`summarize`); the published
targets and the comparison table; every figure of many trial-sized replicates at once.

Imports only :mod:`simulator.model`.
"""

from simulator.analysis.outcomes import summarize
from simulator.analysis.targets import comparison_table, load_evidence, load_pooled_targets
from simulator.analysis.trial_metrics import TRIAL_METRICS, trial_figures

__all__ = ["TRIAL_METRICS", "comparison_table", "load_evidence", "load_pooled_targets", "summarize",
           "trial_figures"]
