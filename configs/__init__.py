"""Shipped scenarios, installed as the package ``simulator.configs``."""
