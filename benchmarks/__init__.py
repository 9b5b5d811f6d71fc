"""Measurement harnesses and evaluations, run from a clone (not shipped in the wheel)."""
