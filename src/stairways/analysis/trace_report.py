"""Execute the action-trace notebook headlessly (papermill) and export it as HTML (nbconvert).

The notebook is notebooks/action_trace_analysis.ipynb; its ``parameters`` cell is overridden
by papermill. Errors raised inside the notebook by Stairways code come back as the same typed
error (a missing run stays a MissingResourceError naming the run), so the CLI exit codes hold.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stairways import errors, resources
from stairways.analysis.action_traces import require_run
from stairways.analysis.checkpoints import rank_run_checkpoints
from stairways.errors import StairwaysError

log = logging.getLogger(__name__)

NOTEBOOK_NAME = "action_trace_analysis.ipynb"
KERNEL_NAME = "python3"
SECTION_HEADINGS: tuple[str, ...] = (
    "Checkpoint ranking",
    "Position patterns",
    "Trade timeline",
    "P&L and drawdown",
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


def execute_trace_notebook(
    run_dir: Path,
    *,
    split: str = "eval_feb2024",
    top_k: int = 10,
    flip_window: int = 5,
    flip_threshold: float = 2.0,
    out_html: Path | None = None,
    store: Path | None = None,
    exclude_input: bool = False,
    timeout: int = 3600,
) -> TraceReport:
    """Execute the notebook on ``run_dir`` and write the HTML report.

    :param run_dir: run directory (must exist; checked before a kernel starts)
    :param split: split the checkpoints are replayed on
    :param top_k: checkpoints to analyse, best rolling training reward first
    :param flip_window: bars within which a sign reversal counts as a flip
    :param flip_threshold: flips per 60 bars above which an episode is flagged
    :param out_html: report file (default ``RUN_DIR/analysis/action_traces_<split>.html``)
    :param store: bar store for replays (default: the store in the run's config.yaml)
    :param exclude_input: leave code cells out of the HTML
    :param timeout: seconds any one cell may run
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    from papermill.exceptions import PapermillExecutionError

    run_dir = require_run(Path(run_dir)).resolve()
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
        "flip_threshold": float(flip_threshold),
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
            execution_timeout=timeout,
            # The caller's directory: relative paths in the run's config (its bar store) then
            # mean what they mean to every other command the user runs from there.
            cwd=str(Path.cwd()),
        )
    except PapermillExecutionError as err:
        raise _typed_error(err.ename, err.evalue, executed) from None
    exporter = HTMLExporter(exclude_input=exclude_input)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html_path)
    log.info("wrote the action-trace report %s", html_path)
    return TraceReport(html=html_path, notebook=executed, tables=tables)
