"""Calibration: fit the model parameters to published figures and quantify their uncertainty.

* :mod:`~simulator.calibration.parameters`: which parameters are fitted, on which scale.
* :mod:`~simulator.calibration.figures`: published figures as simulated statistics.
* :mod:`~simulator.calibration.fit`: the likelihood and the least-squares fit.
* :mod:`~simulator.calibration.posterior`: the SMC sampler and the ensemble Dataset.
* :mod:`~simulator.calibration.check`: a parameter set against every figure.
* :mod:`~simulator.calibration.run`: the whole run behind ``inosim calibrate``.

Imports :mod:`simulator.model`, :mod:`simulator.analysis` and :mod:`simulator.runtime`.
"""
