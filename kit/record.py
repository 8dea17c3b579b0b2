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

import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, asdict, field, fields, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from augment import KINDS as AUGMENTATIONS
from network import ACTIVATIONS, INITS, Network, ParameterFileError
from optim import OPTIMIZERS

INPUT_SIZE, NUM_CLASSES = 784, 10
MAX_HIDDEN = 4096  # beyond this a layer no longer fits a laptop's memory comfortably
MAX_EPOCHS = 10_000
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

HISTORY_COLUMNS = ("epoch", "learning_rate", "train_loss", "train_accuracy",
                   "val_loss", "val_accuracy", "test_loss", "test_accuracy",
                   "l1_penalty", "l2_penalty", "seconds")
# The columns of runs saved before the penalties were logged apart (their losses include L1).
LEGACY_HISTORY_COLUMNS = HISTORY_COLUMNS[:8]


class RunError(Exception):
    """A run folder that cannot be created, read or continued; the message names the file."""


# ---- the configuration: every choice, its default and its range ----------------------

@dataclass(frozen=True)
class Option:
    """How one RunConfig field is given and checked: its flag, allowed values or range, help."""
    flag: str
    help: str
    choices: tuple = ()                    # allowed values (for str and bool fields)
    kind: type | None = None               # int or float, for numbers
    low: float | None = None
    low_ok: bool = True                    # low itself allowed
    high: float | None = None
    high_ok: bool = True
    metavar: str | None = None
    optional: bool = False                 # None allowed (meaning "off" or "drawn")

    def problem(self, name: str, value) -> str | None:
        """What is wrong with value for this option, or None."""
        if value is None:
            return None if self.optional else f"{name} is missing"
        if self.choices:
            if type(value) is type(self.choices[0]) and value in self.choices:
                return None
            shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices)
            return f"{name} must be one of {shown}, not {value!r}"
        ok_type = (isinstance(value, int) if self.kind is int else isinstance(value, (int, float))) \
            and not isinstance(value, bool)
        if not ok_type or not math.isfinite(value):
            return f"{name} must be a {'whole ' if self.kind is int else ''}number, not {value!r}"
        if (self.low is not None and (value < self.low if self.low_ok else value <= self.low)) or \
                (self.high is not None and (value > self.high if self.high_ok else value >= self.high)):
            return f"{name} must be {self.range_text()}, not {value!r}"
        return None

    def range_text(self) -> str:
        parts = []
        if self.low is not None:
            parts.append((">= " if self.low_ok else "> ") + f"{self.low:g}")
        if self.high is not None:
            parts.append(("<= " if self.high_ok else "< ") + f"{self.high:g}")
        return " and ".join(parts) if parts else "a number"


def _opt(default, **option) -> Any:
    return field(default=default, metadata={"option": Option(**option)})


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run trains: the eight answers, the hyperparameters
    (the original project's defaults) and the seed. Each field's flag, range and help live
    in its metadata, so train.py's flags, the questions' checks and study.py derive from here.
    """
    # The eight questions (no defaults: each is asked or given as a flag).
    layers: int = _opt(None, flag="--layers", choices=(0, 1, 2), metavar="{0,1,2}",
                       help="hidden layers: 0/zero, 1/one, 2/two")
    normalization: str = _opt(None, flag="--normalization", choices=("simple", "normal"),
                              metavar="{simple,normal}",
                              help="simple (pixels/255) or normal ((pixels-mean)/std, statistics "
                                   "of the training split)")
    init: str = _opt(None, flag="--init", choices=INITS, metavar="{gauss,xavier}",
                     help="weight initialization: gauss (0.01*N(0,1)) or xavier (N(0,1)*sqrt(1/fan_in))")
    activation: str | None = _opt(None, flag="--activation", choices=ACTIVATIONS, optional=True,
                                  metavar="{relu,sigmoid}",
                                  help="hidden-layer activation: relu or sigmoid (none with 0 hidden layers)")
    l1: bool = _opt(None, flag="--l1", choices=(True, False), metavar="{y,n}",
                    help="L1 regularization of the weights: y/yes or n/no")
    decay: bool = _opt(None, flag="--decay", choices=(True, False), metavar="{y,n}",
                       help="decay the learning rate each epoch: y/yes or n/no")
    optimizer: str = _opt(None, flag="--optimizer", choices=OPTIMIZERS,
                          metavar="{sgd,momentum,adam}",
                          help="sgd or momentum (the question's choices), or adam")
    epochs: int = _opt(None, flag="--epochs", kind=int, low=1, high=MAX_EPOCHS, metavar="N",
                       help=f"number of epochs, 1 to {MAX_EPOCHS}")
    seed: int = _opt(None, flag="--seed", kind=int, low=0, high=2**63 - 1, metavar="N",
                     help="random seed of the split, the initialization and the shuffles "
                          "(default: drawn at random and recorded)")
    # Hyperparameters.
    batch_size: int = _opt(4, flag="--batch-size", kind=int, low=1, metavar="N", help="examples per step")
    learning_rate: float = _opt(0.001, flag="--learning-rate", kind=float, low=0, low_ok=False,
                                metavar="LR", help="learning rate of epoch 1 (Adam's step size)")
    decay_factor: float = _opt(0.98, flag="--decay-factor", kind=float, low=0, low_ok=False,
                               metavar="F",
                               help="with --decay y, the learning rate is multiplied by this after each epoch")
    momentum: float = _opt(0.9, flag="--momentum", kind=float, low=0, high=1, high_ok=False,
                           metavar="MU", help="momentum coefficient of the momentum optimizer")
    l1_lambda: float = _opt(1e-5, flag="--l1-lambda", kind=float, low=0, metavar="LAMBDA",
                            help="with --l1 y, the loss gains lambda * sum|W|")
    l2: float = _opt(0.0, flag="--l2", kind=float, low=0, metavar="LAMBDA",
                     help="L2 weight decay: the loss gains lambda/2 * sum W^2 (weights, not biases)")
    dropout: float = _opt(0.0, flag="--dropout", kind=float, low=0, high=1, high_ok=False,
                          metavar="P", help="inverted dropout on the hidden layers while training")
    augment: str | None = _opt(None, flag="--augment", choices=AUGMENTATIONS, optional=True,
                               metavar="{shift,affine}",
                               help="move every training image by a random shift of up to 2 "
                                    "pixels each epoch (shift), or also rotate and scale it (affine)")
    hidden_size: int = _opt(64, flag="--hidden-size", kind=int, low=1, high=MAX_HIDDEN, metavar="N",
                            help="units in each hidden layer")
    patience: int | None = _opt(None, flag="--patience", kind=int, low=1, high=MAX_EPOCHS,
                                optional=True, metavar="N",
                                help="stop early when validation accuracy has not improved for N epochs")
    limit: int | None = _opt(None, flag="--limit", kind=int, low=1, optional=True, metavar="N",
                             help="train on the first N shuffled training images (and at most N "
                                  "validation images) for quick tests; the 6,000 test images are always used")

    QUESTIONS = ("layers", "normalization", "init", "activation", "l1", "decay", "optimizer", "epochs")
    # What --resume may change: how long to train, not what is trained.
    RESUME_OVERRIDES = ("epochs", "patience")

    @classmethod
    def create(cls, **values) -> "RunConfig":
        """A checked configuration. The one rule across fields: a network with 0 hidden
        layers has no activation (given one, it is dropped). Raises ValueError."""
        if values.get("layers") == 0:
            values["activation"] = None
        config = cls(**values)
        problem = config.problem()
        if problem:
            raise ValueError(problem)
        return config

    @classmethod
    def option(cls, name: str) -> Option:
        return next(f.metadata["option"] for f in fields(cls) if f.name == name)

    @classmethod
    def default(cls, name: str):
        return next(f.default for f in fields(cls) if f.name == name)

    @classmethod
    def options(cls) -> Iterator[tuple[str, Option, Any]]:
        """(name, Option, default) of every field, in order."""
        for f in fields(cls):
            yield f.name, f.metadata["option"], f.default

    @property
    def layer_sizes(self) -> list[int]:
        return [INPUT_SIZE] + [self.hidden_size] * self.layers + [NUM_CLASSES]

    def summary(self) -> str:
        """A short name for the configuration, e.g. '2h-relu-momentum-normal-xavier-l1'."""
        parts = [f"{self.layers}h"]
        if self.layers:
            parts.append(self.activation)
        parts += [self.optimizer, self.normalization, self.init]
        if self.hidden_size != 64 and self.layers:
            parts.append(f"w{self.hidden_size}")
        if self.l1:
            parts.append("l1")
        if self.decay:
            parts.append("decay")
        if self.l2:
            parts.append(f"l2-{self.l2:g}")
        if self.dropout:
            parts.append(f"dropout-{self.dropout:g}")
        if self.augment:
            parts.append(f"aug-{self.augment}")
        return "-".join(parts)

    def problem(self) -> str | None:
        """What is wrong with this configuration, or None."""
        for name, option, _ in self.options():
            problem = option.problem(name, getattr(self, name))
            if problem:
                return problem
        if self.layers and self.activation is None:
            return f"activation is needed with {self.layers} hidden layer(s)"
        if self.layers == 0 and self.activation is not None:
            return "activation must be null with 0 hidden layers"
        return None

    def to_json(self) -> dict:
        d = asdict(self)
        d["layer_sizes"] = self.layer_sizes
        return d

    @classmethod
    def from_json(cls, d: Any, where: str) -> "RunConfig":
        """A config from its JSON object, every key checked; RunError naming where and the key."""
        if not isinstance(d, dict):
            raise RunError(f"{where}: the configuration is not a JSON object")
        names = {f.name for f in fields(cls)}
        missing = [n for n in cls.QUESTIONS + ("seed",) if n not in d]
        if missing:
            raise RunError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            config = cls(**{k: d[k] for k in names if k in d})
        except TypeError as err:
            raise RunError(f"{where}: {err}") from None
        problem = config.problem()
        if problem:
            raise RunError(f"{where}: {problem}")
        if "layer_sizes" in d and d["layer_sizes"] != config.layer_sizes:
            raise RunError(f"{where}: layer_sizes {d['layer_sizes']!r} do not match "
                           f"{config.layers} hidden layer(s) of {config.hidden_size}")
        return config

    def build_network(self, rng: np.random.Generator | None = None, dtype=None) -> Network:
        """A network of this configuration's shape (initialized from rng)."""
        return Network(self.layer_sizes, self.activation or "relu", self.init, rng,
                       dtype or np.float32)


# ---- the normalization, as one value ----------------------------------------------------

@dataclass(frozen=True)
class Normalization:
    """How pixels 0..255 became the network's inputs: x/255 ("simple"), or (x - mean)/std
    ("normal") with the training split's mean and std, in pixel units (0..255)."""
    kind: str
    mean: float | None = None
    std: float | None = None

    def problem(self) -> str | None:
        if self.kind == "simple":
            return None if self.mean is None and self.std is None else \
                "simple normalization has no mean or std"
        if self.kind != "normal":
            return f"unknown normalization {self.kind!r}"
        for name, value, low in (("mean", self.mean, 0.0), ("std", self.std, 1e-3)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or not low <= value <= 255:
                return f"normalization {name} must be a number from {low:g} to 255 (pixel units), not {value!r}"
        return None

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels 0..255 (uint8 or float, any shape) as the float32 inputs the network saw,
        computed exactly as the training data was."""
        from mnist_loader import normalize
        x = np.asarray(pixels)
        if x.dtype != np.uint8:
            x = x.astype(np.float32)
            x = x / 255 if self.kind == "simple" else (x - np.float32(self.mean)) / np.float32(self.std)
            return x.astype(np.float32)
        return normalize(x, self.kind, self.mean, self.std)

    def pixel_range(self) -> tuple[float, float]:
        """The inputs that pixels 0 and 255 become."""
        lo, hi = self.apply(np.array([0, 255], np.uint8))
        return float(lo), float(hi)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> "Normalization":
        if not isinstance(d, dict) or set(d) - {"kind", "mean", "std"}:
            raise RunError(f"{where}: normalization must be an object with kind, mean and std")
        norm = cls(d.get("kind"), d.get("mean"), d.get("std"))
        problem = norm.problem()
        if problem:
            raise RunError(f"{where}: {problem}")
        return norm


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
    def from_json(cls, d: Any, where: str) -> "RunRecord":
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
    if checkpoint != _checkpoint_name(row["epoch"]):
        raise RunError(f"{where}.checkpoint must be {_checkpoint_name(row['epoch'])!r}, not {checkpoint!r}")
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


def _checkpoint_name(epoch: int) -> str:
    return f"checkpoints/epoch-{epoch:04d}"


# ---- atomic files -----------------------------------------------------------------------

def _file_mode() -> int:
    """The mode an ordinary new file gets here: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write path through a uniquely named temporary file beside it, fsync, then rename:
    a reader sees the old file or the new one, and concurrent writers never share a name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; a saved file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


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


def _fsync_dir(path: Path) -> None:
    """Make a rename inside path durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


class RunLock:
    """An exclusive lock on a run folder, held while a process writes it. The system
    releases it when the process dies, however it dies, so a live writer is told apart
    from a run whose process was killed."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds run_dir's lock."""
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except ImportError:
            return False
        except OSError:
            return True
    finally:
        os.close(fd)


# ---- reading a run ----------------------------------------------------------------------

class Run:
    """A saved run folder: its record, history and checkpoints, read and checked."""

    def __init__(self, path: Path, record: RunRecord, legacy: bool = False):
        self.path = Path(path)
        self.record = record
        self.legacy = legacy  # saved before run.json: last weights only, no state

    @classmethod
    def load(cls, path) -> "Run":
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
                                 f"for {r.config.patience} epochs)",
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


def load_run(run_dir, which: str = "best", dtype=None) -> tuple[Run, Network]:
    """A run folder and its network with the chosen epoch's weights."""
    run = Run.load(run_dir)
    return run, run.network(which, dtype)


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
        self._lock = lock

    @classmethod
    def create(cls, output_dir: Path, name: str, config: RunConfig, normalization: Normalization,
               sizes: tuple[int, int, int], versions: dict, started: dt.datetime) -> "RunWriter":
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
        _fsync_dir(Path(output_dir))
        return writer

    @classmethod
    def create_unique(cls, output_dir: Path, stem: str, *args, **kwargs) -> "RunWriter":
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
    def resume(cls, run: Run, config: RunConfig) -> "RunWriter":
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
        writer._remove_stale_checkpoints()
        for stale in run.path.glob(".*.tmp"):  # a killed writer's half-written run.json or history.csv
            with contextlib.suppress(OSError):
                stale.unlink()
        writer._write_record()
        return writer

    def commit_epoch(self, row: dict, net: Network, optimizer_state: dict, rng_state: dict) -> None:
        """Commit one epoch: its checkpoint folder, then the record naming it (the commit point).

        row: the epoch's history row (HISTORY_COLUMNS). Afterwards the checkpoints that
        are neither the last nor the best are removed, and history.csv is refreshed."""
        rows = self.rows + [dict(row)]
        epoch = int(row["epoch"])
        final = self.path / _checkpoint_name(epoch)
        final.parent.mkdir(exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".epoch-{epoch:04d}.", suffix=".partial"))
        try:
            net.save_csv(partial)
            buf = io.BytesIO()
            np.savez(buf, **optimizer_state)
            _write_synced(partial / "optimizer.npz", buf.getvalue())
            _write_synced(partial / "rng.json", (json.dumps(rng_state) + "\n").encode())
            _write_synced(partial / "history.csv", history_text(rows).encode())
            for f in partial.iterdir():
                if f.name.startswith(("weights_", "biases_")):
                    _fsync_file(f)
            _fsync_dir(partial)
            if final.exists():  # left by an attempt whose record was never committed
                shutil.rmtree(final)
            os.replace(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        _fsync_dir(final.parent)
        entry = {**{k: (int(row[k]) if k == "epoch" else float(row[k])) for k in HISTORY_COLUMNS},
                 "checkpoint": _checkpoint_name(epoch)}
        best = self.record.best
        if best is None or entry["val_accuracy"] > best["val_accuracy"]:
            best = entry
        record = replace(self.record, epochs_completed=epoch, last=entry, best=best,
                         train_seconds=self.record.train_seconds + float(row["seconds"]))
        self._write_record(record)  # the commit point
        self.record, self.rows = record, rows
        self._remove_stale_checkpoints()
        with contextlib.suppress(OSError):
            atomic_write_text(self.path / "history.csv", history_text(rows))

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
        _fsync_dir(self.path)
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


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def package_versions() -> dict:
    """The versions of Python and of the run-time packages, for the record."""
    import platform
    import matplotlib
    import tqdm
    return {"python": platform.python_version(), "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "tqdm": tqdm.__version__}
