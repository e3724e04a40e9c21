"""The live side: the live loop (clock, bar feed, features, policy, governor, broker, journal),
its safety (emergency stop, watchdog, crash recovery), lineage, and the model registry and
promotion ladder."""
