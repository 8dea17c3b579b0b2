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

from kit.config import Normalization, RunConfig, RunError
from kit.dynamics import dynamics_text
from kit.fsutil import RunLock, atomic_write_text, fsync_dir, fsync_file, write_json, write_synced
from kit.record import DYNAMICS, RECORD, STATUSES, Run, RunRecord, check_run_name, checkpoint_name, history_text, now
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

    @classmethod
    def create(cls, output_dir: Path, name: str, config: RunConfig, normalization: Normalization,
               sizes: tuple[int, int, int], versions: dict, started: dt.datetime) -> RunWriter:
        """Make output_dir/name (refusing one that exists) and write its first record."""
        problem = check_run_name(name)
        if problem:
            raise RunError(problem)
        run_dir = Path(output_dir) / name
        exists = RunError(f"a run named {name!r} already exists in {output_dir}; "
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
            record = RunRecord(config, normalization, "running", started, None, *sizes, versions)
            writer = cls(partial, record, [], lock)
            writer._write_record()
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
    def resume(cls, run: Run, config: RunConfig) -> RunWriter:
        """Continue a run in its own folder with config (its own, epochs/patience changed)."""
        if run.legacy:
            raise RunError(f"{run.path}: saved before runs could be resumed (it has no optimizer "
                           "state); train a new run instead")
        lock = RunLock(run.path)
        try:
            got = lock.acquire()
        except OSError as err:
            raise RunError(f"cannot write {run.path} ({err.strerror})") from None
        if not got:
            raise RunError(f"{run.path} is being written by a running train.py; wait for it to "
                           "end (or stop it) before resuming")
        rows = run.history()
        record = replace(run.record, config=config, status="running", ended=None)
        writer = cls(run.path, record, rows, lock)
        try:
            writer.dynamics = run.dynamics() or []
        except RunError as err:   # the weights and states are sound: train on, say so
            writer.dynamics_problem = (f"{err}; dynamics.csv restarts with epoch "
                                       f"{record.epochs_completed + 1}")
        writer._remove_stale_checkpoints()
        for stale in run.path.glob(".*.tmp"):  # a killed writer's half-written run.json or history.csv
            with contextlib.suppress(OSError):
                stale.unlink()
        writer._write_record()
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

    def finish(self, status: str) -> None:
        """Record how the run ended (its end time with it)."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"not a final status: {status!r}")
        self._write_record(replace(self.record, status=status, ended=now()))

    def close(self) -> None:
        self._lock.release()

    def _write_record(self, record: RunRecord | None = None) -> None:
        record = record or self.record
        write_json(self.path / RECORD, record.to_json())
        fsync_dir(self.path)
        self.record = record

    def _remove_stale_checkpoints(self) -> None:
        """Remove checkpoint folders the record does not name (older epochs, partial ones)."""
        keep = {Path(e["checkpoint"]).name for e in (self.record.last, self.record.best) if e}
        folder = self.path / "checkpoints"
        if not folder.is_dir():
            return
        for child in folder.iterdir():
            if child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)


