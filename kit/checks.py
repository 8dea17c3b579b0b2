"""The checks a teacher makes before a long run (CS231n's "babysitting the learning
process", Karpathy's "A Recipe for Training Neural Networks"), for one configuration:
the loss at initialization against ln 10, the analytic gradient against a numerical
one, and overfitting 20 training images. `train.py --sanity` prints one line each.

Each check is a function returning a `Check`; `run_checks` runs all three on the
network the run would start from (the same seed, split and initialization), and
nothing here writes a file.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kit.config import RunConfig
from network import Network, softmax_cross_entropy

LN10 = math.log(10)
# Loss at initialization. Logits that start small give every class 1/10, a loss of
# ln 10; logits of spread s give about ln 10 + s**2 / 2 (and never much less: a
# network that knows nothing cannot beat uniform guessing). Within 1 of ln 10 is a
# spread up to about 1.4, the most a sound initialization gives here (0 hidden layers,
# Xavier, normal normalization measured +0.61); beyond it the network starts out
# confidently wrong, usually from weights drawn too large.
INIT_TOLERANCE = 1.0
INIT_PROBE = 1000            # training images the loss at initialization is measured on
# Gradient check: float64, centred differences, on a few training images.
GRAD_EXAMPLES = 8
GRAD_STEP = 1e-4             # h in (f(p + h) - f(p - h)) / 2h
GRAD_WEIGHTS = 20            # coordinates checked per layer: weights ...
GRAD_BIASES = 10             # ... and biases
# Rounding in float64 gives relative errors near 1e-9 here; a wrong term (a missing L1
# gradient, a slope off by a factor) gives 1e-3 or more. CS231n: below 1e-7 is good,
# above 1e-4 is usually a bug; 1e-6 sits between the two.
GRAD_THRESHOLD = 1e-6
# Overfitting: the training images, and how long it may take.
OVERFIT_IMAGES = 20
OVERFIT_STEPS = 20_000       # steps of batch_size images (2 sigmoid layers, SGD: 14,000)
OVERFIT_SECONDS = 30.0
OVERFIT_CHUNK = 10


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, pass or fail, the numbers in words, and what to
    try when it failed."""
    name: str
    passed: bool
    detail: str
    advice: str = ""


def initial_loss_check(net: Network, x: np.ndarray, y: np.ndarray) -> Check:
    """The mean cross-entropy of the untrained net on x (N, 784), y (N,), against ln 10."""
    with np.errstate(over="ignore", invalid="ignore"):
        loss = net.loss(x, y)
    off = loss - LN10
    passed = math.isfinite(loss) and abs(off) <= INIT_TOLERANCE
    return Check("initial loss", passed,
                 f"{loss:.4f}, ln 10 {'+' if off >= 0 else '-'} {abs(off):.4f} "
                 f"(limit ln 10 +/- {INIT_TOLERANCE:g}), {len(y):,} images",
                 "" if passed else "the network starts out confidently wrong: its initial "
                 "weights are too large (try --init xavier, or gauss) or the inputs are not "
                 "normalized")


def _layer_slices(sizes: list[int]) -> list[tuple[slice, slice]]:
    """(weights, biases) of each layer as slices of the flat `Network.params`."""
    out, pos = [], 0
    for m, n in zip(sizes[:-1], sizes[1:]):
        out.append((slice(pos, pos + m * n), slice(pos + m * n, pos + m * n + n)))
        pos += m * n + n
    return out


def objective(net: Network, x: np.ndarray, y: np.ndarray, l1: float = 0.0, l2: float = 0.0
              ) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy + l1 * sum|W| + l2 / 2 * sum W**2 from a plain forward pass (not
    the training path whose gradient is checked), and which ReLU units are on (z > 0)
    for each image: where that changes, the loss has a kink."""
    a, on = x, []
    with np.errstate(over="ignore"):
        for w, b in zip(net.weights[:-1], net.biases[:-1]):
            z = a @ w + b
            if net.activation == "relu":
                on.append(z > 0)
                a = np.maximum(z, 0)
            else:
                a = 1 / (1 + np.exp(-z))
    loss = softmax_cross_entropy(a @ net.weights[-1] + net.biases[-1], y)[0]
    if l1:
        loss += l1 * net.l1_penalty()
    if l2:
        loss += l2 * net.l2_penalty()
    return loss, on


def _crosses_kink(on: list[np.ndarray], *others: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, b) for other in others for a, b in zip(on, other))


def gradient_check(net: Network, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                   l1: float = 0.0, l2: float = 0.0) -> tuple[Check, list[float]]:
    """Training's gradient (`Network.backprop`, via loss_and_grad) against centred
    differences of `objective`, in float64, on x (N, 784), y (N,).

    In each layer GRAD_WEIGHTS weights and GRAD_BIASES biases are drawn from rng: the
    weights among those whose input pixel or unit is non-zero for one of the images
    (the others' cross-entropy gradient is exactly 0 whatever the code). Left out, as
    the derivative does not exist there: with L1, weights within 10 h of 0 (the kink of
    |W|); with ReLU, a coordinate whose +-h turns a unit on or off for an image.
    A layer's error is ||analytic - numerical|| / (||analytic|| + ||numerical||) over
    its coordinates. Returns the check and each layer's error.
    """
    net64 = Network(net.sizes, net.activation, "xavier", np.random.default_rng(0), np.float64)
    net64.params[...] = net.params
    x = np.asarray(x, np.float64)
    _, analytic = net64.loss_and_grad(x, y, l1=l1, l2=l2)
    base_on = objective(net64, x, y)[1]
    # Each layer's input on these images: which weights' gradients can be non-zero.
    inputs, a = [x], x
    for w, b in zip(net64.weights[:-1], net64.biases[:-1]):
        z = a @ w + b
        a = np.maximum(z, 0) if net64.activation == "relu" else 1 / (1 + np.exp(-z))
        inputs.append(a)
    errors = []
    params = net64.params
    for (w_slice, b_slice), layer_input in zip(_layer_slices(net.sizes), inputs):
        fan_out = b_slice.stop - b_slice.start
        live_rows = np.flatnonzero(np.any(layer_input != 0, axis=0))
        weights = (live_rows[:, None] * fan_out + np.arange(fan_out)).ravel() + w_slice.start
        if l1:
            weights = weights[np.abs(params[weights]) > 10 * GRAD_STEP]
        biases = np.arange(b_slice.start, b_slice.stop)
        coords, numerical = [], []
        for pool, wanted in ((weights, GRAD_WEIGHTS), (biases, GRAD_BIASES)):
            taken = 0
            # Draw in a random order until enough coordinates away from kinks are found.
            for i in rng.permutation(pool)[:20 * wanted]:
                saved = params[i]
                params[i] = saved + GRAD_STEP
                up, up_on = objective(net64, x, y, l1, l2)
                params[i] = saved - GRAD_STEP
                down, down_on = objective(net64, x, y, l1, l2)
                params[i] = saved
                if _crosses_kink(base_on, up_on, down_on):
                    continue
                coords.append(i)
                numerical.append((up - down) / (2 * GRAD_STEP))
                taken += 1
                if taken == wanted:
                    break
        a_part, numerical = analytic[coords], np.array(numerical)
        scale = np.linalg.norm(a_part) + np.linalg.norm(numerical)
        errors.append(float(np.linalg.norm(a_part - numerical) / scale) if scale else 0.0)
    worst = max(errors)
    passed = math.isfinite(worst) and worst < GRAD_THRESHOLD
    return Check("gradient", passed,
                 f"relative error {worst:.1e} (limit {GRAD_THRESHOLD:.0e}), float64, "
                 f"{len(y)} images",
                 "" if passed else "the gradient that training follows is not the "
                 "derivative of the loss: the backpropagation code (or a penalty's "
                 "gradient) is wrong; training would follow a wrong direction"), errors


def overfit_check(config: RunConfig, net: Network, x: np.ndarray, y: np.ndarray,
                  rng: np.random.Generator, max_steps: int = OVERFIT_STEPS,
                  max_seconds: float = OVERFIT_SECONDS) -> Check:
    """Train net (changed in place) on x (N, 784), y (N,) alone with the configuration's
    optimizer, learning rate (without decay) and batch size (at most N), L1, L2, dropout
    and augmentation off, until every image is classified right; fail after max_steps
    steps or max_seconds."""
    from optim import make_optimizer
    from training import TrainingDiverged, train_epoch
    optimizer = make_optimizer(config.optimizer, config.momentum)
    batch = min(config.batch_size, len(y))
    per_pass = len(y) // batch
    steps, accuracy, loss = 0, 0.0, float("nan")
    start = time.perf_counter()
    diverged = False
    while steps < max_steps and time.perf_counter() - start < max_seconds:
        try:
            train_epoch(net, x, y, optimizer, config.learning_rate, rng, batch_size=batch)
        except TrainingDiverged:
            diverged = True
            steps += per_pass
            break
        steps += per_pass
        with np.errstate(over="ignore", invalid="ignore"):
            # In chunks of 10 rows: OpenBLAS hands a product of 20 rows to its threads,
            # which on a busy machine cost 5 ms a call against 40 us for 10 (measured).
            loss, accuracy = net.evaluate(x, y, chunk=OVERFIT_CHUNK)
        if not math.isfinite(loss):
            diverged = True
            break
        if accuracy == 1.0:
            return Check(f"overfit {len(y)} images", True, f"100% after {steps:,} steps "
                         f"(limit {max_steps:,}), loss {loss:.3f}")
    lr = f"--learning-rate {config.learning_rate:g}"
    if diverged:
        return Check(f"overfit {len(y)} images", False, f"the loss became NaN or infinite "
                     f"after {steps:,} steps", f"{lr} is too large: it diverges; try one "
                     "10 times smaller (python train.py --find-lr suggests one)")
    limit = "the limit" if steps >= max_steps else f"stopped at the limit of {max_seconds:g} s"
    return Check(f"overfit {len(y)} images", False, f"{100 * accuracy:.0f}% after {steps:,} "
                 f"steps ({limit}), loss {loss:.3f}",
                 "a network that cannot learn 20 images by heart will not learn 58,000: "
                 f"{lr} may be too small or too large (python train.py --find-lr), or the "
                 "gradient is too weak to move it (ReLU, Xavier or Momentum learn faster)")


def iter_checks(config: RunConfig, data, rng: np.random.Generator) -> Iterator[Check]:
    """The three checks, each as it finishes, on the network that config's run would start
    from: rng is the run's generator after it drew the split of data
    (lifecycle.load_data_for), so the network drawn next has the run's initial weights."""
    net = config.build_network(rng)
    x, y = data.train.x, data.train.y
    yield initial_loss_check(net, x[:INIT_PROBE], y[:INIT_PROBE])
    l1 = config.l1_lambda if config.l1 else 0.0
    yield gradient_check(net, x[:GRAD_EXAMPLES], y[:GRAD_EXAMPLES], rng, l1, config.l2)[0]
    small = np.ascontiguousarray(x[:OVERFIT_IMAGES])
    yield overfit_check(config, net, small, y[:OVERFIT_IMAGES].copy(), rng)


def switched_off(config: RunConfig) -> list[str]:
    """What the checks leave out of this configuration, in words (one line per check)."""
    notes = []
    if config.dropout:
        notes.append(f"For the gradient check: no dropout (--dropout {config.dropout:g} is off).")
    off = [name for name, on in (("L1", config.l1), ("L2", config.l2),
                                 ("dropout", config.dropout), ("augmentation", config.augment),
                                 ("decay", config.decay)) if on]
    also = []
    if off:
        also.append("no " + (off[0] if len(off) == 1 else f"{', '.join(off[:-1])} or {off[-1]}"))
    if config.batch_size > OVERFIT_IMAGES:
        also.append(f"batches of {OVERFIT_IMAGES}, not {config.batch_size}")
    if also:
        notes.append(f"For overfitting: {'; '.join(also)}.")
    return notes


# ---- train.py --sanity --------------------------------------------------------------------

def sanity_command(config: RunConfig, data_dir, out) -> int:
    """train.py --sanity: the three checks of config, one line each as it finishes.
    Returns 0 when all pass, else 1. Writes no file. Raises MnistError or RunError
    while the data loads (the caller reports them)."""
    from kit.lifecycle import load_data_for
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    data = load_data_for(config, rng, data_dir)
    out.say(out.wrap(f"Sanity checks of {config.summary()}, seed {config.seed} (no run "
                     "folder is written):"))
    for note in switched_off(config):
        out.say(out.wrap(f"  {note}", indent="    "))
    results = []
    for check in iter_checks(config, data, rng):
        results.append(check)
        out.say(out.wrap(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}",
                         indent="      "))
        if check.advice:
            out.say(out.wrap(f"      {check.advice}.", indent="      "))
    failed = [c.name for c in results if not c.passed]
    seconds = time.perf_counter() - start
    if failed:
        out.say(out.wrap(f"{len(failed)} of {len(results)} checks failed ({', '.join(failed)}) "
                         f"in {seconds:.1f} s; fix this before a long run."))
        return 1
    out.say(f"All {len(results)} checks passed in {seconds:.1f} s.")
    return 0
