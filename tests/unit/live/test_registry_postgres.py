"""The registry and ladder on a PostgreSQL journal: the index lives in the journal's database."""

from __future__ import annotations

from pathlib import Path

from stairways.clock import ManualClock
from stairways.journal import Journal, JournalLocation
from stairways.live.ladder import Ladder
from stairways.live.ladder_config import LadderConfig
from stairways.live.registry import RegistryIndex, index_location, register_model, stage_of
from tests.unit.live.ladder_helpers import KEY, T0, fake_run, keys


def test_register_promote_and_index_on_postgres(fresh_postgres_url: str, tmp_path: Path) -> None:
    location = JournalLocation.parse(fresh_postgres_url.replace("postgresql+psycopg", "postgresql"))
    assert index_location(location) == location
    clock = ManualClock(T0)
    with Journal.open(location, KEY) as journal:
        model, new = register_model(
            journal, fake_run(tmp_path / "runs"), "final", by="dev", at=clock.now()
        )
        assert new
        Ladder(journal, LadderConfig(), clock, keys).promote(
            model.model_id, requester="dev", reason="test gates"
        )
        assert stage_of(journal, model.model_id) == "paper"
        with RegistryIndex(index_location(location)) as index:
            assert index.sync(journal) == 1
            assert [(r["model_id"], r["stage"]) for r in index.rows()] == [
                (model.model_id, "paper")
            ]
