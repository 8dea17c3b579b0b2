"""What the study's scripts share to train their runs: a plan per run folder (train, resume
or leave it), one progress bar over every run on the engine (kit/engine.py: joblib's
worker processes or a Dask cluster), and the lock that keeps a second study.py out of a
study's folder. study.py's built-in study and a study of one's own (kit/own_study.py)
both train through here."""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kit.cli import Output
from kit.config import RunConfig


class StudyError(Exception):
    """A study that cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Job:
    """One run to train: its folder name in the study's folder, its configuration, and
    what it needs ('train', 'resume' or 'done')."""
    name: str
    config: RunConfig
    action: str


def plan_run(folder: Path, config: RunConfig, retrain: bool = False,
             other_advice: str = "use another --output-dir, or --retrain to replace it") -> Job:
    """What folder needs to hold a finished run of config: 'done', 'train' (nothing there) or
    'resume' (ours, unfinished). A run of ours with no committed epoch is replaced; a folder
    holding a run with other settings is a StudyError unless retrain."""
    from kit.engine import needs
    action = needs(folder, config)
    if action == "busy":
        raise StudyError(f"{Output.path(folder)} is being trained by another process; wait for it "
                         "to end (or stop it)")
    if action == "other":
        if not retrain:
            raise StudyError(f"{Output.path(folder)} holds a run with other settings; {other_advice}")
        shutil.rmtree(folder)
        action = "train"
    if action == "retrain":
        shutil.rmtree(folder)
        action = "train"
    return Job(folder.name, config, action)


def expected_cost(config: RunConfig, done: int = 0) -> float:
    """A run's expected time in arbitrary units, to start the longest first: each epoch a
    fixed part (Python's work per step, the evaluation) and the multiply-adds of its layers
    (784-64-10's epoch is ~1.9x 784-10's, measured), and the graphs at the end (~3 small epochs).
    Longest first, the last run to end is a short one: less time with a worker idle."""
    sizes = config.layer_sizes
    per_epoch = 40_000 + sum(a * b for a, b in zip(sizes, sizes[1:]))
    if config.augment:  # shift +9 %, affine +30 % an epoch (benchmarks/README.md)
        per_epoch *= 1.3 if config.augment == "affine" else 1.1
    return per_epoch * max(config.epochs - done, 0) + 150_000


def train_jobs(jobs: list[Job], study_dir: Path, args, out: Output) -> list[str]:
    """Train the jobs on args.engine (joblib's worker processes, or a Dask cluster), with one
    progress bar over them all, the longest first; returns the names of those that did not
    complete."""
    from tqdm import tqdm

    from kit.engine import Job as EngineJob
    from kit.engine import committed_epochs
    left = {job.name: expected_cost(job.config, committed_epochs(study_dir / job.name)) for job in jobs}
    work = [EngineJob(job.name, job.config)
            for job in sorted(jobs, key=lambda job: -left[job.name])]
    total = sum(job.config.epochs for job in jobs)
    finished: dict[str, int] = {}
    failed: list[str] = []
    with tqdm(total=total, desc="Study", unit="epoch", dynamic_ncols=True,
              initial=sum(committed_epochs(study_dir / job.name) for job in jobs),
              postfix=f"runs 0/{len(jobs)}",
              disable=None if out.progress_ok() else True) as bar:

        def tick() -> None:
            epochs = sum(finished.get(j.name, committed_epochs(study_dir / j.name)) for j in jobs)
            bar.n = min(epochs, total)
            bar.set_postfix_str(f"runs {len(finished)}/{len(jobs)}", refresh=False)
            bar.refresh()

        def ended(result) -> None:
            finished[result.name] = committed_epochs(study_dir / result.name)
            if result.status in ("completed", "stopped-early"):
                tqdm.write(f"  done    {result.name}")
            elif result.status != "skipped":
                failed.append(result.name)
                tqdm.write(out.wrap(f"  {result.status.upper():7} {result.name}: {result.reason}",
                                    " " * 10))
            tick()

        args.engine.run(work, study_dir, args.data_dir, ended, tick,
                        lambda text: tqdm.write(out.wrap(text, " " * 4)))
    return failed


@contextlib.contextmanager
def study_lock(folder: Path) -> Iterator[None]:
    """Hold folder's study lock for the block; a StudyError when another study.py holds it."""
    from kit.fsutil import RunLock
    lock = RunLock(folder)
    try:
        taken = lock.acquire()
    except OSError as err:
        raise StudyError(f"cannot lock {Output.path(lock.path)} ({err.strerror or err})") from None
    if not taken:
        raise StudyError(f"another study.py is working in {Output.path(folder)} (it holds "
                         f"{Output.path(lock.path)}); wait for it to end, or use another folder")
    try:
        yield
    finally:
        lock.release()
