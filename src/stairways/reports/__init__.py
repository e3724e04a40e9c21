"""What a person reads: formatted tables (text, Markdown, HTML) and self-contained HTML pages.

- :mod:`stairways.reports.tables`: one table model with typed columns (dollars, shares,
  percentages, plain numbers), rendered as an aligned text table for the terminal or as
  Markdown;
- :mod:`stairways.reports.html`: a page of blocks (verdict, headings, paragraphs, tables,
  figures) rendered as one self-contained HTML file with the project's style.

Every report of the project (evaluation, diagnostics, reward audits, tuning results, action
traces) is written through these two modules, so numbers read the same everywhere.
"""
