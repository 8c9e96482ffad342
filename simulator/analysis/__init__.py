"""Estimators and published figures: Clopper-Pearson, Kaplan-Meier, cumulative incidence and
medians, Cox hazard ratios; the observational grouping by realised dose (:func:`summarize`);
the published targets and the comparison table; the guarantee-time-biased "continue InO in
remission" contrast (:func:`continuation_analysis`); every figure of many trial-sized
replicates at once.

Imports only :mod:`simulator.model`.
"""

from simulator.analysis.continuation import continuation_analysis, continuation_rows
from simulator.analysis.outcomes import cox_hazard_ratio, summarize
from simulator.analysis.targets import comparison_table, load_evidence, load_pooled_targets
from simulator.analysis.trial_metrics import TRIAL_METRICS, trial_figures

__all__ = ["TRIAL_METRICS", "comparison_table", "continuation_analysis", "continuation_rows", "cox_hazard_ratio",
           "load_evidence", "load_pooled_targets", "summarize", "trial_figures"]
