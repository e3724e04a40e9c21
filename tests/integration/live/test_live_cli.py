"""``stairways live run`` refusals that need no trained model: each is bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import stairways


def test_live_stage_at_ibkr_names_every_missing_condition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STAIRWAYS_VAULT", raising=False)
    code = stairways(
        monkeypatch, "live", "run", "--model", str(tmp_path), "--stage", "micro_10",
        "--broker", "ibkr",
    )  # fmt: skip
    err = capfd.readouterr().err
    assert code == 2
    assert "refusing to trade at stage micro_10: 4 condition(s) failed" in err
    for name in ("live port", "--live flag", "vault credentials", "ladder stage"):
        assert f"  {name}:" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "sim"], "give --rehearse YYYY-MM-DD"),
        (["--broker", "sim", "--rehearse", "2024-13-01"], "--rehearse takes a date"),
        (["--broker", "sim", "--rehearse", "2024-01-03", "--live"], "a rehearsal is never live"),
        (["--broker", "ibkr", "--rehearse", "2024-01-03", "--live"], "a rehearsal is never live"),
        (
            ["--broker", "ibkr", "--rehearse", "2024-01-03", "--stage", "micro_10"],
            "runs at stage paper",
        ),
        (["--broker", "fax"], "--broker must be sim or ibkr"),
        (["--stage", "scale_100"], "unknown stage 'scale_100'"),
    ],
)
def test_live_run_refuses_bad_flags_with_their_name(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code = stairways(monkeypatch, "live", "run", "--model", str(tmp_path), *args)
    assert code == 2
    assert message in capfd.readouterr().err
