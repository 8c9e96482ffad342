"""Sensitivity analysis: one-way (tornado), probabilistic (calibrated ensemble), Sobol and Morris.

Every method has the same call shape, one module each, and returns an :class:`xarray.Dataset`::

    one_way(scenario, parameters, metrics, ...)   # each parameter alone over its range
    psa(scenario, ensemble, metrics, ...)         # every parameter set of an ensemble
    sobol(scenario, problem, metrics, n, ...)     # variance-based indices (SALib)
    morris(scenario, problem, metrics, n, ...)    # elementary effects (SALib)

``parameters``/``problem`` are parameter specs
(:class:`simulator.sensitivity.distributions.ParameterSpec`, a mapping of its keys, or just
a parameter name: then the calibrated ensemble gives its mean and SD). ``metrics`` are
figures of :data:`simulator.analysis.trial_metrics.TRIAL_METRICS`, survival curves read at
time points (``{metric: os_curve, times: [12, 24]}``: indices over a ``time`` dimension),
under the scenario or a named strategy, or the difference between two strategies
(``{metric: os_24_months, strategy: two_cycles, minus: base}``).

**How the simulator is run.** Every parameter set simulates the same ``replicates`` x
``patients`` virtual patients (one seed, patient ids from 0): common random numbers
across parameter sets *and* strategies, so a strategy difference is paired patient by
patient, and a parameter the figure does not use changes nothing at all. A set's figure
is the mean over its replicates, with a Monte Carlo CI from their spread. The sets run in
parallel through :func:`simulator.model.simulation.run_parameter_sets`, in chunks.

**Global methods.** Sampling and estimation are SALib's. Sobol, Morris and one-way
analyses treat parameters as independent; :func:`psa` keeps the ensemble's joint
distribution (its correlations), so it is the one to trust for the uncertainty of an
answer, the others for which assumption drives it.

Imports :mod:`simulator.model`, :mod:`simulator.analysis`, :mod:`simulator.sweep` and
:mod:`simulator.calibration`.
"""

from simulator.sensitivity.common import SensitivityWarning
from simulator.sensitivity.distributions import ParameterSpec
from simulator.sensitivity.files import load_sensitivity, run_sensitivity
from simulator.sensitivity.models import FunctionModel, MetricSpec, SimulatorModel
from simulator.sensitivity.morris import morris
from simulator.sensitivity.one_way import one_way
from simulator.sensitivity.psa import psa
from simulator.sensitivity.report import format_result
from simulator.sensitivity.sobol import sobol

__all__ = ["FunctionModel", "MetricSpec", "ParameterSpec", "SensitivityWarning", "SimulatorModel",
           "format_result", "load_sensitivity", "morris", "one_way", "psa", "run_sensitivity", "sobol"]
