"""Ahoy's benchmarks: `python -m bench` (or `make bench`) prints a table of figures.

Everything runs on loopback on this machine: the Ahoy service and the baselines
as separate processes, the load generator in processes of its own.
"""
