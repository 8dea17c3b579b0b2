"""The training loop: mini-batch gradient descent over shuffled epochs, with a
per-epoch record of learning rate, loss and accuracy on every split.

`train` is a generator: it yields an `EpochRecord` after each epoch, so the
caller can save and plot as it goes and stop cleanly on Ctrl-C, keeping the
epochs it already has.

`train_epoch` is the fast epoch the runs use; `reference_epoch`, at the end of the
file, is the same epoch written plainly (reference_backprop, then `W -= lr * dW`
in view), and the tests hold the fast one to it.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
from tqdm import tqdm

from kit.augment import Augmenter
from kit.dynamics import Recorder
from network import Network, reference_backprop, softmax_cross_entropy

# Steps whose examples are gathered into one contiguous block at a time: the
# epoch's permutation is applied once per block (one np.take), not per step,
# and the progress bar is updated once per block.
BLOCK_STEPS = 256


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did. Losses are the mean cross-entropy alone; the penalties
    (lambda * sum|W| for L1, lambda/2 * sum W^2 for L2, 0 when off) are apart, so the
    objective minimized is loss + l1_penalty + l2_penalty. Accuracies are fractions;
    seconds is the time spent on training steps."""
    epoch: int
    learning_rate: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    test_loss: float
    test_accuracy: float
    l1_penalty: float
    l2_penalty: float
    seconds: float

    def as_row(self) -> dict:
        return {k: getattr(self, k) for k in HISTORY_COLUMNS}


# history.csv's columns, in this order: the fields of EpochRecord (the run folder's
# code reads them from here, so the training loop never imports storage).
HISTORY_COLUMNS = tuple(f.name for f in fields(EpochRecord))


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
          l2: float = 0.0, dropout: float = 0.0, augment=None, first_epoch: int = 1,
          progress: bool = True, dynamics: Recorder | None = None) -> Iterator[EpochRecord]:
    """Train `net` on data.train from epoch first_epoch to epochs, yielding a record after each.

    data: has .train, .val and .test, each with x (N, 784) and integer y (N,).
    optimizer: an object with step(params, lr_grad, lr) (see optim.py).
    rng: draws each epoch's permutation of the training examples (and dropout masks
        and augmentation); a resumed run passes the generator in its saved state.
    decay: the factor applied to the learning rate after each epoch (1 = none).
    dynamics: records dynamics.csv's rows (row 0 first, from epoch 1 on); its
        rows are complete when an epoch's record is yielded.
    Raises TrainingDiverged when the loss stops being finite; the network's
    parameters are then not usable, the last yielded epoch's are.
    """
    extra = {k: v for k, v in (("l2", l2), ("dropout", dropout), ("augment", augment)) if v}
    if dynamics is not None:
        extra["watch"] = dynamics
        if first_epoch == 1 and not dynamics.rows:   # a resumed run has its row 0
            dynamics.start(learning_rate(first_epoch, lr, decay))
    for epoch in range(first_epoch, epochs + 1):
        epoch_lr = learning_rate(epoch, lr, decay)
        start = time.perf_counter()
        with tqdm(total=len(data.train.x) // batch_size, desc=f"Epoch {epoch}/{epochs}",
                  unit="step", leave=False, disable=None if progress else True,
                  dynamic_ncols=True) as bar:
            train_epoch(net, data.train.x, data.train.y, optimizer, epoch_lr, rng,
                        batch_size=batch_size, l1=l1, bar=bar, epoch=epoch, **extra)
        seconds = time.perf_counter() - start
        if dynamics is not None:
            dynamics.flush()   # the probe's statistics, beside the evaluation below
        metrics = {}
        with np.errstate(over="ignore", invalid="ignore"):
            for name in ("train", "val", "test"):
                split = getattr(data, name)
                metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = net.evaluate(split.x, split.y)
            metrics["l1_penalty"] = l1 * net.l1_penalty() if l1 else 0.0
            metrics["l2_penalty"] = l2 * net.l2_penalty() if l2 else 0.0
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDiverged(epoch, epoch_lr)
        yield EpochRecord(epoch=epoch, learning_rate=epoch_lr, seconds=seconds, **metrics)


def blocks(x: np.ndarray, y: np.ndarray, perm: np.ndarray, steps: int, batch_size: int,
           classes: int, dtype, augment: Augmenter | None = None):
    """The images of steps batches in the order of perm, gathered BLOCK_STEPS batches at a
    time into buffers reused from block to block: (first, images, one-hot targets, labels)
    per block, first the position in perm of its first image. augment moves each block's
    images after they are gathered (x itself is never changed)."""
    block = min(BLOCK_STEPS, steps) * batch_size
    xs = np.empty((block, x.shape[1]), dtype)
    onehot = np.zeros((block, classes), dtype)
    for first in range(0, steps * batch_size, block):
        idx = perm[first:min(first + block, steps * batch_size)]
        m = len(idx)
        # mode="clip" skips the bounds check that makes np.take copy through a
        # temporary; the indices are a permutation, so they are all valid.
        np.take(x, idx, axis=0, out=xs[:m], mode="clip")
        if augment is not None:
            augment.apply(xs[:m])
        labels = y[idx]
        onehot[:m] = 0
        onehot[np.arange(m), labels] = 1
        yield first, xs[:m], onehot[:m], labels


def train_epoch(net: Network, x: np.ndarray, y: np.ndarray, optimizer, lr: float,
                rng: np.random.Generator, *, batch_size: int = 4, l1: float = 0.0,
                l2: float = 0.0, dropout: float = 0.0, augment: Augmenter | None = None,
                bar: tqdm | None = None, epoch: int = 0, watch: Recorder | None = None) -> float:
    """One pass over a fresh permutation of (x, y) in batches of batch_size.

    l1, l2: penalty lambdas (weights only); dropout: the probability of dropping
    a hidden unit, masks drawn from rng each step; augment: moves each block of
    training images after it is gathered (x itself is never changed).
    watch: measures the last step of every block of BLOCK_STEPS steps (its gradient and
    update) and records a row after it (see kit/dynamics.py); epoch numbers its rows.
    The last partial batch is dropped (58,000 / 4 = 14,500 steps exactly).
    Returns the mean training loss of the epoch's steps (cross-entropy only,
    with the dropout masks and augmented images the steps trained on).
    """
    n, classes = len(x), net.sizes[-1]
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"{n} training examples are fewer than one batch of {batch_size}")
    logits = np.empty((min(BLOCK_STEPS, steps) * batch_size, classes), net.dtype)
    # SGD and momentum take lr * gradient, folded into backprop's first delta; Adam the gradient.
    scale = lr if optimizer.lr_in_grad else 1.0
    # The options bound once, only when on: a call with **{} would leave CPython's fast
    # call path, and at 14,500 steps an epoch that cost 5 % of a 784-10 epoch (measured).
    extras = {k: v for k, v in (("l2", l2), ("dropout", dropout)) if v}
    if dropout:
        extras["rng"] = rng
    backprop = functools.partial(net.backprop, **extras) if extras else net.backprop
    perm = rng.permutation(n)
    total_loss = 0.0
    if watch is not None:
        watch.begin_epoch(steps)
    with np.errstate(over="ignore", invalid="ignore"):
        for first, xs, onehot, labels in blocks(x, y, perm, steps, batch_size, classes,
                                                net.dtype, augment):
            m = len(labels)
            # A watched block's last step is taken apart, measured: the loop itself stays
            # as it was (a test inside it, 14,500 times an epoch, costs more than measuring).
            last = m if watch is None else m - batch_size
            for s in range(0, last, batch_size):
                e = s + batch_size
                backprop(xs[s:e], onehot[s:e], scale, l1, logits[s:e])
                optimizer.step(net.params, net.grad, lr)
            if watch is not None:
                backprop(xs[last:m], onehot[last:m], scale, l1, logits[last:m])
                watch.before_step(scale)
                optimizer.step(net.params, net.grad, lr)
                watch.after_step()
            # The block's loss from the logits the steps already computed.
            block_loss = softmax_cross_entropy(logits[:m], labels)[0] * m
            if not math.isfinite(block_loss):
                raise TrainingDiverged(epoch, lr)
            total_loss += block_loss
            if watch is not None:
                watch.block_done(epoch, (first + m) // batch_size, lr, block_loss / m,
                                 logits[:m], labels)
            if bar is not None:
                bar.update(m // batch_size)
                bar.set_postfix(loss=f"{total_loss / (first + m):.4f}", refresh=False)
    return total_loss / (steps * batch_size)


# ---- the same epoch, written plainly --------------------------------------------------

REFERENCE_OPTIMIZERS = ("sgd", "momentum", "adam")


def reference_epoch(net: Network, x: np.ndarray, y: np.ndarray, optimizer: str, lr: float,
                    rng: np.random.Generator, *, batch_size: int = 4, l1: float = 0.0,
                    l2: float = 0.0, dropout: float = 0.0, momentum: float = 0.9,
                    state: dict | None = None) -> float:
    """`train_epoch` written for reading: the same steps on the same batches, one layer at a time.

    Each step takes the plain gradient from `reference_backprop` and updates every
    layer's W and b with the learning rate in view. It draws from rng in the same
    order as train_epoch (the permutation, then each step's dropout masks), so
    from the same network and seed the two end at the same weights, to float
    rounding (tests/test_training.py holds them to it in float64).

    optimizer: "sgd", "momentum" (classical, PyTorch's SGD(momentum=mu)) or "adam"
        (PyTorch's defaults), written out below instead of optim.py's in-place calls.
    state: the optimizer's memory between epochs (velocities, or Adam's m, v, t),
        a dict this function fills; pass the same one to every epoch, None for a
        fresh optimizer.
    x: (N, sizes[0]); y: (N,) integer labels; l1, l2, dropout as in train_epoch.
    Augmentation is left out: train_epoch moves a block of 256 batches at a time.
    Returns the mean cross-entropy of the epoch's steps, as train_epoch does.
    """
    if optimizer not in REFERENCE_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {REFERENCE_OPTIMIZERS}, got {optimizer!r}")
    state = {} if state is None else state
    steps = len(x) // batch_size
    if steps == 0:
        raise ValueError(f"{len(x)} training examples are fewer than one batch of {batch_size}")
    perm = rng.permutation(len(x))
    total_loss = 0.0
    for step in range(steps):
        rows = perm[step * batch_size:(step + 1) * batch_size]
        xb, yb = x[rows].astype(net.dtype), y[rows]
        masks = None
        if dropout:  # each hidden unit kept with probability 1 - dropout, then scaled up
            masks = [np.where(rng.random((batch_size, n), dtype=net.dtype) >= dropout,
                              1 / (1 - dropout), 0).astype(net.dtype) for n in net.sizes[1:-1]]
        penalties = l1 * net.l1_penalty() + l2 * net.l2_penalty()
        objective, grads = reference_backprop(net, xb, yb, l1, l2, masks)
        total_loss += (objective - penalties) * batch_size  # the cross-entropy alone
        if optimizer == "adam":
            state["t"] = t = state.get("t", 0) + 1  # Adam counts its steps
        for i, (dW, db) in enumerate(grads):
            W, b = net.weights[i], net.biases[i]
            if optimizer == "sgd":
                W -= lr * dW
                b -= lr * db
            elif optimizer == "momentum":
                # v <- mu v + g; W <- W - lr v: PyTorch's form, which optim.Momentum keeps
                # exactly (v = mu v - lr g; W += v is the same while lr stays, not after a decay).
                vW, vb = state.setdefault(i, (np.zeros_like(W), np.zeros_like(b)))
                vW[...] = momentum * vW + dW
                vb[...] = momentum * vb + db
                W -= lr * vW
                b -= lr * vb
            else:  # Adam: running means of g and g**2, corrected for their start at zero
                b1, b2, eps = 0.9, 0.999, 1e-8
                for p, g, key in ((W, dW, ("W", i)), (b, db, ("b", i))):
                    m, v = state.setdefault(key, (np.zeros_like(p), np.zeros_like(p)))
                    m[...] = b1 * m + (1 - b1) * g
                    v[...] = b2 * v + (1 - b2) * g ** 2
                    p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return total_loss / (steps * batch_size)
