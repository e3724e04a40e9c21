import pytest

from stairways.data.panel import SessionPanel
from tests.unit.env.panels import FULL_DAY, HALF_DAY, random_walk_panel


@pytest.fixture
def panel() -> SessionPanel:
    """Three random-walk sessions: full day, half day, full day."""
    return random_walk_panel((FULL_DAY, HALF_DAY, FULL_DAY), seed=11)


@pytest.fixture
def short_panel() -> SessionPanel:
    """Seven short sessions of different lengths (many episodes per test)."""
    return random_walk_panel((30, 25, 40, 30, 22, 35, 28), seed=5, vol=0.004)
