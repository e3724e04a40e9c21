"""The simulated broker on the market core, its fault injection and a replaying bar feed."""

from stairways.brokers.sim.broker import SimBroker
from stairways.brokers.sim.faults import Disconnect, FaultPlan, PartialFill, Reject, StaleFeed
from stairways.brokers.sim.feed import ReplayBarFeed

__all__ = [
    "Disconnect",
    "FaultPlan",
    "PartialFill",
    "Reject",
    "ReplayBarFeed",
    "SimBroker",
    "StaleFeed",
]
