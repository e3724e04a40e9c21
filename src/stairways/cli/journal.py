"""``stairways journal``: verify the hash chain, follow the latest events, export a time range.

The journal is ``journal.path`` (SQLite) or ``journal.url`` (PostgreSQL) from the config, or
``--journal``. ``verify`` needs the MAC key from the vault; ``tail`` and ``export`` only read.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.config import StairwaysConfig
from stairways.configbase import validate_model
from stairways.journal.chain import MacKey
from stairways.journal.export import export_format, export_records, format_record, parse_bound
from stairways.journal.schema import JournalLocation
from stairways.journal.settings import JournalConfig
from stairways.journal.store import JournalReader
from stairways.journal.verify import parse_head, verify_journal
from stairways.security.access import open_vault
from stairways.security.passphrase import terminal_prompt
from stairways.security.secret import Secret

app = typer.Typer(
    help="The tamper-evident journal of the live side: verify, tail, export.",
    no_args_is_help=True,
)

JournalOption = typer.Option(
    None,
    "--journal",
    "-j",
    help="Journal file or postgresql:// URL (overrides journal.path and journal.url).",
)
KindOption = typer.Option(None, "--kind", "-k", help="Only events of this kind (repeatable).")

EXIT_TAMPERED = 3


def _settings(cfg: StairwaysConfig, journal: str | None) -> JournalConfig:
    if journal is None:
        return cfg.journal
    # Validated like the config keys: PostgreSQL only, no password in the URL.
    if "://" in journal:
        given: dict[str, object] = {
            "url": journal,
            "password_secret": cfg.journal.password_secret,
            "mac_key_secret": cfg.journal.mac_key_secret,
        }
    else:
        given = {"path": journal, "mac_key_secret": cfg.journal.mac_key_secret}
    return validate_model(JournalConfig, given, "--journal")


def open_journal(
    cfg: StairwaysConfig,
    journal: str | None,
    *,
    need_key: bool,
    other_secrets: tuple[str, ...] = (),
) -> tuple[JournalLocation, MacKey | None, dict[str, Secret]]:
    """The journal's location, its MAC key when asked, and any other named vault secrets: the
    vault is opened once, and only when something is needed from it."""
    settings = _settings(cfg, journal)
    wanted = [settings.mac_key_secret] if need_key else []
    wanted += other_secrets
    if settings.url is not None and settings.password_secret is not None:
        wanted.append(settings.password_secret)
    found: dict[str, Secret] = {}
    if wanted:
        vault = open_vault(
            cfg.security.vault_path, prompt=terminal_prompt(), reading=", ".join(wanted)
        )
        found = {name: vault.get(name) for name in wanted}
    if settings.url is not None:
        password = found.get(settings.password_secret or "")
        location = JournalLocation.postgres(settings.url, password)
    else:
        location = JournalLocation.sqlite(settings.path)
    key = MacKey.from_secret(found[settings.mac_key_secret]) if need_key else None
    return location, key, {name: found[name] for name in other_secrets}


def journal_location(
    cfg: StairwaysConfig, journal: str | None, *, need_key: bool
) -> tuple[JournalLocation, MacKey | None]:
    """The journal's location and, when asked, its MAC key (one vault opening for both)."""
    location, key, _ = open_journal(cfg, journal, need_key=need_key)
    return location, key


@app.command("verify")
def verify(
    journal: str | None = JournalOption,
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="SEQ:MAC printed by an earlier verify; it must still be there."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Check the hash chain; name the first record edited, deleted, inserted or reordered.

    Exits 3 when the journal was tampered with or lost its append-only triggers.
    """
    cfg = build_config(config)
    head = parse_head(expect_head) if expect_head else None
    location, key = journal_location(cfg, journal, need_key=True)
    assert key is not None
    with JournalReader.open(location) as reader:
        report = verify_journal(reader, key, expect_head=head)
    if report.ok:
        typer.echo(
            f"journal {report.location}: {report.records:,} records verified, chain intact, "
            "append-only triggers in place"
        )
        if report.head_seq is not None:
            typer.echo(f"head: {report.head_seq}:{report.head_mac}")
        return
    if report.tamper is not None:
        typer.echo(f"journal {report.location}: TAMPERED ({report.tamper.what})")
        typer.echo(f"  {report.tamper.detail}")
        typer.echo(f"  {report.records:,} records before it verified")
    if report.missing_triggers:
        typer.echo(
            f"journal {report.location}: append-only triggers missing or disabled: "
            f"{', '.join(report.missing_triggers)}"
        )
    raise typer.Exit(EXIT_TAMPERED)


@app.command("tail")
def tail(
    lines: int = typer.Option(20, "--lines", "-n", min=1, help="How many of the last events."),
    kind: list[str] | None = KindOption,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    interval: float = typer.Option(
        1.0, "--interval", min=0.05, max=60.0, help="Seconds between polls with --follow."
    ),
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Print the last events: seq, exchange time, kind, payload."""
    cfg = build_config(config)
    location, _ = journal_location(cfg, journal, need_key=False)
    with JournalReader.open(location) as reader:
        records = reader.tail(lines, kinds=kind)
        for record in records:
            typer.echo(format_record(record))
        if not follow:
            return
        last = records[-1].seq if records else 0
        while True:
            for record in reader.records(after_seq=last, kinds=kind):
                typer.echo(format_record(record))
                last = record.seq
            time.sleep(interval)


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.parquet or .csv)."),
    start: str | None = typer.Option(
        None, "--from", help="First day (2025-03-03) or instant, exchange time."
    ),
    end: str | None = typer.Option(
        None, "--to", help="Last day (inclusive) or instant (exclusive), exchange time."
    ),
    fmt: str | None = typer.Option(None, "--format", help="parquet or csv (default: by suffix)."),
    kind: list[str] | None = KindOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Write the events of a time range to Parquet or CSV (seq, ts, kind, payload, MACs)."""
    cfg = build_config(config)
    chosen = export_format(out, fmt)
    lower = parse_bound(start, option="--from", end=False) if start else None
    upper = parse_bound(end, option="--to", end=True) if end else None
    location, _ = journal_location(cfg, journal, need_key=False)
    with JournalReader.open(location) as reader:
        count = export_records(reader, out, chosen, start=lower, end=upper, kinds=kind)
    typer.echo(f"wrote {count:,} events to {out}")
