"""Looks at held-out test dates during evaluation: counted in the ledger and the run's manifest.

:func:`note_evaluation` is what the evaluator calls once an evaluation has produced its
figures: when the split touches a protected split it appends a look to the test ledger beside
the bar store (:mod:`stairways.data.ledger`) and adds the look, with the ledger's running
count, to the run's ``manifest.json`` (``test_looks``). Either way it returns how often each
protected split has been looked at, which ``stairways evaluate`` prints, ``metrics.json`` keeps
and the demo summary shows.
"""

from __future__ import annotations

import logging
import shlex
import sys

from stairways.data.ledger import (
    TestLookCount,
    bars_fingerprint,
    record_test_look,
    test_look_count,
)
from stairways.data.panel import SessionPanel
from stairways.data.settings import DataConfig
from stairways.training.rundir import RunDirectory, utc_now_iso
from stairways.training.runlock import RunLock, RunLockedError

log = logging.getLogger(__name__)


def note_evaluation(
    run: RunDirectory, data: DataConfig, panel: SessionPanel, checkpoint: str
) -> tuple[TestLookCount, ...]:
    """Record a look at protected dates (ledger and manifest) and count the looks so far.

    :param run: the run evaluated
    :param data: the data config the evaluation used (store, splits, protected splits)
    :param panel: the panel replayed (its split and bars)
    :param checkpoint: the checkpoint's report name
    """
    look = record_test_look(
        data,
        panel.split,
        run=str(run.path),
        checkpoint=checkpoint,
        fingerprint=bars_fingerprint(panel),
    )
    counts = tuple(test_look_count(data, panel.split, look))
    if look is not None:
        _add_to_manifest(run, checkpoint, [c for c in counts if c.this_look is not None])
    return counts


def _add_to_manifest(run: RunDirectory, checkpoint: str, counts: list[TestLookCount]) -> None:
    """Append the looks to ``manifest.json`` under the run lock (never racing a trainer)."""
    lock = RunLock(run.path, started=utc_now_iso(), command=shlex.join(sys.argv))
    try:
        lock.acquire()
    except RunLockedError as err:
        # A trainer (or another evaluation) is writing the manifest right now; the ledger holds
        # the look, and rewriting the manifest under the writer would lose its update.
        log.warning(
            "the look at %s was recorded in %s but not in %s: %s",
            ", ".join(c.split for c in counts),
            counts[0].ledger,
            run.manifest_path,
            err,
        )
        return
    try:
        manifest = run.read_manifest()
        entries = [{**c.to_dict(), "checkpoint": checkpoint} for c in counts]
        run.write_manifest(
            manifest.model_copy(update={"test_looks": [*manifest.test_looks, *entries]})
        )
    finally:
        lock.release()
