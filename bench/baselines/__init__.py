"""Servers Ahoy is compared with, run with the same workload as Ahoy."""
