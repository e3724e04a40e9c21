"""No development command defaults to the protected test year.

Every place a split is defaulted is found three ways: literal defaults of split-like parameters,
fields and constants in the source (so a library default cannot hide), the options of every CLI
command, and the split fields of the default config and of every shipped run config. Only the
final-verdict places listed in FINAL_VERDICT may default to test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import BaseModel

from stairways.config import CONFIG_DIR, StairwaysConfig, load_config
from stairways.data.settings import DataConfig
from stairways.data.splits import protected_overlaps

SRC = Path(__file__).resolve().parents[3] / "src" / "stairways"

# (file relative to src/stairways, owner, name): the places that give final verdicts.
FINAL_VERDICT = {
    ("evaluation/settings.py", "EvaluationConfig", "split"),  # `stairways evaluate`
    ("demo.py", "evaluation_stage", "split"),  # the demo's verdict
    ("data/ledger.py", "test_looks", "split"),  # counts looks at test; evaluates nothing
    ("evaluation/temporal.py", "<module>", "TEST_SPLIT"),  # walk-forward pairs' own test
    ("live/ladder_config.py", "LadderConfig", "entry_split"),  # promotion needs the verdict
    ("live/registry.py", "<module>", "TEST_SPLIT"),  # where a model's verdict is looked up
    # The weekly report reads the model's recorded verdict (action mix, gates); it evaluates
    # nothing, so it adds no look at the test year.
    ("weekly/collect.py", "collect_week", "eval_split"),
    ("weekly/settings.py", "WeeklyReportConfig", "eval_split"),
}
FINAL_VERDICT_CONFIG = {"evaluation.split"}
FINAL_VERDICT_CLI = {("evaluate", "split")}


def _touches_test(value: str, cfg: DataConfig | None = None) -> bool:
    """Whether a split name, under the default splits, touches protected dates."""
    cfg = cfg or DataConfig()
    if value not in cfg.splits:
        # An unknown name cannot be checked against dates; the old test slice is known bad.
        return value.startswith("eval_feb")
    return bool(protected_overlaps(cfg, value))


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call):  # typer.Option("x", ...), Field(default="x")
        for kw in node.keywords:
            if kw.arg == "default":
                return _literal(kw.value)
        if node.args:
            return _literal(node.args[0])
    return None


def _split_defaults(tree: ast.AST) -> Iterator[tuple[str, str, str | None]]:
    """(owner, name, literal default) of every split-like parameter, field and constant."""

    def visit(node: ast.AST, owner: str) -> Iterator[tuple[str, str, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from visit(child, child.name)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                a = child.args
                positional = a.posonlyargs + a.args
                with_default = positional[len(positional) - len(a.defaults) :]
                pairs = list(zip(with_default, a.defaults, strict=True))
                keyword = zip(a.kwonlyargs, a.kw_defaults, strict=True)
                pairs += [(k, d) for k, d in keyword if d is not None]
                for arg, default in pairs:
                    if "split" in arg.arg.lower():
                        yield child.name, arg.arg, _literal(default)
                yield from visit(child, child.name)
            elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
                if "split" in child.target.id.lower() and child.value is not None:
                    yield owner, child.target.id, _literal(child.value)
            elif isinstance(child, ast.Assign):
                for target in child.targets:
                    if isinstance(target, ast.Name) and "split" in target.id.lower():
                        yield owner, target.id, _literal(child.value)
            else:
                yield from visit(child, owner)

    yield from visit(tree, "<module>")


def test_no_source_default_of_a_development_place_names_a_test_split() -> None:
    offenders = []
    seen_final = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for owner, name, value in _split_defaults(ast.parse(path.read_text())):
            if value is None or not _touches_test(value):
                continue
            if (rel, owner, name) in FINAL_VERDICT:
                seen_final.add((rel, owner, name))
                continue
            offenders.append(f"{rel}: {owner}.{name} defaults to {value!r}")
    assert offenders == [], "development defaults on test dates:\n" + "\n".join(offenders)
    # The allow-list stays honest: every entry still exists and still defaults to test.
    assert seen_final == FINAL_VERDICT


def test_the_scan_would_catch_a_trace_default_pointing_at_test() -> None:
    source = (
        "def trace(run, split: str = 'test'): ...\n"
        "class S:\n    eval_split: str = Field(default='eval_feb2024')\n"
        "_TRACE_SPLIT = typer.Option('test', '--trace-split')\n"
    )
    found = [(o, n, v) for o, n, v in _split_defaults(ast.parse(source)) if v and _touches_test(v)]
    assert found == [
        ("trace", "split", "test"),
        ("S", "eval_split", "eval_feb2024"),
        ("<module>", "_TRACE_SPLIT", "test"),
    ]


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    # Typer vendors its own click: a group is recognised by its commands, not by class.
    subcommands = getattr(cmd, "commands", None)
    if subcommands is not None:
        for name, sub in subcommands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd


def test_no_cli_command_but_evaluate_defaults_a_split_option_to_test() -> None:
    from stairways.cli.main import app

    root = typer.main.get_command(app)
    offenders = []
    checked = 0
    for name, cmd in _commands(root):
        for param in cmd.params:
            if "split" not in (param.name or ""):
                continue
            checked += 1
            default = param.default
            values = default if isinstance(default, list | tuple) else [default]
            bad = [v for v in values if isinstance(v, str) and _touches_test(v)]
            if bad and (name, param.name) not in FINAL_VERDICT_CLI:
                offenders.append(f"stairways {name} --{param.name}: {bad}")
    assert checked >= 4  # trace, demo, bench eval, evaluate, seeds, ...
    assert offenders == []


def _split_fields(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _split_fields(value, f"{key}.")
        elif "split" in name.lower() and isinstance(value, str):
            yield key, value


def _run_configs() -> list[Path]:
    """Shipped YAML files that are run configs (top-level keys of StairwaysConfig)."""
    known = set(StairwaysConfig.model_fields) | {"extends"}
    out = []
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and raw and set(raw) <= known:
            out.append(path)
    return out


@pytest.mark.parametrize("path", [None, *_run_configs()], ids=lambda p: p.name if p else "defaults")
def test_no_config_points_a_development_setting_at_test(path: Path | None) -> None:
    cfg = load_config(path)
    offenders = [
        f"{key} = {value!r}"
        for key, value in _split_fields(cfg)
        if key not in FINAL_VERDICT_CONFIG
        and value in cfg.data.splits
        and protected_overlaps(cfg.data, value)
    ]
    assert offenders == []
    assert "validation" in cfg.data.splits
    assert cfg.evaluation.split == "test"  # the final verdict stays on the test year


def test_the_shipped_run_configs_include_the_suites_that_evaluate() -> None:
    names = {p.name for p in _run_configs()}
    assert {"diagnostics.yaml", "reward_v3.yaml", "phase2_oos.yaml", "base.yaml"} <= names
    assert load_config(CONFIG_DIR / "diagnostics.yaml").diagnostics.eval_split == "validation"
