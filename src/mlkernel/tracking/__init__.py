"""Run tracking: runs, buffered metrics, parameters, artifacts and their provenance."""
