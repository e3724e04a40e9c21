"""Fixtures of the registry and ladder tests: run directories, journals and journaled sessions.

A run directory here holds the files a registration hashes (model zip, VecNormalize statistics,
normaliser, config, manifest) and an evaluation's ``metrics.json`` and ``gates.json``; their
bytes are arbitrary (nothing loads the model). Sessions are journaled with the record kinds
and payloads the live loop writes (:mod:`stairways.live.records`), so the ladder's evidence is
computed from the same records it reads in production.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from stairways.clock import EXCHANGE_TZ, ManualClock
from stairways.journal import Journal, JournalLocation, MacKey
from stairways.live.ladder import Ladder
from stairways.live.ladder_config import LadderConfig
from stairways.live.registry import RegisteredModel, register_model
from stairways.security.secret import Secret
from stairways.security.vault import SecretNotFoundError
from stairways.training.rundir import DataProvenance, Manifest, RunDirectory

KEY = MacKey(b"ladder-test-journal-mac-key-0123456789")
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=EXCHANGE_TZ)
APPROVER_KEYS = {
    "risk_officer": "risk-officer-signing-key-0123456789abcdef",
    "head_of_trading": "head-of-trading-signing-key-0123456789ab",
    "compliance_officer": "compliance-officer-signing-key-012345678",
}
CAPITAL = 10_000.0
TIMESTEPS = 2048


def keys(name: str) -> Secret:
    """An approver's signing key, as the vault would give it."""
    if name not in APPROVER_KEYS:
        raise SecretNotFoundError(f"secret approver_key.{name} is not in the vault")
    return Secret(APPROVER_KEYS[name])


def fake_run(root: Path, name: str = "cfg", *, test_passed: bool = True) -> Path:
    """A finished run directory with a final model and a test-split evaluation."""
    run = RunDirectory.create(root, name, 0, datetime(2025, 6, 1, tzinfo=UTC))
    run.write_manifest(
        Manifest(
            run_name=run.name,
            config_name=name,
            status="completed",
            algo="ppo",
            seed=0,
            total_timesteps=TIMESTEPS,
            timesteps=TIMESTEPS,
            start_time="2025-06-01T00:00:00+00:00",
            git_commit="abc",
            git_dirty=False,
            python="3.11",
            platform="linux",
            versions={},
            torch_threads=1,
            final_model=RunDirectory.FINAL_MODEL,
            data=DataProvenance(
                symbols=["NVDA", "MSFT"],
                split="train",
                split_range={},
                splits={},
                panel_fingerprint="panel-fp-1",
                n_sessions=10,
                synthetic=True,
                store_path="store.duckdb",
            ),
        )
    )
    (run.path / RunDirectory.FINAL_MODEL).write_bytes(b"model weights " + name.encode())
    (run.path / "final_vecnormalize.pkl").write_bytes(b"vecnormalize statistics")
    (run.path / "final_reward_state.json").write_text("{}")
    run.normaliser_path.write_text('{"mean": [0.0], "std": [1.0]}')
    run.config_path.write_text(f"name: {name}\n")
    write_evaluation(run.path, "test", passed=test_passed)
    return run.path


def write_evaluation(
    run_dir: Path, split: str, *, passed: bool, timesteps: int = TIMESTEPS
) -> None:
    """``eval/<split>/final/{metrics,gates}.json`` as ``stairways evaluate`` writes them."""
    out = run_dir / "eval" / split / "final"
    out.mkdir(parents=True, exist_ok=True)
    gates = [
        {
            "metric": "sharpe",
            "value": 1.2 if passed else 0.1,
            "op": ">=",
            "threshold": 0.3,
            "passed": passed,
            "detail": "",
            "informative": True,
            "baselines_passing": [],
        },
        {
            "metric": "significance",
            "value": 3.0,
            "op": ">",
            "threshold": 0.0,
            "passed": True,
            "detail": "",
            "informative": True,
            "baselines_passing": [],
        },
    ]
    (out / "gates.json").write_text(json.dumps({"passed": passed, "gates": gates}))
    metrics = {
        "split": split,
        "checkpoint": "final",
        "timesteps": timesteps,
        "sessions": 40,
        "first_session": "2024-01-02",
        "last_session": "2024-02-29",
        "panel_fingerprint": "test-panel",
        "synthetic": True,
        "agent": {"total_pnl": 123.4, "sharpe": 1.2, "max_drawdown": 0.01, "win_rate": 0.6},
    }
    (out / "metrics.json").write_text(json.dumps(metrics))


def open_journal(path: Path) -> Journal:
    """A journal (created when missing) with the test key."""
    return Journal.open(JournalLocation.sqlite(path), KEY)


@dataclass
class Day:
    """One session's shape: P&L before fees, fees, drawdown, latency and trouble to journal."""

    gross: float = 5.0
    fees: float = 1.0
    drawdown: float = 0.004
    latency_ms: float = 0.5
    decisions: int = 20
    orders: int = 4
    errors: int = 0
    breach: bool = False
    emergency_stop: bool = False
    rehearsal: bool = False
    broker: str = "ibkr"
    clock: str = "exchange"
    ended: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def journal_session(
    journal: Journal,
    model: RegisteredModel,
    stage: str,
    day: date,
    shape: Day,
    *,
    fingerprint: str | None = None,
    serial: int = 1,
) -> str:
    """Journal one whole session of ``model`` at ``stage`` the way the live loop does."""
    at = datetime(day.year, day.month, day.day, 9, 31, tzinfo=EXCHANGE_TZ)
    sid = f"{'R' if shape.rehearsal else 'L'}{day:%Y%m%d}{stage[0]}{model.fingerprint[:6]}{serial}"
    base = {"session_id": sid, "rehearsal": shape.rehearsal}
    ev: list[tuple[str, dict[str, Any], datetime]] = [
        (
            "config",
            {
                "type": "live_session",
                **base,
                "day": day.isoformat(),
                "stage": stage,
                "model_id": model.model_id,
                "fingerprint": fingerprint or model.fingerprint,
                "broker": shape.broker,
                "clock": shape.clock,
                "capital": CAPITAL,
                **shape.extra,
            },
            at,
        )
    ]
    for k in range(shape.decisions):
        ev.append(
            (
                "decision",
                {
                    **base,
                    "observation_hash": f"h{k}",
                    "decision_id": f"{sid}-{k}",
                    "latency_ms": shape.latency_ms,
                },
                at + timedelta(minutes=k),
            )
        )
    for k in range(shape.orders):
        ev.append(("order", {**base, "type": "submitting", "client_order_id": f"{sid}-o{k}"}, at))
    for k in range(shape.errors):
        ev.append(
            (
                "order_status",
                {**base, "client_order_id": f"{sid}-o{k}", "state": "rejected", "reason": "test"},
                at,
            )
        )
    # Two fills: buy 10 at 100, sell 10 at 100 + gross/10: P&L before fees is ``gross``.
    half = shape.fees / 2
    ev.append(
        ("fill", {**base, "symbol": "NVDA", "quantity": 10.0, "price": 100.0, "fee": half}, at)
    )
    ev.append(
        (
            "fill",
            {
                **base,
                "symbol": "NVDA",
                "quantity": -10.0,
                "price": 100.0 + shape.gross / 10.0,
                "fee": shape.fees - half,
            },
            at,
        )
    )
    if shape.breach:
        ev.append(
            ("alert", {"kind": "stop", "rule": "loss_limit", "message": "loss limit hit"}, at)
        )
    if shape.emergency_stop:
        ev.append(
            (
                "governor_state",
                {
                    "state": "EMERGENCY_STOP",
                    "previous": "RUNNING",
                    "who": "alice",
                    "why": "manual halt",
                },
                at,
            )
        )
    if shape.ended:
        net = shape.gross - shape.fees
        ev.append(
            (
                "config",
                {
                    "type": "live_session_end",
                    **base,
                    "reason": "session closed",
                    "figures": {
                        "equity": CAPITAL + net,
                        "pnl": net,
                        "fees": shape.fees,
                        "max_drawdown": shape.drawdown,
                    },
                    "positions": {"NVDA": 0.0, "MSFT": 0.0},
                },
                at + timedelta(hours=6),
            )
        )
    journal.append_many(ev)
    return sid


def trading_days(start: date, n: int) -> list[date]:
    """``n`` weekdays from ``start``."""
    out: list[date] = []
    d = start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


@dataclass
class Bench:
    """A journal, a clock, a ladder and a registered model ready to climb."""

    journal: Journal
    clock: ManualClock
    ladder: Ladder
    model: RegisteredModel
    run_dir: Path

    def register(self, run_dir: Path) -> RegisteredModel:
        """Register another run's final checkpoint."""
        return register_model(self.journal, run_dir, "final", by="dev", at=self.clock.now())[0]

    def count(self) -> int:
        """Records in the journal."""
        return self.journal.count()


def bench(tmp_path: Path, config: LadderConfig | None = None, *, test_passed: bool = True) -> Bench:
    """A registered model in research, on a fresh journal and a manual clock."""
    journal = open_journal(tmp_path / "journal.sqlite")
    clock = ManualClock(T0)
    run_dir = fake_run(tmp_path / "runs", test_passed=test_passed)
    model = register_model(journal, run_dir, "final", by="dev", at=clock.now())[0]
    ladder = Ladder(journal, config or LadderConfig(), clock, keys)
    return Bench(journal, clock, ladder, model, run_dir)


def to_paper(b: Bench) -> None:
    """Promote the bench's model from research to paper (needs no approval)."""
    b.ladder.promote(b.model.model_id, requester="dev", reason="test gates passed")


def serve(b: Bench, stage: str, days: list[date], shape: Day | None = None) -> None:
    """Journal one session per day for the bench's model at ``stage``."""
    for d in days:
        journal_session(b.journal, b.model, stage, d, shape or Day())
    b.clock.set(datetime(days[-1].year, days[-1].month, days[-1].day, 17, 0, tzinfo=EXCHANGE_TZ))


def approve_all(b: Bench, request_id: str, approvers: list[str]) -> None:
    """Each approver signs an approval of ``request_id``."""
    for a in approvers:
        b.ladder.approve(request_id, approver=a, reason=f"{a} read the evidence")
