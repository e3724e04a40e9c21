"""``stairways report weekly``: the weekly one-pager (HTML and PDF) from the journal.

The week is an ISO week (``--week 2026-W48``; default: the current week, exchange time). A
week without exchange sessions gets no report (the schedule's Friday job may fire on one).
The report reads the journal (``journal.path``/``journal.url`` or ``--journal``), the model
registry in it, the evaluation traces of the runs, the ladder and the last stress results; it
is written to ``out_dir`` (``--out``) and delivered as ``config/weekly_report.yaml`` says. Exit
codes: 0 written (and delivered), 2 bad input, 1 a delivery failed (the files were written).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.cli.journal import JournalOption, journal_location
from stairways.clock import ExchangeClock
from stairways.data import calendar as cal
from stairways.journal import JournalReader
from stairways.reports.weekly import parse_week, render_weekly, summary_text, week_of
from stairways.weekly.build import build_week
from stairways.weekly.deliver import deliver_report
from stairways.weekly.settings import load_weekly_config

app = typer.Typer(help="Reports for people: the weekly one-pager.", no_args_is_help=True)


@app.command("weekly")
def weekly(
    week: str | None = typer.Option(
        None, "--week", help="ISO week such as 2026-W48 (default: this week, exchange time)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder of the HTML and PDF (default: out_dir of the report config)."
    ),
    report_config: Path | None = typer.Option(
        None, "--report-config", help="Report settings (default: config/weekly_report.yaml)."
    ),
    no_delivery: bool = typer.Option(
        False, "--no-delivery", help="Write the files only; skip the folder, webhook and email."
    ),
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Write the week's one-page report (HTML and PDF) and deliver it."""
    # WeasyPrint logs every layout step at INFO and warns about the screen-only CSS
    # (``overflow-x``) the shared page style carries; its errors still show.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    cfg = build_config(config)
    settings = load_weekly_config(report_config)
    clock = ExchangeClock()
    iso = parse_week(week) if week is not None else week_of(clock.now().date())
    if len(cal.sessions(iso.monday, iso.sunday, cfg.data.calendar)) == 0:
        typer.echo(f"{iso.label} has no {cfg.data.calendar} session: no weekly report")
        return
    location, _ = journal_location(cfg, journal, need_key=False)
    with JournalReader.open(location) as reader:
        report = build_week(reader, iso, settings, clock)
    html_path, pdf_path = render_weekly(report, out if out is not None else settings.out_dir)
    text = summary_text(report)
    typer.echo(text)
    typer.echo(f"report: {html_path}")
    typer.echo(f"pdf:    {pdf_path}")
    if no_delivery:
        return
    subject = f"Stairways weekly report {iso.label}"
    failed = False
    for d in deliver_report(settings.delivery, subject, text, html_path, pdf_path):
        if d.error:
            failed = True
            typer.echo(f"NOT delivered by {d.channel} to {d.target}: {d.error}", err=True)
        else:
            typer.echo(f"delivered by {d.channel} to {d.target}")
    if failed:
        raise typer.Exit(1)
