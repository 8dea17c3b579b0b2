"""A run folder: the configuration, history and weights of one training run.

train.py writes one folder per run under saved_files/:
    config.json       every answer and hyperparameter, status, times, final metrics
    history.csv       one row per completed epoch
    weights_1.csv ... (fan_in, fan_out) matrices;  biases_1.csv ... one value a line
    accuracy.png, loss.png, learning_rate.png
Every file is written atomically (a temporary file, then a rename), so an
interruption never leaves half a file. predict.py rebuilds the network from
the folder alone with `load_run`.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, asdict, fields
from pathlib import Path

from network import ACTIVATIONS, Network, ParameterFileError
from training import HISTORY_COLUMNS

INPUT_SIZE, NUM_CLASSES = 784, 10
MAX_HIDDEN = 4096  # beyond this a layer no longer fits a laptop's memory comfortably


class RunError(Exception):
    """A run folder that cannot be created or read; the message names the file."""


@dataclass(frozen=True)
class RunConfig:
    """The eight answers and the fixed hyperparameters of a run (the seed's defaults)."""
    layers: int                 # hidden layers: 0, 1 or 2
    normalization: str          # "simple" (x / 255) or "normal" ((x - mean) / std)
    init: str                   # "gauss" or "xavier"
    activation: str | None      # "relu" or "sigmoid"; None with 0 hidden layers
    l1: bool                    # L1 regularization on the weights
    decay: bool                 # multiply the learning rate by decay_factor each epoch
    optimizer: str              # "sgd" or "momentum"
    epochs: int
    seed: int
    batch_size: int = 4
    learning_rate: float = 0.001
    decay_factor: float = 0.98
    momentum: float = 0.9
    l1_lambda: float = 1e-5
    hidden_size: int = 64
    limit: int | None = None    # developer option: train on the first `limit` images

    @property
    def layer_sizes(self) -> list[int]:
        return [INPUT_SIZE] + [self.hidden_size] * self.layers + [NUM_CLASSES]

    def summary(self) -> str:
        """A short name for the configuration, e.g. '2h-relu-momentum-normal-xavier'."""
        parts = [f"{self.layers}h"]
        if self.layers:
            parts.append(self.activation)
        parts += [self.optimizer, self.normalization, self.init]
        if self.l1:
            parts.append("l1")
        if self.decay:
            parts.append("decay")
        return "-".join(parts)

    def to_json(self) -> dict:
        d = asdict(self)
        d["layer_sizes"] = self.layer_sizes
        return d

    @classmethod
    def from_json(cls, d: dict, where: str = "config.json") -> "RunConfig":
        """Rebuild a config from config.json's keys, checking each one."""
        names = {f.name for f in fields(cls)}
        missing = [n for n in _REQUIRED if n not in d]
        if missing:
            raise RunError(f"{where}: missing key(s) {', '.join(missing)}")
        cfg = cls(**{k: d[k] for k in names if k in d})
        problem = cfg.problem()
        if problem:
            raise RunError(f"{where}: {problem}")
        if "layer_sizes" in d and list(d["layer_sizes"]) != cfg.layer_sizes:
            raise RunError(f"{where}: layer_sizes {d['layer_sizes']} do not match "
                           f"{cfg.layers} hidden layers of {cfg.hidden_size}")
        return cfg

    def problem(self) -> str | None:
        """What is wrong with this configuration, or None."""
        checks = [
            (self.layers in (0, 1, 2) and type(self.layers) is int, f"layers must be 0, 1 or 2, not {self.layers!r}"),
            (self.normalization in ("simple", "normal"), f"unknown normalization {self.normalization!r}"),
            (self.init in ("gauss", "xavier"), f"unknown init {self.init!r}"),
            (self.activation in ACTIVATIONS if self.layers else self.activation in (None, *ACTIVATIONS),
             f"unknown activation {self.activation!r}"),
            (isinstance(self.l1, bool) and isinstance(self.decay, bool), "l1 and decay must be true or false"),
            (self.optimizer in ("sgd", "momentum"), f"unknown optimizer {self.optimizer!r}"),
            (_positive_int(self.epochs), f"epochs must be a positive whole number, not {self.epochs!r}"),
            (_positive_int(self.batch_size), f"batch_size must be a positive whole number, not {self.batch_size!r}"),
            (_positive_int(self.hidden_size) and self.hidden_size <= MAX_HIDDEN,
             f"hidden_size must be a whole number from 1 to {MAX_HIDDEN}, not {self.hidden_size!r}"),
            (_positive_number(self.learning_rate), f"learning_rate must be a positive number, not {self.learning_rate!r}"),
            (_positive_number(self.decay_factor), f"decay_factor must be a positive number, not {self.decay_factor!r}"),
            (_fraction(self.momentum), f"momentum must be in [0, 1), not {self.momentum!r}"),
            (_fraction(self.l1_lambda, upper=math.inf), f"l1_lambda must be >= 0, not {self.l1_lambda!r}"),
            (isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
             f"seed must be a whole number >= 0, not {self.seed!r}"),
        ]
        for ok, message in checks:
            if not ok:
                return message
        return None

    def build_network(self, rng=None, dtype=None) -> Network:
        """A network of this configuration's shape (initialized from rng)."""
        import numpy as np
        return Network(self.layer_sizes, self.activation or "relu", self.init, rng,
                       dtype or np.float32)


_REQUIRED = ("layers", "normalization", "init", "activation", "l1", "decay", "optimizer",
             "epochs", "seed")


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _positive_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _fraction(v, upper: float = 1.0) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v < upper


# ---- atomic files ---------------------------------------------------------------

def atomic_write_text(path: Path, text: str) -> None:
    """Write text to path through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_history(path: Path, rows: list[dict]) -> None:
    """history.csv: the header, then one row per completed epoch."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(float(v)) if k != "epoch" else int(v)) for k, v in row.items()
                         if k in HISTORY_COLUMNS})
    atomic_write_text(path, out.getvalue())


def read_history(path: Path) -> list[dict]:
    """history.csv back as a list of dicts of numbers (epoch an int)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != HISTORY_COLUMNS:
                raise RunError(f"{path}: unexpected header {reader.fieldnames}; "
                               f"expected {','.join(HISTORY_COLUMNS)}")
            return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                    for row in reader]
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: unreadable ({err})") from None


# ---- creating and finding run folders --------------------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_run_name(name: str) -> str | None:
    """What is wrong with a --name, or None: it must be one plain folder name."""
    if len(name.encode()) > 200:
        return f"--name is {len(name)} characters long; use at most 200"
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        return (f"--name {name!r} is not a plain folder name; use letters, digits, "
                "'.', '_', '+' and '-' (no '/', '..' or absolute paths)")
    return None


def prepare_output_dir(output_dir: Path) -> None:
    """Create the output directory if needed and check that runs can be written there."""
    if output_dir.exists() and not output_dir.is_dir():
        raise RunError(f"--output-dir {output_dir} is a file, not a folder; choose another path")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create the output folder {output_dir} ({err.strerror}); "
                       "choose another --output-dir") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise RunError(f"the output folder {output_dir} is not writable; choose another --output-dir")


def create_run_dir(output_dir: Path, name: str) -> Path:
    """Make output_dir/name, refusing a name that exists already."""
    problem = check_run_name(name)
    if problem:
        raise RunError(problem)
    run_dir = output_dir / name
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise RunError(f"a run named {name!r} already exists in {output_dir}; "
                       "choose another --name (earlier runs are never overwritten)") from None
    except OSError as err:
        raise RunError(f"cannot create {run_dir} ({err.strerror})") from None
    return run_dir


def find_latest_run(output_dir: Path) -> Path:
    """The most recent run folder directly under output_dir, by the start time
    recorded in its config.json; completed runs are preferred."""
    candidates = []
    if output_dir.is_dir():
        for child in output_dir.iterdir():
            cfg = child / "config.json"
            if not cfg.is_file() or not (child / "weights_1.csv").is_file():
                continue
            try:
                data = json.loads(cfg.read_text())
                started = str(data.get("started", ""))
                completed = data.get("status") == "completed"
            except (ValueError, OSError, AttributeError):
                continue
            candidates.append((completed, started, child.name, child))
    if not candidates:
        raise RunError(f"no saved run in {output_dir}; train one first with: python train.py")
    return max(candidates)[3]


def load_run(run_dir: Path, dtype=None) -> tuple[dict, RunConfig, Network]:
    """Rebuild a trained network from a run folder alone.

    Returns (the raw config.json dict, the RunConfig, the network with its
    saved weights). Raises RunError naming the file when anything is missing,
    malformed or inconsistent.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    path = run_dir / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing; this is not a run folder made by train.py") from None
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a JSON object")
    try:
        config = RunConfig.from_json(data, str(path))
    except TypeError as err:
        raise RunError(f"{path}: {err}") from None
    if config.normalization == "normal":
        for key in ("norm_mean", "norm_std"):
            if not _positive_number(data.get(key)) and not (key == "norm_mean" and data.get(key) == 0):
                raise RunError(f"{path}: {key} must be a number for normal normalization")
    net = config.build_network(dtype=dtype)
    try:
        net.load_csv(run_dir)
    except ParameterFileError as err:
        raise RunError(str(err)) from None
    return data, config, net
