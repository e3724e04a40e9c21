"""The report keeps what the notebook shows (text, tables, charts) and drops code and logs."""

from __future__ import annotations

import base64

import nbformat
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from stairways.analysis.trace_report import SKIP_TAG, report_blocks
from stairways.reports.html import Figure, Markup, render_page

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def _notebook() -> nbformat.NotebookNode:
    logs = "".join(f"INFO stairways.evaluation: replayed session {i}\n" for i in range(90))
    return new_notebook(
        cells=[
            new_markdown_cell(
                "# Action-trace analysis\n\nFor notebook readers.", metadata={"tags": [SKIP_TAG]}
            ),
            new_code_cell("run_dir = None", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "setup()",
                outputs=[
                    new_output("stream", name="stderr", text=logs),
                    new_output("stream", name="stdout", text="printed\n"),
                    new_output("display_data", data={"text/html": "<div>verdict</div>"}),
                ],
            ),
            new_markdown_cell("## Checkpoint ranking\n\nRanked `best` first."),
            new_code_cell(
                "show()",
                outputs=[
                    new_output(
                        "execute_result",
                        data={"text/plain": "<Figure>", "image/png": PNG},
                        execution_count=1,
                    ),
                    new_output("display_data", data={"text/markdown": "**bold**"}),
                    new_output("display_data", data={"text/plain": "just text"}),
                    new_output("error", ename="ValueError", evalue="x", traceback=["tb"]),
                ],
            ),
        ]
    )


def test_blocks_keep_displayed_content_in_order_and_drop_streams_and_code() -> None:
    blocks = report_blocks(_notebook())
    kinds = [type(b).__name__ for b in blocks]
    assert kinds == ["Markup", "Markup", "Figure", "Markup"]
    assert isinstance(blocks[0], Markup) and blocks[0].html == "<div>verdict</div>"
    assert isinstance(blocks[1], Markup) and "Checkpoint ranking" in blocks[1].html
    assert isinstance(blocks[2], Figure) and blocks[2].png.startswith(b"\x89PNG")
    assert blocks[2].alt == "chart of Checkpoint ranking"
    assert isinstance(blocks[3], Markup) and "<strong>bold</strong>" in blocks[3].html


def test_the_page_holds_no_log_line_no_code_and_no_skipped_cell() -> None:
    page = render_page("Action traces", report_blocks(_notebook()))
    for absent in (
        "INFO",
        "replayed session",
        "printed",
        "setup()",
        "run_dir",
        "For notebook readers",
        "just text",
        "ValueError",
    ):
        assert absent not in page, absent
    assert "verdict" in page and "data:image/png;base64," in page
