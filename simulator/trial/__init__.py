"""Randomised trials on the virtual patients: designs, group-sequential analyses, dose selection.

>>> from simulator.trial import format_figures, operating_characteristics, simulate_trials
>>> ds = simulate_trials("experiments/trial_two_cycles_vs_label.yaml", n_trials=1000)
>>> print(format_figures(operating_characteristics(ds), "operating characteristics"))

Layers inside: :mod:`~simulator.trial.design` (the YAML), :mod:`~simulator.trial.boundaries`
and :mod:`~simulator.trial.statistics` (jitted building blocks),
:mod:`~simulator.trial.engine` (kernels over trials), :mod:`~simulator.trial.run` (the one
conversion point, chunks and the Dataset), :mod:`~simulator.trial.truth` (the counterfactual
run) and :mod:`~simulator.trial.summary` (operating characteristics).
"""

from simulator.trial.design import Design, load_design
from simulator.trial.run import load_trial, null_arrays, sample_size_search, simulate_trials, trial_arrays
from simulator.trial.summary import analytic, format_figures, operating_characteristics, rejections, verdict
from simulator.trial.truth import look_cuts, true_values

__all__ = ["Design", "analytic", "format_figures", "load_design", "load_trial", "look_cuts", "null_arrays",
           "operating_characteristics", "rejections", "sample_size_search", "simulate_trials", "trial_arrays",
           "true_values", "verdict"]
