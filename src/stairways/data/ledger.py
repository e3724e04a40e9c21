"""The test-split ledger: every look at held-out test dates, counted beside the bar store.

A test year stays out of sample only while nobody chooses anything after looking at it. Every
evaluation whose split touches a protected split (``data.protected_splits``, ``test`` by
default) appends one line to ``<store folder>/<store name>.test_ledger.jsonl`` (for
``data/stairways.duckdb``: ``data/stairways.test_ledger.jsonl``): the UTC time, the split and its
dates, the symbols, the run and checkpoint, the command line, a fingerprint of the bars replayed
and the look's running number. The file is append-only: nothing here rewrites or removes a line.

The ledger lives beside the store, not beside a runs folder, because the test year belongs to
the data: looks from the demo's runs, from ``runs/`` and from a tuning folder at the same bars
all count together, while a different store (another market) has its own ledger. A look counts
against a range when its dates overlap that range and it shares a symbol; so a store that is
regenerated in place keeps its old looks (an overcount, the safe direction).

:func:`record_test_look` appends a look (evaluation code calls it when the split is protected);
:func:`test_looks` lists the looks at a split's dates; :func:`test_look_count` summarises them
for ``stairways evaluate``, the run manifest and the demo summary.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from stairways.data.panel import SessionPanel
from stairways.data.settings import DataConfig, DateRange
from stairways.data.splits import protected_overlaps, resolve_split
from stairways.errors import InputError, StairwaysError

log = logging.getLogger(__name__)

LEDGER_SUFFIX = ".test_ledger.jsonl"
_KEYS = (
    "time",
    "split",
    "start",
    "end",
    "symbols",
    "run",
    "checkpoint",
    "command",
    "fingerprint",
    "look",
)


@dataclass(frozen=True)
class TestLook:
    """One evaluation that touched held-out test dates (one line of the ledger).

    :param time: UTC wall-clock time of the look (bookkeeping, not market time)
    :param split: the split evaluated (``test``, or a slice inside it)
    :param start: first date of that split
    :param end: last date of that split
    :param symbols: tickers replayed
    :param run: run directory evaluated
    :param checkpoint: checkpoint name (``final``, ``best``, ``checkpoint_<steps>``)
    :param command: command line of the process that looked
    :param fingerprint: digest of the bars replayed (see :func:`bars_fingerprint`)
    :param look: how many looks at these dates the ledger held after this one
    """

    __test__ = False  # not a pytest test class, whatever its name says

    time: str
    split: str
    start: str
    end: str
    symbols: tuple[str, ...]
    run: str
    checkpoint: str
    command: str
    fingerprint: str
    look: int

    @property
    def range(self) -> DateRange:
        """The dates looked at."""
        return DateRange(start=date.fromisoformat(self.start), end=date.fromisoformat(self.end))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (one ledger line)."""
        data = asdict(self)
        data["symbols"] = list(self.symbols)
        return data


@dataclass(frozen=True)
class TestLookCount:
    """How often the dates of a protected split have been looked at, for people to read.

    :param split: the protected split (``test``)
    :param start: its first date
    :param end: its last date
    :param looks: looks recorded at its dates, this one included
    :param ledger: the ledger file
    :param this_look: the look this evaluation made, or None when it did not touch the split
    """

    __test__ = False

    split: str
    start: str
    end: str
    looks: int
    ledger: Path
    this_look: TestLook | None = None

    def describe(self) -> str:
        """One line: the count, whether this evaluation added to it, and where the ledger is."""
        times = "once" if self.looks == 1 else f"{self.looks} times"
        head = f"the {self.split} split ({self.start}..{self.end}) has been looked at {times}"
        if self.this_look is not None:
            return (
                f"{head}; this evaluation is look {self.this_look.look} (ledger {self.ledger}). "
                "Each look makes it less out of sample: keep it for final verdicts"
            )
        return f"{head}; this evaluation did not touch it (ledger {self.ledger})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for metrics.json and the run manifest."""
        return {
            "split": self.split,
            "start": self.start,
            "end": self.end,
            "looks": self.looks,
            "ledger": str(self.ledger),
            "this_look": None if self.this_look is None else self.this_look.look,
            "time": None if self.this_look is None else self.this_look.time,
        }


def ledger_path(store_path: Path) -> Path:
    """Where the ledger of a bar store lives: beside it, named after it."""
    return store_path.with_name(f"{store_path.stem}{LEDGER_SUFFIX}")


def bars_fingerprint(panel: SessionPanel) -> str:
    """Short sha256 of the bars a panel replays (symbols, dates, times, OHLCV).

    Unlike ``panel.fingerprint`` it leaves the feature normaliser out, so every run that looks
    at the same bars records the same fingerprint.
    """
    h = hashlib.sha256()
    h.update(json.dumps(list(panel.symbols)).encode())
    for arr in (panel.dates.astype("int64"), panel.lengths, panel.ts):
        h.update(np.ascontiguousarray(arr).tobytes())
    for arr in (panel.open, panel.high, panel.low, panel.close, panel.volume):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def _parse(line: str, path: Path, number: int) -> TestLook:
    try:
        raw = json.loads(line)
        missing = [k for k in _KEYS if k not in raw]
        if missing:
            raise KeyError(", ".join(missing))
        return TestLook(
            time=str(raw["time"]),
            split=str(raw["split"]),
            start=str(date.fromisoformat(raw["start"])),
            end=str(date.fromisoformat(raw["end"])),
            symbols=tuple(str(s) for s in raw["symbols"]),
            run=str(raw["run"]),
            checkpoint=str(raw["checkpoint"]),
            command=str(raw["command"]),
            fingerprint=str(raw["fingerprint"]),
            look=int(raw["look"]),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"test ledger {path}, line {number} is not a ledger entry ({type(err).__name__}: "
            f"{err}); the ledger is append-only: restore it from a backup rather than edit it"
        ) from None


def _read(path: Path) -> list[TestLook]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [
        _parse(line, path, k) for k, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]


def _touches(look: TestLook, rng: DateRange, symbols: Sequence[str]) -> bool:
    return look.range.overlaps(rng) and bool(set(look.symbols) & set(symbols))


def test_looks(cfg: DataConfig, split: str = "test") -> list[TestLook]:
    """Looks recorded in the ledger of ``cfg``'s store that touch the dates of ``split``.

    :param cfg: data config (store path, symbols, splits)
    :param split: the split whose dates are asked about (``test`` by default)
    """
    rng = resolve_split(cfg, split)
    path = ledger_path(cfg.store_path)
    return [look for look in _read(path) if _touches(look, rng, cfg.symbols)]


# A library function named test_*: tell pytest it is not a test when a test module imports it.
test_looks.__test__ = False  # type: ignore[attr-defined]


def test_look_count(
    cfg: DataConfig, split: str, this_look: TestLook | None = None
) -> list[TestLookCount]:
    """Per protected split, how often its dates have been looked at (for reports).

    :param cfg: data config
    :param split: the split just evaluated; the counts cover every protected split (one entry
        each), saying for each whether ``this_look`` touched it
    :param this_look: the look the evaluation recorded, if any
    """
    path = ledger_path(cfg.store_path)
    evaluated = resolve_split(cfg, split)
    out: list[TestLookCount] = []
    for name in cfg.protected_splits:
        rng = cfg.splits[name]
        touched = this_look is not None and evaluated.overlaps(rng)
        out.append(
            TestLookCount(
                split=name,
                start=str(rng.start),
                end=str(rng.end),
                looks=len(test_looks(cfg, name)),
                ledger=path,
                this_look=this_look if touched else None,
            )
        )
    return out


def record_test_look(
    cfg: DataConfig,
    split: str,
    *,
    run: str,
    checkpoint: str,
    fingerprint: str,
    command: Sequence[str] | None = None,
    now: datetime | None = None,
) -> TestLook | None:
    """Append a look to the ledger when ``split`` touches a protected split; else do nothing.

    The ledger is locked while the look's number is counted and the line appended, so
    evaluations running in parallel processes each get their own number.

    :param cfg: data config (store path, symbols, splits, protected splits)
    :param split: the split evaluated
    :param run: run directory evaluated
    :param checkpoint: checkpoint name
    :param fingerprint: digest of the bars replayed (:func:`bars_fingerprint`)
    :param command: command line of the process (default: this process's ``sys.argv``)
    :param now: time of the look (default: the wall clock, UTC)
    :return: the recorded look, or None when the split touches no protected dates
    """
    touched = protected_overlaps(cfg, split)
    if not touched:
        return None
    rng = resolve_split(cfg, split)
    path = ledger_path(cfg.store_path)
    when = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    argv = list(command) if command is not None else list(sys.argv)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+", encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.seek(0)
                earlier = [
                    _parse(line, path, k)
                    for k, line in enumerate(fh.read().splitlines(), start=1)
                    if line.strip()
                ]
                look = TestLook(
                    time=when,
                    split=split,
                    start=str(rng.start),
                    end=str(rng.end),
                    symbols=tuple(cfg.symbols),
                    run=run,
                    checkpoint=checkpoint,
                    command=shlex.join(argv),
                    fingerprint=fingerprint,
                    look=1 + sum(1 for e in earlier if _touches(e, rng, cfg.symbols)),
                )
                fh.seek(0, os.SEEK_END)
                fh.write(json.dumps(look.to_dict()) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError as err:
        raise StairwaysError(
            f"cannot record the look at protected split(s) {', '.join(touched)} in the test "
            f"ledger {path}: {err.strerror or err}; the folder of the bar store must be "
            "writable, because an uncounted look at the test year is not allowed"
        ) from None
    log.info(
        "look %d at %s (%s..%s) recorded in %s: run %s, checkpoint %s",
        look.look,
        split,
        rng.start,
        rng.end,
        path,
        run,
        checkpoint,
    )
    return look
