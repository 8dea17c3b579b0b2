"""Where a study's runs are trained: worker processes on this machine through joblib
(loky, the process engine scikit-learn uses), or the workers of a Dask cluster.

A study hands the engine a list of `Job`s (a run folder name and its configuration). Each
job is one call of `run_job` in a worker, which decides from the disk what the run needs
(train it, resume it, nothing) at the moment it starts: a job that a dying Dask worker
lost and the scheduler gives to another worker resumes from the last committed epoch.
Workers tell the parent nothing while they train: the progress bar reads the committed
epochs from the run folders (the storage every worker shares), so the same code serves
both engines.

The longest runs are handed out first (study_runs.expected_cost), a worker process keeps
the decoded MNIST files between its runs (mnist_loader.keep_files), and locally the
study's graphs are drawn on the same workers at the end (Engine.draw). A local worker that dies breaks
joblib's whole pool: the runs without a result go to a new one (see _feed_joblib).

Stopping (Ctrl-C, SIGTERM): the parent writes a stop file into the study folder, so a
job that has not started returns at once; local workers in the middle of a run get
SIGTERM, which lifecycle handles as train.py does (the epoch in progress is dropped, the
run is marked interrupted); a Dask run sees the stop file after its next committed epoch.
"""
from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.config import RunConfig, RunError
from kit.signals import Interrupted, StopSignals

STOP_FILE = ".stop"          # in the study folder: queued jobs return without training
WORKERS = ".workers"         # in the study folder: one file per run being trained, "host pid"
POLL = 0.5                   # seconds between looks at the run folders for the progress bar
CONNECT_TIMEOUT = 5          # seconds to reach a Dask scheduler before giving up
RETRIES = 1                  # local runs started again after their worker process died


class EngineError(Exception):
    """The engine cannot start (an unreachable scheduler, a missing package); one line."""


@dataclass(frozen=True)
class Job:
    """One run of a study: its folder name inside the study folder and its configuration."""
    name: str
    config: RunConfig


@dataclass(frozen=True)
class Note:
    """A line for the study's output that is not a run's end (a worker died, a run goes on)."""
    text: str


@dataclass(frozen=True)
class Result:
    """How a job ended, as the worker saw it."""
    name: str
    status: str        # a run status, "skipped" (the study was stopping) or "lost" (worker died)
    reason: str = ""


# ---- what a run folder needs --------------------------------------------------------------

def needs(folder: Path, config: RunConfig) -> str:
    """What folder needs to hold a finished run of config: 'train' (no folder), 'resume'
    (ours, with committed epochs, not live), 'retrain' (ours, no epoch committed), 'done'
    (completed, stopped early or diverged, or all its epochs committed before a stop:
    training it again would give the same),
    'busy' (a live process writes it) or 'other' (a run of other settings, or unreadable)."""
    from kit.record import Run
    if not folder.exists():
        return "train"
    try:
        run = Run.load(folder)
    except RunError:
        return "other"
    if run.config != config:
        return "other"
    if run.live:
        return "busy"
    record = run.record
    if record.status in ("completed", "stopped-early", "diverged"):
        return "done"
    if record.epochs_completed >= config.epochs:  # stopped after its last commit, while closing
        return "done"
    if run.legacy:
        return "other"
    return "resume" if record.epochs_completed else "retrain"


def committed_epochs(folder: Path) -> int:
    """Epochs committed in a run folder (0 when there is none yet or it cannot be read)."""
    from kit.record import Run
    try:
        return Run.load(folder).record.epochs_completed
    except (RunError, OSError):
        return 0


# ---- in a worker ------------------------------------------------------------------------

_IN_JOB = False


def _worker_signal(signum, frame) -> None:
    """A local worker's stop-signal handler outside lifecycle's own: during a job (before
    its run has begun or after it ended) the job stops; between jobs it is ignored, so a
    SIGTERM the parent sent as a run ended never kills the worker itself."""
    if _IN_JOB:
        raise Interrupted(signum)


class _StopFileReporter:
    """lifecycle.Reporter: after each committed epoch, stop when the study is stopping
    (the way a Dask run, which no signal reaches, is stopped)."""

    def __init__(self, stop_file: Path):
        self.stop_file = stop_file

    def data_loaded(self, data, seconds): ...

    def run_started(self, run_dir, config, resumed_from): ...

    def status_written(self, status): ...

    def epoch_done(self, row, record, hints):
        if self.stop_file.exists():
            raise Interrupted(signal.SIGTERM)


def run_job(job: Job, study_dir: Path, data_dir: Path | None) -> Result:
    """In a worker: train, resume or skip job's run in study_dir. Never raises (one run's
    failure must not take the study's other runs down with it): every way it can end is
    a Result."""
    global _IN_JOB
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:  # a local worker process; a Dask worker runs jobs in threads
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, _worker_signal)
    _IN_JOB = True
    stop_file = study_dir / STOP_FILE
    mark = study_dir / WORKERS / job.name
    try:
        if stop_file.exists():
            return Result(job.name, "skipped")
        folder = study_dir / job.name
        action = needs(folder, job.config)
        if action in ("done", "busy", "other"):
            reason = {"busy": "another process is training it", "done": "",
                      "other": f"{folder} holds a run with other settings"}[action]
            return Result(job.name, "completed" if action == "done" else "failed", reason)
        if in_main:
            with contextlib.suppress(OSError):
                mark.parent.mkdir(exist_ok=True)
                mark.write_text(f"{socket.gethostname()} {os.getpid()}\n")
        import mnist_loader
        from kit import lifecycle
        mnist_loader.keep_files()  # this worker's next runs read the files no more
        reporter = _StopFileReporter(stop_file)
        if action == "retrain":  # ours, with nothing committed: nothing of value to keep
            import shutil
            shutil.rmtree(folder)
        if action == "resume":
            outcome = lifecycle.resume_run(folder, data_dir=data_dir, reporter=reporter, progress=False)
        else:
            outcome = lifecycle.train_run(job.config, study_dir, job.name, data_dir=data_dir,
                                          reporter=reporter, progress=False)
        return Result(job.name, outcome.status, outcome.reason)
    except Interrupted as err:
        return Result(job.name, "interrupted", str(err))
    except Exception as err:  # noqa: BLE001 - reported as this run's failure, by name
        return Result(job.name, "failed", str(err) if isinstance(err, RunError)
                      else f"{type(err).__name__}: {err}")
    finally:
        _IN_JOB = False
        with contextlib.suppress(OSError):
            mark.unlink()


# ---- in the parent ------------------------------------------------------------------------

class Engine:
    """Runs jobs on local processes (jobs: how many at a time) or on a Dask cluster
    (scheduler: its address). connect() first, so a scheduler that cannot be reached is
    said before anything is planned or trained."""

    def __init__(self, jobs: int, scheduler: str | None = None):
        self.jobs = jobs
        self.scheduler = scheduler
        self.client = None
        self.warm = False  # local worker processes have trained runs here: matplotlib is loaded

    def connect(self) -> None:
        if self.scheduler is None:
            return
        try:
            from distributed import Client
        except ImportError:
            raise EngineError('--scheduler needs Dask: pip install "dask[distributed]"') from None
        import logging
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # our one line says it
        try:
            self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise EngineError(f"cannot reach the Dask scheduler at {self.scheduler} within "
                              f"{CONNECT_TIMEOUT} s ({type(err).__name__}); start one with "
                              "`dask scheduler` and give the address it prints") from None

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=CONNECT_TIMEOUT)
            self.client = None

    @property
    def where(self) -> str:
        if self.client is not None:
            n = len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
            return f"on the Dask cluster at {self.scheduler} ({n} worker{'s' if n != 1 else ''})"
        return f"{self.jobs} at a time"

    def run(self, jobs: list[Job], study_dir: Path, data_dir: Path | None,
            on_result: Callable[[Result], None], on_tick: Callable[[], None],
            on_note: Callable[[str], None] = print) -> list[Result]:
        """Train the jobs; on_result(result) as each ends, on_tick() every POLL seconds,
        on_note(line) for what else the study should say (a worker died).
        Stop signals raise Interrupted here after every job has stopped (none left
        running, none started after the signal)."""
        study_dir = Path(study_dir).resolve()
        with contextlib.suppress(FileNotFoundError):
            (study_dir / STOP_FILE).unlink()
        # One BLAS thread per run: the runs themselves fill the cores, and batches of 4 gain
        # nothing from threads. Set before the workers start, so their NumPy sees it.
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"
        os.environ["MPLBACKEND"] = "Agg"
        results: queue.Queue = queue.Queue()
        done: list[Result] = []
        feed = threading.Thread(target=self._feed, args=(jobs, study_dir, data_dir, results),
                                daemon=True)
        # The engine's loop runs in a thread; this (main) thread takes the signals, so a
        # Ctrl-C never lands inside joblib or Dask, which would kill the workers mid-epoch.
        with StopSignals() as stop:
            feed.start()
            try:
                self._collect(feed, results, done, on_result, on_tick, on_note)
            except Interrupted:
                with stop.held(raise_after=False):  # a second Ctrl-C waits for the workers
                    self._stop(study_dir)
                    self._collect(feed, results, done, on_result, on_tick, on_note)
                raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    (study_dir / STOP_FILE).unlink()
                with contextlib.suppress(OSError):  # only when empty: no worker is marked there
                    (study_dir / WORKERS).rmdir()
        return done

    def draw(self, tasks: list[tuple[Callable, tuple]]) -> None:
        """Run drawing tasks, each (function, arguments) picklable: on the local worker
        processes when they trained this study's runs (their matplotlib is loaded and the
        cores are free now: a study's graphs are drawn side by side), else here (cold workers
        would start slower than one draws; a Dask cluster's workers may not see the images'
        folder). A worker that dies leaves its graph to be drawn here."""
        if not self.warm or self.client is not None or len(tasks) < 2:
            for function, arguments in tasks:
                function(*arguments)
            return
        from joblib.externals.loky import get_reusable_executor
        from joblib.externals.loky.process_executor import BrokenProcessPool
        executor = get_reusable_executor(max_workers=self.jobs)
        futures = [executor.submit(function, *arguments) for function, arguments in tasks]
        for (function, arguments), future in zip(tasks, futures):
            try:
                future.result()
            except BrokenProcessPool:
                function(*arguments)

    def _collect(self, feed, results, done, on_result, on_tick, on_note) -> None:
        last_tick = 0.0
        while True:
            try:
                item = results.get(timeout=0.1)
            except queue.Empty:
                item = None
            if isinstance(item, BaseException):
                raise item
            if item is _END:
                return
            if isinstance(item, Note):
                on_note(item.text)
            elif item is not None:
                done.append(item)
                on_result(item)
            if time.monotonic() - last_tick >= POLL:
                on_tick()
                last_tick = time.monotonic()

    def _stop(self, study_dir: Path) -> None:
        """Start no more jobs; stop the running ones (local: SIGTERM; Dask: at their next epoch)."""
        with contextlib.suppress(OSError):
            (study_dir / STOP_FILE).write_text("stopping\n")
        if self.client is not None:
            return
        host = socket.gethostname()
        with contextlib.suppress(OSError):
            for mark in (study_dir / WORKERS).iterdir():
                with contextlib.suppress(OSError, ValueError):
                    where, pid = mark.read_text().split()
                    if where == host and int(pid) != os.getpid():
                        os.kill(int(pid), signal.SIGTERM)

    def _feed(self, jobs, study_dir, data_dir, results: queue.Queue) -> None:
        """In a thread: run every job on the engine, putting each Result on results, then _END
        (an error of the engine itself is put there instead, to be raised in the main thread)."""
        try:
            if self.client is not None:
                self._feed_dask(jobs, study_dir, data_dir, results)
            else:
                self._feed_joblib(jobs, study_dir, data_dir, results)
        except EngineError as err:
            results.put(err)
        except Exception as err:  # noqa: BLE001 - handed to the main thread, said there in one line
            results.put(EngineError(f"the engine failed: {type(err).__name__}: {err}; the runs keep "
                                    "their committed epochs, run the same command again to resume"))
        results.put(_END)

    def _feed_joblib(self, jobs, study_dir, data_dir, results) -> None:
        """joblib breaks its whole pool when one worker process dies (SIGKILL, out of
        memory): the runs in the other workers are killed too, uncommitted. The jobs with no
        result yet go to a new pool, and their runs resume from the last committed epoch. A
        run caught in a broken pool more than RETRIES times is then trained alone (one
        worker: no neighbour to blame, and more memory); if its worker dies even then, the
        run is given up as 'lost' and the study goes on with the others."""
        from concurrent.futures import as_completed

        # loky's executor, under joblib.Parallel: Parallel would run n_jobs=1 in this
        # process, where a crash would take the study with it and no signal reaches the run.
        from joblib.externals.loky import get_reusable_executor
        from joblib.externals.loky.process_executor import BrokenProcessPool
        todo = list(jobs)
        deaths: dict[str, int] = {}
        unexplained = 0  # broken pools with no run in them: workers that cannot even start
        self.warm = True
        while todo:
            alone = [job for job in todo if deaths.get(job.name, 0) > RETRIES]
            batch = alone or todo
            executor = get_reusable_executor(max_workers=1 if alone else self.jobs)
            reported: set[str] = set()
            try:
                # Submitted at once: a job queued when the study stops returns without training.
                futures = [executor.submit(run_job, job, study_dir, data_dir) for job in batch]
                for future in as_completed(futures):
                    result = future.result()
                    reported.add(result.name)
                    results.put(result)
            except BrokenProcessPool as err:
                caught = _dead_marks(study_dir)
                unexplained = 0 if caught else unexplained + 1
                if unexplained == 3:
                    why = str(err).split("\n")[0]
                    raise EngineError(f"worker processes die before training anything ({why}); "
                                      "the runs keep their committed epochs: run the same command "
                                      "again to resume them") from None
            except Exception as err:  # noqa: BLE001 - the engine itself failed; said in one line
                raise EngineError(f"the engine failed ({type(err).__name__}: {err}); the runs keep "
                                  "their committed epochs: run the same command again to resume "
                                  "them") from None
            else:
                caught = []
            todo = [job for job in todo if job.name not in reported]
            if not caught:
                continue
            if (study_dir / STOP_FILE).exists():  # stopping: nothing is started again
                for job in todo:
                    results.put(Result(job.name, "skipped"))
                return
            if alone:
                for name in caught:
                    results.put(Result(name, "lost", "its worker process died while it trained alone "
                                       "(killed, or out of memory?); its committed epochs are kept: "
                                       "run the same command again to resume it"))
                todo = [job for job in todo if job.name not in caught]
                continue
            for name in caught:
                deaths[name] = deaths.get(name, 0) + 1
            results.put(Note(f"  a worker process died: {', '.join(caught)} "
                             f"{'goes' if len(caught) == 1 else 'go'} on from the last committed epoch"
                             + (" (alone)" if any(deaths[n] > RETRIES for n in caught) else "")))

    def _feed_dask(self, jobs, study_dir, data_dir, results) -> None:
        futures = self.client.map(run_job, jobs, study_dir=study_dir, data_dir=data_dir,
                                  pure=False, key=[f"study-{job.name}-{os.urandom(4).hex()}"
                                                   for job in jobs])
        pending = dict(zip(futures, (job.name for job in jobs)))
        while pending:  # polled: distributed.as_completed wants a default client in this thread
            for future in [f for f in pending if f.done()]:
                name = pending.pop(future)
                try:
                    results.put(future.result())
                except Exception as err:  # the scheduler gave up on it (workers died under it)
                    results.put(Result(name, "lost", f"{type(err).__name__}: {err}; run the same "
                                       "command again to resume it"))
            time.sleep(0.2)


def _dead_marks(study_dir: Path, wait: float = 10.0) -> list[str]:
    """After a broken pool: the runs that were in its worker processes (the marks of this
    host, once their processes are gone, waiting up to wait seconds); their marks are removed."""
    host, marks = socket.gethostname(), {}
    with contextlib.suppress(OSError):
        for mark in (study_dir / WORKERS).iterdir():
            with contextlib.suppress(OSError, ValueError):
                where, pid = mark.read_text().split()
                if where == host:
                    marks[mark] = int(pid)
    deadline = time.monotonic() + wait
    while any(_alive(pid) for pid in marks.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    names = []
    for mark, pid in marks.items():
        if not _alive(pid):
            names.append(mark.name)
            with contextlib.suppress(OSError):
                mark.unlink()
    return sorted(names)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A dead child of ours that no one has reaped yet still answers: look at its state.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


_END = object()
