"""``stairways data ...``: generate, import and inspect market data.

Each command only parses options, calls the library and prints what happened. Other data
commands register themselves at the bottom of this module (``app.command(...)``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import typer

from stairways.cli import data_synth
from stairways.cli.common import ConfigOption, StoreOption, build_config
from stairways.configbase import validate_model
from stairways.data import calendar as cal
from stairways.data.importing import (
    ImportMode,
    ImportOptions,
    ImportSummary,
    import_files,
    import_from_source,
)
from stairways.data.jumps import JUMP_COLUMNS
from stairways.data.quality import (
    COMPLETENESS_COLUMNS,
    store_completeness,
    store_overview,
    store_price_jumps,
    summarise_completeness,
)
from stairways.data.settings import JumpCheckConfig
from stairways.data.sources.files import Layout, parse_mapping
from stairways.data.sources.polygon import API_KEY_ENV, PolygonAggregates, PolygonConfig
from stairways.data.store import BarStore
from stairways.errors import InputError
from stairways.reports import tables as t
from stairways.security.credentials import credential
from stairways.security.names import POLYGON_API_KEY
from stairways.security.passphrase import terminal_prompt

app = typer.Typer(help="Generate, import and inspect market data.", no_args_is_help=True)

_DATE = ["%Y-%m-%d"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a plain left-aligned text table of already formatted cells."""
    columns = [t.Column(str(i), h) for i, h in enumerate(header)]
    records = [{str(i): cell for i, cell in enumerate(r)} for r in rows]
    return t.render_text(t.table(columns, records), rule=False).splitlines()


def _echo_summary(summary: ImportSummary) -> None:
    rows = [
        [
            s.origin,
            str(s.rows_read),
            str(s.blank_rows),
            str(s.out_of_hours),
            str(s.rejected),
            str(s.kept),
        ]
        for s in summary.sources
    ]
    if rows:
        header = ["source", "rows", "blank", "outside RTH (dropped)", "rejected", "kept"]
        for line in _table(header, rows):
            typer.echo(f"  {line}")
    if summary.skipped_windows:
        typer.echo(
            f"skipped {len(summary.skipped_windows)} window(s) already complete in the store"
        )
    w = summary.written
    typer.echo(
        f"stored in {summary.store}: {w.rows_inserted} new bars, {w.rows_replaced} replaced, "
        f"{w.rows_unchanged} already stored"
    )
    if summary.out_of_hours:
        typer.echo(f"dropped {summary.out_of_hours} bars outside regular trading hours")
    for g in summary.gaps:
        typer.echo(
            f"gaps {g.symbol}: {g.sessions} sessions, {g.incomplete_sessions} incomplete "
            f"({g.empty_sessions} without bars), {g.missing_bars} missing minutes"
        )
    if summary.report_path is not None:
        typer.echo(
            f"dropped {summary.rejected_rows} rows breaking rules; report: {summary.report_path}"
        )


# Options are module-level singletons (as in cli.common) so defaults are not calls.
_PATHS = typer.Argument(
    None,
    help="Files, directories or glob patterns (CSV, CSV.gz, Parquet, saved Polygon JSON).",
)
_SYMBOLS = typer.Option(
    None,
    "--symbol",
    help="Files: the symbol of a single-symbol file. Polygon: tickers (repeatable).",
)
_MAP = typer.Option(
    None, "--map", help="canonical=source column, for example --map ts=Date (repeatable)."
)
_LAYOUT = typer.Option(Layout.AUTO, "--layout", help="Column layout of the files.")
_REPORT = typer.Option(None, "--report", help="Repair report path (default: next to the store).")
_POLYGON_FROM = typer.Option(None, "--from", formats=_DATE, help="Polygon: first date.")
_POLYGON_TO = typer.Option(None, "--to", formats=_DATE, help="Polygon: last date.")
_QUALITY_SYMBOLS = typer.Option(None, "--symbol", help="Only these symbols (repeatable).")
_QUALITY_FROM = typer.Option(None, "--from", formats=_DATE, help="First session.")
_QUALITY_TO = typer.Option(None, "--to", formats=_DATE, help="Last session.")
_QUALITY_CSV = typer.Option(
    None, "--csv", help="Write the full per-session table to this CSV file."
)
_JUMPS_CSV = typer.Option(
    None, "--jumps-csv", help="Write every bar that breaks the jump rules to this CSV file."
)


@app.command("import")
def import_(
    paths: list[str] | None = _PATHS,
    polygon: bool = typer.Option(
        False, "--polygon", help="Fetch from Polygon aggregates (needs POLYGON_API_KEY)."
    ),
    symbol: list[str] | None = _SYMBOLS,
    mapping: list[str] | None = _MAP,
    layout: Layout = _LAYOUT,
    tz: str | None = typer.Option(
        None, "--tz", help="Zone of timestamps without an offset, e.g. America/New_York."
    ),
    strict: bool = typer.Option(
        True,
        "--strict/--repair",
        help="Strict refuses everything when a row is bad; repair drops bad rows and reports them.",
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite stored bars that differ."),
    report: Path | None = _REPORT,
    start: datetime | None = _POLYGON_FROM,
    end: datetime | None = _POLYGON_TO,
    polygon_url: str | None = typer.Option(
        None, "--polygon-url", help="Polygon API root (default https://api.polygon.io)."
    ),
    window_months: int = typer.Option(
        1, "--window-months", min=1, max=12, help="Polygon: months fetched per transaction."
    ),
    refetch: bool = typer.Option(
        False, "--refetch", help="Polygon: fetch windows even when complete in the store."
    ),
    ibkr: bool = typer.Option(
        False, "--ibkr", help="Fetch IB historical bars from your IB Gateway/TWS (see README)."
    ),
    broker_config: Path | None = typer.Option(
        None, "--broker-config", help="IBKR: broker YAML (host, port, client ids, pacing)."
    ),
    store: Path | None = StoreOption,
    config: Path | None = ConfigOption,
) -> None:
    """Validate bars from files or Polygon and write them to the bar store."""
    cfg = build_config(config, store)
    mode = ImportMode.STRICT if strict else ImportMode.REPAIR
    if report is not None and mode == ImportMode.STRICT:
        raise InputError("--report names the repair report; use it with --repair")
    if ibkr:
        if polygon or paths or mapping or tz or layout != Layout.AUTO or polygon_url:
            raise InputError("--ibkr fetches from IB; it takes --symbol, --from and --to only")
        if start is None or end is None:
            raise InputError("--ibkr needs --from YYYY-MM-DD and --to YYYY-MM-DD")
        from stairways.cli.broker import import_from_ibkr

        opts = {"mode": mode, "replace": replace, "calendar": cfg.data.calendar}
        summary = import_from_ibkr(
            broker_config,
            list(symbol) if symbol else list(cfg.data.symbols),
            start.date(),
            end.date(),
            cfg.data.store_path,
            validate_model(ImportOptions, {**opts, "jumps": cfg.data.jumps}, "import options"),
            skip_complete=not refetch,
            report_path=report,
        )
        _echo_summary(summary)
        return
    if broker_config is not None:
        raise InputError("--broker-config applies to --ibkr imports")
    if polygon:
        if paths:
            raise InputError("--polygon fetches from the service; do not name files as well")
        if mapping or tz or layout != Layout.AUTO:
            raise InputError("--map, --tz and --layout apply to files, not to --polygon")
        if start is None or end is None:
            raise InputError("--polygon needs --from YYYY-MM-DD and --to YYYY-MM-DD")
        options = validate_model(
            ImportOptions,
            {
                "mode": mode,
                "replace": replace,
                "calendar": cfg.data.calendar,
                "jumps": cfg.data.jumps,
            },
            "import options",
        )
        pcfg = validate_model(
            PolygonConfig,
            {"base_url": polygon_url} if polygon_url else {},
            "--polygon-url",
        )
        key = credential(
            cfg.security.vault_path,
            POLYGON_API_KEY,
            API_KEY_ENV,
            what="the Polygon API key",
            prompt=terminal_prompt(),
        ).reveal()
        tickers = list(symbol) if symbol else list(cfg.data.symbols)
        with PolygonAggregates(pcfg, key) as source:
            summary = import_from_source(
                source,
                tickers,
                start.date(),
                end.date(),
                cfg.data.store_path,
                options,
                months_per_window=window_months,
                skip_complete=not refetch,
                report_path=report,
            )
        typer.echo(f"fetched {len(summary.sources)} window(s) with {source.requests} request(s)")
        _echo_summary(summary)
        return
    if start is not None or end is not None or polygon_url or refetch:
        raise InputError("--from, --to, --polygon-url and --refetch apply to --polygon imports")
    if not paths:
        raise InputError("name the files to import, or use --polygon")
    if symbol and len(symbol) > 1:
        raise InputError("--symbol names the one symbol of single-symbol files; give it once")
    options = validate_model(
        ImportOptions,
        {
            "mode": mode,
            "replace": replace,
            "tz": tz,
            "layout": layout,
            "mapping": parse_mapping(mapping or []),
            "symbol": symbol[0] if symbol else None,
            "calendar": cfg.data.calendar,
            "jumps": cfg.data.jumps,
        },
        "import options",
    )
    summary = import_files(paths, cfg.data.store_path, options, report_path=report)
    typer.echo(f"read {len(summary.sources)} file(s):")
    _echo_summary(summary)


@app.command("info")
def info(store: Path | None = StoreOption, config: Path | None = ConfigOption) -> None:
    """What the bar store holds: symbols, range, sessions, gaps and where the bars came from."""
    cfg = build_config(config, store)
    with BarStore(cfg.data.store_path, read_only=True) as bar_store:
        overview = store_overview(bar_store, cfg.data.calendar)
    typer.echo(f"bar store: {cfg.data.store_path}")
    if not overview:
        typer.echo("the store holds no bars; add some with `stairways data synth` or `data import`")
        return
    synthetic = [o.info.symbol for o in overview if o.info.synthetic]
    if synthetic:
        typer.echo("=" * 78)
        typer.echo(f"SYNTHETIC DATA: {', '.join(synthetic)} bars are GENERATED, not market prices.")
        typer.echo("Results on them say nothing about real trading.")
        typer.echo("=" * 78)
    rows = [
        [
            o.info.symbol,
            str(o.info.rows),
            o.first_local.strftime("%Y-%m-%d %H:%M %Z"),
            o.last_local.strftime("%Y-%m-%d %H:%M %Z"),
            str(o.info.sessions),
            str(o.completeness.incomplete_sessions),
            str(o.completeness.missing_bars),
            "SYNTHETIC" if o.info.synthetic else "real",
            o.info.source,
        ]
        for o in overview
    ]
    header = [
        "symbol",
        "bars",
        "first bar (exchange time)",
        "last bar (exchange time)",
        "sessions",
        "incomplete",
        "missing minutes",
        "kind",
        "source",
    ]
    for line in _table(header, rows):
        typer.echo(line)


@app.command("quality")
def quality(
    symbol: list[str] | None = _QUALITY_SYMBOLS,
    start: datetime | None = _QUALITY_FROM,
    end: datetime | None = _QUALITY_TO,
    csv_path: Path | None = _QUALITY_CSV,
    jumps_csv: Path | None = _JUMPS_CSV,
    limit: int = typer.Option(
        50, "--limit", min=0, max=100_000, help="Incomplete sessions listed on screen."
    ),
    store: Path | None = StoreOption,
    config: Path | None = ConfigOption,
) -> None:
    """Per-session completeness and price jumps; lists incomplete sessions and flagged bars."""
    cfg = build_config(config, store)
    lo = start.date() if start else None
    hi = end.date() if end else None
    if lo and hi and lo > hi:
        raise InputError(f"--from {lo} is after --to {hi}")
    with BarStore(cfg.data.store_path, read_only=True) as bar_store:
        stored = {s.symbol: s for s in bar_store.symbols()}
        wanted = list(symbol) if symbol else sorted(stored)
        unknown = [s for s in wanted if s not in stored]
        if unknown:
            raise InputError(
                f"{', '.join(unknown)} not in {cfg.data.store_path} "
                f"(it holds {', '.join(sorted(stored)) or 'no symbols'})"
            )
        table = store_completeness(bar_store, cfg.data.calendar, wanted, lo, hi) if wanted else None
        jumps = (
            store_price_jumps(bar_store, cfg.data.jumps, cfg.data.calendar, wanted, lo, hi)
            if wanted
            else None
        )
    typer.echo(f"bar store: {cfg.data.store_path}")
    if table is None:
        typer.echo("the store holds no bars; add some with `stairways data synth` or `data import`")
        return
    if any(stored[s].synthetic for s in wanted):
        typer.echo("SYNTHETIC DATA: these bars are generated, not market prices")
    summary_rows = [
        [
            s.symbol,
            str(s.sessions),
            str(s.complete_sessions),
            str(s.incomplete_sessions),
            str(s.empty_sessions),
            str(s.missing_bars),
            f"{100 * s.completeness:.3f}%",
        ]
        for s in summarise_completeness(table)
    ]
    header = ["symbol", "sessions", "complete", "incomplete", "empty", "missing", "completeness"]
    for line in _table(header, summary_rows):
        typer.echo(line)
    incomplete = table.loc[~table["complete"]]
    if incomplete.empty:
        typer.echo("every session is complete")
    else:
        typer.echo(f"incomplete sessions ({len(incomplete)}):")
        rows = [
            [r.symbol, str(r.session), f"{r.present}/{r.expected}", str(r.missing)]
            for r in incomplete.head(limit).itertuples(index=False)
        ]
        for line in _table(["symbol", "session", "bars/expected", "missing"], rows):
            typer.echo(f"  {line}")
        if len(incomplete) > limit:
            typer.echo(f"  ... {len(incomplete) - limit} more; --csv PATH writes the full table")
    if jumps is not None:
        _echo_jumps(jumps, cfg.data.jumps, limit)
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        table.loc[:, list(COMPLETENESS_COLUMNS)].to_csv(csv_path, index=False)
        typer.echo(f"wrote {len(table)} sessions to {csv_path}")
    if jumps_csv is not None and jumps is not None:
        jumps_csv.parent.mkdir(parents=True, exist_ok=True)
        jumps.loc[:, [c for c in JUMP_COLUMNS if c != "position"]].to_csv(jumps_csv, index=False)
        typer.echo(f"wrote {len(jumps)} flagged bars to {jumps_csv}")


def _echo_jumps(jumps: pd.DataFrame, cfg: JumpCheckConfig, limit: int) -> None:
    """The bars that break the jump rules, as a table (the rules as set in data.jumps)."""
    if not cfg.enabled:
        typer.echo("price jumps: not checked (data.jumps.enabled is false)")
        return
    rules = (
        f"limit min({cfg.max_log_return:g}, max({cfg.scale_multiple:g} robust scales, "
        f"{cfg.min_log_return:g})) in log return"
    )
    if jumps.empty:
        typer.echo(f"price jumps: none ({rules})")
        return
    typer.echo(f"price jumps ({len(jumps)}; {rules}):")
    rows = [
        [
            str(r.symbol),
            pd.Timestamp(r.ts).tz_convert(cal.EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M"),
            str(r.rule),
            str(r.field),
            f"{r.price:g}",
            f"{r.reference:g}",
            f"{r.log_move:+.3f}",
            f"{r.limit:.3f}",
        ]
        for r in jumps.head(limit).itertuples(index=False)
    ]
    header = ["symbol", "bar (exchange time)", "rule", "field", "price", "reference"]
    for line in _table([*header, "log move", "limit"], rows):
        typer.echo(f"  {line}")
    if len(jumps) > limit:
        typer.echo(f"  ... {len(jumps) - limit} more; --jumps-csv PATH writes them all")


app.command("synth")(data_synth.synth)
