"""What happens inside the epochs: dynamics.csv's rows, one before the first update and
then one every BLOCK_STEPS steps and at each epoch's end.

A row says how the loss, each layer's weights, gradients and updates, and each hidden
layer's units stood at that step:

    epoch, step, examples_seen, learning_rate   where in the run (step counted from 0 over
                                                the whole run; row 0 is before any update)
    train_loss, train_accuracy                  row 0: on TRAIN_PROBE fixed training images;
                                                later rows: the mean over the steps since the
                                                previous row, from the logits they computed
    weight_norm_i, grad_norm_i, update_ratio_i  layer i (numbered as weights_i.csv): ||W||,
                                                ||dObjective/dW|| without the learning rate,
                                                and ||dW|| / ||W|| of the step just taken
                                                (the row's last step; empty in row 0)
    act_mean_i, act_std_i, dead_i | saturated_i hidden layer i on VAL_PROBE fixed validation
                                                images: the mean and spread of its outputs,
                                                and the share of its units that are dead
                                                (ReLU: 0 on every probe image) or saturated
                                                (sigmoid: below 0.02 or above 0.98 on at least
                                                95 % of the probe images)
    seconds                                     wall time into the epoch (the only column
                                                that differs between identical runs)

Cost (measured, see docs/watching-a-network-learn.md): the training steps pay only for
the row's last step (a copy of the weights and a few norms) and the block's accuracy,
once every 256 steps. The probe's forward pass (128 images through the hidden layers,
as much arithmetic as 32 training steps' forward passes and far more than their
Python overhead lets show) would cost 3 to 10 % of an epoch if it ran there; so each
row keeps a copy of the hidden layers' parameters and the probe runs over them all at the
epoch's end, beside the evaluation of the splits (or sooner, when the copies would
exceed PENDING_BYTES).
"""
from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

TRAIN_PROBE = 1000   # training images of row 0's loss and gradient
VAL_PROBE = 128      # validation images every row's unit statistics are measured on
SATURATED_LOW, SATURATED_HIGH = 0.02, 0.98
SATURATED_SHARE = 0.95   # a sigmoid unit is saturated when this share of the probe is
PENDING_BYTES = 64 * 2**20   # parameter copies kept for the epoch's end, at most

POSITION = ("epoch", "step", "examples_seen", "learning_rate", "train_loss", "train_accuracy")
INTEGER = ("epoch", "step", "examples_seen")
WALL_TIME = ("seconds",)


def columns(sizes: Sequence[int], activation: str | None) -> tuple[str, ...]:
    """dynamics.csv's header for a network of these layer sizes and hidden activation."""
    layers = len(sizes) - 1
    out = list(POSITION)
    for i in range(1, layers + 1):
        out += [f"weight_norm_{i}", f"grad_norm_{i}", f"update_ratio_{i}"]
    units = "dead" if activation == "relu" else "saturated"
    for i in range(1, layers):
        out += [f"act_mean_{i}", f"act_std_{i}", f"{units}_{i}"]
    return tuple(out + list(WALL_TIME))


def layer_columns(header: Sequence[str], stem: str) -> list[str]:
    """The columns of one kind (grad_norm, dead, ...) in layer order."""
    found = [c for c in header if c.startswith(f"{stem}_") and c[len(stem) + 1:].isdigit()]
    return sorted(found, key=lambda c: int(c.rsplit("_", 1)[1]))


def unit_stats(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], relu: bool,
               x: np.ndarray) -> list[tuple[float, float, float]]:
    """(mean, std, dead or saturated share) of each hidden layer's outputs on x (N, fan_in).

    weights, biases: the hidden layers' (fan_in, fan_out) and (fan_out,) arrays."""
    out = []
    a = x
    with np.errstate(over="ignore"):
        for w, b in zip(weights, biases):
            a = a @ w
            a += b
            if relu:
                np.maximum(a, 0, out=a)
                # a >= 0: a unit is dead where its largest output is 0
                share = np.count_nonzero(a.max(axis=0) == 0) / a.shape[1]
            else:
                a = 1 / (1 + np.exp(-a))
                extreme = ((a < SATURATED_LOW) | (a > SATURATED_HIGH)).mean(axis=0)
                share = np.count_nonzero(extreme >= SATURATED_SHARE) / a.shape[1]
            mean = float(a.mean())
            out.append((mean, float(np.sqrt(np.mean(np.square(a - mean)))), float(share)))
    return out


class Recorder:
    """Makes dynamics.csv's rows while a network trains (training.train_epoch calls it).

    net: the network being trained; train_probe: (x, y) of row 0's loss and gradient;
    val_probe: x of the unit statistics; rows: the rows so far (a resumed run's);
    batch_size: examples per step; l1, l2: the penalties (row 0's gradient includes
    them, as every step's does); on_row(row): told of each row as soon as its loss is
    known (its unit statistics follow at the epoch's end)."""

    def __init__(self, net, train_probe: tuple[np.ndarray, np.ndarray], val_probe: np.ndarray, *,
                 batch_size: int, rows: list[dict] | None = None, l1: float = 0.0,
                 l2: float = 0.0, on_row: Callable[[dict], None] | None = None):
        self.net = net
        self.columns = columns(net.sizes, net.activation)
        self.rows: list[dict] = list(rows or [])
        self.train_probe = train_probe
        self.val_probe = np.ascontiguousarray(val_probe[:VAL_PROBE], dtype=net.dtype)
        self.batch_size = batch_size
        self.l1, self.l2 = l1, l2
        self.on_row = on_row
        self._relu = net.activation == "relu"
        self._hidden = net.num_layers - 1
        # The hidden layers' parameters are a prefix of params (each layer's weights, then
        # its bias): one copy per row is all the probe needs.
        self._hidden_end = sum(w.size + b.size for w, b in zip(net.weights[:-1], net.biases[:-1]))
        self._before = np.empty_like(net.params)
        self._grad_norms: list[float] = []
        self._pending: list[tuple[dict, np.ndarray]] = []
        self._steps = 0
        self._t0 = time.perf_counter()

    # ---- row 0 -----------------------------------------------------------------------------

    def start(self, lr: float) -> None:
        """Row 0, before any update: the loss, accuracy and gradient on the training probe."""
        net = self.net
        x, y = self.train_probe
        x = np.ascontiguousarray(x[:TRAIN_PROBE], dtype=net.dtype)
        y = y[:TRAIN_PROBE]
        loss, accuracy = net.evaluate(x, y)
        _, grad = net.loss_and_grad(x, y, self.l1, self.l2)
        grads = _weight_views(grad, net)
        row = {"epoch": 0, "step": 0, "examples_seen": 0, "learning_rate": lr,
               "train_loss": loss, "train_accuracy": accuracy}
        for i, (w, g) in enumerate(zip(net.weights, grads), start=1):
            row[f"weight_norm_{i}"] = _norm(w)
            row[f"grad_norm_{i}"] = _norm(g)
            row[f"update_ratio_{i}"] = math.nan   # no step taken yet
        self._add_unit_stats(row, net.params)
        row["seconds"] = 0.0
        self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)

    # ---- the hot loop's calls (once every BLOCK_STEPS steps) ----------------------------

    def begin_epoch(self, steps: int) -> None:
        """An epoch of `steps` steps starts."""
        self._steps = steps
        self._t0 = time.perf_counter()

    def before_step(self, scale: float) -> None:
        """The block's last step has its gradient (scale times it) in net.grad and is about
        to be taken: the gradient norms, and the weights before it."""
        net = self.net
        self._grad_norms = [_norm(g) / scale for g in net.grad_weights]
        np.copyto(self._before, net.params)

    def after_step(self) -> None:
        """The step is taken: ||dW|| / ||W|| per layer (W before the step)."""
        net = self.net
        scales = [max(_norm(w), 1e-30) for w in _weight_views(self._before, net)]
        self._before -= net.params   # now -dW, whose norm is dW's
        self._ratios = [_norm(d) / s for d, s in zip(_weight_views(self._before, net), scales)]

    def block_done(self, epoch: int, step_in_epoch: int, lr: float, loss: float,
                   logits: np.ndarray, labels: np.ndarray) -> None:
        """A row after step step_in_epoch of epoch: loss is the block's mean loss, logits and
        labels those of its steps."""
        net = self.net
        step = (epoch - 1) * self._steps + step_in_epoch
        correct = np.count_nonzero(logits.argmax(axis=1) == labels)
        row = {"epoch": epoch, "step": step, "examples_seen": step * self.batch_size,
               "learning_rate": lr, "train_loss": float(loss),
               "train_accuracy": correct / len(labels)}
        for i, (w, g, r) in enumerate(zip(net.weights, self._grad_norms, self._ratios), start=1):
            row[f"weight_norm_{i}"] = _norm(w)
            row[f"grad_norm_{i}"] = g
            row[f"update_ratio_{i}"] = r
        row["seconds"] = time.perf_counter() - self._t0
        self.rows.append(row)
        if self._hidden:
            self._pending.append((row, net.params[:self._hidden_end].copy()))
            if len(self._pending) * self._hidden_end * net.params.itemsize > PENDING_BYTES:
                self.flush()
        if self.on_row is not None:
            self.on_row(row)

    def flush(self) -> None:
        """The unit statistics of the rows that wait for them (at the epoch's end)."""
        for row, hidden in self._pending:
            self._add_unit_stats(row, hidden)
        self._pending.clear()

    def _add_unit_stats(self, row: dict, params: np.ndarray) -> None:
        if not self._hidden:
            return
        weights, biases = _views_of(params, self.net, self._hidden)
        units = "dead" if self._relu else "saturated"
        for i, (mean, std, share) in enumerate(unit_stats(weights, biases, self._relu,
                                                          self.val_probe), start=1):
            row[f"act_mean_{i}"], row[f"act_std_{i}"], row[f"{units}_{i}"] = mean, std, share


def _norm(a: np.ndarray) -> float:
    """The Frobenius norm of a contiguous array: one BLAS dot (3 us for 50,000 float32
    values; squaring into float64 first costs 26 us, and there are 9 norms a row)."""
    v = a.ravel()
    return math.sqrt(float(np.dot(v, v)))


def _views_of(flat: np.ndarray, net, layers: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first `layers` layers' weight and bias views of a vector in params' layout."""
    weights, biases, pos = [], [], 0
    for w, b in zip(net.weights[:layers], net.biases[:layers]):
        weights.append(flat[pos:pos + w.size].reshape(w.shape))
        pos += w.size
        biases.append(flat[pos:pos + b.size])
        pos += b.size
    return weights, biases


def _weight_views(flat: np.ndarray, net) -> list[np.ndarray]:
    return _views_of(flat, net, net.num_layers)[0]


# ---- dynamics.csv's text ----------------------------------------------------------------

class DynamicsError(ValueError):
    """dynamics.csv's text is not a record of dynamics; the message says where."""


def dynamics_text(rows: Sequence[dict], header: Sequence[str]) -> str:
    """dynamics.csv's text: the header, then one row per measurement (floats exactly;
    an empty cell where nothing was measured, update_ratio_i in row 0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([int(row[k]) if k in INTEGER else
                         ("" if math.isnan(row[k]) else repr(float(row[k]))) for k in header])
    return out.getvalue()


def parse_dynamics(text: str) -> tuple[tuple[str, ...], list[dict]]:
    """(header, rows) of dynamics.csv's text; DynamicsError saying what is wrong."""
    reader = csv.reader(io.StringIO(text))
    header = tuple(next(reader, ()))
    if header[:len(POSITION)] != POSITION or not layer_columns(header, "grad_norm"):
        raise DynamicsError(f"unexpected header {','.join(header)[:80] or '(none)'}")
    rows: list[dict] = []
    for number, line in enumerate(reader, start=1):
        if len(line) != len(header):
            raise DynamicsError(f"row {number} has {len(line)} values, expected {len(header)}")
        try:
            row = {k: (int(v) if k in INTEGER else (math.nan if v == "" else float(v)))
                   for k, v in zip(header, line)}
        except ValueError:
            raise DynamicsError(f"row {number} holds a value that is not a number") from None
        if not all(math.isfinite(v) for v in row.values() if v == v):
            raise DynamicsError(f"row {number} holds an infinite value")
        if rows and row["step"] < rows[-1]["step"]:
            raise DynamicsError(f"row {number} goes back to step {row['step']}")
        rows.append(row)
    return header, rows
