"""The README stays true: every command it shows exists with the options it uses."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer

from stairways.cli.main import app
from stairways.config import load_config
from tests.paths import REPO_ROOT

README = REPO_ROOT / "README.md"


def _readme_commands() -> list[str]:
    text = README.read_text().replace("\\\n", " ")
    return [
        line.split("  #")[0].strip() for line in text.splitlines() if line.startswith("stairways ")
    ]


def _resolve(words: list[str]) -> tuple[Any, list[str]]:
    """Walk the command tree along the leading words; return the command and the rest.

    Typer builds its commands with its own copy of click, so groups are found by their
    ``commands`` mapping rather than by class.
    """
    command: Any = typer.main.get_command(app)
    rest = list(words)
    while rest and rest[0] in getattr(command, "commands", {}):
        command = command.commands[rest.pop(0)]
    return command, rest


def test_readme_shows_the_two_fresh_machine_commands_first() -> None:
    first_block = README.read_text().split("```")[1]
    assert [line.split("#")[0].strip() for line in first_block.splitlines()[1:3]] == [
        "make demo",
        "make test",
    ]


@pytest.mark.parametrize("line", _readme_commands())
def test_every_readme_command_and_option_exists(line: str) -> None:
    words = shlex.split(line.replace("<", "").replace(">", ""))[1:]
    command, rest = _resolve(words)
    assert not hasattr(command, "commands"), f"{line!r} does not name a command"
    known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    used = {w.split("=")[0] for w in rest if w.startswith("--")}
    assert used <= known, f"{line!r} uses unknown options {sorted(used - known)}"


def test_every_config_the_readme_passes_with_config_loads() -> None:
    names = set(re.findall(r"--config (config/[\w/.-]+\.yaml)", README.read_text()))
    assert len(names) >= 3, f"expected the README's example configs, found {sorted(names)}"
    for name in sorted(names):
        load_config(REPO_ROOT / name)
