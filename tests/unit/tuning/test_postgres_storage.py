"""Studies in a real PostgreSQL database (the throwaway server of ``tests/pg.py``)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from stairways.errors import TemporaryError
from stairways.tuning.search import run_search
from stairways.tuning.settings import HeartbeatConfig
from stairways.tuning.storage import normalise_url, open_storage
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective, read_log


def _plain(url: str) -> str:
    """The URL as a user types it: ``postgresql://`` without a driver."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.mark.parametrize(
    ("given", "opened"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
    ],
)
def test_normalise_url_then_only_driverless_postgres_urls_get_psycopg(
    given: str, opened: str
) -> None:
    assert normalise_url(given) == opened


def test_grid_with_two_workers_on_postgres_then_each_point_once_and_resume_adds_the_rest(
    fresh_postgres_url: str, tmp_path: Path, log_path: str
) -> None:
    url = _plain(fresh_postgres_url)
    objective = QuadraticObjective(log_path=log_path, steps=2, rendezvous=2)

    first = run_search(
        make_request(tmp_path, make_space(n_trials=3), workers=2, storage_url=url), objective
    )
    assert first.progress.complete == 3
    assert first.storage_url == url

    second = run_search(
        make_request(tmp_path, make_space(), storage_url=url),
        QuadraticObjective(log_path=log_path, steps=2),
    )

    assert second.progress.complete == 4 and second.progress.failed == 0
    starts = collections.Counter(
        json.dumps(e["params"], sort_keys=True) for e in read_log(log_path) if e["event"] == "start"
    )
    assert len(starts) == 4 and set(starts.values()) == {1}
    assert len({e["pid"] for e in read_log(log_path)}) >= 2
    # The study lives in the database, not in a file under the output directory.
    assert not (tmp_path / "out" / "study.db").exists()
    study = optuna.load_study(study_name="study", storage=open_storage(url, HeartbeatConfig()))
    # Workers racing for the last point may create a trial that gives way (abandoned).
    counted = [t for t in study.trials if "abandoned" not in t.user_attrs]
    assert collections.Counter(t.state for t in counted) == {TrialState.COMPLETE: 4}
    assert all(sorted(t.intermediate_values) == [1, 2] for t in counted)


def test_postgres_server_not_running_then_temporary_error_naming_the_url_without_password(
    fresh_postgres_url: str,
) -> None:
    from tests.pg import free_port

    url = f"postgresql://stairways:secret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(TemporaryError, match="could not open the study storage") as caught:
        open_storage(url, HeartbeatConfig())
    message = str(caught.value)
    assert "127.0.0.1" in message and "secret" not in message
    assert "Check that the database server runs" in message
