"""Run the diagnostic suite: plan the jobs, run them in parallel processes, resume, report.

Every training run of the suite is one *job* (freeze-early: one run; reward A/B/C: one per
arm; leakage audit: one per arm and training seed). A job trains, replays what it needs and writes
``OUT/<part>/<arm>/job.json`` holding its spec (everything that decides its numbers) and its
result. With ``resume`` a job whose job.json exists with the same spec is read instead of
recomputed; a job interrupted before writing it starts again from a clean folder. Part verdicts
(``OUT/<part>/result.json``) and the report are rebuilt from the job results every time.

Jobs run in separate processes (spawn) so that torch and numba state never leaks between
runs; ``workers`` bounds how many train at once.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stairways.config import StairwaysConfig, load_config
from stairways.configbase import validate_model
from stairways.errors import (
    InputError,
    InternalError,
    MissingResourceError,
    StairwaysError,
)
from stairways.evaluation.diagnostics.freeze_early import FreezeEarlyResult, scaled_checkpoints
from stairways.evaluation.diagnostics.leakage import ARMS as LEAKAGE_ARMS
from stairways.evaluation.diagnostics.leakage import LeakageArm, LeakageResult, judge_leakage
from stairways.evaluation.diagnostics.report import SuiteResults, write_report
from stairways.evaluation.diagnostics.reward_abc import ArmResult, RewardABCResult, judge_abc
from stairways.evaluation.gates import GATES_FAILED_EXIT_CODE
from stairways.evaluation.jobs import TaskBackend
from stairways.training.rundir import atomic_write_text

log = logging.getLogger(__name__)

PARTS: tuple[str, ...] = ("freeze", "abc", "leakage")
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
SUITE_FILE = "suite.json"
HEARTBEAT_SECONDS = 60.0

Progress = Callable[[str], None]


class DiagnosticsFailedError(StairwaysError):
    """The suite ran and its report was written, but a verdict failed (exit 3, as gates do)."""

    exit_code = GATES_FAILED_EXIT_CODE


@dataclass(frozen=True)
class Job:
    """One training run of the suite and what it must measure.

    :param part: ``freeze``, ``abc`` or ``leakage``
    :param arm: arm name within the part (``main`` for freeze-early)
    :param spec: JSON-ready description of everything that decides the job's numbers
    """

    part: str
    arm: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        """``part/arm``, as shown in progress lines."""
        return f"{self.part}/{self.arm}"


@dataclass(frozen=True)
class SuiteRequest:
    """What ``stairways diagnose`` was asked to do.

    :param config_path: the suite's config file (None: shipped defaults)
    :param out_dir: where job results, part results and the report go
    :param parts: parts to run, a subset of :data:`PARTS`
    :param total_timesteps: training length override (freeze points scale with it)
    :param resume: reuse finished jobs in ``out_dir``
    :param backend: run the jobs as tasks on this backend (Ray) instead of local processes
    """

    config_path: Path | None
    out_dir: Path
    parts: tuple[str, ...] = PARTS
    total_timesteps: int | None = None
    resume: bool = False
    backend: TaskBackend | None = None


def leakage_job_name(arm: str, seed: int) -> str:
    """Folder and job name of one leakage run: ``<arm>-seed<seed>``."""
    return f"{arm}-seed{seed}"


def parse_parts(text: str) -> tuple[str, ...]:
    """Parse ``freeze,abc,leakage`` (any subset, any order) into suite order."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in PARTS]
    if unknown or not names:
        raise InputError(f"--parts must name some of {', '.join(PARTS)}; got {text!r}")
    return tuple(p for p in PARTS if p in names)


def _dump(cfg: StairwaysConfig) -> dict[str, Any]:
    # The diagnostics section is left out: what of it decides a job's numbers is copied into
    # the spec explicitly, so settings such as ``workers`` never block a resume.
    data = cfg.model_dump(mode="json")
    data.pop("diagnostics", None)
    return data


def plan_jobs(cfg: StairwaysConfig, request: SuiteRequest) -> list[Job]:
    """The jobs of the requested parts, each with its full spec (pure apart from reading
    the reward arms' config files)."""
    d = cfg.diagnostics
    timesteps = request.total_timesteps or d.total_timesteps
    base = {"config": _dump(cfg), "seed": d.seed, "eval_split": d.eval_split}
    for split in (d.eval_split, cfg.training.split):
        if split not in cfg.data.splits:
            raise InputError(
                f"diagnostics split {split!r} is not one of data.splits {sorted(cfg.data.splits)}"
            )
    jobs: list[Job] = []
    if "freeze" in request.parts:
        points = scaled_checkpoints(d.freeze.checkpoints, request.total_timesteps)
        jobs.append(
            Job(
                "freeze",
                "main",
                {
                    **base,
                    "kind": "freeze",
                    "checkpoints": list(points),
                    "total_timesteps": points[-1],
                    "freeze": d.freeze.model_dump(mode="json"),
                    "ranking_window": d.ranking_window,
                },
            )
        )
    if "abc" in request.parts:
        for arm in d.abc.arms:
            path = arm.config
            reward = load_config(path).reward
            if reward == cfg.reward and arm.name not in (d.abc.shim, d.abc.internal):
                log.info("reward A/B/C arm %s uses the suite's own reward", arm.name)
            arm_cfg = cfg.model_copy(update={"reward": reward})
            jobs.append(
                Job(
                    "abc",
                    arm.name,
                    {
                        **base,
                        "kind": "abc",
                        "arm_config_file": str(path),
                        "train_config": _dump(arm_cfg),
                        "total_timesteps": timesteps,
                    },
                )
            )
    if "leakage" in request.parts:
        for arm_name in LEAKAGE_ARMS:
            for train_seed in d.leakage.seeds:
                jobs.append(
                    Job(
                        "leakage",
                        leakage_job_name(arm_name, train_seed),
                        {
                            **base,
                            "kind": "leakage",
                            "arm": arm_name,
                            "train_seed": train_seed,
                            "leakage": d.leakage.model_dump(mode="json"),
                            "total_timesteps": timesteps,
                        },
                    )
                )
    return jobs


def _read_job(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(
            f"{path} is not a readable job result ({err}); delete it to redo the job"
        ) from None
    if not isinstance(data, dict) or "spec" not in data or "result" not in data:
        raise InputError(f"{path} lacks spec/result; delete it to redo the job")
    return data


def _spec_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like specs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out.extend(_spec_diff(old.get(key), new.get(key), f"{prefix}{key}."))
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _normalised(spec: dict[str, Any]) -> Any:
    # JSON round trip so tuples and lists (and float formatting) compare like stored specs.
    return json.loads(json.dumps(spec, sort_keys=True))


def execute_job(part: str, arm: str, spec: dict[str, Any], job_dir: str) -> dict[str, Any]:
    """Run one job in this process and write its job.json; returns the result mapping.

    Top-level so that spawned worker processes can import and call it.
    """
    from stairways.evaluation.diagnostics import backend

    folder = Path(job_dir)
    started = time.monotonic()
    if part == "freeze":
        result: dict[str, Any] = backend.run_freeze_job(spec, folder).model_dump(mode="json")
    elif part == "abc":
        result = backend.run_abc_job(arm, spec, folder).model_dump(mode="json")
    elif part == "leakage":
        result = backend.run_leakage_job(spec["arm"], spec, folder).model_dump(mode="json")
    else:
        raise InternalError(f"unknown diagnostic part {part!r}")
    payload = {"spec": spec, "result": result, "seconds": time.monotonic() - started}
    atomic_write_text(folder / JOB_FILE, json.dumps(payload, indent=1, allow_nan=True))
    return result


def _job_dir(out_dir: Path, job: Job) -> Path:
    return out_dir / job.part / job.arm


def _check_out_dir(request: SuiteRequest) -> None:
    out = request.out_dir
    existing = sorted(out.glob(f"*/*/{JOB_FILE}")) if out.is_dir() else []
    if request.resume:
        if not out.is_dir():
            raise MissingResourceError(
                f"nothing to resume: {out} does not exist; run without --resume to start"
            )
    elif existing:
        raise InputError(
            f"{out} already holds diagnostic results ({len(existing)} finished jobs); pass "
            "--resume to reuse them or choose another --out"
        )


def execute_job_task(task: tuple[str, str, dict[str, Any], str]) -> dict[str, Any]:
    """:func:`execute_job` with its arguments in one tuple (the form a backend task takes)."""
    return execute_job(*task)


def run_jobs(
    jobs: Sequence[Job],
    request: SuiteRequest,
    workers: int,
    progress: Progress,
    backend: TaskBackend | None = None,
) -> dict[str, dict[str, Any]]:
    """Run (or read) every job; returns results by job name.

    Jobs that fail do not stop the others (their results are kept for a resume); the first
    failure is raised once every job has ended, naming the job. With ``backend`` (Ray) every
    pending job is one task on it; a failed task fails the suite, and a ``--resume`` reuses
    the jobs that finished.
    """
    results: dict[str, dict[str, Any]] = {}
    pending: list[Job] = []
    for job in jobs:
        folder = _job_dir(request.out_dir, job)
        path = folder / JOB_FILE
        if request.resume and path.is_file():
            stored = _read_job(path)
            diff = _spec_diff(stored["spec"], _normalised(job.spec))
            if diff:
                raise InputError(
                    f"{path} was computed with different settings ({', '.join(diff[:8])}); "
                    "use another --out for the new settings"
                )
            progress(f"{job.name}: finished earlier, reusing {path}")
            results[job.name] = stored["result"]
            continue
        if folder.exists():
            # Left over from an interrupted attempt: nothing in it was confirmed by a job.json.
            log.warning("removing the unfinished job folder %s before running it again", folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        pending.append(job)
    if not pending:
        return results
    total = len(pending)
    if backend is not None:
        progress(f"running {total} job(s) as tasks on the {backend.name} backend")
        tasks = [
            (j.part, j.arm, _normalised(j.spec), str(_job_dir(request.out_dir, j))) for j in pending
        ]
        for job, result in zip(pending, backend.map(execute_job_task, tasks), strict=True):
            results[job.name] = result
        progress(f"[{total}/{total}] every job done")
        return results
    progress(f"running {total} job(s) with {min(workers, total)} worker process(es)")
    failures: list[tuple[str, StairwaysError]] = []
    started = time.monotonic()
    if workers <= 1 or total == 1:
        for i, job in enumerate(pending, start=1):
            progress(f"[{i - 1}/{total}] {job.name}: training and evaluating")
            t0 = time.monotonic()
            results[job.name] = execute_job(
                job.part, job.arm, _normalised(job.spec), str(_job_dir(request.out_dir, job))
            )
            progress(f"[{i}/{total}] {job.name}: done in {time.monotonic() - t0:.0f} s")
        return results
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx) as pool:
        futures: dict[Future[dict[str, Any]], Job] = {
            pool.submit(
                execute_job,
                job.part,
                job.arm,
                _normalised(job.spec),
                str(_job_dir(request.out_dir, job)),
            ): job
            for job in pending
        }
        remaining = set(futures)
        done = 0
        # Each pass ends when a job finishes or after a heartbeat; jobs are bounded by their
        # own timesteps, so the loop ends when the last one does.
        while remaining:
            finished, remaining = wait(
                remaining, timeout=HEARTBEAT_SECONDS, return_when=FIRST_COMPLETED
            )
            elapsed = time.monotonic() - started
            if not finished:
                busy = sorted(futures[f].name for f in remaining if f.running())
                progress(
                    f"[{done}/{total}] {elapsed:.0f} s: still training {', '.join(busy) or '-'}"
                )
                continue
            for future in finished:
                job = futures[future]
                done += 1
                try:
                    results[job.name] = future.result()
                except StairwaysError as err:
                    failures.append((job.name, err))
                    progress(f"[{done}/{total}] {job.name}: FAILED after {elapsed:.0f} s: {err}")
                    continue
                progress(f"[{done}/{total}] {job.name}: done ({elapsed:.0f} s since start)")
    if failures:
        name, first = failures[0]
        others = f" ({len(failures) - 1} more failed)" if len(failures) > 1 else ""
        raise type(first)(f"diagnostic job {name} failed{others}: {first}")
    return results


def _write_part(out_dir: Path, part: str, model: Any) -> None:
    atomic_write_text(out_dir / part / RESULT_FILE, model.model_dump_json(indent=1))


def assemble(
    cfg: StairwaysConfig, request: SuiteRequest, results: dict[str, dict[str, Any]]
) -> SuiteResults:
    """Part results and verdicts from job results; writes each part's result.json."""
    d = cfg.diagnostics
    freeze = abc = leakage = None
    if "freeze" in request.parts:
        freeze = validate_model(FreezeEarlyResult, results["freeze/main"], "freeze/main job")
        _write_part(request.out_dir, "freeze", freeze)
    if "abc" in request.parts:
        arms = tuple(
            validate_model(ArmResult, results[f"abc/{a.name}"], f"abc/{a.name} job")
            for a in d.abc.arms
        )
        abc = RewardABCResult(
            eval_split=d.eval_split,
            evaluation_reward=f"{cfg.reward.name} ({cfg.reward.mode})",
            arms=arms,
            judgement=judge_abc(arms, d.abc),
        )
        _write_part(request.out_dir, "abc", abc)
    if "leakage" in request.parts:
        runs = tuple(
            validate_model(LeakageArm, results[f"leakage/{name}"], f"leakage/{name} job")
            for name in (leakage_job_name(a, s) for a in LEAKAGE_ARMS for s in d.leakage.seeds)
        )
        timesteps = request.total_timesteps or d.total_timesteps
        leakage = LeakageResult(
            eval_split=d.eval_split,
            lag_bars=d.leakage.lag_bars,
            lookahead_bars=d.leakage.lookahead_bars,
            shuffled_offsets=d.leakage.shuffle_offsets,
            max_start_offset=d.leakage.max_start_offset,
            total_timesteps=timesteps,
            seeds=d.leakage.seeds,
            arms=runs,
            judgement=judge_leakage(runs, d.leakage, timesteps),
        )
        _write_part(request.out_dir, "leakage", leakage)
    notes = []
    if request.total_timesteps is not None:
        notes.append(
            f"Training length overridden to {request.total_timesteps} timesteps "
            "(freeze points scaled in proportion)."
        )
    skipped = [p for p in PARTS if p not in request.parts]
    if skipped:
        notes.append(f"Parts not run: {', '.join(skipped)}.")
    return SuiteResults(
        config_name=cfg.name,
        eval_split=d.eval_split,
        seed=d.seed,
        total_timesteps=request.total_timesteps or d.total_timesteps,
        freeze=freeze,
        abc=abc,
        leakage=leakage,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class SuiteOutcome:
    """What a suite run produced."""

    results: SuiteResults
    report_md: Path
    report_html: Path


def run_suite(request: SuiteRequest, progress: Progress | None = None) -> SuiteOutcome:
    """Run (or resume) the requested parts and write the report.

    :param request: config, output folder, parts, timesteps override and resume flag
    :param progress: receives one line per job event (default: the log)
    """
    say: Progress = progress or (lambda line: log.info("%s", line))
    cfg = load_config(request.config_path)
    if request.total_timesteps is not None and request.total_timesteps < 1:
        raise InputError(f"--total-timesteps must be at least 1, got {request.total_timesteps}")
    _check_out_dir(request)
    jobs = plan_jobs(cfg, request)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        request.out_dir / SUITE_FILE,
        json.dumps(
            {
                "config": None if request.config_path is None else str(request.config_path),
                "parts": list(request.parts),
                "total_timesteps": request.total_timesteps,
                "jobs": [j.name for j in jobs],
            },
            indent=1,
        ),
    )
    results = run_jobs(jobs, request, cfg.diagnostics.workers, say, request.backend)
    suite = assemble(cfg, request, results)
    md, page = write_report(suite, request.out_dir)
    say(f"report written: {md} and {page}")
    return SuiteOutcome(results=suite, report_md=md, report_html=page)


def checkpoint_interval(points: Sequence[int]) -> int:
    """Checkpoint interval that saves at (or just after) every freeze point: their gcd."""
    return math.gcd(*[int(p) for p in points])
