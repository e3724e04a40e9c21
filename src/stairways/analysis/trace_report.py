"""The action-trace report: execute the notebook headlessly (papermill), render it as HTML.

The notebook is the shipped ``action_trace_analysis.ipynb`` (:mod:`stairways.resources`); its
``parameters`` cell is overridden by papermill. Errors raised inside the notebook by Stairways
code come back as the same typed error (a missing run stays a MissingResourceError naming the
run), so the CLI exit codes hold.

The HTML report is written for a reader, not as a notebook dump: the verdict and the ranking
come first, and only what the notebook *shows* is copied, its Markdown text, tables and charts
(:mod:`stairways.reports.html`). Code, printed text and log output (stdout and stderr streams)
stay in the executed notebook written next to the report, never in the report itself.
"""

from __future__ import annotations

import base64
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stairways import errors, resources
from stairways.analysis.action_traces import require_run
from stairways.analysis.checkpoints import rank_run_checkpoints
from stairways.errors import StairwaysError
from stairways.reports.html import Block, Figure, Markup, write_page

log = logging.getLogger(__name__)

NOTEBOOK_NAME = "action_trace_analysis.ipynb"
KERNEL_NAME = "python3"
# Cells tagged with this are for readers of the notebook only (its introduction).
SKIP_TAG = "report-skip"
SECTION_HEADINGS: tuple[str, ...] = (
    "Checkpoint ranking",
    "P&L and drawdown",
    "Position patterns",
    "Trade timeline",
    "Holding time and turnover",
    "Good versus bad episodes",
    "Flip-flop detection",
)


@dataclass(frozen=True)
class TraceReport:
    """Files written by one execution: the HTML report, the executed notebook, CSV tables."""

    html: Path
    notebook: Path
    tables: Path


def ensure_kernel() -> str:
    """The kernel name to run with; installs a ``python3`` kernelspec into this prefix if absent.

    jupyter_client starts a kernelspec whose command is ``python`` with the interpreter running
    papermill, so a spec in this environment's prefix runs the venv's Python.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name=KERNEL_NAME)
        log.info("installed the %s kernelspec into %s", KERNEL_NAME, sys.prefix)
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    if spec.argv[0] not in ("python", "python3", sys.executable):
        raise StairwaysError(
            f"the {KERNEL_NAME} kernelspec at {spec.resource_dir} runs {spec.argv[0]}, not this "
            f"environment's Python ({sys.executable}); remove it or reinstall it with "
            f"`{sys.executable} -m ipykernel install --sys-prefix`"
        )
    return KERNEL_NAME


def _typed_error(ename: str, evalue: str, notebook: Path) -> StairwaysError:
    """The Stairways error a notebook failure stands for (a generic one for foreign errors)."""
    cls = getattr(errors, ename, None)
    if isinstance(cls, type) and issubclass(cls, StairwaysError):
        return cls(evalue)
    return StairwaysError(
        f"the action-trace notebook failed with {ename}: {evalue} (executed notebook with the "
        f"traceback: {notebook})"
    )


def report_blocks(notebook: Any) -> list[Block]:
    """The report's blocks from an executed notebook: Markdown cells and displayed outputs.

    Cells tagged ``report-skip`` are left out, and so are code, stream outputs (printed text,
    log lines, warnings) and error outputs. A displayed output contributes its HTML (tables),
    its PNG image (charts) or its Markdown, in that order of preference; an output with none of
    these (only plain text) is left out too.
    """
    from nbconvert.filters.markdown import markdown2html

    blocks: list[Block] = []
    section = "the analysis"
    for cell in notebook.cells:
        if SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "markdown":
            blocks.append(Markup(html=markdown2html(cell.source), markdown=cell.source))
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            section = first.lstrip("#").strip() if first.startswith("#") else section
            continue
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = output.get("data", {})
            if "text/html" in data:
                blocks.append(Markup(html=_text(data["text/html"])))
            elif "image/png" in data:
                png = base64.b64decode(_text(data["image/png"]))
                blocks.append(Figure(png=png, alt=f"chart of {section}"))
            elif "text/markdown" in data:
                source = _text(data["text/markdown"])
                blocks.append(Markup(html=markdown2html(source), markdown=source))
    return blocks


def _text(value: Any) -> str:
    """Notebook output data as one string (nbformat may store it as a list of lines)."""
    return "".join(value) if isinstance(value, list) else str(value)


def execute_trace_notebook(
    run_dir: Path,
    *,
    split: str = "validation",
    top_k: int = 10,
    flip_window: int = 5,
    flip_share: float = 0.25,
    out_html: Path | None = None,
    store: Path | None = None,
    timeout: int = 3600,
) -> TraceReport:
    """Execute the notebook on ``run_dir`` and write the HTML report.

    :param run_dir: run directory (must exist; checked before a kernel starts)
    :param split: split the checkpoints are replayed on
    :param top_k: checkpoints to analyse, best rolling training reward first
    :param flip_window: bars within which a sign reversal counts as a flip
    :param flip_share: episodes above this share of a random policy's flip rate are flagged
    :param out_html: report file (default ``RUN_DIR/analysis/action_traces_<split>.html``)
    :param store: bar store for replays (default: the store in the run's config.yaml)
    :param timeout: seconds any one cell may run
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from stairways.analysis.flipflop import FlipFlopRule

    run_dir = require_run(Path(run_dir)).resolve()
    FlipFlopRule(window=flip_window, share=flip_share)  # bad values fail before a kernel starts
    # Fail before a kernel starts when the run has nothing to rank (monitor.csv, checkpoints).
    rank_run_checkpoints(run_dir, top_k=top_k)
    notebook = resources.notebook(NOTEBOOK_NAME)
    html_path = (
        Path(out_html)
        if out_html is not None
        else run_dir / "analysis" / f"action_traces_{split}.html"
    ).resolve()
    html_path.parent.mkdir(parents=True, exist_ok=True)
    executed = html_path.with_suffix(".ipynb")
    tables = html_path.with_name(html_path.stem + "_tables")
    parameters: dict[str, Any] = {
        "run_dir": str(run_dir),
        "split": split,
        "top_k": int(top_k),
        "flip_window": int(flip_window),
        "flip_share": float(flip_share),
        "output_dir": str(tables),
        "store": None if store is None else str(Path(store).resolve()),
    }
    kernel = ensure_kernel()
    log.info("executing %s on %s (kernel %s)", notebook.name, run_dir, kernel)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            # The caller's directory: relative paths in the run's config (its bar store) then
            # mean what they mean to every other command the user runs from there.
            cwd=str(Path.cwd()),
        )
    except PapermillExecutionError as err:
        raise _typed_error(err.ename, err.evalue, executed) from None
    blocks = report_blocks(nbformat.read(executed, as_version=4))
    write_page(html_path, f"Action traces: {run_dir.name} on {split}", blocks)
    log.info("wrote the action-trace report %s", html_path)
    return TraceReport(html=html_path, notebook=executed, tables=tables)
