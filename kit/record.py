"""A run folder and its record: the one module that reads and writes them.

A run folder (saved_files/<name>/) holds:

    run.json                  the record: configuration, normalization, status, times,
                              split sizes, package versions, the last and the best epoch
    checkpoints/epoch-0040/   one committed epoch: weights_1.csv ..., biases_1.csv ...,
                              optimizer.npz (its state), rng.json (the generator's state),
                              history.csv (every row up to that epoch),
                              dynamics.csv (every in-epoch row up to its end, kit/dynamics.py)
    checkpoints/epoch-0037/   the best validation-accuracy epoch's, when it is not the last
    history.csv               a copy of the last checkpoint's history, for people
    dynamics.csv              the same for its dynamics (runs saved before it have none)
    accuracy.png, loss.png, learning_rate.png, dynamics.png, features.png

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
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import numpy as np

from kit.config import Normalization, RunConfig, RunError
from kit.dynamics import DynamicsError, columns, parse_dynamics
from kit.fsutil import is_locked, not_regular_file
from network import Network, ParameterFileError
from training import HISTORY_COLUMNS

FORMAT = 2
RECORD = "run.json"
LEGACY_RECORD = "config.json"

# The figures training writes into a run folder (plots.plot_history, figures.save_features),
# in the order a person reads them; other scripts never replace one of them.
GRAPHS = ("accuracy.png", "loss.png", "learning_rate.png", "dynamics.png", "features.png")
DYNAMICS = "dynamics.csv"


def kit_figure(name: str) -> bool:
    """Whether a file name in a run folder is one the kit writes there: a training graph,
    or one of predict.py's pictures (predictions.png, predictions_confusion.png,
    prediction_<image>.png, ...)."""
    return name in GRAPHS or (name.startswith("prediction") and name.endswith(".png"))


STATUSES = ("running", "completed", "interrupted", "stopped-early", "diverged", "failed")
# A failed run failed to write (a full disk, a folder made read-only): its committed epochs
# are whole, and it continues once the cause is gone.
RESUMABLE = ("running", "completed", "interrupted", "stopped-early", "failed")

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
    # The data it trained on: {"fingerprint": {"train": hex, "t10k": hex}, "folder": path}
    # (mnist_loader.fingerprint); None for runs saved before fingerprints were recorded.
    data: dict | None = None
    failure: str | None = None      # why a 'failed' run failed (an I/O error), in words
    # run.json's object as read: what a newer version wrote there is written back with it.
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict:
        known = {
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
        if self.data is not None:
            known["data"] = self.data
        if self.failure is not None:
            known["failure"] = self.failure
        return _with_unknown(self.raw, known)

    def newer_settings(self) -> dict:
        """Settings of the configuration or normalization this version does not know and
        that are on: a newer version's options, which this version would not apply.

        Every option this project ever added is off by default with null, false or 0
        (l2, dropout, augment, patience, limit): an unknown key holding one of those
        values asks for nothing this version does not do, any other value does."""
        out = {}
        for part, known in (("config", CONFIG_KEYS), ("normalization", ("kind", "mean", "std"))):
            d = self.raw.get(part)
            if isinstance(d, dict):
                out.update({k: v for k, v in d.items() if k not in known and not _off(v)})
        return out

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
        data = d.get("data")
        if data is not None and not (isinstance(data, dict) and isinstance(data.get("fingerprint"), dict)
                                     and all(isinstance(v, str) for v in data["fingerprint"].values())):
            raise RunError(f"{where}: data must be an object with a fingerprint of strings")
        failure = d.get("failure")
        failure = failure if isinstance(failure, str) else None
        return cls(config, norm, status, started, ended, train_size, val_size, test_size,
                   dict(versions), done, last, best, float(seconds), data=data, failure=failure,
                   raw=d)


CONFIG_KEYS = tuple(f.name for f in dataclass_fields(RunConfig)) + ("layer_sizes",)


def _off(value) -> bool:
    """Whether an unknown setting's value means 'off' (see RunRecord.newer_settings)."""
    return value is None or value is False or (type(value) in (int, float) and value == 0)


def _with_unknown(raw: dict, known: dict) -> dict:
    """known, with the keys of raw (run.json as read) that this version does not write kept
    beside them, at every depth: a newer version's additions survive a resume. An epoch
    entry ('last', 'best') keeps its unknown keys only while it names the same epoch."""
    out = dict(known)
    for key, value in raw.items():
        if key not in known:
            if key not in ("data", "failure"):  # those this version writes itself, or drops
                out[key] = value
        elif isinstance(value, dict) and isinstance(known[key], dict):
            if key in ("last", "best") and value.get("epoch") != known[key].get("epoch"):
                continue
            out[key] = {**known[key], **{k: v for k, v in value.items() if k not in known[key]}}
    return out


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
        problem = not_regular_file(path)
        if problem:
            raise RunError(f"{path}: {problem}; a run's record is a plain file")
        with open(path, "rb") as f:
            data = f.read(16 * 2**20 + 1)
        if len(data) > 16 * 2**20:
            raise RunError(f"{path}: larger than 16 MB; not a file this project wrote")
        return json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except RunError:
        raise
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
        problem = not_regular_file(path)
        if problem:
            raise RunError(f"{path}: {problem}; a history is a plain CSV file")
        # utf-8-sig: a spreadsheet that saved the file again may have put a byte-order mark first.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = (line for line in csv.reader(f) if any(cell.strip() for cell in line))
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
    except RunError:
        raise
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
# Names Windows keeps for devices, with or without an extension: a folder named so cannot be
# made or opened there, so a run folder copied to Windows would be lost.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}
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
    if name.split(".")[0].lower() in _WINDOWS_RESERVED:
        return (f"--name {name!r} is a device name on Windows (CON, PRN, AUX, NUL, COM1-9, "
                "LPT1-9, with any extension), where the folder could not be opened; choose another")
    if name.endswith("."):
        return f"--name {name!r} ends in '.', which Windows drops from folder names; choose another"
    return None


def prepare_output_dir(output_dir: Path) -> None:
    """Create the output directory if needed and check that runs can be written there."""
    if str(output_dir) == "":
        raise RunError("--output-dir is empty; give a folder, for example saved_files")
    if output_dir.is_symlink() and not output_dir.exists():
        raise RunError(f"--output-dir {output_dir} is a symbolic link to {os.readlink(output_dir)}, "
                       "which does not exist; create that folder or choose another --output-dir")
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
                "failed": f"failed after {epochs}" + (f" ({r.failure})" if r.failure else "")}[r.status]

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

    def dynamics(self, limit: int | None = None) -> list[dict] | None:
        """dynamics.csv's rows up to the last committed epoch (the first `limit` of them),
        or None when the run has none (saved before they were recorded). RunError naming
        the file when it is damaged."""
        if self.record.last is None or self.legacy:
            return None
        path = self.path / self.record.last["checkpoint"] / DYNAMICS
        try:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read() if limit is None else "".join(
                    line for _, line in zip(range(limit + 1), f))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise RunError(f"{path}: unreadable ({getattr(err, 'strerror', None) or err})") from None
        try:
            header, rows = parse_dynamics(text)
        except DynamicsError as err:
            raise RunError(f"{path}: damaged ({err})") from None
        if header != columns(self.config.layer_sizes, self.config.activation or "relu"):
            raise RunError(f"{path}: damaged (its columns are not those of this run's layers)")
        if limit is None and rows and rows[-1]["epoch"] != self.record.epochs_completed:
            raise RunError(f"{path}: damaged (its last row is of epoch {rows[-1]['epoch']}, "
                           f"the record's last epoch {self.record.epochs_completed})")
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
    candidates, seen = [], set()
    try:
        children = list(Path(output_dir).iterdir()) if Path(output_dir).is_dir() else []
    except OSError:
        children = []
    # A run is a candidate once, under its own folder rather than a link to it, as in
    # compare.py's table (comparison.find_runs): both then name it the same way.
    for child in sorted(children, key=lambda c: (c.is_symlink(), c.name)):
        try:
            if not child.is_dir() or child.resolve() in seen:
                continue
            seen.add(child.resolve())
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
