"""A fully connected network for MNIST: a list of layer sizes, ReLU or sigmoid
hidden layers, a softmax output and a cross-entropy loss.

`Network([784, 10])`, `Network([784, 64, 10])` and `Network([784, 64, 64, 10])`
are the same code: layer i maps `sizes[i]` inputs to `sizes[i + 1]` outputs with
`a @ W + b`, where W is shaped (fan_in, fan_out) as in the saved CSV files.

Read this file top down: `softmax_cross_entropy` is the loss and its gradient,
`reference_backprop` is backpropagation written plainly (forward, then backward,
layer by layer), and `Network.backprop` is the same computation written for
speed, tested against the reference to float64 rounding.

All weights and biases live in one flat vector (`params`), and `weights[i]` and
`biases[i]` are views into it. The gradient has the same layout (`grad`), so an
optimizer updates every parameter with a few whole-vector NumPy calls and a
numerical gradient check can walk both vectors side by side.

The fast `backprop` uses preallocated buffers: the training loop calls it 14,500
times an epoch with batches of 4, where NumPy's per-call overhead, not
arithmetic, is the cost.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from kit.fsutil import atomic_files

ACTIVATIONS = ("relu", "sigmoid")
INITS = ("gauss", "xavier")
# Rows per forward pass when scoring (evaluate, predict, predict_proba): large
# enough that NumPy's per-call cost vanishes, small enough to bound memory.
EVAL_CHUNK = 4096


class ParameterFileError(Exception):
    """A weights or biases CSV is missing, unreadable or of the wrong shape."""


# ---- the readable reference ---------------------------------------------------------

def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean cross-entropy of softmax(logits) against labels y, and its gradient.

    logits: (N, K); y: (N,) integer labels.
    Returns (loss, dlogits): loss = mean over rows of -log softmax(logits)[y], a
    Python float summed in float64; dlogits = (softmax(logits) - onehot(y)) / N,
    (N, K) in the logits' dtype. Subtracting each row's maximum first keeps exp
    from overflowing, and log-softmax = z - log(sum(exp(z))) never takes log(0),
    so logits of 1e4 give a finite loss.
    """
    n = len(y)
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    log_norm = np.log(e.sum(axis=1, dtype=np.float64))
    loss = float((log_norm - z[rows, y]).sum()) / n
    dlogits = e / e.sum(axis=1, keepdims=True)
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss, dlogits


def reference_backprop(net: Network, x: np.ndarray, y: np.ndarray, l1: float = 0.0,
                       l2: float = 0.0, dropout_masks: Sequence[np.ndarray] | None = None
                       ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """Backpropagation written plainly: the objective of a batch and its gradient.

    x: (N, sizes[0]); y: (N,) integer labels.
    l1, l2: the penalties l1 * sum|W| + l2 / 2 * sum W**2 (weights only).
    dropout_masks: one (N, sizes[i + 1]) array per hidden layer that multiplies
        its activations: 0 for a dropped unit, 1 / (1 - p) for a kept one.
    Returns (mean cross-entropy + penalties, [(dW, db) for each layer]).
    `Network.backprop` computes the same, fast; the tests hold it to this.
    """
    masks = dropout_masks if dropout_masks is not None else [None] * (net.num_layers - 1)
    activations, slopes = [x], []  # each layer's input; d(activation)/dz of each hidden layer
    for w, b, mask in zip(net.weights[:-1], net.biases[:-1], masks):
        z = activations[-1] @ w + b
        if net.activation == "relu":
            a, slope = np.maximum(z, 0), (z > 0).astype(z.dtype)
        else:
            with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z gives a = 0
                a = 1 / (1 + np.exp(-z))
            slope = a * (1 - a)
        if mask is not None:  # a dropped unit outputs 0 and passes no gradient back
            a, slope = a * mask, slope * mask
        activations.append(a)
        slopes.append(slope)
    logits = activations[-1] @ net.weights[-1] + net.biases[-1]
    loss, delta = softmax_cross_entropy(logits, y)  # delta = dLoss/dz of the current layer
    grads = [None] * net.num_layers
    for i in range(net.num_layers - 1, -1, -1):  # from the output layer back to the first
        w = net.weights[i]
        grads[i] = (activations[i].T @ delta + l1 * np.sign(w) + l2 * w, delta.sum(axis=0))
        if i > 0:
            delta = (delta @ w.T) * slopes[i - 1]
    return loss + l1 * net.l1_penalty() + l2 * net.l2_penalty(), grads


def flat_grad(grads: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """reference_backprop's [(dW, db), ...] as one vector in `Network.params`' layout."""
    return np.concatenate([np.concatenate([gw.ravel(), gb]) for gw, gb in grads])


# ---- the network, with the fast path -------------------------------------------------

class Network:
    """A fully connected network sized from a list of layer sizes.

    sizes: e.g. [784, 64, 10]; at least an input and an output size.
    activation: "relu" or "sigmoid", used by the hidden layers.
    init: "gauss" (0.01 * N(0, 1), as the original project) or
        "xavier" (N(0, 1) * sqrt(1 / fan_in)); biases start at zero.
    rng: the numpy Generator that draws the initial weights.
    dtype: float32 for training speed, float64 for gradient checks.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 init: str = "xavier", rng: np.random.Generator | None = None,
                 dtype=np.float32):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer sizes must be at least two positive numbers, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.sizes = sizes
        self.activation = activation
        self.dtype = np.dtype(dtype)
        shapes = [(m, n) for m, n in zip(sizes[:-1], sizes[1:])]
        total = sum(m * n + n for m, n in shapes)
        self.params = np.zeros(total, self.dtype)
        self.grad = np.zeros(total, self.dtype)
        self.weights, self.biases = _views(self.params, shapes)
        self.grad_weights = _views(self.grad, shapes)[0]   # each layer's dW, in grad
        self._blocks = _blocks(self.params, shapes)
        self._grad_blocks = _blocks(self.grad, shapes)
        self._num_layers = len(shapes)
        self._relu = activation == "relu"
        # 1 where a parameter is a weight, 0 where it is a bias: L1 and L2 skip biases.
        self._weight_mask = np.zeros(total, self.dtype)
        for w_mask in _views(self._weight_mask, shapes)[0]:
            w_mask[...] = 1
        self._l1_coef: tuple[float, np.ndarray] | None = None
        self._l2_coef: tuple[float, np.ndarray] | None = None
        self._penalty_buf = np.empty_like(self.params)
        self._workspaces: dict[int, _Workspace] = {}

        rng = rng if rng is not None else np.random.default_rng()
        for w, (fan_in, fan_out) in zip(self.weights, shapes):
            scale = 0.01 if init == "gauss" else np.sqrt(1.0 / fan_in)
            w[...] = rng.standard_normal((fan_in, fan_out)) * scale

    @property
    def num_layers(self) -> int:
        """The number of weight layers (hidden layers + 1)."""
        return len(self.weights)

    # ---- training: the fast backpropagation -----------------------------------------

    def backprop(self, x: np.ndarray, y_onehot: np.ndarray, scale: float = 1.0,
                 l1: float = 0.0, logits_out: np.ndarray | None = None, *,
                 l2: float = 0.0, dropout: float = 0.0, rng: np.random.Generator | None = None,
                 dropout_masks: Sequence[np.ndarray] | None = None) -> None:
        """Write `scale` times the gradient of the batch's objective into `self.grad`.

        The objective is mean cross-entropy + l1 * sum|W| + l2 / 2 * sum W**2, the
        gradient that of `reference_backprop`, in the layout of `self.params`.
        x: (B, sizes[0]) inputs; y_onehot: (B, sizes[-1]) one-hot targets.
        scale: SGD and momentum get the learning rate here, so the optimizer
            receives lr * gradient without a pass over every parameter to scale it.
        l1, l2: the penalties' lambdas (weights only, never biases); l2 adds
            l2 * W to the gradient, PyTorch's SGD/Adam weight_decay.
        logits_out: optional (B, sizes[-1]) array that receives the logits.
        dropout, rng: inverted dropout: each hidden unit is kept with probability
            1 - dropout and then scaled by 1 / (1 - dropout); rng draws the masks.
        dropout_masks: instead of dropout and rng, one (B, sizes[i + 1]) multiplier
            per hidden layer (0 or 1 / (1 - p)), as in reference_backprop.

        Each layer's weights and bias are stored as one (fan_in + 1, fan_out)
        block, the bias as its last row, and each layer's input carries a
        column of ones, so `[a, 1] @ block` is a @ W + b and `[a, 1].T @ delta`
        is the weight and the bias gradient in one matrix product: a third
        fewer NumPy calls a step than separate adds and sums.
        """
        ws = self._workspace(x.shape[0])
        ws.inputs[0][:, :-1] = x
        drops = dropout_masks
        if dropout and drops is None and self._num_layers > 1:
            drops = self._draw_dropout(ws, dropout, rng)
        probs = self._forward(ws, logits_out, drops)
        # d(mean cross-entropy)/d(logits) = (softmax - onehot) / B
        delta = ws.deltas[-1]
        np.subtract(probs, y_onehot, out=delta)
        delta *= scale / x.shape[0]
        for i in range(self._num_layers - 1, -1, -1):
            np.matmul(ws.inputs[i].T, delta, out=self._grad_blocks[i])
            if i == 0:
                break
            prev = ws.deltas[i - 1]
            np.matmul(delta, self.weights[i].T, out=prev)
            prev *= ws.slopes[i - 1]
            if drops is not None:
                prev *= drops[i - 1]
            delta = prev
        if l1:
            self._add_l1(scale * l1)
        if l2:
            self._add_l2(scale * l2)

    def _forward(self, ws: _Workspace, logits_out: np.ndarray | None,
                 drops: Sequence[np.ndarray] | None) -> np.ndarray:
        """The forward pass of ws.inputs[0] through the workspace's buffers, keeping
        each hidden layer's slope d(activation)/dz for the backward pass; returns
        the softmax output."""
        last = self._num_layers - 1
        for i in range(last):
            z = ws.acts[i]
            np.matmul(ws.inputs[i], self._blocks[i], out=z)
            if self._relu:
                np.maximum(z, 0, out=z)
                np.greater(z, 0, out=ws.slopes[i])
            else:  # sigmoid'(z) = a * (1 - a)
                _sigmoid_inplace(z)
                slope = ws.slopes[i]
                np.subtract(1, z, out=slope)
                slope *= z
            if drops is not None:
                z *= drops[i]
        logits = logits_out if logits_out is not None else ws.logits
        np.matmul(ws.inputs[last], self._blocks[last], out=logits)
        return _softmax_into(logits, ws.probs, ws.row)

    def _draw_dropout(self, ws: _Workspace, p: float, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Fresh inverted-dropout multipliers (0 or 1 / (1 - p)) for every hidden layer."""
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        if rng is None:
            raise ValueError("dropout needs rng, the Generator that draws its masks")
        for uniform, keep, drop in zip(ws.uniforms, ws.keeps, ws.drops):
            rng.random(dtype=uniform.dtype, out=uniform)
            np.greater_equal(uniform, p, out=keep)  # kept with probability 1 - p
            np.multiply(keep, 1 / (1 - p), out=drop)
        return ws.drops

    def _add_l1(self, coef: float) -> None:
        """grad += coef * sign(W) for the weights (not the biases).

        np.sign is not vectorized and costs 40 µs on 55,000 float32 values,
        more than the rest of a step, so coef * sign(W) is built from bits:
        the sign bit of each parameter OR the bits of coef (0 for biases).
        A weight of exactly 0 gets +coef instead of 0, a point that float
        weights reach with probability zero.
        """
        if self._l1_coef is None or self._l1_coef[0] != coef:
            # The mask times coef changes once an epoch (with the learning rate).
            self._l1_coef = (coef, self._weight_mask * self.dtype.type(coef))
        uint = np.dtype(f"u{self.dtype.itemsize}")
        bits = self._penalty_buf.view(uint)
        np.bitwise_and(self.params.view(uint), uint.type(1 << (8 * uint.itemsize - 1)), out=bits)
        np.bitwise_or(bits, self._l1_coef[1].view(uint), out=bits)
        self.grad += self._penalty_buf

    def _add_l2(self, coef: float) -> None:
        """grad += coef * W for the weights (not the biases): two passes over params."""
        if self._l2_coef is None or self._l2_coef[0] != coef:
            self._l2_coef = (coef, self._weight_mask * self.dtype.type(coef))
        np.multiply(self.params, self._l2_coef[1], out=self._penalty_buf)
        self.grad += self._penalty_buf

    def _workspace(self, batch: int) -> _Workspace:
        ws = self._workspaces.get(batch)
        if ws is None:
            ws = self._workspaces[batch] = _Workspace(self.sizes, batch, self.dtype, self._relu)
        return ws

    # ---- the loss and its parts ------------------------------------------------------

    def l1_penalty(self) -> float:
        """sum |W| over the weight matrices (not the biases)."""
        return float(sum(np.abs(w, dtype=np.float64).sum() for w in self.weights))

    def l2_penalty(self) -> float:
        """0.5 * sum W**2 over the weight matrices (not the biases)."""
        return 0.5 * float(sum(np.square(w, dtype=np.float64).sum() for w in self.weights))

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, l1: float = 0.0, l2: float = 0.0,
                      dropout_masks: Sequence[np.ndarray] | None = None) -> tuple[float, np.ndarray]:
        """The objective of a batch and a copy of its gradient, from the fast `backprop`.

        x: (N, sizes[0]); y: (N,) integer labels; dropout_masks as in backprop.
        The objective is mean cross-entropy + l1 * sum|W| + l2 / 2 * sum W**2,
        the cross-entropy of the same forward pass (dropout included).
        """
        onehot = np.zeros((len(y), self.sizes[-1]), self.dtype)
        onehot[np.arange(len(y)), y] = 1
        x = np.ascontiguousarray(x, dtype=self.dtype)
        logits = np.empty((len(y), self.sizes[-1]), self.dtype)
        self.backprop(x, onehot, 1.0, l1, logits, l2=l2, dropout_masks=dropout_masks)
        loss = softmax_cross_entropy(logits, y)[0] + l1 * self.l1_penalty() + l2 * self.l2_penalty()
        return loss, self.grad.copy()

    # ---- scoring: no dropout, the weights as they are -------------------------------

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The output layer before softmax, (N, sizes[-1]), for any N."""
        a = x
        with np.errstate(over="ignore"):
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                a = a @ w + b
                if i < self.num_layers - 1:
                    a = np.maximum(a, 0) if self.activation == "relu" else _sigmoid_inplace(a)
        return a

    def _logit_chunks(self, x: np.ndarray, chunk: int) -> Iterator[tuple[slice, np.ndarray]]:
        """(rows, logits of x[rows]) for consecutive chunks of `chunk` rows: every
        scoring method uses the same chunks, so their float32 sums agree exactly."""
        if chunk < 1:
            raise ValueError(f"chunk must be a positive number of rows, got {chunk}")
        for s in range(0, len(x), chunk):
            rows = slice(s, s + chunk)
            yield rows, self.logits(x[rows])

    def predict(self, x: np.ndarray, *, chunk: int = EVAL_CHUNK) -> np.ndarray:
        """The predicted class of every row of x (N, sizes[0]): (N,) int64, the argmax of the logits."""
        out = np.empty(len(x), np.int64)
        for rows, z in self._logit_chunks(x, chunk):
            out[rows] = z.argmax(axis=1)
        return out

    def predict_proba(self, x: np.ndarray, *, chunk: int = EVAL_CHUNK) -> np.ndarray:
        """Softmax probabilities (N, sizes[-1]) of every row of x (N, sizes[0])."""
        out = np.empty((len(x), self.sizes[-1]), self.dtype)
        for rows, z in self._logit_chunks(x, chunk):
            out[rows] = softmax(z)
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, *, chunk: int = EVAL_CHUNK) -> tuple[float, float]:
        """(mean cross-entropy, accuracy as a fraction) over all of x (N, sizes[0]), y (N,).

        No penalty term: add l1 * l1_penalty() or l2 * l2_penalty() for the objective.
        The accuracy counts the rows where `predict` is right.
        """
        total_loss = 0.0
        correct = 0
        for rows, z in self._logit_chunks(x, chunk):
            yc = y[rows]
            total_loss += softmax_cross_entropy(z, yc)[0] * len(yc)
            correct += int(np.count_nonzero(z.argmax(axis=1) == yc))
        return total_loss / len(x), correct / len(x)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The mean cross-entropy over all of x, without penalty terms."""
        return self.evaluate(x, y)[0]

    # ---- saving and loading -----------------------------------------------------

    def save_csv(self, folder: str | os.PathLike) -> list[Path]:
        """Write weights_1.csv ... and biases_1.csv ... into folder, atomically.

        Weights are (fan_in, fan_out) matrices, biases one value per line, with
        enough digits that reading them back gives the same numbers exactly.
        """
        folder = Path(folder)
        fmt = "%.9g" if self.dtype == np.float32 else "%.17g"
        arrays = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            arrays[folder / f"weights_{i}.csv"] = w
            arrays[folder / f"biases_{i}.csv"] = b.reshape(-1, 1)
        # Every file is complete before any is renamed: a full disk leaves the previous
        # files intact. No fsync here: the run writer syncs a checkpoint as a whole.
        with atomic_files(arrays, mode="w", sync=False) as files:
            for f, array in zip(files, arrays.values()):
                np.savetxt(f, array, fmt=fmt, delimiter=",")
        return list(arrays)

    def load_csv(self, folder: str | os.PathLike) -> None:
        """Read weights_1.csv ... and biases_1.csv ... from folder into this network.

        Raises ParameterFileError naming the file when one is missing,
        unreadable, not numeric, not finite or not of this network's shape.
        """
        folder = Path(folder)
        # Read every file before changing anything, so a bad file leaves the network as it was.
        arrays = []
        # A value finite in float64 can still overflow this network's dtype (1e39 in float32)
        # and turn every output into NaN: refuse it here, naming the file.
        for i, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            for target, path, shape in ((w, folder / f"weights_{i}.csv", w.shape),
                                        (b, folder / f"biases_{i}.csv", (b.size, 1))):
                array = _read_matrix(path, shape)
                with np.errstate(over="ignore"):
                    overflows = not np.isfinite(array.astype(self.dtype)).all()
                if overflows:
                    raise ParameterFileError(f"{path}: holds values too large for {self.dtype} "
                                             f"(above {np.finfo(self.dtype).max:.3g}); the run folder is damaged")
                arrays.append((target, array.reshape(target.shape)))
        extra = folder / f"weights_{self.num_layers + 1}.csv"
        if extra.exists():
            raise ParameterFileError(
                f"{extra}: the run has more weight files than its {self.num_layers} layers; "
                "the folder mixes two runs")
        for target, array in arrays:
            target[...] = array


class _Workspace:
    """Preallocated buffers for one batch size, reused by every training step."""

    def __init__(self, sizes: list[int], batch: int, dtype: np.dtype, relu: bool):
        hidden = sizes[1:-1]
        # Each layer's input with a trailing column of ones (for the bias row);
        # the hidden activations are views of all but that column.
        self.inputs = [np.ones((batch, n + 1), dtype) for n in sizes[:-1]]
        self.acts = [inp[:, :-1] for inp in self.inputs[1:]]
        # d(activation)/dz: ReLU's is 0 or 1, kept as bool (a bool multiply is as fast).
        self.slopes = [np.empty((batch, n), bool if relu else dtype) for n in hidden]
        self.deltas = [np.empty((batch, n), dtype) for n in sizes[1:]]
        self.logits = np.empty((batch, sizes[-1]), dtype)
        self.probs = np.empty((batch, sizes[-1]), dtype)
        self.row = np.empty((batch, 1), dtype)
        # Dropout: uniform draws, keep flags and the multipliers, per hidden layer.
        self.uniforms = [np.empty((batch, n), dtype) for n in hidden]
        self.keeps = [np.empty((batch, n), bool) for n in hidden]
        self.drops = [np.empty((batch, n), dtype) for n in hidden]


def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split a flat vector into per-layer weight (fan_in, fan_out) and bias (fan_out,) views."""
    weights, biases, pos = [], [], 0
    for m, n in shapes:
        weights.append(flat[pos:pos + m * n].reshape(m, n))
        pos += m * n
        biases.append(flat[pos:pos + n])
        pos += n
    return weights, biases


def _blocks(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Per-layer (fan_in + 1, fan_out) views: the weights with the bias as last row.

    _views lays each bias right after its weights, so both views share memory."""
    blocks, pos = [], 0
    for m, n in shapes:
        blocks.append(flat[pos:pos + (m + 1) * n].reshape(m + 1, n))
        pos += (m + 1) * n
    return blocks


def _sigmoid_inplace(z: np.ndarray) -> np.ndarray:
    """z <- 1 / (1 + exp(-z)), in place.

    exp overflows to inf for z < -88 (float32), which correctly gives 0; the
    callers silence that warning once around their loops (np.errstate costs a
    microsecond, as much as the arithmetic of a step's small layer)."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)
    return z


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, K), as a new array."""
    return _softmax_into(z, np.empty_like(z), np.empty((len(z), 1), z.dtype))


def _softmax_into(z: np.ndarray, out: np.ndarray, row: np.ndarray) -> np.ndarray:
    """out <- row-wise softmax of z (N, K); row is a (N, 1) scratch buffer.

    Subtracting the row maximum first keeps exp from overflowing. (The ufuncs'
    own reduce methods skip the Python wrappers of np.max and np.sum, which
    cost as much as the arithmetic for a batch of 4.)"""
    np.maximum.reduce(z, axis=1, keepdims=True, out=row)
    np.subtract(z, row, out=out)
    np.exp(out, out=out)
    np.add.reduce(out, axis=1, keepdims=True, out=row)
    out /= row
    return out


def _read_matrix(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a CSV of numbers and check it is `shape` and finite."""
    if not path.is_file():
        raise ParameterFileError(f"{path}: missing; the run folder is incomplete")
    if path.stat().st_size == 0:
        raise ParameterFileError(f"{path}: empty; the run folder is damaged")
    try:
        with warnings.catch_warnings():
            # A file of blank lines makes loadtxt warn on stderr; its shape is reported below.
            warnings.simplefilter("ignore", UserWarning)
            array = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ParameterFileError(f"{path}: not a CSV of numbers ({reason})") from None
    if array.size == 0:
        raise ParameterFileError(f"{path}: holds no numbers; the run folder is damaged")
    if array.shape != shape:
        raise ParameterFileError(
            f"{path}: shape {array.shape[0]}x{array.shape[1]}, expected {shape[0]}x{shape[1]} "
            "for this run's layer sizes")
    if not np.isfinite(array).all():
        raise ParameterFileError(f"{path}: holds NaN or infinite values")
    return array
