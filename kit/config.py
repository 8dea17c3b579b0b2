"""The configuration of a run: every setting's flag, default, allowed values and range
(RunConfig), and how its pixels were normalized (Normalization).

train.py's flags and questions, study.py's grids and the run record all derive from
the fields here: a default or a range is written once, in this file.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from kit.augment import KINDS as AUGMENTATIONS
from network import ACTIVATIONS, INITS, Network
from optim import OPTIMIZERS

INPUT_SIZE, NUM_CLASSES = 784, 10
MAX_HIDDEN = 4096  # beyond this a layer no longer fits a laptop's memory comfortably
MAX_EPOCHS = 10_000



# How summary() (the configuration line, the run folder's name) names a setting that is
# not at its default; a field missing here goes by its flag's name.
SHORT_NAMES = {"batch_size": "batch", "learning_rate": "lr", "decay_factor": "decayx",
               "momentum": "mu", "l1_lambda": "l1lambda"}


def _value_text(value) -> str:
    """A setting's value in a folder name: the shortest text that reads back as it."""
    return repr(value) if isinstance(value, float) else str(value)


def setting_text(value, unset: str = "-") -> str:
    """A setting's value as tables, names and sentences show it: y/n for booleans, %g for
    floats, unset (compare's "-", a study's "none") for None."""
    if value is None:
        return unset
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class RunError(Exception):
    """A run folder that cannot be created, read or continued; the message names the file."""


class RunExists(RunError):
    """The run's name is taken (a usage error, as when train.py finds it before training)."""


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
    def create(cls, **values) -> RunConfig:
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
        # Every other setting away from its default, in field order, e.g. 'lr0.01-limit5000'
        # (a field added later appears without anyone remembering to add it here).
        for name, value in self.non_defaults():
            if name not in ("hidden_size", "l2", "dropout", "augment"):
                parts.append(f"{SHORT_NAMES.get(name, name.replace('_', '-'))}{_value_text(value)}")
        return "-".join(parts)

    def non_defaults(self) -> list[tuple[str, Any]]:
        """(name, value) of each hyperparameter (not the eight answers, not the seed) that
        differs from its default and has an effect: the momentum coefficient only with the
        momentum optimizer, the decay factor only with --decay y, the L1 lambda only with
        --l1 y, the hidden size only with hidden layers."""
        idle = {"momentum": self.optimizer != "momentum", "decay_factor": not self.decay,
                "l1_lambda": not self.l1, "hidden_size": not self.layers}
        return [(name, getattr(self, name)) for name, _, default in self.options()
                if name not in self.QUESTIONS + ("seed",) and getattr(self, name) != default
                and not idle.get(name, False)]

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
    def from_json(cls, d: Any, where: str) -> RunConfig:
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
    def from_json(cls, d: Any, where: str) -> Normalization:
        # Other keys are a newer version's: kept in the record (RunRecord.newer_settings).
        if not isinstance(d, dict) or "kind" not in d:
            raise RunError(f"{where}: normalization must be an object with kind, mean and std")
        norm = cls(d.get("kind"), d.get("mean"), d.get("std"))
        problem = norm.problem()
        if problem:
            raise RunError(f"{where}: {problem}")
        return norm


