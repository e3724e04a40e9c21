"""The relational storage of a study: opening it, claiming and re-queueing trials, heartbeats.

A study lives in Optuna's relational storage, reached by a SQLAlchemy URL:

- the default, an SQLite file ``study.db`` under the output directory (one machine); several
  worker processes share it, with a file lock beside it that makes a trial's state changes
  atomic (SQLite ignores the row locks Optuna relies on);
- a PostgreSQL database that several machines share, ``postgresql://user:password@host/db``.
  The driver is psycopg 3 (a dependency of Stairways): a URL that names no driver
  (``postgresql://`` or ``postgres://``) is opened with it, one naming a driver is used as given.

Every running trial proves it is alive by a heartbeat (:class:`Heartbeat`); a trial whose worker
stopped sending them is failed by the next worker or driver that looks. A trial whose worker was
interrupted is put back in the queue (:meth:`StudyStorage.requeue_trial`) rather than failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.storages._rdb import models as optuna_models
from optuna.trial import TrialState

from stairways.errors import InputError, MissingResourceError, TemporaryError
from stairways.tuning.settings import HeartbeatConfig
from stairways.writable import require_writable_dir

log = logging.getLogger(__name__)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "STORAGE_FILE",
    "Heartbeat",
    "StudyStorage",
    "default_storage_url",
    "normalise_url",
    "open_storage",
]

STORAGE_FILE = "study.db"
# How long opening a server database may wait for its server (an unreachable host fails then).
CONNECT_TIMEOUT_S = 10
# The driver Stairways installs for PostgreSQL (SQLAlchemy's default would be psycopg2).
POSTGRES_DRIVER = "postgresql+psycopg"


def default_storage_url(out_dir: Path) -> str:
    """The SQLite study file under ``out_dir`` as a SQLAlchemy URL (absolute path)."""
    return f"sqlite:///{(out_dir / STORAGE_FILE).resolve()}"


def normalise_url(url: str) -> str:
    """``url`` with the installed PostgreSQL driver named when it names none.

    ``postgresql://`` and ``postgres://`` mean SQLAlchemy's default driver, psycopg2, which
    Stairways does not install; they are opened with psycopg 3 instead. Other URLs are unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"{POSTGRES_DRIVER}://{rest}"
    return url


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def open_storage(url: str, heartbeat: HeartbeatConfig) -> StudyStorage:
    """Open (creating tables on first use) the relational study storage at ``url``.

    :param url: SQLAlchemy URL, e.g. ``sqlite:////abs/path/study.db`` or ``postgresql://...``
    :param heartbeat: how often running trials prove they are alive
    """
    engine_kwargs: dict[str, Any] = {}
    storage_cls: type[StudyStorage] = StudyStorage
    lock: Path | None = None
    path = _sqlite_path(url)
    if path is not None:
        _make_parent(path, url)
        # Several worker processes write one file: wait for its lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}}
        storage_cls, lock = _SQLiteStorage, path.with_name(path.name + ".lock")
    elif url.startswith(("postgresql", "postgres")):
        url = normalise_url(url)
        if url.startswith(f"{POSTGRES_DRIVER}://"):
            engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    try:
        with warnings.catch_warnings(), _file_lock(lock):
            # Heartbeats are marked experimental by Optuna; they are what detects dead workers.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Under the lock: two drivers creating a new study file would race on its tables.
            storage = storage_cls(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace_period,
            )
    except sqlalchemy.exc.ArgumentError as err:
        raise InputError(f"--storage {url!r} is not a SQLAlchemy database URL ({err})") from None
    except ModuleNotFoundError as err:
        raise MissingResourceError(
            f"the database driver for storage {url!r} is not installed ({err}); install it, "
            "or use a postgresql:// URL (psycopg 3 is installed) or an sqlite:/// URL"
        ) from None
    except sqlalchemy.exc.OperationalError as err:
        reason = str(err.orig if err.orig is not None else err).strip().splitlines()[0]
        raise TemporaryError(
            f"could not open the study storage {_safe(url)}: {reason}. Check that the database "
            "server runs and accepts this user, or choose another --storage"
        ) from None
    return storage


def _make_parent(path: Path, url: str) -> None:
    # SQLite writes its journal beside the file: the folder must be writable, not only the file.
    require_writable_dir(path.parent, "--out (or --storage)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"cannot create the directory {path.parent} of the study file {url}: "
            f"{err.strerror}. Choose a writable --out or --storage"
        ) from None


def _safe(url: str) -> str:
    """``url`` without its password (for messages)."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (no lock when ``path`` is None)."""
    if path is None:
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class StudyStorage(RDBStorage):
    """Optuna's relational storage plus putting an interrupted trial back in the queue."""

    def requeue_trial(self, trial_id: int) -> bool:
        """Make a running trial waiting again, as if it had never started.

        Its intermediate values and heartbeat are deleted (the next attempt reports its own and
        must not be taken for dead), its parameters stay: the next worker that takes it from the
        queue runs the same point. Returns False when the trial was not running (finished or
        taken back already). Optuna has no public call for this; it is one transaction on
        Optuna's own tables (optuna is pinned, and a test covers it).
        """
        with contextlib.closing(self.scoped_session()) as session:
            try:
                trial = optuna_models.TrialModel.find_or_raise_by_id(
                    trial_id, session, for_update=True
                )
                if trial.state != TrialState.RUNNING:
                    session.rollback()
                    return False
                for model in (
                    optuna_models.TrialIntermediateValueModel,
                    optuna_models.TrialHeartbeatModel,
                ):
                    session.query(model).filter(model.trial_id == trial_id).delete()
                trial.state = TrialState.WAITING
                trial.datetime_start = None
                session.commit()
            except sqlalchemy.exc.SQLAlchemyError:
                session.rollback()
                raise
        return True


class _SQLiteStorage(StudyStorage):
    """Study storage with trial state changes made atomic across processes.

    Optuna claims a queued trial by reading it ``FOR UPDATE`` and then marking it running.
    SQLite ignores ``FOR UPDATE`` and pysqlite begins a transaction only at the first write,
    so two workers could both read the same waiting trial and both run it. A file lock beside
    the study file makes the read, the check and the write one step. (PostgreSQL honours the
    row lock, so other URLs use the plain storage.)
    """

    def _lock_path(self) -> Path:
        return Path(str(self.url).removeprefix("sqlite:///") + ".lock")

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        """Change a trial's state (and values) while holding the study's file lock."""
        with _file_lock(self._lock_path()):
            return super().set_trial_state_values(trial_id, state, values)

    def requeue_trial(self, trial_id: int) -> bool:
        """Re-queue under the study's file lock (see :meth:`StudyStorage.requeue_trial`)."""
        with _file_lock(self._lock_path()):
            return super().requeue_trial(trial_id)


class Heartbeat:
    """Records a running trial's heartbeat now and then every ``interval`` seconds, in a thread.

    Used as a context manager around the trial; a heartbeat that cannot be written (the database
    is busy or briefly unreachable) is logged and tried again at the next beat.
    """

    def __init__(self, storage: RDBStorage, trial_id: int, interval: float) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-trial-{trial_id}", daemon=True
        )

    def _record(self) -> None:
        try:
            self.storage.record_heartbeat(self.trial_id)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
            log.warning("could not record the heartbeat of trial id %d: %s", self.trial_id, err)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def __enter__(self) -> Heartbeat:
        self._record()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for the thread (before the trial's rows change hands)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, 2 * self.interval))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
