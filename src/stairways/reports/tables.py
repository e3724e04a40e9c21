"""Tables for people: typed columns, formatted cells, rendered as text, Markdown or HTML.

A :class:`Table` is built once from records (mappings or a DataFrame) and :class:`Column`
specifications; each column's formatter turns values into the text a reader expects:
``$1,234.56`` for dollars, ``1,200 sh`` for shares, ``45.1%`` for fractions, ``3.2`` for plain
numbers. Missing values (None, NaN) show as ``n/a``. The same table renders as an aligned text
table for the terminal (:func:`render_text`), as Markdown (:func:`render_markdown`) and as
HTML (:func:`stairways.reports.html.table_html`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Align = Literal["left", "right"]
Formatter = Callable[[Any], str]

MISSING = "n/a"

__all__ = [
    "MISSING",
    "Column",
    "Table",
    "dollars",
    "integer",
    "is_missing",
    "multiple",
    "number",
    "percent",
    "rate",
    "render_markdown",
    "render_text",
    "shares",
    "signed",
    "table",
    "text",
    "whole_dollars",
]


def is_missing(value: Any) -> bool:
    """Whether ``value`` is absent: None, NaN or pandas' NA."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN is not equal to itself
    except TypeError:
        return True  # pandas.NA: the comparison gives NA, whose truth value is undefined


def _finite(value: Any) -> float | None:
    if is_missing(value):
        return None
    return float(value)


def text(value: Any) -> str:
    """Any value as text (``n/a`` when missing); booleans as yes/no."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return str(value)


def _fixed(digits: int, sign: str) -> Formatter:
    """Fixed-point numbers with thousands separators; ``sign`` is a format-spec sign ('' or '+')."""

    def fmt(value: Any) -> str:
        v = _finite(value)
        if v is None:
            return MISSING
        if math.isinf(v):
            return "+inf" if v > 0 else "-inf"
        return f"{v:{sign},.{digits}f}"

    return fmt


def number(digits: int = 2) -> Formatter:
    """Fixed-point numbers with thousands separators, ``digits`` after the point."""
    return _fixed(digits, "")


def signed(digits: int = 2) -> Formatter:
    """Like :func:`number` but always with a sign (``+1.50``, ``-0.25``): changes and scores."""
    return _fixed(digits, "+")


def integer(value: Any) -> str:
    """Whole numbers with thousands separators (``12,000``)."""
    v = _finite(value)
    if v is None:
        return MISSING
    return f"{round(v):,d}"


def dollars(value: Any, cents: bool = True) -> str:
    """Money: ``$1,234.56``, ``-$12.30`` (no cents with ``cents=False``)."""
    v = _finite(value)
    if v is None:
        return MISSING
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    digits = 2 if cents else 0
    body = f"${abs(v):,.{digits}f}"
    # -0.001 rounds to $0.00: no minus sign on a zero
    return "-" + body if v < 0 and body.strip("$0.,") else body


def whole_dollars(value: Any) -> str:
    """Money without cents: ``$12,345``."""
    return dollars(value, cents=False)


def shares(value: Any) -> str:
    """Share counts: ``1,200 sh`` (fractional counts keep one decimal)."""
    v = _finite(value)
    if v is None:
        return MISSING
    return f"{v:,.0f} sh" if float(v).is_integer() else f"{v:,.1f} sh"


def percent(digits: int = 1) -> Formatter:
    """Fractions as percentages: 0.451 -> ``45.1%``."""

    def fmt(value: Any) -> str:
        v = _finite(value)
        if v is None:
            return MISSING
        return f"{100.0 * v:.{digits}f}%"

    return fmt


def multiple(digits: int = 1) -> Formatter:
    """Ratios read as multiples: 96.46 -> ``96.5x`` (turnover: traded notional over capital)."""

    def fmt(value: Any) -> str:
        v = _finite(value)
        if v is None:
            return MISSING
        return f"{v:,.{digits}f}x"

    return fmt


def rate(unit: str, digits: int = 1) -> Formatter:
    """A rate with its unit: ``3.2 /h``."""

    def fmt(value: Any) -> str:
        v = _finite(value)
        if v is None:
            return MISSING
        return f"{v:,.{digits}f} {unit}"

    return fmt


@dataclass(frozen=True)
class Column:
    """One column: where its values come from, its title, how cells read.

    :param key: key of the value in each record (column name of a DataFrame)
    :param title: header text
    :param fmt: turns a value into cell text (default :func:`text`)
    :param align: ``left`` or ``right``; default right for every formatter but :func:`text`
    """

    key: str
    title: str | None = None
    fmt: Formatter = text
    align: Align | None = None

    @property
    def header(self) -> str:
        """The header text (the key when no title is given)."""
        return self.title if self.title is not None else self.key

    @property
    def alignment(self) -> Align:
        """Explicit alignment, else right for numbers and left for text."""
        if self.align is not None:
            return self.align
        return "left" if self.fmt is text else "right"


@dataclass(frozen=True)
class Table:
    """Formatted cells under typed columns, plus the raw values (HTML sorts by them).

    :param columns: the column specifications
    :param cells: formatted cell text, one tuple per row
    :param values: the raw values behind ``cells`` (same shape)
    :param row_classes: an optional CSS class per row (for example ``best``)
    """

    columns: tuple[Column, ...]
    cells: tuple[tuple[str, ...], ...]
    values: tuple[tuple[Any, ...], ...] = ()
    row_classes: tuple[str, ...] = field(default=())

    @property
    def headers(self) -> tuple[str, ...]:
        """Header texts in column order."""
        return tuple(c.header for c in self.columns)

    def __len__(self) -> int:
        return len(self.cells)


def _records(rows: Any) -> list[Mapping[str, Any]]:
    """Records from a sequence of mappings or a DataFrame (index levels become columns)."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        frame = rows
        if frame.index.name is not None or any(n is not None for n in frame.index.names):
            frame = frame.reset_index()
        return list(frame.to_dict(orient="records"))
    return list(rows)


def table(
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]] | Any,
    *,
    row_classes: Callable[[Mapping[str, Any]], str] | None = None,
) -> Table:
    """Format ``rows`` under ``columns``; a record without a column's key is an error.

    :param columns: the columns, in order
    :param rows: mappings (or a DataFrame; its named index levels become columns)
    :param row_classes: gives each record a CSS class for HTML (empty string for none)
    """
    records = _records(rows)
    cells: list[tuple[str, ...]] = []
    values: list[tuple[Any, ...]] = []
    classes: list[str] = []
    for i, record in enumerate(records):
        missing = [c.key for c in columns if c.key not in record]
        if missing:
            raise KeyError(f"row {i} has no value for column(s) {missing}; it has {list(record)}")
        raw = tuple(record[c.key] for c in columns)
        values.append(raw)
        cells.append(tuple(c.fmt(v) for c, v in zip(columns, raw, strict=True)))
        classes.append(row_classes(record) if row_classes is not None else "")
    return Table(
        columns=tuple(columns),
        cells=tuple(cells),
        values=tuple(values),
        row_classes=tuple(classes) if any(classes) else (),
    )


def render_text(tab: Table, *, indent: str = "", rule: bool = True) -> str:
    """An aligned plain-text table (two spaces between columns), for the terminal.

    :param tab: the table
    :param indent: prefix of every line
    :param rule: draw a line of dashes under the header
    """
    rows = [tab.headers, *tab.cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(tab.columns))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if col.alignment == "right" else cell.ljust(w)
            for cell, w, col in zip(cells, widths, tab.columns, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    lines = [line(tab.headers)]
    if rule:
        lines.append(indent + "  ".join("-" * w for w in widths))
    lines.extend(line(r) for r in tab.cells)
    return "\n".join(lines)


def render_markdown(tab: Table) -> str:
    """A Markdown (GitHub) table; pipes and line breaks inside cells are escaped."""

    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    marks = ["---:" if c.alignment == "right" else "---" for c in tab.columns]
    lines = [
        "| " + " | ".join(cell(h) for h in tab.headers) + " |",
        "| " + " | ".join(marks) + " |",
    ]
    lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in tab.cells)
    return "\n".join(lines)
