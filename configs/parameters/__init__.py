"""Shipped parameter sets."""
