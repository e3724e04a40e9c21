"""Benchmarks behind ``stairways bench``: each returns the figures it measured."""
