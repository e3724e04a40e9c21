"""Self-contained HTML reports built from blocks, in one style for the whole project.

A report is a title and a list of blocks: a :class:`Verdict` (what the reader must know first),
:class:`Heading`, :class:`Paragraph`, :class:`TableBlock` (a formatted table),
:class:`Figure` (PNG bytes, embedded) and :class:`Markup` (HTML produced by trusted code, for
example a notebook's Markdown cells). :func:`render_page` writes one HTML file with no outside
resources: no scripts or styles from the network, images inline. The same blocks render as
Markdown (:func:`render_markdown`, figures as links to files written beside it) so the two
forms of a report never disagree.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from stairways.reports.tables import Table, is_missing
from stairways.reports.tables import render_markdown as table_markdown

Level = Literal["pass", "fail", "warn", "info"]

__all__ = [
    "Block",
    "Figure",
    "Heading",
    "Level",
    "Markup",
    "Paragraph",
    "TableBlock",
    "Verdict",
    "block_html",
    "render_markdown",
    "render_page",
    "table_html",
    "write_page",
]


@dataclass(frozen=True)
class Heading:
    """A section heading (level 1 is the page title's level)."""

    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    """Plain text (escaped); ``muted`` renders it in grey (notes, provenance)."""

    text: str
    muted: bool = False


@dataclass(frozen=True)
class Verdict:
    """The finding a reader must see first: a level, one sentence, optional detail lines."""

    level: Level
    text: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableBlock:
    """A table; ``sortable`` lets the reader sort by clicking a header (by the raw values).

    :param status_classes: cell text -> CSS class (``pass``, ``fail``, ``warn``, ``muted``) for
        status columns such as PASS / FAIL
    """

    table: Table
    caption: str = ""
    sortable: bool = False
    status_classes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """A PNG image embedded in the page (written beside the Markdown form as ``name``)."""

    png: bytes
    alt: str
    name: str = ""
    caption: str = ""

    @classmethod
    def from_matplotlib(cls, fig: Any, alt: str, name: str = "", caption: str = "") -> Figure:
        """Render a matplotlib figure to PNG (at 100 dpi, tight layout) and close it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return cls(png=buf.getvalue(), alt=alt, name=name, caption=caption)


@dataclass(frozen=True)
class Markup:
    """HTML made by trusted code (never user text); Markdown form given separately."""

    html: str
    markdown: str = ""


Block = Heading | Paragraph | Verdict | TableBlock | Figure | Markup

CSS = """
:root { --fg: #1f2328; --muted: #6e7781; --rule: #d0d7de; --head: #f6f8fa;
        --pass: #1a7f37; --fail: #cf222e; --warn: #9a6700; --info: #0969da; }
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--fg); max-width: 78em; margin: 1.5em auto; padding: 0 1.5em;
       line-height: 1.45; }
h1 { font-size: 1.6em; margin: 0 0 0.4em 0; }
h2 { font-size: 1.25em; margin: 1.3em 0 0.5em 0; border-bottom: 1px solid var(--rule);
     padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em 0; }
p { margin: 0.4em 0 0.8em 0; }
p.muted, .muted { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em;
       background: var(--head); padding: 0 0.25em; border-radius: 3px; }
.verdict { border-left: 6px solid var(--info); background: #f6f8fa; padding: 0.6em 1em;
           margin: 0.6em 0 1em 0; }
.verdict p { margin: 0.2em 0; font-weight: 600; }
.verdict ul { margin: 0.3em 0 0 0; padding-left: 1.2em; }
.verdict.pass { border-color: var(--pass); } .verdict.fail { border-color: var(--fail); }
.verdict.warn { border-color: var(--warn); }
table { border-collapse: collapse; margin: 0.4em 0 1em 0; font-size: 0.88em;
        font-variant-numeric: tabular-nums; display: block; max-width: 100%; overflow-x: auto; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: 0.3em; }
th, td { border: 1px solid var(--rule); padding: 0.2em 0.6em; vertical-align: top; }
th { background: var(--head); text-align: left; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
table.sortable th { cursor: pointer; }
th[data-dir=asc]::after { content: " \\25B2"; } th[data-dir=desc]::after { content: " \\25BC"; }
tr.best td { background: #dafbe1; } tr.bad td { background: #ffebe9; }
td.pass { color: var(--pass); font-weight: 600; } td.fail { color: var(--fail); font-weight: 600; }
td.warn, td.broken { color: var(--warn); font-weight: 600; } td.muted { color: var(--muted); }
figure { margin: 0.5em 0 1.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.9em; }
a.anchor-link { display: none; }
"""

_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-dir') !== 'asc';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      function key(row) {
        var cell = row.cells[col], raw = cell.getAttribute('data-sort');
        return raw === null ? cell.textContent : raw;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === '' && y !== '') { return 1; }
        if (y === '' && x !== '') { return -1; }
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? cmp : -cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _sort_key(value: Any) -> str | None:
    """The ``data-sort`` value of a numeric cell (empty for missing), None for text."""
    if isinstance(value, bool | np.bool_):
        return None
    if is_missing(value):
        return ""
    if isinstance(value, int | float | np.number):
        return repr(float(value))
    return None


def table_html(block: TableBlock) -> str:
    """The HTML of one table block."""
    tab = block.table
    cls = ' class="sortable"' if block.sortable else ""
    out = [f"<table{cls}>"]
    if block.caption:
        out.append(f"<caption>{html.escape(block.caption)}</caption>")
    out.append("<thead><tr>")
    out.extend(f"<th>{html.escape(h)}</th>" for h in tab.headers)
    out.append("</tr></thead><tbody>")
    values = tab.values or tuple(() for _ in tab.cells)
    for i, row in enumerate(tab.cells):
        row_cls = tab.row_classes[i] if tab.row_classes else ""
        out.append(f'<tr class="{html.escape(row_cls)}">' if row_cls else "<tr>")
        raw = values[i] if values[i] else (None,) * len(row)
        for cell, col, value in zip(row, tab.columns, raw, strict=True):
            classes = []
            if col.alignment == "right":
                classes.append("num")
            status = block.status_classes.get(cell)
            if status:
                classes.append(status)
            attrs = f' class="{" ".join(classes)}"' if classes else ""
            key = _sort_key(value) if block.sortable else None
            if key is not None:
                attrs += f' data-sort="{html.escape(key)}"'
            out.append(f"<td{attrs}>{html.escape(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def block_html(block: Block) -> str:
    """The HTML of one block (as :func:`render_page` writes it)."""
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
        return f"<h{level}{anchor}>{html.escape(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        cls = ' class="muted"' if block.muted else ""
        return f"<p{cls}>{html.escape(block.text)}</p>"
    if isinstance(block, Verdict):
        details = "".join(f"<li>{html.escape(d)}</li>" for d in block.details)
        items = f"<ul>{details}</ul>" if details else ""
        return (
            f'<div class="verdict {block.level}" role="status">'
            f"<p>{html.escape(block.text)}</p>{items}</div>"
        )
    if isinstance(block, TableBlock):
        return table_html(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return (
            f'<figure><img alt="{html.escape(block.alt)}" '
            f'src="data:image/png;base64,{data}">{caption}</figure>'
        )
    return block.html


def render_page(title: str, blocks: Sequence[Block]) -> str:
    """One self-contained HTML page: the title as the first heading, then the blocks."""
    body = "\n".join(block_html(b) for b in blocks)
    script = (
        f"<script>{_SORT_JS}</script>"
        if any(isinstance(b, TableBlock) and b.sortable for b in blocks)
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n{script}</body></html>\n"
    )


def render_markdown(title: str, blocks: Sequence[Block]) -> str:
    """The same report as Markdown; figures become links to ``Figure.name`` files."""
    out = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * min(max(b.level, 1), 6) + " " + b.text)
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Verdict):
            out.append(f"**{b.text}**")
            if b.details:
                out.append("")
                out.extend(f"- {d}" for d in b.details)
        elif isinstance(b, TableBlock):
            if b.caption:
                out.extend([b.caption, ""])
            out.append(table_markdown(b.table))
        elif isinstance(b, Figure):
            out.append(f"![{b.alt}]({b.name})" if b.name else f"(figure: {b.alt})")
        elif b.markdown:
            out.append(b.markdown)
        else:
            continue
        out.append("")
    return "\n".join(out)


def write_page(path: Path, title: str, blocks: Sequence[Block]) -> Path:
    """Write the HTML page to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_page(title, blocks), encoding="utf-8")
    tmp.replace(path)
    return path
