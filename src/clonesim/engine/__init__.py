"""Numba kernels (exact birth-death stepping) and the exact Gillespie reference engine."""
