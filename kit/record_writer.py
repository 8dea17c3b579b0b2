"""Writing a run folder: a new run, or one continued, every epoch committed as a unit.

An epoch's checkpoint folder is written under a temporary name, renamed into place,
and then run.json is replaced by a rename that names it (see kit/record.py).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from kit.config import Normalization, RunConfig, RunError, RunExists
from kit.dynamics import dynamics_text
from kit.fsutil import (
    RunLock,
    atomic_write_text,
    fsync_dir,
    fsync_file,
    io_reason,
    link_within,
    write_json,
    write_synced,
)
from kit.record import (
    DYNAMICS,
    RECORD,
    STATUSES,
    Run,
    RunRecord,
    check_run_name,
    checkpoint_name,
    history_text,
    now,
    read_history,
)
from network import Network
from training import HISTORY_COLUMNS

# ---- writing a run ----------------------------------------------------------------------

class RunWriter:
    """Creates or continues a run folder: commits epochs as units, then finishes it.

    Holds the folder's lock from creation (or resumption) to close(), so two
    processes never write one run, and a reader can tell a live run from a dead one.
    """

    def __init__(self, run_dir: Path, record: RunRecord, rows: list[dict], lock: RunLock):
        self.path = Path(run_dir)
        self.record = record
        self.rows = rows
        self.dynamics: list[dict] = []       # dynamics.csv's committed rows
        self.dynamics_problem: str | None = None   # why a resumed run's could not be read
        self._lock = lock
        self.notes: list[str] = []  # what a resume found and did that its user should hear

    @classmethod
    def create(cls, output_dir: Path, name: str, config: RunConfig, normalization: Normalization,
               sizes: tuple[int, int, int], versions: dict, started: dt.datetime,
               data: dict | None = None) -> RunWriter:
        """Make output_dir/name (refusing one that exists) and write its first record.
        data: what it trains on (RunRecord.data)."""
        problem = check_run_name(name)
        if problem:
            raise RunError(problem)
        run_dir = Path(output_dir) / name
        exists = RunExists(f"a run named {name!r} already exists in {output_dir}; "
                          "choose another --name (earlier runs are never overwritten)")
        if run_dir.exists():
            raise exists
        # The folder is made under a hidden temporary name with its lock and first record,
        # then renamed into place: a process killed at any instant leaves either no run
        # folder or one that loads (a hidden .partial folder is all that a kill can leave).
        partial = Path(output_dir) / f".{name}.{os.urandom(4).hex()}.partial"
        try:
            partial.mkdir()
        except OSError as err:
            raise RunError(f"cannot create {run_dir} ({err.strerror})") from None
        lock = RunLock(partial)
        try:
            lock.acquire()
            record = RunRecord(config, normalization, "running", started, None, *sizes, versions,
                               data=data)
            writer = cls(partial, record, [], lock)
            try:
                writer._write_record()
            except OSError as err:
                raise RunError(f"cannot create {run_dir} ({err.strerror or err}); check the disk "
                               f"and the permissions of {output_dir}") from None
            try:
                # Refused when run_dir exists with contents (another process took the name).
                os.rename(partial, run_dir)
            except OSError as err:
                if run_dir.exists():
                    raise exists from None
                raise RunError(f"cannot create {run_dir} ({err.strerror})") from None
        except BaseException:
            lock.release()
            shutil.rmtree(partial, ignore_errors=True)
            raise
        writer.path, lock.path = run_dir, run_dir / ".lock"
        fsync_dir(Path(output_dir))
        return writer

    @classmethod
    def create_unique(cls, output_dir: Path, stem: str, *args, **kwargs) -> RunWriter:
        """create() under stem, or stem-2, stem-3, ... when taken: a run without --name
        always gets a folder of its own, however many start in the same second."""
        for k in range(1, 1000):
            name = stem if k == 1 else f"{stem}-{k}"
            if (Path(output_dir) / name).exists():
                continue
            try:
                return cls.create(output_dir, name, *args, **kwargs)
            except RunError:
                if (Path(output_dir) / name).exists():
                    continue  # another process took it between the check and mkdir
                raise
        raise RunError(f"cannot find a free run folder name for {stem} in {output_dir}")

    @classmethod
    def lock(cls, run_dir: Path) -> RunLock:
        """Take run_dir's lock (RunError when another process holds it or it is a link)."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunError(f"{run_dir}: no such run folder")
        check_own_files(run_dir, [run_dir / ".lock"])
        lock = RunLock(run_dir)
        try:
            got = lock.acquire()
        except OSError as err:
            raise RunError(f"{io_reason(err, run_dir)}; the run is unchanged") from None
        if not got:
            raise RunError(f"{run_dir} is being written by a running train.py; wait for it to "
                           "end (or stop it) before resuming")
        return lock

    @classmethod
    def resume(cls, run: Run, config: RunConfig, lock: RunLock | None = None) -> RunWriter:
        """Continue a run in its own folder with config (its own, epochs/patience changed).

        lock: the run's lock, already held, that run was read under. Without it the lock is
        taken here, and either way run's record must still be the one on disk: a resume
        decides everything from the record it holds, so one read before another process
        committed epochs would roll them back (RunError instead)."""
        if run.legacy:
            raise RunError(f"{run.path}: saved before runs could be resumed (it has no optimizer "
                           "state); train a new run instead")
        lock = lock or cls.lock(run.path)
        try:
            current = Run.load(run.path)
            if current.record.to_json() != run.record.to_json():
                raise RunError(f"{run.path} changed after it was read (another train.py wrote "
                               f"epochs up to {current.record.epochs_completed}); resume it again")
            check_own_files(run.path, run_files(run))
            rows = run.history()
            record = replace(run.record, config=config, status="running", ended=None, failure=None)
            writer = cls(run.path, record, rows, lock)
            try:
                writer.dynamics = run.dynamics() or []
            except RunError as err:   # the weights and states are sound: train on, say so
                writer.dynamics_problem = (f"{err}; dynamics.csv restarts with epoch "
                                           f"{record.epochs_completed + 1}")
            writer._keep_edited_history()
            writer._remove_stale_checkpoints()
            for stale in run.path.glob(".*.tmp"):  # a killed writer's half-written run.json or history.csv
                with contextlib.suppress(OSError):
                    stale.unlink()
            writer._write_record()
        except BaseException:
            lock.release()
            raise
        return writer

    def commit_epoch(self, row: dict, net: Network, optimizer_state: dict, rng_state: dict,
                     dynamics: tuple[list[dict], tuple[str, ...]] | None = None) -> None:
        """Commit one epoch: its checkpoint folder, then the record naming it (the commit point).

        row: the epoch's history row (HISTORY_COLUMNS); dynamics: (rows, header) of
        dynamics.csv up to this epoch's end, or None (then there is none). Afterwards the checkpoints that
        are neither the last nor the best are removed, and history.csv is refreshed."""
        rows = self.rows + [dict(row)]
        epoch = int(row["epoch"])
        final = self.path / checkpoint_name(epoch)
        check_own_files(self.path, [final.parent, final])  # writes stay inside this run
        final.parent.mkdir(exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".epoch-{epoch:04d}.", suffix=".partial"))
        try:
            net.save_csv(partial)
            buf = io.BytesIO()
            np.savez(buf, **optimizer_state)
            write_synced(partial / "optimizer.npz", buf.getvalue())
            write_synced(partial / "rng.json", (json.dumps(rng_state) + "\n").encode())
            write_synced(partial / "history.csv", history_text(rows).encode())
            if dynamics is not None:
                dynamics_csv = dynamics_text(*dynamics)
                write_synced(partial / DYNAMICS, dynamics_csv.encode())
            for f in partial.iterdir():
                if f.name.startswith(("weights_", "biases_")):
                    fsync_file(f)
            fsync_dir(partial)
            if final.exists():  # left by an attempt whose record was never committed
                shutil.rmtree(final)
            os.replace(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        fsync_dir(final.parent)
        entry = {**{k: (int(row[k]) if k == "epoch" else float(row[k])) for k in HISTORY_COLUMNS},
                 "checkpoint": checkpoint_name(epoch)}
        best = self.record.best
        if best is None or entry["val_accuracy"] > best["val_accuracy"]:
            best = entry
        record = replace(self.record, epochs_completed=epoch, last=entry, best=best,
                         train_seconds=self.record.train_seconds + float(row["seconds"]))
        self._write_record(record)  # the commit point
        self.record, self.rows = record, rows
        if dynamics is not None:
            self.dynamics = list(dynamics[0])
        self._remove_stale_checkpoints()
        with contextlib.suppress(OSError):
            atomic_write_text(self.path / "history.csv", history_text(rows))
            if dynamics is not None:
                atomic_write_text(self.path / DYNAMICS, dynamics_csv)

    def finish(self, status: str, failure: str | None = None) -> None:
        """Record how the run ended (its end time with it; failure: why it failed)."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"not a final status: {status!r}")
        self._write_record(replace(self.record, status=status, ended=now(), failure=failure))

    def close(self) -> None:
        self._lock.release()

    def _write_record(self, record: RunRecord | None = None) -> None:
        record = record or self.record
        write_json(self.path / RECORD, record.to_json())
        fsync_dir(self.path)
        self.record = record

    def _remove_stale_checkpoints(self) -> None:
        """Remove checkpoint folders the record does not name (older epochs, partial ones).

        Only real folders inside this run's own checkpoints/ go: a symbolic link is never
        followed nor removed (resume refuses a run that holds one, see check_own_files)."""
        keep = {Path(e["checkpoint"]).name for e in (self.record.last, self.record.best) if e}
        folder = self.path / "checkpoints"
        if folder.is_symlink() or not folder.is_dir():
            return
        for child in folder.iterdir():
            if child.name not in keep and not child.is_symlink() and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)

    def _keep_edited_history(self) -> None:
        """history.csv is a copy for people, rewritten after every epoch; one a person edited
        (or that holds other rows) is kept under a new name before a resume rewrites it."""
        path = self.path / "history.csv"
        if not path.exists():
            return
        try:
            rows = read_history(path)
        except RunError:
            rows = None
        # Equal, or a prefix: a process killed between its commit and this copy's refresh.
        if rows is not None and rows == self.rows[:len(rows)]:
            return
        base = self.path / f"history-edited-{now():%Y%m%d-%H%M%S}.csv"
        copy, k = base, 2
        while copy.exists():
            copy, k = base.with_name(f"{base.stem}-{k}.csv"), k + 1
        os.replace(path, copy)
        self.notes.append(f"history.csv differed from the run's own history (edited?); it is kept "
                          f"as {copy.name}, and history.csv is written anew from the checkpoint")


def run_files(run: Run) -> list[Path]:
    """The paths a resume reads, writes or removes in run's folder."""
    paths = [run.path / name for name in (RECORD, "history.csv", DYNAMICS, ".lock", "checkpoints")]
    folder = run.path / "checkpoints"
    if folder.is_dir() and not folder.is_symlink():
        paths += sorted(folder.iterdir())
    return paths


def check_own_files(run_dir: Path, paths) -> None:
    """RunError when one of paths is a symbolic link (or lies under one) inside run_dir: the
    run's clean-up removes checkpoints and its writes replace files, and through a link
    either would reach into another folder (another run's checkpoints)."""
    for path in paths:
        link = link_within(run_dir, path)
        if link is not None:
            raise RunError(f"{link} is a symbolic link (to {os.readlink(link)}); a run's files must "
                           "be its own, so it is not resumed: replace the link with a copy of what it "
                           "points to, or remove it")


