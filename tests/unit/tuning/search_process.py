"""A search in its own process, for tests that signal it (`python -m` this module).

It runs :func:`~stairways.tuning.search.run_search` on the 2x2 test grid with a slow
:class:`~tests.unit.tuning.objectives.QuadraticObjective` and ends like the ``stairways``
command does: a :class:`~stairways.errors.StairwaysError` prints ``error: <message>`` on stderr
and exits with the error's code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stairways.errors import StairwaysError
from stairways.tuning.search import run_search
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective


def main() -> None:
    """Parse the arguments, run the search, exit with the command's code."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True, help="tmp_path of the test")
    parser.add_argument("--log", required=True, help="QuadraticObjective's execution log")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--backend", default="local")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds per reported step")
    parser.add_argument("--rendezvous", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    request = make_request(
        args.dir, make_space(), workers=args.workers, storage_url=args.storage, backend=args.backend
    )
    objective = QuadraticObjective(
        log_path=args.log, steps=3, sleep_s=args.sleep, rendezvous=args.rendezvous
    )
    try:
        run_search(request, objective)
    except StairwaysError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
