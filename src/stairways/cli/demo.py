"""``stairways demo``: the main job on the embedded default data."""

from __future__ import annotations


def demo() -> None:
    """Run the main job on the embedded synthetic market and print where outputs went."""
    raise NotImplementedError
