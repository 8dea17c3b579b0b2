"""A run folder and its record: the one module that reads and writes them.

A run folder (saved_files/<name>/) holds:

    run.json                  the record: configuration, normalization, status, times,
                              split sizes, package versions, the last and the best epoch
    checkpoints/epoch-0040/   one committed epoch: weights_1.csv ..., biases_1.csv ...,
                              optimizer.npz (its state), rng.json (the generator's state),
                              history.csv (every row up to that epoch)
    checkpoints/epoch-0037/   the best validation-accuracy epoch's, when it is not the last
    history.csv               a copy of the last checkpoint's history, for people
    accuracy.png, loss.png, learning_rate.png, features.png

An epoch commits as a unit: its checkpoint folder is written under a temporary
name, renamed into place, and then run.json is replaced by a rename that names
it. That last rename is the commit point: a process killed at any instant
leaves run.json naming a complete checkpoint, of the last committed epoch.
Everything the program reads (weights, history, state) comes through run.json;
checkpoint folders it does not name are leftovers, removed when the run is
written again.

Runs saved before this format (config.json with the weights beside it) still
load, read-only.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.config import Normalization, RunConfig, RunError
from kit.fsutil import is_locked
from network import Network, ParameterFileError
from training import HISTORY_COLUMNS

FORMAT = 2
RECORD = "run.json"
LEGACY_RECORD = "config.json"

# The figures training writes into a run folder (plots.plot_history, figures.save_features),
# in the order a person reads them; other scripts never replace one of them.
GRAPHS = ("accuracy.png", "loss.png", "learning_rate.png", "features.png")


def kit_figure(name: str) -> bool:
    """Whether a file name in a run folder is one the kit writes there: a training graph,
    or one of predict.py's pictures (predictions.png, predictions_confusion.png,
    prediction_<image>.png, ...)."""
    return name in GRAPHS or (name.startswith("prediction") and name.endswith(".png"))


STATUSES = ("running", "completed", "interrupted", "stopped-early", "diverged", "failed")
RESUMABLE = ("running", "completed", "interrupted", "stopped-early")

# The columns of runs saved before the penalties were logged apart (their losses include L1).
LEGACY_HISTORY_COLUMNS = HISTORY_COLUMNS[:8]



# ---- the record -------------------------------------------------------------------------

@dataclass(frozen=True)
class RunRecord:
    """What run.json says: the configuration and how the run went."""
    config: RunConfig
    normalization: Normalization
    status: str
    started: dt.datetime
    ended: dt.datetime | None
    train_size: int
    val_size: int
    test_size: int
    versions: dict
    epochs_completed: int = 0
    last: dict | None = None        # history row of the last committed epoch, + "checkpoint"
    best: dict | None = None        # history row of the best validation epoch, + "checkpoint"
    train_seconds: float = 0.0
    format: int = FORMAT

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "config": self.config.to_json(),
            "normalization": self.normalization.to_json(),
            "status": self.status,
            "started": _instant_text(self.started),
            "ended": _instant_text(self.ended) if self.ended else None,
            "sizes": {"train": self.train_size, "val": self.val_size, "test": self.test_size},
            "versions": self.versions,
            "epochs_completed": self.epochs_completed,
            "train_seconds": round(self.train_seconds, 3),
            "last": self.last,
            "best": self.best,
        }

    @classmethod
    def from_json(cls, d: Any, where: str) -> RunRecord:
        """The record from run.json's object, every key checked; RunError naming the key."""
        if not isinstance(d, dict):
            raise RunError(f"{where}: not a JSON object")
        if d.get("format") != FORMAT:
            raise RunError(f"{where}: format {d.get('format')!r} is not one this version reads "
                           f"({FORMAT}); update the project")
        config = RunConfig.from_json(d.get("config"), f"{where}: config")
        norm = Normalization.from_json(d.get("normalization"), where)
        if norm.kind != config.normalization:
            raise RunError(f"{where}: normalization {norm.kind!r} differs from the configuration's "
                           f"{config.normalization!r}")
        status = d.get("status")
        if status not in STATUSES:
            raise RunError(f"{where}: status must be one of {', '.join(STATUSES)}, not {status!r}")
        started = _instant(d.get("started"), f"{where}: started")
        ended = None if d.get("ended") is None else _instant(d.get("ended"), f"{where}: ended")
        sizes = d.get("sizes")
        if not isinstance(sizes, dict):
            raise RunError(f"{where}: sizes must be an object with train, val and test")
        train_size, val_size, test_size = (_count(sizes.get(k), f"{where}: sizes.{k}", 1)
                                           for k in ("train", "val", "test"))
        versions = d.get("versions")
        if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
            raise RunError(f"{where}: versions must be an object of strings")
        done = _count(d.get("epochs_completed"), f"{where}: epochs_completed", 0)
        seconds = d.get("train_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
                not math.isfinite(seconds) or seconds < 0:
            raise RunError(f"{where}: train_seconds must be a number >= 0, not {seconds!r}")
        last = _epoch_entry(d.get("last"), f"{where}: last")
        best = _epoch_entry(d.get("best"), f"{where}: best")
        if (last is None) != (done == 0) or (last is not None and last["epoch"] != done):
            raise RunError(f"{where}: last does not match epochs_completed {done}")
        if (best is None) != (last is None) or (best is not None and best["epoch"] > done):
            raise RunError(f"{where}: best must name a committed epoch")
        return cls(config, norm, status, started, ended, train_size, val_size, test_size,
                   dict(versions), done, last, best, float(seconds))


def _count(value, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RunError(f"{where} must be a whole number >= {low}, not {value!r}")
    return value


def _epoch_entry(value, where: str) -> dict | None:
    """A 'last' or 'best' entry: a history row with finite metrics and its checkpoint folder."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RunError(f"{where} must be an object")
    row = {}
    for column in HISTORY_COLUMNS:
        v = value.get(column)
        if column == "epoch":
            row[column] = _count(v, f"{where}.epoch", 1)
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or abs(v) > 1e12:
            raise RunError(f"{where}.{column} must be a finite number, not {v!r}")
        else:
            row[column] = float(v)
    for column in ("train_accuracy", "val_accuracy", "test_accuracy"):
        if not 0 <= row[column] <= 1:
            raise RunError(f"{where}.{column} must be a fraction from 0 to 1, not {row[column]!r}")
    checkpoint = value.get("checkpoint")
    if checkpoint != checkpoint_name(row["epoch"]):
        raise RunError(f"{where}.checkpoint must be {checkpoint_name(row['epoch'])!r}, not {checkpoint!r}")
    row["checkpoint"] = checkpoint
    return row


def _instant(value, where: str) -> dt.datetime:
    """An ISO 8601 instant with its UTC offset, as an aware datetime."""
    try:
        when = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RunError(f"{where} must be an ISO 8601 time, not {value!r}") from None
    if when.tzinfo is None:
        raise RunError(f"{where} must carry its UTC offset, not {value!r}")
    return when


def _instant_text(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def now() -> dt.datetime:
    """The current instant, with the local UTC offset."""
    return dt.datetime.now().astimezone()


def checkpoint_name(epoch: int) -> str:
    return f"checkpoints/epoch-{epoch:04d}"


def read_json(path: Path) -> Any:
    """A JSON file; RunError naming it when missing, unreadable, too deep or not JSON."""
    try:
        with open(path, "rb") as f:
            data = f.read(16 * 2**20 + 1)
        if len(data) > 16 * 2**20:
            raise RunError(f"{path}: larger than 16 MB; not a file this project wrote")
        return json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except IsADirectoryError:
        raise RunError(f"{path}: is a folder, not a file") from None
    except PermissionError:
        raise RunError(f"{path}: not readable (permission denied)") from None
    except RecursionError:
        raise RunError(f"{path}: nested too deeply to be a run record") from None
    except (ValueError, OSError) as err:
        raise RunError(f"{path}: not valid JSON ({str(err).splitlines()[0]})") from None



# ---- history ----------------------------------------------------------------------------

def history_text(rows: list[dict]) -> str:
    """history.csv's text: the header, then one row per epoch (floats written exactly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row in rows:
        writer.writerow([int(row["epoch"])] + [repr(float(row[k])) for k in HISTORY_COLUMNS[1:]])
    return out.getvalue()


def read_history(path: Path) -> list[dict]:
    """history.csv back as a list of dicts of numbers (epoch an int); a file of the earlier
    format (no penalty or seconds columns) reads with those missing."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = tuple(next(reader, ()))
            if header not in (HISTORY_COLUMNS, LEGACY_HISTORY_COLUMNS):
                raise RunError(f"{path}: unexpected header {','.join(header) or '(none)'}; "
                               f"expected {','.join(HISTORY_COLUMNS)}")
            rows = []
            for line in reader:
                if len(line) != len(header):
                    raise RunError(f"{path}: row {len(rows) + 1} has {len(line)} values, "
                                   f"expected {len(header)}")
                row = {k: (int(v) if k == "epoch" else float(v)) for k, v in zip(header, line)}
                if row["epoch"] != len(rows) + 1:
                    raise RunError(f"{path}: row {len(rows) + 1} is epoch {row['epoch']}")
                if not all(math.isfinite(v) for v in row.values()):
                    raise RunError(f"{path}: epoch {row['epoch']} holds NaN or infinite values")
                rows.append(row)
            return rows
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (ValueError, TypeError, OSError, UnicodeDecodeError, csv.Error) as err:
        raise RunError(f"{path}: unreadable ({err})") from None


def best_row(rows: list[dict]) -> dict | None:
    """The row of the best validation accuracy; ties go to the earlier epoch."""
    best = None
    for row in rows:
        if best is None or row["val_accuracy"] > best["val_accuracy"]:
            best = row
    return best


# ---- names, folders and locks -----------------------------------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MAX_NAME_BYTES = 200


def check_run_name(name: str) -> str | None:
    """What is wrong with a --name, or None: it must be one plain folder name."""
    if not isinstance(name, str) or not name:
        return "--name is empty; give a folder name such as my-run"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"--name is {len(name.encode('utf-8'))} bytes long; use at most {MAX_NAME_BYTES}"
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        return (f"--name {name!r} is not a plain folder name; use letters, digits, "
                "'.', '_', '+' and '-' (no '/', '..' or absolute paths)")
    return None


def prepare_output_dir(output_dir: Path) -> None:
    """Create the output directory if needed and check that runs can be written there."""
    if str(output_dir) == "":
        raise RunError("--output-dir is empty; give a folder, for example saved_files")
    if output_dir.exists() and not output_dir.is_dir():
        raise RunError(f"--output-dir {output_dir} is a file, not a folder; choose another path")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create the output folder {output_dir} ({err.strerror}); "
                       "choose another --output-dir") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise RunError(f"the output folder {output_dir} is not writable; choose another --output-dir")


# ---- reading a run ----------------------------------------------------------------------

class Run:
    """A saved run folder: its record, history and checkpoints, read and checked."""

    def __init__(self, path: Path, record: RunRecord, legacy: bool = False):
        self.path = Path(path)
        self.record = record
        self.legacy = legacy  # saved before run.json: last weights only, no state

    @classmethod
    def load(cls, path) -> Run:
        """Read and check a run folder's record. Raises RunError naming the file and the key."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path}: no such run folder")
        if (path / RECORD).exists():
            return cls(path, RunRecord.from_json(read_json(path / RECORD), str(path / RECORD)))
        if (path / LEGACY_RECORD).exists():
            return cls(path, _legacy_record(path), legacy=True)
        raise RunError(f"{path}: no {RECORD}; this is not a run folder made by train.py")

    # -- what it holds

    @property
    def config(self) -> RunConfig:
        return self.record.config

    @property
    def live(self) -> bool:
        """Whether a process is writing this run now."""
        return self.record.status == "running" and is_locked(self.path)

    def status_line(self) -> str:
        """How the run stands, in words: 'completed after 40 epochs', 'ended without a status
        after 3 committed epochs' (its process was killed), 'running: 5 epochs so far'."""
        r = self.record
        n = r.epochs_completed
        epochs = f"{n} epoch{'s' if n != 1 else ''}"
        if r.status == "running":
            if self.live:
                return f"running: {epochs} committed so far"
            return f"ended without a status after {n} committed epoch{'s' if n != 1 else ''}"
        return {"completed": f"completed after {epochs}",
                "interrupted": f"interrupted after {epochs}",
                "stopped-early": f"stopped early after {epochs} (no validation improvement "
                                 f"for {r.config.patience} epoch{'s' if r.config.patience != 1 else ''})",
                "diverged": f"diverged after {epochs}",
                "failed": f"failed after {epochs}"}[r.status]

    def epoch_entry(self, which: str = "best") -> dict:
        """The 'best' or 'last' epoch's history row (with its checkpoint)."""
        if which not in ("best", "last"):
            raise ValueError(f"which must be 'best' or 'last', not {which!r}")
        entry = self.record.best if which == "best" else self.record.last
        if entry is None:
            raise RunError(f"{self.path}: no epoch was completed; there are no weights to use")
        return entry

    def weights_epoch(self, which: str = "best") -> int:
        return self.epoch_entry(which)["epoch"]

    def network(self, which: str = "best", dtype=None) -> Network:
        """The network with the weights of the best validation epoch, or the last one."""
        entry = self.epoch_entry(which)
        folder = self.path if self.legacy else self.path / entry["checkpoint"]
        net = self.config.build_network(dtype=dtype)
        try:
            net.load_csv(folder)
        except ParameterFileError as err:
            raise RunError(str(err)) from None
        return net

    def history(self) -> list[dict]:
        """Every committed epoch's row."""
        if self.record.last is None:
            return []
        if self.legacy:
            rows = read_history(self.path / "history.csv")
        else:
            rows = read_history(self.path / self.record.last["checkpoint"] / "history.csv")
        if len(rows) != self.record.epochs_completed:
            raise RunError(f"{self.path}: history.csv holds {len(rows)} epochs, the record "
                           f"{self.record.epochs_completed}")
        return rows

    def training_state(self) -> tuple[dict, dict]:
        """(optimizer state, generator state) after the last committed epoch, for resuming."""
        if self.legacy:
            raise RunError(f"{self.path}: saved before runs could be resumed (it has no optimizer "
                           "state); train a new run instead")
        folder = self.path / self.record.last["checkpoint"]
        try:
            with np.load(folder / "optimizer.npz", allow_pickle=False) as f:
                optimizer = {k: f[k] for k in f.files}
        except FileNotFoundError:
            raise RunError(f"{folder / 'optimizer.npz'}: missing; the checkpoint is damaged") from None
        except (ValueError, OSError) as err:
            raise RunError(f"{folder / 'optimizer.npz'}: unreadable ({err})") from None
        rng = read_json(folder / "rng.json")
        if not isinstance(rng, dict) or "bit_generator" not in rng:
            raise RunError(f"{folder / 'rng.json'}: not a generator state")
        return optimizer, rng


def _legacy_record(path: Path) -> RunRecord:
    """The record of a run saved in the first format (config.json, weights beside it)."""
    where = str(path / LEGACY_RECORD)
    d = read_json(path / LEGACY_RECORD)
    if not isinstance(d, dict):
        raise RunError(f"{where}: not a JSON object")
    config = RunConfig.from_json(d, where)
    mean, std = (d.get("norm_mean"), d.get("norm_std")) if config.normalization == "normal" \
        else (None, None)
    norm = Normalization(config.normalization, mean, std)
    problem = norm.problem()
    if problem:
        raise RunError(f"{where}: {problem}")
    status = d.get("status")
    if status not in STATUSES:
        raise RunError(f"{where}: status must be one of {', '.join(STATUSES)}, not {status!r}")
    started = _instant(d.get("started"), f"{where}: started")
    ended = None if d.get("ended") is None else _instant(d.get("ended"), f"{where}: ended")
    rows = read_history(path / "history.csv") if (path / "history.csv").exists() else []
    done = len(rows)
    last = best = None
    if rows:
        last = {**{k: rows[-1].get(k, 0.0) for k in HISTORY_COLUMNS}, "checkpoint": "."}
        best = last  # only the last epoch's weights were kept
    sizes = [d.get(k) for k in ("train_size", "val_size", "test_size")]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise RunError(f"{where}: train_size, val_size and test_size must be whole numbers")
    versions = d.get("versions") if isinstance(d.get("versions"), dict) else {}
    seconds = d.get("train_seconds", 0.0)
    seconds = float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) \
        and math.isfinite(seconds) and seconds >= 0 else 0.0
    return RunRecord(config, norm, status, started, ended, *sizes,
                     {k: str(v) for k, v in versions.items()}, done, last, best, seconds, format=1)


def find_latest_run(output_dir: Path) -> Path:
    """The run folder directly under output_dir that started last (real instants, so UTC
    offsets and daylight-saving changes order correctly), among those with a committed
    epoch; completed runs are preferred. Folders that cannot be read are skipped."""
    candidates = []
    try:
        children = list(Path(output_dir).iterdir()) if Path(output_dir).is_dir() else []
    except OSError:
        children = []
    for child in children:
        try:
            if not child.is_dir():
                continue
            run = Run.load(child)
        except (RunError, OSError):
            continue
        if run.record.epochs_completed == 0:
            continue
        candidates.append((run.record.status == "completed", run.record.started.timestamp(),
                           child.name, child))
    if not candidates:
        raise RunError(f"no saved run in {output_dir}; train one first with: python train.py")
    return max(candidates)[3]


def package_versions() -> dict:
    """The versions of Python and of the run-time packages, for the record."""
    import platform

    import matplotlib
    import tqdm
    return {"python": platform.python_version(), "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "tqdm": tqdm.__version__}
