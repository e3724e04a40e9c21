"""``--backend local|ray --address``: where seed sweeps and power studies run their jobs.

The Ray backend is the tuner's (:class:`stairways.tuning.backends.RayBackend`, built by its
:func:`~stairways.tuning.backends.make_backend`), so every distributed command connects to Ray
the same way. ``local`` keeps the evaluation package's own process pool, which caps the worker
count (``--workers``) rather than starting one process per job.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from stairways.evaluation.jobs import TaskBackend

BackendOption = Annotated[
    str, typer.Option("--backend", help="local (worker processes) or ray (Ray tasks).")
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster address (host:port, ray://host:port or auto) with --backend ray; "
        "without it a private local Ray head is started.",
    ),
]


def task_backend(name: str, address: str | None, workers: int | None) -> TaskBackend | None:
    """None for local processes, else the tuner's Ray backend (bad combinations exit 2)."""
    if name == "local" and address is None:
        return None  # the common case, without importing the tuner (and Optuna)
    from stairways.tuning.backends import RayBackend, make_backend

    backend = make_backend(name, address, workers or os.cpu_count() or 1)
    return backend if isinstance(backend, RayBackend) else None
