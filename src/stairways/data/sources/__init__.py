"""Where bars come from: files (CSV, Parquet) and remote services (Polygon aggregates).

A remote service is a :class:`BarSource`: it fetches the raw rows of one symbol over a date
range, and the importer validates and stores them window by window. Files are read whole by
:mod:`stairways.data.sources.files`.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from stairways.data.validation import RawBars


class BarSource(Protocol):
    """A service that returns 1-minute bars of one symbol for a range of dates."""

    name: str

    def fetch(self, symbol: str, start: date, end: date) -> RawBars:
        """Raw rows (not yet validated) of ``symbol`` for sessions ``start``..``end``."""
        ...

    def describe(self) -> dict[str, object]:
        """Provenance recorded with the stored bars (never secrets)."""
        ...
