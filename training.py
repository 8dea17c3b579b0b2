"""The training loop: mini-batch gradient descent over shuffled epochs, with a
per-epoch record of learning rate, loss and accuracy on every split.

`train` is a generator: it yields an `EpochRecord` after each epoch, so the
caller can save and plot as it goes and stop cleanly on Ctrl-C, keeping the
epochs it already has.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, asdict
from typing import Iterator

import numpy as np
from tqdm import tqdm

from network import Network

# Steps whose examples are gathered into one contiguous block at a time: the
# epoch's permutation is applied once per block (one np.take), not per step,
# and the progress bar is updated once per block.
BLOCK_STEPS = 256

HISTORY_COLUMNS = ("epoch", "learning_rate", "train_loss", "train_accuracy",
                   "val_loss", "val_accuracy", "test_loss", "test_accuracy")


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did. Losses include the L1 term when it is on;
    accuracies are fractions; seconds is the time spent on training steps."""
    epoch: int
    learning_rate: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float

    def as_row(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in HISTORY_COLUMNS}


class TrainingDiverged(Exception):
    """The loss became NaN or infinite during an epoch."""

    def __init__(self, epoch: int, lr: float):
        super().__init__(f"the loss became NaN or infinite in epoch {epoch} (learning rate {lr:g})")
        self.epoch = epoch


def learning_rate(epoch: int, base: float, decay: float = 1.0) -> float:
    """The learning rate of epoch `epoch` (counted from 1): base * decay**(epoch - 1)."""
    return base * decay ** (epoch - 1)


def train(net: Network, data, *, epochs: int, optimizer, rng: np.random.Generator,
          lr: float = 0.001, decay: float = 1.0, batch_size: int = 4, l1: float = 0.0,
          progress: bool = True) -> Iterator[EpochRecord]:
    """Train `net` on data.train for `epochs` epochs, yielding a record after each.

    data: has .train, .val and .test, each with x (N, 784) and integer y (N,).
    optimizer: an object with step(params, lr_grad, lr) (see optim.py).
    rng: draws each epoch's permutation of the training examples.
    decay: the factor applied to the learning rate after each epoch (1 = none).
    Raises TrainingDiverged when the loss stops being finite; the network's
    parameters are then not usable, the last yielded epoch's are.
    """
    for epoch in range(1, epochs + 1):
        epoch_lr = learning_rate(epoch, lr, decay)
        start = time.perf_counter()
        with tqdm(total=len(data.train.x) // batch_size, desc=f"Epoch {epoch}/{epochs}",
                  unit="step", leave=False, disable=None if progress else True,
                  dynamic_ncols=True) as bar:
            train_epoch(net, data.train.x, data.train.y, optimizer, epoch_lr, rng,
                        batch_size=batch_size, l1=l1, bar=bar, epoch=epoch)
        seconds = time.perf_counter() - start
        metrics = {}
        with np.errstate(over="ignore", invalid="ignore"):
            for name in ("train", "val", "test"):
                split = getattr(data, name)
                metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = net.evaluate(split.x, split.y, l1)
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDiverged(epoch, epoch_lr)
        yield EpochRecord(epoch=epoch, learning_rate=epoch_lr, seconds=seconds, **metrics)


def train_epoch(net: Network, x: np.ndarray, y: np.ndarray, optimizer, lr: float,
                rng: np.random.Generator, *, batch_size: int = 4, l1: float = 0.0,
                bar: tqdm | None = None, epoch: int = 0) -> float:
    """One pass over a fresh permutation of (x, y) in batches of batch_size.

    The last partial batch is dropped (58,000 / 4 = 14,500 steps exactly).
    Returns the mean training loss of the epoch's steps (without the L1 term).
    """
    n, classes = len(x), net.sizes[-1]
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"{n} training examples are fewer than one batch of {batch_size}")
    block = min(BLOCK_STEPS, steps) * batch_size
    xs = np.empty((block, x.shape[1]), net.dtype)
    onehot = np.zeros((block, classes), net.dtype)
    probs = np.empty((block, classes), net.dtype)
    perm = rng.permutation(n)
    total_loss = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for first in range(0, steps * batch_size, block):
            idx = perm[first:min(first + block, steps * batch_size)]
            m = len(idx)
            # mode="clip" skips the bounds check that makes np.take copy through a
            # temporary; the indices are a permutation, so they are all valid.
            np.take(x, idx, axis=0, out=xs[:m], mode="clip")
            onehot[:m] = 0
            onehot[np.arange(m), y[idx]] = 1
            for s in range(0, m, batch_size):
                e = s + batch_size
                net.backprop(xs[s:e], onehot[s:e], lr, l1, probs[s:e])
                optimizer.step(net.params, net.grad, lr)
            # The block's loss from the probabilities the steps already computed.
            p_true = np.einsum("ij,ij->i", probs[:m], onehot[:m])
            block_loss = -np.log(np.maximum(p_true, 1e-30), dtype=np.float64).sum()
            if not math.isfinite(block_loss):
                raise TrainingDiverged(epoch, lr)
            total_loss += block_loss
            if bar is not None:
                bar.update(m // batch_size)
                bar.set_postfix(loss=f"{total_loss / (first + m):.4f}", refresh=False)
    return total_loss / (steps * batch_size)
