"""The risk governor: limits per ladder stage, a persisted state machine, verdicts on intents.

See :mod:`stairways.risk.governor` for how an intent is checked, :mod:`stairways.risk.limits`
for the stage files in ``config/risk/`` and :mod:`stairways.risk.state` for the state machine.
"""
