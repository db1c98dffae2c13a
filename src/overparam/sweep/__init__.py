"""Sweeps: points to executor to store."""
