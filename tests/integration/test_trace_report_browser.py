"""The action-trace report as a reader sees it: headless Chromium opens the HTML page.

The first screen must show the verdict, the whole checkpoint ranking and the start of the
first chart, and the page must hold no log line even when the notebook wrote ninety of them
(the demo's report used to open with them). The notebook here is built from real report
blocks of constructed traces, so this runs without a kernel; the slow test in
test_trace_notebook.py checks the same on a report of a real run.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from stairways.analysis import trace_views as tv
from stairways.analysis.action_traces import CheckpointTrace, episode_summary
from stairways.analysis.flipflop import FlipFlopRule
from stairways.analysis.trace_report import SECTION_HEADINGS, SKIP_TAG, report_blocks
from stairways.reports.html import block_html, write_page
from tests.browser import assert_first_screen_shows_ranking_and_charts, open_report
from tests.unit.analysis.trace_builders import make_trace

N = 390
LOGS = "".join(
    f"12:0{i % 10}:{i % 60:02d} INFO stairways.evaluation.replay: replayed 20 sessions\n"
    for i in range(90)
)


def _html(block: object) -> dict[str, str]:
    return {"text/html": block_html(block)}  # type: ignore[arg-type]


def _chart() -> str:
    fig, ax = plt.subplots(figsize=(11, 5.5))
    ax.plot(range(100), [i * 1.5 for i in range(100)])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _executed_notebook() -> object:
    """A notebook as the trace notebook leaves it: ten ranked checkpoints, logs on stderr."""
    ranked = []
    for k in range(10):
        positions = [10.0] * 100 + [0.0] * 10 + [-10.0] * (N - 110)
        trace = make_trace(
            [(positions, [0.0] * N, [0.05 * (10 - k)] * N)] * 5,
            checkpoint=f"checkpoint_{(10 - k) * 1000}",
        )
        ranked.append(
            CheckpointTrace(
                rank=k + 1,
                steps=(10 - k) * 1000,
                checkpoint=Path(f"checkpoint_{(10 - k) * 1000}.zip"),
                training_reward=2.0 - 0.1 * k,
                trace=trace,
                reused=True,
            )
        )
    rule = FlipFlopRule()
    summaries = {c.label: episode_summary(c.trace, rule) for c in ranked}
    cells = [
        new_markdown_cell("# Action-trace analysis\n\nIntro.", metadata={"tags": [SKIP_TAG]}),
        new_code_cell("run_dir = None", metadata={"tags": ["parameters"]}),
        new_code_cell(
            "setup",
            outputs=[
                new_output("stream", name="stderr", text=LOGS),
                new_output(
                    "display_data",
                    data=_html(tv.verdict("run", "validation", ranked, summaries, rule)),
                ),
            ],
        ),
        new_markdown_cell(f"## {SECTION_HEADINGS[0]}\n\nRanked by training reward."),
        new_code_cell(
            "ranking",
            outputs=[new_output("display_data", data=_html(tv.ranking_table(ranked, summaries)))],
        ),
        new_markdown_cell(f"## {SECTION_HEADINGS[1]}\n\nCumulative net P&L and drawdown."),
        new_code_cell(
            "chart",
            outputs=[
                new_output("stream", name="stderr", text="WARNING matplotlib: something\n"),
                new_output("display_data", data={"image/png": _chart(), "text/plain": "<Figure>"}),
            ],
        ),
    ]
    for heading in SECTION_HEADINGS[2:]:
        cells.append(new_markdown_cell(f"## {heading}\n\nMore."))
        cells.append(
            new_code_cell(
                "x", outputs=[new_output("display_data", data=_html(tv.patterns_table(ranked)))]
            )
        )
    return new_notebook(cells=cells)


def test_first_screen_shows_verdict_ranking_and_a_chart_and_no_logs(tmp_path: Path) -> None:
    page = write_page(
        tmp_path / "report.html",
        "Action traces: run on validation",
        report_blocks(_executed_notebook()),
    )
    shown = open_report(page, screenshot=tmp_path / "first_screen.png")
    assert_first_screen_shows_ranking_and_charts(shown)
    assert "Top-ranked checkpoint #1 (10000 steps): net P&L $975.00" in shown.text
    assert "$195.00" in shown.text  # per session, as money
    assert (tmp_path / "first_screen.png").stat().st_size > 10_000


def test_the_check_catches_a_report_that_opens_with_logs(tmp_path: Path) -> None:
    # The old report: log lines in a <pre> before the first table. The check must refuse it.
    page = tmp_path / "old.html"
    page.write_text(
        "<!DOCTYPE html><html><body><h1>Action traces</h1><pre>"
        + LOGS
        + "</pre><h2>Checkpoint ranking</h2><table><tr><td>0.450611</td></tr></table></body></html>"
    )
    shown = open_report(page)
    try:
        assert_first_screen_shows_ranking_and_charts(shown)
    except AssertionError as err:
        assert "verdict" in str(err) or "log" in str(err) or "chart" in str(err)
    else:
        raise AssertionError("the first-screen check accepted a report that opens with logs")
