"""``stairways models register|list`` and ``stairways ladder status|promote|approve|reject|
demote|review|history``.

Every command works on the journal (``journal.path`` or ``journal.url`` from the config, or
``--journal``); commands that write need its MAC key from the vault, and ``approve``,
``reject`` and completing a ``promote`` read the approvers' signing keys
(``approver_key.<name>``) from the same vault. ``--ladder-config`` names the ladder's
thresholds and committee (default: the shipped ``config/ladder.yaml``). Exit codes: 0 done,
2 refused (bad input: the reason is printed, nothing changed), 3 gates not passed, 1 failure.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.cli.journal import JournalOption
from stairways.cli.journal import _settings as journal_settings
from stairways.clock import ExchangeClock
from stairways.config import StairwaysConfig
from stairways.journal import Journal, JournalLocation, JournalReader, MacKey
from stairways.live.ladder import GatesNotPassedError, Ladder, ModelStatus
from stairways.live.ladder_config import LadderConfig, load_ladder_config
from stairways.live.registry import (
    RegistryIndex,
    index_location,
    read_models,
    register_model,
    stages_now,
)
from stairways.reports.tables import Column, dollars, percent, render_text, table
from stairways.security.access import open_vault
from stairways.security.names import approver_key_name
from stairways.security.passphrase import terminal_prompt
from stairways.security.secret import Secret
from stairways.security.vault import Vault

models_app = typer.Typer(
    help="The model registry: register a trained checkpoint, list registered models.",
    no_args_is_help=True,
)
app = typer.Typer(
    help="The promotion ladder: research -> paper -> micro_10 -> scale_50.",
    no_args_is_help=True,
)

LadderConfigOption = typer.Option(
    None, "--ladder-config", help="Ladder thresholds and committee (default config/ladder.yaml)."
)
ReasonOption = typer.Option(..., "--reason", "-r", help="Why, in words (journaled).")
ApproverOption = typer.Option(
    None, "--approver", help="Committee member (default: login name); signs with their key."
)
EXIT_GATES = 3


def _login() -> str:
    return getpass.getuser()


class _Access:
    """The journal's location, and the vault opened once (MAC key and approvers' keys)."""

    def __init__(self, cfg: StairwaysConfig, journal: str | None, *, need_vault: bool) -> None:
        self.settings = journal_settings(cfg, journal)
        self.vault: Vault | None = None
        if need_vault or self.settings.password_secret is not None:
            self.vault = open_vault(
                cfg.security.vault_path,
                prompt=terminal_prompt(),
                reading=self.settings.mac_key_secret,
            )
        password = None
        if self.settings.url is not None and self.settings.password_secret is not None:
            assert self.vault is not None
            password = self.vault.get(self.settings.password_secret)
        if self.settings.url is not None:
            self.location = JournalLocation.postgres(self.settings.url, password)
        else:
            self.location = JournalLocation.sqlite(self.settings.path)

    def mac_key(self) -> MacKey:
        assert self.vault is not None
        return MacKey.from_secret(self.vault.get(self.settings.mac_key_secret))

    def approver_key(self, approver: str) -> Secret:
        assert self.vault is not None
        return self.vault.get(approver_key_name(approver))


@contextmanager
def _writer(access: _Access) -> Iterator[Journal]:
    """The journal for one ladder action, under the registry's lock; the index is brought up
    to date before the lock is released (an action that fails wrote nothing)."""
    with (
        Journal.open(access.location, access.mac_key()) as journal,
        RegistryIndex(index_location(access.location)) as index,
        index.exclusive() as conn,
    ):
        yield journal
        index.sync(journal, conn)


def _ladder(journal: Any, ladder_cfg: LadderConfig, access: _Access | None) -> Ladder:
    keys = access.approver_key if access is not None and access.vault is not None else None
    return Ladder(journal, ladder_cfg, ExchangeClock(), keys)


@models_app.command("register")
def register(
    run_dir: Path = typer.Argument(..., help="The training run directory."),
    checkpoint: str = typer.Option(
        "final", "--checkpoint", help="final, best or checkpoints/checkpoint_<steps>.zip."
    ),
    by: str | None = typer.Option(None, "--by", help="Who registers it (default: login name)."),
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Record a checkpoint's fingerprint, evaluations and gate verdicts in the registry."""
    cfg = build_config(config)
    access = _Access(cfg, journal, need_vault=True)
    with _writer(access) as log:
        known = set(read_models(log))
        model, wrote = register_model(
            log, run_dir, checkpoint, by=by or _login(), at=ExchangeClock().now()
        )
        stage = stages_now(log)[model.model_id][0]
    if model.model_id not in known:
        what = "registered"
    else:
        what = "evaluations updated" if wrote else "already registered"
    typer.echo(f"{what}: {model.model_id} ({stage})")
    typer.echo(f"  fingerprint {model.fingerprint}")
    typer.echo(f"  data fingerprint {model.data_fingerprint}; run {model.run_dir}")
    if not model.evaluations:
        typer.echo("  no evaluation of this checkpoint in the run (stairways evaluate)")
    for split, ev in sorted(model.evaluations.items()):
        verdict = "passed" if ev.get("passed") else "FAILED"
        failed = [g["metric"] for g in ev.get("gates", []) if not g.get("passed")]
        tail = f" (failing: {', '.join(failed)})" if failed else ""
        typer.echo(f"  {split} gates {verdict}{tail}; {ev.get('sessions')} sessions")
    typer.echo(f"journal {access.location}")


@models_app.command("list")
def list_models(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Every registered model with its stage and test verdict."""
    cfg = build_config(config)
    access = _Access(cfg, journal, need_vault=False)
    with JournalReader.open(access.location) as reader:
        models = read_models(reader)
        stages = stages_now(reader)
    rows = [
        {
            "model": m.model_id,
            "stage": stages[m.model_id][0],
            "checkpoint": m.checkpoint,
            "test": (
                "none" if "test" not in m.evaluations else ("passed" if m.oos_passed else "failed")
            ),
            "fingerprint": m.fingerprint[:16],
            "registered": m.registered_at[:19],
            "run_dir": str(m.run_dir),
        }
        for m in models.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no registered model in journal {access.location}")
        return
    cols = [Column(k) for k in ("model", "stage", "test", "fingerprint", "registered")]
    typer.echo(render_text(table(cols, rows)))


def _status_lines(st: ModelStatus, cfg: LadderConfig) -> list[str]:
    m = st.model
    since = f" since {st.since:%Y-%m-%d %H:%M}" if st.since is not None else ""
    head = f"{m.model_id}: {st.stage}{since}"
    lines = [head + (f" (next: {st.next_stage})" if st.next_stage else " (top of the ladder)")]
    failing = [c for c in st.checks if not c.passed]
    if st.stage == "research":
        verdict = "passed" if not failing else f"not passed ({len(failing)} failing)"
        lines.append(f"  entry to paper: {cfg.entry_split} gates {verdict}")
    elif st.evidence is not None:
        ev = st.evidence
        share = ev.fee_share_of_gross
        lines.append(
            f"  days {ev.trading_days} of {cfg.gates.min_trading_days}; P&L before fees "
            f"{dollars(ev.gross_pnl)}, after fees {dollars(ev.net_pnl)}, fees {dollars(ev.fees)}"
            f" ({percent(1)(share) if share is not None else 'n/a'} of gross)"
        )
        p99 = "n/a" if ev.latency_p99_ms is None else f"{ev.latency_p99_ms:.2f} ms"
        lines.append(
            f"  drawdown {percent(2)(ev.max_drawdown)} (worst day "
            f"{percent(2)(ev.worst_daily_drawdown)}); decision latency p99 {p99}; errors "
            f"{ev.errors}/{ev.orders}; hard-limit breaches {len(ev.breaches)}; emergency stops "
            f"{len(ev.emergency_stops)}"
        )
        excluded = [s for s, _ in ev.excluded]
        if excluded or ev.unfinished:
            rehearsals = sum(1 for s in excluded if s.is_rehearsal)
            lines.append(
                f"  sessions counted {len(ev.counted)}, not counted {len(excluded)} "
                f"({rehearsals} rehearsals), unfinished {len(ev.unfinished)}"
            )
    if st.checks:
        passed = sum(1 for c in st.checks if c.passed)
        lines.append(f"  gates {passed} of {len(st.checks)} pass")
        lines.extend(f"    {c.line()}" for c in failing)
    if st.last_review is not None:
        lines.append(f"  {st.last_review.line()}")
    if st.next_stage is not None and st.required:
        if st.request is None:
            lines.append(
                f"  approvals: {st.required} needed for {st.next_stage}; no request yet "
                f"(stairways ladder promote {m.model_id})"
            )
        else:
            have = st.approvals.valid if st.approvals else ()
            names = ", ".join(a.approver for a in have) or "none"
            given = {a.approver for a in have} | {st.request.requester}
            if st.approvals is not None and st.approvals.rejected_by is not None:
                given.add(st.approvals.rejected_by.approver)
            can = [n for n in cfg.approvals.committee if n not in given]
            lines.append(
                f"  approvals for {st.request.request_id}: {len(have)} of {st.required} "
                f"({names}); missing {st.missing} (may approve: {', '.join(can) or 'nobody'}); "
                f"requested by {st.request.requester}"
            )
            if st.approvals is not None:
                lines.extend(f"    not counted: {why}" for _, why in st.approvals.not_counted)
    return lines


@app.command("status")
def status(
    model: str | None = typer.Argument(None, help="One model id or stage alias (default all)."),
    ladder_config: Path | None = LadderConfigOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Every model's stage, days done, gate figures so far, approvals given and missing."""
    cfg = build_config(config)
    ladder_cfg = load_ladder_config(ladder_config)
    access = _Access(cfg, journal, need_vault=False)
    with JournalReader.open(access.location) as reader:
        ladder = _ladder(reader, ladder_cfg, None)
        statuses = ladder.status()
        if model is not None:
            wanted = ladder.find_model(model).model_id
            statuses = [s for s in statuses if s.model.model_id == wanted]
    typer.echo(f"journal {access.location}")
    if not statuses:
        typer.echo("no registered model (stairways models register RUN_DIR --checkpoint final)")
        return
    order = {"scale_50": 0, "micro_10": 1, "paper": 2, "research": 3}
    for st in sorted(statuses, key=lambda s: (order[s.stage], s.model.seq)):
        typer.echo("\n".join(_status_lines(st, ladder_cfg)))


@app.command("promote")
def promote(
    model: str = typer.Argument(..., help="Model id or stage alias."),
    to: str | None = typer.Option(None, "--to", help="Stage to enter (default: the next one)."),
    requester: str | None = typer.Option(
        None, "--requester", help="Who asks (default: login name); cannot approve it."
    ),
    reason: str = ReasonOption,
    ladder_config: Path | None = LadderConfigOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Promote a model one stage (gates first; live stages open a request for approvals)."""
    cfg = build_config(config)
    ladder_cfg = load_ladder_config(ladder_config)
    access = _Access(cfg, journal, need_vault=True)
    with _writer(access) as log:
        try:
            outcome = _ladder(log, ladder_cfg, access).promote(
                model, requester=requester or _login(), reason=reason, to_stage=to
            )
        except GatesNotPassedError as err:
            typer.echo(f"refused: {err}", err=True)
            raise typer.Exit(EXIT_GATES) from None
    typer.echo(outcome.message)


def _answer(
    decision: str,
    request_id: str,
    approver: str | None,
    reason: str,
    ladder_config: Path | None,
    journal: str | None,
    config: Path | None,
) -> None:
    cfg = build_config(config)
    ladder_cfg = load_ladder_config(ladder_config)
    access = _Access(cfg, journal, need_vault=True)
    with _writer(access) as log:
        ladder = _ladder(log, ladder_cfg, access)
        ans = ladder.answer(
            request_id, approver=approver or _login(), decision=decision, reason=reason
        )
        req = ladder.open_request(ans.model_id, ans.to_stage)
        state = ladder.approval_state(req, ladder.clock.now()) if req is not None else None
    typer.echo(
        f"{decision} of {request_id} by {ans.approver} signed and journaled (expires "
        f"{ans.expires_at})"
    )
    if state is not None and req is not None:
        have = len(state.valid)
        if have >= req.required:
            typer.echo(
                f"{have} of {req.required} approvals: complete it with `stairways ladder "
                f"promote {req.model_id}`"
            )
        else:
            typer.echo(f"{have} of {req.required} approvals; {req.required - have} missing")
    elif decision == "reject":
        typer.echo("the request is closed; a new `stairways ladder promote` opens another")


def _answer_command(decision: str, doc: str) -> Callable[..., None]:
    """The ``ladder approve`` or ``ladder reject`` command (one signature, one body)."""

    def command(
        request_id: str = typer.Argument(..., help="The request id (stairways ladder status)."),
        approver: str | None = ApproverOption,
        reason: str = ReasonOption,
        ladder_config: Path | None = LadderConfigOption,
        journal: str | None = JournalOption,
        config: Path | None = ConfigOption,
    ) -> None:
        _answer(decision, request_id, approver, reason, ladder_config, journal, config)

    command.__doc__ = doc
    command.__name__ = decision
    return command


approve = app.command("approve")(
    _answer_command("approve", "Approve a promotion request, signed with the approver's key.")
)
reject = app.command("reject")(
    _answer_command("reject", "Reject a promotion request (signed); the request closes.")
)


@app.command("demote")
def demote(
    model: str = typer.Argument(..., help="Model id or stage alias."),
    to: str | None = typer.Option(None, "--to", help="Stage to go to (default: one down)."),
    by: str | None = typer.Option(None, "--by", help="Who demotes (default: login name)."),
    reason: str = ReasonOption,
    ladder_config: Path | None = LadderConfigOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Move a model down the ladder (journaled with an alert)."""
    cfg = build_config(config)
    ladder_cfg = load_ladder_config(ladder_config)
    access = _Access(cfg, journal, need_vault=True)
    with _writer(access) as log:
        change = _ladder(log, ladder_cfg, access).demote(
            model, by=by or _login(), reason=reason, to_stage=to
        )
    typer.echo(f"{change.model_id}: {change.from_stage} -> {change.to_stage} ({change.reason})")


@app.command("review")
def review(
    by: str = typer.Option("ladder", "--by", help="Name journaled as the demoter."),
    ladder_config: Path | None = LadderConfigOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Review every model on the ladder (journaled); demote or halt on a breach, an emergency
    stop or a failing gate. `live run` runs the same review after every session."""
    cfg = build_config(config)
    ladder_cfg = load_ladder_config(ladder_config)
    access = _Access(cfg, journal, need_vault=True)
    with _writer(access) as log:
        moves = _ladder(log, ladder_cfg, access).review(by=by)
    if not moves:
        typer.echo("no model failed its stage; nothing changed")
    for m in moves:
        typer.echo(f"{m.action}: {m.model_id} {m.from_stage} -> {m.to_stage}: {m.reason}")


@app.command("history")
def history(
    model: str | None = typer.Argument(None, help="Only this model id."),
    ladder_config: Path | None = LadderConfigOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Registrations, requests, signed answers, stage changes and demotion alerts, in order."""
    cfg = build_config(config)
    ladder_cfg = load_ladder_config(ladder_config)
    access = _Access(cfg, journal, need_vault=False)
    with JournalReader.open(access.location) as reader:
        ladder = _ladder(reader, ladder_cfg, None)
        wanted = ladder.find_model(model).model_id if model is not None else None
        events = ladder.history(wanted)
    if not events:
        typer.echo(f"no ladder event in journal {access.location}")
    for seq, ts, mid, text_ in events:
        typer.echo(f"#{seq} {ts:%Y-%m-%d %H:%M:%S} {mid}: {text_}")
