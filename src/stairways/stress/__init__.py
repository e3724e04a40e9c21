"""The nightly stress suite: scenarios run through the live stack with injected faults.

See :mod:`stairways.stress.results` for the results file the suite writes and the weekly
report reads.
"""
