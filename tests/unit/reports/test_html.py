import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from stairways.reports import html as h
from stairways.reports import tables as t


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Collect()
    p.feed(page)
    return p.tags


def _blocks() -> list[h.Block]:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    tab = t.table(
        [t.Column("name"), t.Column("pnl", "net P&L", t.dollars), t.Column("result")],
        [
            {"name": "<b>x</b>", "pnl": 1500.0, "result": "PASS"},
            {"name": "y", "pnl": -20.0, "result": "FAIL"},
        ],
        row_classes=lambda r: "best" if r["pnl"] > 0 else "",
    )
    return [
        h.Verdict("pass", "The agent passed.", ("detail one",)),
        h.Heading(2, "Numbers"),
        h.TableBlock(tab, sortable=True, status_classes={"PASS": "pass", "FAIL": "fail"}),
        h.Figure.from_matplotlib(fig, alt="a line", name="line.png"),
        h.Paragraph("a < b & c", muted=True),
    ]


def test_page_is_self_contained_and_escapes_text() -> None:
    page = h.render_page("Report <1>", _blocks())
    assert "<title>Report &lt;1&gt;</title>" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "a &lt; b &amp; c" in page
    tags = _tags(page)
    # nothing is loaded from outside the file
    for tag, attrs in tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith("data:"), (tag, attrs)
    assert any(
        tag == "img" and (a.get("src") or "").startswith("data:image/png") for tag, a in tags
    )


def test_the_first_block_comes_right_after_the_title() -> None:
    page = h.render_page("R", _blocks())
    body = page[page.index("<body>") :]
    assert re.search(r"<h1>R</h1>\s*<div class=\"verdict pass\"", body)


def test_sortable_tables_carry_raw_values_and_status_classes() -> None:
    page = h.render_page("R", _blocks())
    assert '<table class="sortable">' in page
    assert 'data-sort="1500.0"' in page
    assert '<td class="pass">PASS</td>' in page
    assert '<tr class="best">' in page
    assert "<script>" in page  # the sort script, inline


def test_a_page_without_sortable_tables_has_no_script() -> None:
    tab = t.table([t.Column("a")], [{"a": 1}])
    assert "<script>" not in h.render_page("R", [h.TableBlock(tab)])


def test_markdown_form_has_the_same_content() -> None:
    md = h.render_markdown("R", _blocks())
    assert md.startswith("# R\n")
    assert "**The agent passed.**" in md
    assert "| <b>x</b> | $1,500.00 | PASS |" in md
    assert "![a line](line.png)" in md


def test_write_page_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = h.write_page(tmp_path / "sub" / "r.html", "R", _blocks())
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]
