"""A saved run for notebooks and scripts: its configuration, its history and its network,
and predictions on raw MNIST pixels with the run's own normalization.

    from kit import load_run
    run = load_run("saved_files/best-model")
    run.config                   # the RunConfig it was trained with
    run.history[-1]["val_accuracy"]
    labels = run.predict(images)  # images: 0..255 pixels, (N, 784) or (N, 28, 28)

A folder that cannot be read raises RunError, whose message is the one-line error
the scripts print for it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.config import RunConfig, RunError
from kit.record import Run
from network import Network

__all__ = ["LoadedRun", "RunError", "load_run"]

WHICH = ("best", "last")


class LoadedRun:
    """One run folder, read and checked: what it was, how it went, what it learned."""

    def __init__(self, run: Run):
        self._run = run
        self._networks: dict[str, Network] = {}

    @property
    def path(self) -> Path:
        return self._run.path

    @property
    def config(self) -> RunConfig:
        """The configuration the run was trained with (its eight answers and hyperparameters)."""
        return self._run.config

    @property
    def status(self) -> str:
        """completed, interrupted, stopped-early, diverged, failed or running."""
        return self._run.record.status

    @property
    def history(self) -> list[dict]:
        """The rows of history.csv, one dict per committed epoch (epoch an int, the rest floats)."""
        return [dict(row) for row in self._run.history()]

    @property
    def dynamics(self) -> list[dict]:
        """The rows of dynamics.csv (step 0, then every 256 steps and each epoch's end: the
        loss, each layer's gradient norm, update ratio and units; see
        docs/watching-a-network-learn.md); [] for a run saved before they were recorded.
        RunError naming the file when it is damaged."""
        return [dict(row) for row in self._run.dynamics() or []]

    def network(self, which: str = "best") -> Network:
        """The Network with the weights of the best validation epoch ("best") or of the
        last committed epoch ("last")."""
        if which not in WHICH:
            raise ValueError(f"which must be 'best' or 'last', not {which!r}")
        if which not in self._networks:
            self._networks[which] = self._run.network(which)
        return self._networks[which]

    def inputs(self, images) -> np.ndarray:
        """Raw pixels (0..255, uint8 or float, shape (N, 784) or (N, 28, 28)) as the float32
        (N, 784) inputs the network saw in training, normalized as the run's training data was."""
        x = np.asarray(images)
        if x.ndim == 3 and x.shape[1:] == (28, 28):
            x = x.reshape(len(x), 784)
        if x.ndim != 2 or x.shape[1] != 784:
            raise ValueError(f"images must have shape (N, 784) or (N, 28, 28), not {x.shape}")
        if x.dtype != np.uint8:
            if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
                raise ValueError(f"images must be numbers (pixels 0..255), not {x.dtype}")
            if x.size and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 255):
                raise ValueError("images must hold raw pixels from 0 to 255 (the run normalizes them itself)")
        return self._run.record.normalization.apply(x)

    def predict_proba(self, images, which: str = "best") -> np.ndarray:
        """The softmax probabilities (N, 10) of each digit for each image."""
        return self.network(which).predict_proba(self.inputs(images))

    def predict(self, images, which: str = "best") -> np.ndarray:
        """The predicted digit (N,) of each image."""
        return self.predict_proba(images, which).argmax(axis=1)

    def __repr__(self) -> str:
        return (f"<LoadedRun {self.path} ({self.status}, {self._run.record.epochs_completed} epochs: "
                f"{self.config.summary()})>")


def load_run(path) -> LoadedRun:
    """The run folder at path (a folder train.py saved, or one of the shipped models).
    Raises RunError, with the one-line message the scripts print, if it cannot be read."""
    try:
        run = Run.load(Path(path))
    except OSError as err:
        raise RunError(f"{path}: cannot be read ({err.strerror or err})") from None
    return LoadedRun(run)
