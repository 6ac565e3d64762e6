"""Observing-system simulation: a synthetic nature run and observations drawn from it."""
