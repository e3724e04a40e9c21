"""The model registry: registration records, fingerprints, stage aliases, the live loop's checks,
and the index that survives a crash."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from stairways.errors import InputError
from stairways.journal import JournalLocation, JournalReader
from stairways.live import registry as reg
from stairways.live.model import ModelFingerprintError, fingerprint_files
from stairways.live.registry import (
    ModelNotFoundError,
    RegistryIndex,
    describe_model,
    index_location,
    live_allowed,
    load_model_ref,
    read_models,
    register_model,
    resolve_model,
    stage_of,
)
from stairways.training.rundir import RunDirectory
from tests.unit.live.ladder_helpers import (
    T0,
    Bench,
    approve_all,
    bench,
    fake_run,
    open_journal,
    serve,
    to_paper,
    trading_days,
    write_evaluation,
)


def test_register_records_every_file_hash_the_data_print_and_the_gate_verdicts(
    tmp_path: Path,
) -> None:
    b = bench(tmp_path)
    m = b.model
    run = RunDirectory.open(b.run_dir)
    assert m.model_id == f"{run.name}-final-{m.fingerprint[:8]}"
    assert set(m.files) == {"model", "vecnormalize", "normaliser", "config", "reward_state"}
    assert m.files["model"]["path"] == str((b.run_dir / "final_model.zip").resolve())
    assert len(m.files["config"]["sha256"]) == 64
    assert m.data_fingerprint == "panel-fp-1"
    assert m.fingerprint == fingerprint_files(b.run_dir, m.checkpoint_files())
    assert m.oos_passed is True
    test = m.evaluations["test"]
    assert [g["metric"] for g in test["gates"]] == ["sharpe", "significance"]
    assert test["metrics"]["sharpe"] == 1.2 and test["sessions"] == 40
    assert stage_of(b.journal, m.model_id) == "research"
    # The registration is a journal record (the record is the registry).
    (rec,) = [
        r for r in b.journal.records(kinds=["config"]) if r.payload["type"] == "model_registered"
    ]
    assert rec.payload["fingerprint"] == m.fingerprint and rec.payload["registered_by"] == "dev"


def test_registering_the_same_files_again_writes_nothing_and_returns_the_same_model(
    tmp_path: Path,
) -> None:
    b = bench(tmp_path)
    before = b.count()
    again, new = register_model(b.journal, b.run_dir, "final", by="other", at=T0)
    assert not new and again.model_id == b.model.model_id and again.registered_by == "dev"
    assert b.count() == before


def test_a_failed_test_verdict_is_recorded_as_failed(tmp_path: Path) -> None:
    b = bench(tmp_path, test_passed=False)
    assert b.model.oos_passed is False
    assert b.model.evaluations["test"]["passed"] is False


def test_an_evaluation_of_other_steps_is_refused_naming_the_file(tmp_path: Path) -> None:
    run_dir = fake_run(tmp_path / "runs")
    write_evaluation(run_dir, "test", passed=True, timesteps=1024)
    with pytest.raises(InputError, match=r"metrics\.json evaluated checkpoint final at 1024"):
        describe_model(run_dir, "final")


def test_a_changed_model_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    b = bench(tmp_path)
    assert load_model_ref(b.journal, b.model.model_id).fingerprint == b.model.fingerprint
    (b.run_dir / "final_model.zip").write_bytes(b"retrained weights")
    with pytest.raises(ModelFingerprintError, match=r"model file .*final_model\.zip changed"):
        load_model_ref(b.journal, b.model.model_id)


@pytest.mark.parametrize("name", ["normaliser.json", "config.yaml", "final_vecnormalize.pkl"])
def test_any_changed_part_is_refused(tmp_path: Path, name: str) -> None:
    b = bench(tmp_path)
    (b.run_dir / name).write_bytes(b"changed")
    with pytest.raises(ModelFingerprintError, match=name.replace(".", r"\.")):
        load_model_ref(b.journal, b.model.model_id)


def test_a_changed_data_fingerprint_is_refused(tmp_path: Path) -> None:
    b = bench(tmp_path)
    run = RunDirectory.open(b.run_dir)
    manifest = run.read_manifest()
    data = manifest.data.model_copy(update={"panel_fingerprint": "other-panel"})
    run.write_manifest(manifest.model_copy(update={"data": data}))
    with pytest.raises(ModelFingerprintError, match="data fingerprint is other-panel"):
        load_model_ref(b.journal, b.model.model_id)


def test_a_missing_model_file_is_refused(tmp_path: Path) -> None:
    b = bench(tmp_path)
    (b.run_dir / "final_model.zip").unlink()
    with pytest.raises(ModelFingerprintError, match="is missing"):
        load_model_ref(b.journal, b.model.model_id)


def test_changed_files_register_as_a_new_model_in_research(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    (b.run_dir / "final_model.zip").write_bytes(b"retrained weights")
    new, created = register_model(b.journal, b.run_dir, "final", by="dev", at=T0)
    assert created and new.model_id != b.model.model_id
    assert stage_of(b.journal, new.model_id) == "research"
    assert stage_of(b.journal, b.model.model_id) == "paper"


def test_a_stage_alias_resolves_to_the_model_in_that_stage(tmp_path: Path) -> None:
    b = bench(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no model is in stage paper"):
        resolve_model(b.journal, "paper")
    to_paper(b)
    assert resolve_model(b.journal, "paper").model_id == b.model.model_id
    ref = load_model_ref(b.journal, "paper")
    assert ref.registered and ref.stage == "paper" and ref.model_id == b.model.model_id
    with pytest.raises(InputError, match="research is not an alias"):
        resolve_model(b.journal, "research")


def test_an_unknown_model_names_the_registered_ones(tmp_path: Path) -> None:
    b = bench(tmp_path)
    with pytest.raises(ModelNotFoundError, match=b.model.model_id):
        resolve_model(b.journal, "nope")


def _climb_to(b: Bench, stage: str) -> None:
    to_paper(b)
    if stage == "paper":
        return
    serve(b, "paper", trading_days(date(2026, 1, 6), 7))
    req = b.ladder.promote(b.model.model_id, requester="dev", reason="7 days").request
    assert req is not None
    approve_all(b, req.request_id, ["risk_officer", "head_of_trading"])
    b.ladder.promote(b.model.model_id, requester="dev", reason="approved")
    if stage == "micro_10":
        return
    serve(b, "micro_10", trading_days(date(2026, 1, 20), 7))
    req = b.ladder.promote(b.model.model_id, requester="dev", reason="7 days").request
    assert req is not None
    approve_all(b, req.request_id, ["risk_officer", "head_of_trading", "compliance_officer"])
    b.ladder.promote(b.model.model_id, requester="dev", reason="approved")


@pytest.mark.parametrize(
    ("stage", "allowed"),
    [
        ("research", {"paper": False, "micro_10": False, "scale_50": False}),
        ("paper", {"paper": True, "micro_10": False, "scale_50": False}),
        ("micro_10", {"paper": True, "micro_10": True, "scale_50": False}),
        ("scale_50", {"paper": True, "micro_10": True, "scale_50": True}),
    ],
)
def test_live_allowed_only_at_or_below_the_models_stage(
    tmp_path: Path, stage: str, allowed: dict[str, bool]
) -> None:
    b = bench(tmp_path)
    if stage != "research":
        _climb_to(b, stage)
    assert stage_of(b.journal, b.model.model_id) == stage
    for at, ok in allowed.items():
        decision = live_allowed(b.journal, b.model.model_id, at)
        assert decision.allowed is ok, decision.reason
        assert decision.model_stage == stage
        if not ok:
            assert stage in decision.reason and "promot" in decision.reason


def test_live_allowed_refuses_an_unknown_stage(tmp_path: Path) -> None:
    b = bench(tmp_path)
    with pytest.raises(InputError, match="unknown trading stage 'huge'"):
        live_allowed(b.journal, b.model.model_id, "huge")


def test_a_journal_named_like_the_registry_index_is_refused_naming_it(tmp_path: Path) -> None:
    journal = tmp_path / "registry.sqlite"
    with pytest.raises(InputError, match="registry index") as err:
        index_location(JournalLocation.sqlite(journal))
    assert str(journal) in str(err.value)
    assert not journal.exists()


def test_the_index_is_rebuilt_from_the_journal_after_a_lost_write(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    location = index_location(JournalLocation.sqlite(tmp_path / "journal.sqlite"))
    assert location.path == tmp_path / "registry.sqlite"
    with RegistryIndex(location) as index:
        assert index.sync(b.journal) == 1
        (row,) = index.rows()
    assert row["stage"] == "paper" and row["fingerprint"] == b.model.fingerprint
    # A second model registered while the index was not updated (a crash after the journal
    # append): the next sync has it.
    other = b.register(fake_run(tmp_path / "runs2", "other"))
    with RegistryIndex(location) as index:
        assert [r["model_id"] for r in index.rows()] == [b.model.model_id]
        assert index.sync(b.journal) == 2
        assert [r["model_id"] for r in index.rows()] == [b.model.model_id, other.model_id]


def test_a_sync_that_fails_midway_leaves_the_index_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = bench(tmp_path)
    location = index_location(JournalLocation.sqlite(tmp_path / "journal.sqlite"))
    with RegistryIndex(location) as index:
        index.sync(b.journal)
    to_paper(b)
    b.register(fake_run(tmp_path / "runs2", "other"))
    real_insert = reg.MODELS.insert

    class Boom:
        def __call__(self) -> object:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(reg.MODELS, "insert", Boom())
    with RegistryIndex(location) as index, pytest.raises(reg.RegistryError, match="disk I/O"):
        index.sync(b.journal)
    monkeypatch.setattr(reg.MODELS, "insert", real_insert)
    with RegistryIndex(location) as index:
        rows = index.rows()
    assert [(r["model_id"], r["stage"]) for r in rows] == [(b.model.model_id, "research")]


def test_a_reader_sees_the_registry_without_the_key(tmp_path: Path) -> None:
    b = bench(tmp_path)
    b.journal.close()
    with JournalReader.open(JournalLocation.sqlite(tmp_path / "journal.sqlite")) as reader:
        assert list(read_models(reader)) == [b.model.model_id]
    j = open_journal(tmp_path / "journal.sqlite")
    j.close()
    assert json.loads(json.dumps(b.model.payload()))["model_id"] == b.model.model_id


def test_live_allowed_with_the_ladder_config_refuses_a_stage_that_failed(tmp_path: Path) -> None:
    from stairways.live.ladder_config import LadderConfig
    from tests.unit.live.ladder_helpers import Day, journal_session

    b = bench(tmp_path)
    _climb_to(b, "micro_10")
    cfg = LadderConfig()
    assert live_allowed(b.journal, b.model.model_id, "micro_10", ladder=cfg).allowed
    journal_session(b.journal, b.model, "micro_10", date(2026, 2, 2), Day(breach=True))
    decision = live_allowed(b.journal, b.model.model_id, "micro_10", ladder=cfg)
    assert not decision.allowed
    assert "failed its stage micro_10 (hard-limit breach" in decision.reason
    assert "stairways ladder review" in decision.reason
    # The shipped config is the default judge; check_failures=False looks at the stage only.
    assert not live_allowed(b.journal, b.model.model_id, "micro_10").allowed
    assert live_allowed(b.journal, b.model.model_id, "micro_10", check_failures=False).allowed


def test_one_ladder_action_at_a_time_holds_the_registry_lock(tmp_path: Path) -> None:
    b = bench(tmp_path)
    location = index_location(JournalLocation.sqlite(tmp_path / "journal.sqlite"))
    with RegistryIndex(location) as first, first.exclusive() as conn:
        with RegistryIndex(location, timeout=0.2) as second:
            with pytest.raises(reg.RegistryError, match="busy"), second.exclusive():
                pass
            assert second.rows() == []  # readers do not wait for the lock
        first.sync(b.journal, conn)
    with RegistryIndex(location) as again, again.exclusive():
        assert [r["model_id"] for r in again.rows()] == [b.model.model_id]


def test_an_evaluation_made_after_registration_is_recorded_on_registering_again(
    tmp_path: Path,
) -> None:
    import shutil

    from stairways.live.ladder import GatesNotPassedError

    run_dir = fake_run(tmp_path / "runs")
    shutil.rmtree(run_dir / "eval" / "test")
    j = open_journal(tmp_path / "journal.sqlite")
    first, wrote = register_model(j, run_dir, "final", by="dev", at=T0)
    assert wrote and first.evaluations == {}
    b = bench(tmp_path / "other")
    b.ladder.journal = j
    with pytest.raises(GatesNotPassedError, match="no evaluation on the test split"):
        b.ladder.promote(first.model_id, requester="dev", reason="try")
    write_evaluation(run_dir, "test", passed=True)
    again, wrote = register_model(j, run_dir, "final", by="someone else", at=T0)
    assert wrote and again.model_id == first.model_id and again.oos_passed
    assert again.registered_by == "dev" and again.seq == first.seq
    assert read_models(j)[first.model_id].oos_passed
    assert register_model(j, run_dir, "final", by="dev", at=T0)[1] is False
    b.ladder.promote(first.model_id, requester="dev", reason="test gates passed")
    assert stage_of(j, first.model_id) == "paper"
