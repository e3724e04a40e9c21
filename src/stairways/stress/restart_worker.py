"""The live loop in its own process, for the restart scenario: ``python -m
stairways.stress.restart_worker SPEC.json`` rehearses the session the spec names into the
spec's journal and simulated-broker folder, resuming what a killed process left there.

The spec (written by :mod:`stairways.stress.restart`) holds: ``run_dir``, ``checkpoint``,
``day``, ``split``, ``stage``, ``risk_dir``, ``store``, ``journal``, ``state_dir`` and
``key_file`` (the journal's MAC key, hex, readable by the owner only), and ``last_bar`` (the
short form's last bar, or null for the whole session).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import date
from pathlib import Path

from stairways.journal import Journal, JournalLocation, MacKey
from stairways.live.loop import LiveLoop
from stairways.live.model import LivePolicy, ref_from_run
from stairways.live.session import SessionPlan, rehearse
from stairways.risk.store import SqlStateStore
from stairways.stress.scenarios import _close_after

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Run the spec's rehearsal to its end; 0 when it finished."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m stairways.stress.restart_worker SPEC.json\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    policy = LivePolicy(ref_from_run(Path(spec["run_dir"]), spec["checkpoint"]))
    key = MacKey(bytes.fromhex(Path(spec["key_file"]).read_text(encoding="utf-8").strip()))
    loc = JournalLocation.sqlite(Path(spec["journal"]))
    journal = Journal.open(loc, key)
    states = SqlStateStore(loc, journal=journal)
    last_bar = spec.get("last_bar")

    def on_loop(loop: LiveLoop) -> None:
        if last_bar is not None:
            _close_after(loop, int(last_bar))

    try:
        result = rehearse(
            policy,
            SessionPlan(
                day=date.fromisoformat(spec["day"]),
                stage=spec["stage"],
                split=spec["split"],
                operator="stress-suite",
                risk_dir=Path(spec["risk_dir"]),
                state_dir=Path(spec["state_dir"]),
            ),
            journal=journal,
            store_state=states,
            location=loc,
            bar_store=Path(spec["store"]),
            on_loop=on_loop,
        )
    finally:
        states.close()
        journal.close()
    log.info(
        "session %s %s: %d orders, %d fills, restart %s",
        result.session_id,
        "resumed" if result.resumed else "started",
        len(result.orders),
        len(result.executions),
        result.restart,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
