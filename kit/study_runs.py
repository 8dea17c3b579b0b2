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


def train_jobs(jobs: list[Job], study_dir: Path, args, out: Output) -> list[str]:
    """Train the jobs on args.engine (joblib's worker processes, or a Dask cluster), with one
    progress bar over them all; returns the names of those that did not complete."""
    from tqdm import tqdm

    from kit.engine import Job as EngineJob
    from kit.engine import committed_epochs
    work = [EngineJob(job.name, job.config) for job in jobs]
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
