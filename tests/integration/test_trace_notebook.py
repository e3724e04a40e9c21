"""``stairways trace``: the action-trace notebook executed headlessly on a tiny run."""

from __future__ import annotations

import html as html_lib
from pathlib import Path

import pytest

from stairways.analysis.trace_report import SECTION_HEADINGS
from tests.browser import assert_first_screen_shows_ranking_and_charts, open_report
from tests.cli_helpers import stairways
from tests.integration.diagnostics_helpers import tiny_suite_config


def test_missing_run_exits_1_and_names_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "runs" / "no_such_run"
    code = stairways(monkeypatch, "trace", missing)
    err = capsys.readouterr().err
    assert code == 1
    assert f"run directory {missing} does not exist" in err
    assert not (tmp_path / "runs").exists()  # nothing written, nothing made up


def test_run_without_checkpoints_exits_1_before_any_kernel_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "empty_run"
    run.mkdir()
    (run / "monitor.csv").write_text('#{"t_start": 0}\nr,l,t\n1.0,390,1.0\n')
    code = stairways(monkeypatch, "trace", run, "--out", tmp_path / "r.html")
    assert code == 1
    assert "has no checkpoints folder" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_a_flip_share_outside_zero_to_one_exits_2_before_any_kernel_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    code = stairways(monkeypatch, "trace", run, "--flip-share", "1.5", "--out", tmp_path / "r.html")
    assert code == 2
    assert "flip-flop share must be a fraction" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_notebook_executes_on_a_tiny_run_and_writes_the_html_report(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_store: Path,
) -> None:
    from stairways.config import load_config
    from stairways.training.trainer import TrainOptions, train

    cfg = load_config(
        tiny_suite_config(tmp_path, tiny_store),
        {"training.total_timesteps": 3000, "training.checkpoint_every": 1000},
    )
    run = train(cfg, TrainOptions(run_dir=tmp_path / "run")).run_dir
    out = tmp_path / "report" / "traces.html"
    code = stairways(monkeypatch, "trace", run, "--top-k", "3", "--out", out)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    html = out.read_text()
    for heading in SECTION_HEADINGS:
        assert html_lib.escape(heading) in html
    assert "data:image/png;base64" in html  # the plots are embedded
    # Read as a reader would: verdict, ranking and a chart first, no log line anywhere, and
    # the notebook's own code stays in the executed notebook.
    shown = open_report(out, screenshot=tmp_path / "first_screen.png")
    assert_first_screen_shows_ranking_and_charts(shown)
    assert "Top-ranked checkpoint #1" in shown.text and "$" in shown.text
    assert "import " not in html and "tv.show(" not in html
    assert "tv.show(" in out.with_suffix(".ipynb").read_text()
    # the three best checkpoints were replayed (traces written where evaluate writes them)
    assert len(list((run / "eval" / "validation").glob("checkpoint_*/traces.parquet"))) == 3
    tables = out.with_name("traces_tables")
    assert {p.name for p in tables.iterdir()} == {"ranking.csv", "episodes.csv", "flip_flops.csv"}
    ranking = (tables / "ranking.csv").read_text().splitlines()
    assert len(ranking) == 4  # header and three checkpoints
