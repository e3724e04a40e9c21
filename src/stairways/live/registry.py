"""The model registry: trained checkpoints recorded with their fingerprint, evaluations and stage.

``stairways models register RUN_DIR --checkpoint final`` records a model: the sha256 of each
file that decides an action (model zip, VecNormalize statistics, feature normaliser, resolved
config), the training data's panel fingerprint, the combined fingerprint
(:func:`stairways.live.model.fingerprint_files`), and every evaluation of that checkpoint found
in the run (``eval/<split>/<checkpoint>/metrics.json`` and ``gates.json``) with its gate
verdicts. A model's id is ``<run name>-<checkpoint>-<first 8 digits of the fingerprint>``: the
same files registered twice give the same model, changed files a new one.

Storage: the journal is the record. A registration is one ``config`` event of type
``model_registered``; a stage change (:mod:`stairways.live.ladder`) one of type
``ladder_stage``. Both are single, hash-chained appends, so a crash leaves either the whole
fact or nothing. The registry index (``registry.sqlite`` beside an SQLite journal, or the
``registry_*`` tables in a PostgreSQL journal's database) holds the same facts as tables for
quick reading by other processes; it is rebuilt from the journal on every open
(:meth:`RegistryIndex.sync`, one transaction), so an index that lost a write to a crash is
complete again at the next open.

A **stage** is an alias pointing at one registered model (MLflow's idea of aliases, without a
server): ``paper`` names the model paper-trading now, and so on. ``research`` is where every
model starts and may hold many models.

For the live loop: :func:`load_model_ref` resolves a model id or stage alias to a
:class:`~stairways.live.model.ModelRef` after checking its files against the registered
fingerprint, and :func:`live_allowed` says whether a model's stage lets it trade at a stage.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    select,
    text,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from stairways.errors import InputError, InternalError, MissingResourceError, StairwaysError
from stairways.journal.schema import JournalLocation
from stairways.live.model import ModelFingerprintError, ModelRef, fingerprint_files
from stairways.live.records import typed_records
from stairways.training.rundir import CheckpointFiles, RunDirectory

if TYPE_CHECKING:
    from stairways.live.ladder_config import LadderConfig

__all__ = [
    "LIVE_STAGES",
    "REGISTERED_TYPE",
    "STAGES",
    "STAGE_TYPE",
    "TEST_SPLIT",
    "LiveDecision",
    "ModelNotFoundError",
    "RegisteredModel",
    "RegistryError",
    "RegistryIndex",
    "StageChange",
    "check_files",
    "describe_model",
    "live_allowed",
    "load_model_ref",
    "read_models",
    "read_stage_changes",
    "register_model",
    "resolve_model",
    "stage_of",
    "stages_now",
]

log = logging.getLogger(__name__)

# The ladder, lowest first. research: registered, not trading; paper: IBKR paper account;
# micro_10 and scale_50: real money at the $10 and $50 sizes.
STAGES: tuple[str, ...] = ("research", "paper", "micro_10", "scale_50")
LIVE_STAGES: tuple[str, ...] = ("micro_10", "scale_50")
TRADING_STAGES: tuple[str, ...] = ("paper", "micro_10", "scale_50")
TEST_SPLIT = "test"

REGISTERED_TYPE = "model_registered"
STAGE_TYPE = "ladder_stage"
KIND_CONFIG = "config"

# The files whose bytes decide an action, in the order fingerprint_files hashes them.
PARTS = ("model", "vecnormalize", "normaliser", "config")
# Agent metrics kept from an evaluation's metrics.json (the rest stays in the run directory).
KEPT_METRICS = (
    "sessions",
    "total_pnl",
    "gross_pnl",
    "total_fees",
    "mean_daily_pnl",
    "mean_daily_pnl_lower_bound",
    "sharpe",
    "daily_sharpe",
    "daily_sharpe_low",
    "daily_sharpe_high",
    "max_drawdown",
    "max_session_drawdown",
    "win_rate",
    "fees_share_of_gross",
)


class RegistryError(StairwaysError):
    """The registry index could not be read or written."""


class ModelNotFoundError(InputError):
    """No registered model has that id and no stage alias points at one."""


class _Source(Protocol):
    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[Any]: ...


class _Log(_Source, Protocol):
    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> Any: ...


@dataclass(frozen=True)
class RegisteredModel:
    """One registered model as its registration record tells it.

    :param model_id: ``<run>-<checkpoint>-<fingerprint[:8]>``
    :param run_dir: the training run directory (absolute)
    :param checkpoint: ``final``, ``best`` or ``checkpoint_<steps>``
    :param fingerprint: the combined fingerprint (:func:`fingerprint_files`)
    :param files: part name -> {"path": ..., "sha256": ...}
    :param data_fingerprint: the training panel's fingerprint
    :param evaluations: split -> {"passed", "gates", "metrics", "sessions", ...}
    :param registered_by: who registered it
    :param registered_at: exchange time of the registration
    :param seq: the registration's journal sequence number
    """

    model_id: str
    run_dir: Path
    run_name: str
    checkpoint: str
    timesteps: int
    fingerprint: str
    files: Mapping[str, Mapping[str, str]]
    data_fingerprint: str
    synthetic: bool
    evaluations: Mapping[str, Mapping[str, Any]]
    registered_by: str
    registered_at: str
    seq: int = 0

    @property
    def oos_passed(self) -> bool:
        """Whether the out-of-sample gates passed on the test split."""
        ev = self.evaluations.get(TEST_SPLIT)
        return bool(ev is not None and ev.get("passed") is True)

    def payload(self) -> dict[str, Any]:
        """The journal payload of the registration."""
        return {
            "type": REGISTERED_TYPE,
            "model_id": self.model_id,
            "run_dir": str(self.run_dir),
            "run_name": self.run_name,
            "checkpoint": self.checkpoint,
            "timesteps": self.timesteps,
            "fingerprint": self.fingerprint,
            "files": {k: dict(v) for k, v in self.files.items()},
            "data_fingerprint": self.data_fingerprint,
            "synthetic": self.synthetic,
            "evaluations": {k: dict(v) for k, v in self.evaluations.items()},
            "registered_by": self.registered_by,
            "registered_at": self.registered_at,
        }

    @classmethod
    def from_payload(cls, p: Mapping[str, Any], seq: int) -> RegisteredModel:
        """A model from its registration record."""
        return cls(
            model_id=str(p["model_id"]),
            run_dir=Path(str(p["run_dir"])),
            run_name=str(p["run_name"]),
            checkpoint=str(p["checkpoint"]),
            timesteps=int(p["timesteps"]),
            fingerprint=str(p["fingerprint"]),
            files={str(k): dict(v) for k, v in dict(p["files"]).items()},
            data_fingerprint=str(p["data_fingerprint"]),
            synthetic=bool(p["synthetic"]),
            evaluations={str(k): dict(v) for k, v in dict(p["evaluations"]).items()},
            registered_by=str(p["registered_by"]),
            registered_at=str(p["registered_at"]),
            seq=seq,
        )

    def checkpoint_files(self) -> CheckpointFiles:
        """The checkpoint's files as registered."""
        model = Path(self.files["model"]["path"])
        vec = Path(self.files["vecnormalize"]["path"])
        reward = Path(str(self.files.get("reward_state", {}).get("path", "")))
        return CheckpointFiles(
            timesteps=self.timesteps, model=model, vecnormalize=vec, reward_state=reward
        )


@dataclass(frozen=True)
class StageChange:
    """One move of a model on the ladder (a ``ladder_stage`` record).

    :param action: ``promote``, ``demote``, ``auto_demote`` or ``halt``
    """

    seq: int
    ts: datetime
    model_id: str
    fingerprint: str
    from_stage: str
    to_stage: str
    action: str
    by: str
    reason: str
    request_id: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (the journal refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _part_paths(run: RunDirectory, files: CheckpointFiles) -> dict[str, Path]:
    return {
        "model": files.model,
        "vecnormalize": files.vecnormalize,
        "normaliser": run.normaliser_path,
        "config": run.config_path,
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}); re-run "
            "`stairways evaluate` for this checkpoint"
        ) from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} does not hold a JSON object; re-run `stairways evaluate`")
    return data


def _evaluations(run: RunDirectory, checkpoint: str, timesteps: int) -> dict[str, dict[str, Any]]:
    """Every evaluation of this checkpoint in the run, by split (metrics and gate verdicts)."""
    out: dict[str, dict[str, Any]] = {}
    root = run.path / "eval"
    if not root.is_dir():
        return out
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        folder = split_dir / checkpoint
        gates_path, metrics_path = folder / "gates.json", folder / "metrics.json"
        if not (gates_path.is_file() and metrics_path.is_file()):
            continue
        gates = _read_json(gates_path)
        metrics = _read_json(metrics_path)
        if int(metrics.get("timesteps", -1)) != timesteps:
            raise InputError(
                f"{metrics_path} evaluated checkpoint {checkpoint} at {metrics.get('timesteps')} "
                f"steps, but the checkpoint has {timesteps}: the evaluation is of other files; "
                f"re-run `stairways evaluate {run.path} --checkpoint {checkpoint} --split "
                f"{split_dir.name}`"
            )
        if "passed" not in gates or "gates" not in gates:
            raise InputError(f"{gates_path} has no 'passed' and 'gates' keys; re-run evaluate")
        agent = metrics.get("agent", {})
        out[split_dir.name] = _plain(
            {
                "split": str(metrics.get("split", split_dir.name)),
                "passed": gates["passed"] is True,
                "gates": [
                    {
                        k: g.get(k)
                        for k in ("metric", "value", "op", "threshold", "passed", "detail")
                    }
                    for g in gates["gates"]
                ],
                "metrics": {k: agent.get(k) for k in KEPT_METRICS if k in agent},
                "sessions": metrics.get("sessions"),
                "first_session": metrics.get("first_session"),
                "last_session": metrics.get("last_session"),
                "panel_fingerprint": metrics.get("panel_fingerprint"),
                "synthetic": metrics.get("synthetic"),
            }
        )
    return out


def describe_model(run_dir: Path, checkpoint: str = "final") -> RegisteredModel:
    """The registration a run's checkpoint would get now (files hashed, evaluations read)."""
    from stairways.evaluation.runner import resolve_checkpoint

    run = RunDirectory.open(run_dir)
    ref = resolve_checkpoint(run, checkpoint)
    manifest = run.read_manifest()
    fingerprint = fingerprint_files(run.path, ref.files)
    parts = {
        name: {"path": str(path.resolve()), "sha256": _sha256(path)}
        for name, path in _part_paths(run, ref.files).items()
    }
    parts["reward_state"] = {"path": str(ref.files.reward_state.resolve()), "sha256": ""}
    if ref.files.reward_state.is_file():
        parts["reward_state"]["sha256"] = _sha256(ref.files.reward_state)
    return RegisteredModel(
        model_id=f"{run.name}-{ref.name}-{fingerprint[:8]}",
        run_dir=run.path.resolve(),
        run_name=run.name,
        checkpoint=ref.name,
        timesteps=int(ref.files.timesteps),
        fingerprint=fingerprint,
        files=parts,
        data_fingerprint=manifest.data.panel_fingerprint,
        synthetic=bool(manifest.data.synthetic),
        evaluations=_evaluations(run, ref.name, int(ref.files.timesteps)),
        registered_by="",
        registered_at="",
    )


def read_models(source: _Source) -> dict[str, RegisteredModel]:
    """Every registered model in the journal, by id.

    The first registration of an id stands (who, when, its sequence number); a later one of
    the same files (an evaluation added since, see :func:`register_model`) brings only its
    evaluations.
    """
    out: dict[str, RegisteredModel] = {}
    for rec in typed_records(source, KIND_CONFIG, (REGISTERED_TYPE,)):
        p = rec.payload
        mid = str(p.get("model_id"))
        model = RegisteredModel.from_payload(p, int(rec.seq))
        first = out.get(mid)
        if first is None:
            out[mid] = model
        elif model.fingerprint == first.fingerprint:
            out[mid] = replace(first, evaluations=model.evaluations)
    return out


def read_stage_changes(source: _Source, model_id: str | None = None) -> list[StageChange]:
    """Every ladder move in the journal (of ``model_id``, if given), oldest first."""
    out: list[StageChange] = []
    for rec in typed_records(source, KIND_CONFIG, (STAGE_TYPE,), model_id=model_id):
        p = rec.payload
        out.append(
            StageChange(
                seq=int(rec.seq),
                ts=rec.ts,
                model_id=str(p["model_id"]),
                fingerprint=str(p.get("fingerprint", "")),
                from_stage=str(p["from"]),
                to_stage=str(p["to"]),
                action=str(p["action"]),
                by=str(p.get("by", "")),
                reason=str(p.get("reason", "")),
                request_id=str(p.get("request_id", "")),
                details=dict(p.get("details", {})),
            )
        )
    return out


def stages_now(source: _Source) -> dict[str, tuple[str, int]]:
    """Model id -> (current stage, seq of the move that put it there; 0 if never moved)."""
    models = read_models(source)
    now = {m: ("research", 0) for m in models}
    for change in read_stage_changes(source):
        now[change.model_id] = (change.to_stage, change.seq)
    return now


def stage_of(source: _Source, model_id: str) -> str:
    """The stage ``model_id`` is in now (``research`` until it is promoted)."""
    models = read_models(source)
    if model_id not in models:
        raise _not_found(model_id, models, stages_now(source))
    return stages_now(source)[model_id][0]


def _not_found(
    name: str, models: Mapping[str, RegisteredModel], stages: Mapping[str, tuple[str, int]]
) -> ModelNotFoundError:
    aliases = sorted({s for s, _ in stages.values() if s != "research"})
    known = ", ".join(sorted(models)) or "none registered yet"
    return ModelNotFoundError(
        f"no registered model {name!r} and no stage alias by that name; models: {known}; "
        f"stage aliases in use: {', '.join(aliases) or 'none'} "
        "(register one with `stairways models register RUN_DIR --checkpoint final`)"
    )


def resolve_model(source: _Source, name: str) -> RegisteredModel:
    """The model named by id or by a stage alias (``paper``, ``micro_10``, ``scale_50``)."""
    models = read_models(source)
    if name in models:
        return models[name]
    stages = stages_now(source)
    if name in STAGES:
        if name == "research":
            raise InputError(
                "research is not an alias: it holds every model not yet on the ladder; name "
                "the model by its id (stairways models list)"
            )
        holders = [m for m, (s, _) in stages.items() if s == name]
        if not holders:
            raise ModelNotFoundError(
                f"no model is in stage {name} now (stairways ladder status shows every stage)"
            )
        if len(holders) > 1:
            raise InternalError(
                f"stage {name} points at {len(holders)} models ({', '.join(sorted(holders))}); "
                "the ladder keeps one model per stage: run `stairways journal verify`"
            )
        return models[holders[0]]
    raise _not_found(name, models, stages)


def check_files(model: RegisteredModel) -> None:
    """Refuse a model whose files no longer match its registration, naming each changed file."""
    changed: list[str] = []
    for name in PARTS:
        part = model.files[name]
        path = Path(part["path"])
        if not path.is_file():
            changed.append(f"{name} file {path} is missing")
        elif _sha256(path) != part["sha256"]:
            changed.append(f"{name} file {path} changed since registration")
    run = RunDirectory.open(model.run_dir)
    data = run.read_manifest().data.panel_fingerprint
    if data != model.data_fingerprint:
        changed.append(
            f"the run's data fingerprint is {data}, registered {model.data_fingerprint} "
            f"({run.manifest_path})"
        )
    if not changed:
        actual = fingerprint_files(model.run_dir, model.checkpoint_files())
        if actual != model.fingerprint:
            changed.append(f"the combined fingerprint is {actual[:16]}")
    if changed:
        raise ModelFingerprintError(
            f"model {model.model_id} does not match its registered fingerprint "
            f"{model.fingerprint[:16]}: {'; '.join(changed)}. A changed model is a new model: "
            f"register it again (stairways models register {model.run_dir} --checkpoint "
            f"{model.checkpoint}) and let it climb the ladder from research"
        )


def load_model_ref(source: _Source, name: str) -> ModelRef:
    """The :class:`ModelRef` of a registered model (by id or stage alias), files verified.

    Every file that decides an action is hashed again and compared with the registration; a
    mismatch raises :class:`~stairways.live.model.ModelFingerprintError` naming the file.

    :param source: the journal (a reader is enough)
    :param name: a model id or a stage alias (``paper``, ``micro_10``, ``scale_50``)
    """
    model = resolve_model(source, name)
    check_files(model)
    return ModelRef(
        model_id=model.model_id,
        run_dir=model.run_dir,
        checkpoint=model.checkpoint,
        files=model.checkpoint_files(),
        fingerprint=model.fingerprint,
        stage=stage_of(source, model.model_id),
        registered=True,
    )


@dataclass(frozen=True)
class LiveDecision:
    """Whether a model may trade at a stage, and why (the reason names the failed condition)."""

    allowed: bool
    reason: str
    model_id: str
    model_stage: str
    stage: str

    def __bool__(self) -> bool:
        return self.allowed


def live_allowed(
    source: _Source,
    model_id: str,
    stage: str,
    *,
    ladder: LadderConfig | None = None,
    check_failures: bool = True,
) -> LiveDecision:
    """Whether ``model_id``'s ladder stage lets it trade at ``stage`` (paper, micro_10, scale_50).

    A model trades at its own stage or a smaller one on the ladder (a scale_50 model may run at
    micro_10), never above it, and nothing trades from research. The model may be named by a
    stage alias. A model whose stage has already failed (a breach, an emergency stop or a
    failing gate that ``stairways ladder review`` has not acted on yet) is refused too, judged
    by ``ladder`` (default: the shipped ``config/ladder.yaml``); ``check_failures=False`` looks
    at the stage only. Files are not checked here: :func:`load_model_ref` does that.
    """
    if stage not in TRADING_STAGES:
        raise InputError(f"unknown trading stage {stage!r}; the stages are {', '.join(STAGES)}")
    model = resolve_model(source, model_id)
    current = stage_of(source, model.model_id)
    if current == "research":
        return LiveDecision(
            False,
            f"model {model.model_id} is in research: it must be promoted to paper (stairways "
            "ladder promote) before it trades at any stage",
            model.model_id,
            current,
            stage,
        )
    if STAGES.index(current) < STAGES.index(stage):
        return LiveDecision(
            False,
            f"model {model.model_id} is in stage {current}; trading at {stage} needs a "
            f"promotion to {stage} with its gates and approvals (stairways ladder status)",
            model.model_id,
            current,
            stage,
        )
    if check_failures:
        from stairways.live.evidence import stage_evidence
        from stairways.live.ladder import stage_failures
        from stairways.live.ladder_config import load_ladder_config

        if ladder is None:
            ladder = load_ladder_config()

        since = stages_now(source)[model.model_id][1]
        causes = stage_failures(stage_evidence(source, model, current, since), ladder)
        if causes:
            return LiveDecision(
                False,
                f"model {model.model_id} failed its stage {current} "
                f"({' | '.join(text for _, text in causes)}); run `stairways ladder review` to "
                "demote it, then climb again",
                model.model_id,
                current,
                stage,
            )
    return LiveDecision(
        True,
        f"model {model.model_id} is in stage {current}, which allows trading at {stage}",
        model.model_id,
        current,
        stage,
    )


def register_model(
    journal: _Log, run_dir: Path, checkpoint: str, *, by: str, at: datetime
) -> tuple[RegisteredModel, bool]:
    """Register a run's checkpoint; returns the model and whether anything was written.

    The same files registered again return the existing model and write nothing, unless the
    run's evaluations of the checkpoint changed (for example the test split was evaluated
    after the first registration): then the new evaluations are recorded for the same model.

    :param journal: the journal (a writer)
    :param by: who registers it
    :param at: exchange time, from the clock
    """
    if not by.strip():
        raise InputError("registering a model needs the name of who registers it (--by)")
    described = describe_model(run_dir, checkpoint)
    existing = read_models(journal).get(described.model_id)
    if existing is not None and existing.evaluations == described.evaluations:
        return existing, False
    model = RegisteredModel(
        **{
            **described.__dict__,
            "registered_by": by.strip(),
            "registered_at": at.isoformat(),
        }
    )
    rec = journal.append(KIND_CONFIG, model.payload(), at)
    if existing is not None:
        # The same files with other evaluations (one added or re-run since): recorded again,
        # the first registration stands and takes the new evaluations.
        log.info("model %s: evaluations updated (%s)", model.model_id, ", ".join(model.evaluations))
        return replace(existing, evaluations=model.evaluations), True
    seq = int(getattr(rec, "seq", 0))
    log.info("registered model %s (%s)", model.model_id, model.fingerprint[:16])
    return RegisteredModel(**{**model.__dict__, "seq": seq}), True


# ----------------------------------------------------------------------------------------------
# The index: the journal's registry facts as tables, for other processes to read quickly.

_meta = MetaData()
MODELS = Table(
    "registry_models",
    _meta,
    Column("model_id", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("run_dir", Text, nullable=False),
    Column("checkpoint", String(100), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("stage_seq", BigInteger, nullable=False),
    Column("registered_seq", BigInteger, nullable=False),
    Column("record", Text, nullable=False),
)
INDEX_META = Table(
    "registry_meta",
    _meta,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# pg_advisory_xact_lock key of ladder actions on a PostgreSQL registry ("ladder" in ASCII).
LADDER_LOCK_ID = 0x6C6164646572


REGISTRY_INDEX_NAME = "registry.sqlite"


def index_location(journal: JournalLocation) -> JournalLocation:
    """Where the registry index of a journal is: ``registry.sqlite`` beside an SQLite journal,
    the journal's own database for PostgreSQL."""
    if journal.is_sqlite:
        assert journal.path is not None
        index = journal.path.with_name(REGISTRY_INDEX_NAME)
        if index == journal.path:
            raise InputError(
                f"the journal {journal.path} has the name of the registry index kept beside it "
                f"({REGISTRY_INDEX_NAME}): give the journal another file name (journal.path or "
                "--journal)"
            )
        return JournalLocation.sqlite(index)
    return journal


class RegistryIndex:
    """The registry's tables, rebuilt from the journal (see the module docstring).

    :param location: the index database (:func:`index_location`)
    """

    def __init__(self, location: JournalLocation, *, timeout: float = 30.0) -> None:
        self.location = location
        if location.is_sqlite:
            assert location.path is not None
            location.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine: Engine = create_engine(location.url, connect_args={"timeout": timeout})
            busy_ms = int(timeout * 1000)

            @event.listens_for(self._engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None
                cur = dbapi_connection.cursor()
                try:
                    cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                    cur.execute("PRAGMA journal_mode = WAL")
                    cur.execute("PRAGMA synchronous = FULL")
                finally:
                    cur.close()

            @event.listens_for(self._engine, "begin")
            def _on_begin(conn: Any) -> None:
                # Writers take the write lock up front (BEGIN IMMEDIATE): two ladder actions
                # queue instead of both reading the same stage; readers never wait for it.
                write = conn.get_execution_options().get("registry_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        else:
            self._engine = create_engine(
                location.url,
                pool_pre_ping=True,
                connect_args={"options": f"-c lock_timeout={int(timeout * 1000)}"},
            )
        try:
            with self._engine.connect() as conn:
                ready = all(conn.dialect.has_table(conn, t.name) for t in (MODELS, INDEX_META))
            if not ready:
                with self._write() as conn:
                    _meta.create_all(conn)
        except SQLAlchemyError as err:
            self._engine.dispose()
            raise RegistryError(
                f"cannot open the registry index {location}: {getattr(err, 'orig', err)}"
            ) from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect().execution_options(registry_write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def exclusive(self) -> Iterator[Connection]:
        """Hold the registry's write lock for one ladder action (checks and journal append) so
        that two processes never act on the same stage at once; :meth:`sync` the index with the
        connection this yields before leaving. Waits up to the index's timeout for the lock."""
        try:
            with self._write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LADDER_LOCK_ID})
                yield conn
        except OperationalError as err:
            raise RegistryError(
                f"the registry {self.location} is busy (another ladder action holds its lock): "
                f"{getattr(err, 'orig', err)}; try again"
            ) from None

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> RegistryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync(self, source: _Source, conn: Connection | None = None) -> int:
        """Rebuild the tables from the journal in one transaction (``conn``'s, from
        :meth:`exclusive`, or a new one); returns the number of models indexed."""
        models = read_models(source)
        stages = stages_now(source)
        rows = [
            {
                "model_id": m.model_id,
                "fingerprint": m.fingerprint,
                "run_dir": str(m.run_dir),
                "checkpoint": m.checkpoint,
                "stage": stages[m.model_id][0],
                "stage_seq": stages[m.model_id][1],
                "registered_seq": m.seq,
                "record": json.dumps(m.payload(), sort_keys=True),
            }
            for m in models.values()
        ]
        try:
            with contextlib.ExitStack() as stack:
                if conn is None:
                    conn = stack.enter_context(self._write())
                conn.execute(delete(MODELS))
                if rows:
                    conn.execute(MODELS.insert(), rows)
                conn.execute(delete(INDEX_META))
                conn.execute(INDEX_META.insert(), [{"name": "models", "value": str(len(rows))}])
        except SQLAlchemyError as err:
            raise RegistryError(
                f"cannot write the registry index {self.location}: {getattr(err, 'orig', err)}"
            ) from None
        return len(rows)

    def rows(self) -> list[dict[str, Any]]:
        """The indexed models (id, fingerprint, run, checkpoint, stage), by registration."""
        try:
            with self._engine.connect() as conn:
                result = conn.execute(select(MODELS).order_by(MODELS.c.registered_seq)).all()
        except SQLAlchemyError as err:
            raise MissingResourceError(
                f"cannot read the registry index {self.location}: {getattr(err, 'orig', err)}"
            ) from None
        return [dict(r._mapping) for r in result]
