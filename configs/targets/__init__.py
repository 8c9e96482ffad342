"""Published figures (calibration targets) with their sources."""
