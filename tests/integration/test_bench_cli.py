"""The benchmark commands run and print their figures (small sizes; no time is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


def _bench(*args: str) -> str:
    done = subprocess.run(
        [STAIRWAYS, "bench", *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _figure(out: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)}\s+([\d,.]+)", out, re.M)
    assert match is not None, f"{name} missing from:\n{out}"
    return float(match.group(1).replace(",", ""))


def test_bench_env_prints_single_vector_and_env_only_figures() -> None:
    out = _bench("env", "--single-steps", "500", "--vector-steps", "20", "--no-ppo")
    for name in (
        "single_env_steps_per_s",
        "vector_env_steps_per_s_n64",
        "vecenv_only_steps_per_s_ours_n4",
        "vecenv_only_steps_per_s_cartpole_n4",
    ):
        assert _figure(out, name) > 0


def test_bench_data_prints_import_and_feature_rates_on_one_month(tmp_path: Path) -> None:
    out = _bench("data", "--start", "2022-01-03", "--end", "2022-01-31", "--workdir", str(tmp_path))
    assert "import CSV -> store" in out and "features" in out
    assert re.search(r"\d[\d,]* bars of NVDA, MSFT 2022-01-03\.\.2022-01-31", out)
