"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural
Networks", section 3.3; fastai's `lr_find`): train from the initial weights while the
learning rate grows exponentially, one step at a time, and watch the loss.

The loss first stays flat (the rate is too small to move anything), then falls, then
turns and explodes (the rate is too large). `range_test` records each step's loss and
its smoothed value (an exponential moving average with bias correction, as fastai) and
stops when the smoothed loss exceeds STOP_FACTOR times its minimum; `suggest` picks a
rate from the curve; `plot` draws it. `train.py --find-lr` is `find_lr_command`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from network import Network, softmax_cross_entropy
from training import blocks

LR_MIN, LR_MAX = 1e-6, 1.0   # the sweep's default bounds (fastai's are 1e-7 and 10)
# The moving average's weight of the past: fastai's 0.98 averages about 50 steps, 3,200
# images at its batches of 64; at this kit's batches of 4, 50 steps are 200 images and the
# curve is too noisy to read (measured), so the average spans SMOOTH_IMAGES images instead:
# beta = 1 - batch_size / SMOOTH_IMAGES (0.996 at batch 4), never below 0.98.
BETA = 0.98
SMOOTH_IMAGES = 1000
STOP_FACTOR = 4.0            # stop once the smoothed loss is 4 times its minimum (fastai's)


@dataclass(frozen=True)
class RangeTest:
    """What a range test saw: per step, its learning rate, its batch's loss before the
    step (cross-entropy alone) and the smoothed loss; why it stopped."""
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    planned: int          # the steps of the whole sweep, lr_min to lr_max
    beta: float           # the moving average's weight of the past
    reason: str           # why it stopped, in words

    @property
    def steps(self) -> int:
        return len(self.lrs)


def range_test(net: Network, x: np.ndarray, y: np.ndarray, optimizer,
               rng: np.random.Generator, *, batch_size: int, lr_min: float = LR_MIN,
               lr_max: float = LR_MAX, l1: float = 0.0, l2: float = 0.0,
               dropout: float = 0.0, augment=None, beta: float | None = None,
               stop_factor: float = STOP_FACTOR) -> RangeTest:
    """One pass at most over a fresh permutation of x (N, 784), y (N,), the learning rate
    of step k (0 .. S-1, S = N // batch_size) lr_min * (lr_max / lr_min) ** (k / (S - 1)).

    The steps are training's: net.backprop and optimizer.step, with the configuration's
    L1, L2, dropout (masks from rng) and augmentation (augment: a kit.augment.Augmenter).
    net and optimizer are changed. Stops early when the loss is NaN or infinite, or
    when the smoothed loss exceeds stop_factor times its minimum so far.
    beta: the moving average's weight of the past (default: smoothing_beta(batch_size)).
    """
    beta = smoothing_beta(batch_size) if beta is None else beta
    n, classes = len(x), net.sizes[-1]
    planned = n // batch_size
    if planned < 2:
        raise ValueError(f"{n} training images make fewer than two batches of {batch_size}")
    growth = (lr_max / lr_min) ** (1 / (planned - 1))
    lrs, losses, smoothed = (np.empty(planned) for _ in range(3))
    logits = np.empty((batch_size, classes), net.dtype)
    extras = {k: v for k, v in (("l2", l2), ("dropout", dropout)) if v}
    if dropout:
        extras["rng"] = rng
    perm = rng.permutation(n)
    average, best, step = 0.0, math.inf, 0
    reason = "it reached the largest learning rate"
    with np.errstate(over="ignore", invalid="ignore"):
        for _, xs, onehot, labels in blocks(x, y, perm, planned, batch_size, classes,
                                            net.dtype, augment):
            for s in range(0, len(labels), batch_size):
                lr = lr_min * growth ** step
                scale = lr if optimizer.lr_in_grad else 1.0
                net.backprop(xs[s:s + batch_size], onehot[s:s + batch_size], scale, l1,
                             logits, **extras)
                loss = softmax_cross_entropy(logits, labels[s:s + batch_size])[0]
                lrs[step], losses[step] = lr, loss
                if not math.isfinite(loss):
                    smoothed[step] = math.nan
                    step += 1
                    reason = "the loss became NaN or infinite"
                    return RangeTest(lrs[:step], losses[:step], smoothed[:step], planned, beta,
                                     reason)
                average = beta * average + (1 - beta) * loss
                smoothed[step] = value = average / (1 - beta ** (step + 1))
                step += 1
                if value > stop_factor * best:
                    reason = f"the smoothed loss passed {stop_factor:g} times its minimum"
                    return RangeTest(lrs[:step], losses[:step], smoothed[:step], planned, beta,
                                     reason)
                best = min(best, value)
                optimizer.step(net.params, net.grad, lr)
    return RangeTest(lrs[:step], losses[:step], smoothed[:step], planned, beta, reason)


def smoothing_beta(batch_size: int) -> float:
    """The moving average's beta that spans about SMOOTH_IMAGES images (at least 0.98)."""
    return max(BETA, 1 - batch_size / SMOOTH_IMAGES)


@dataclass(frozen=True)
class Suggestion:
    """The suggested learning rate and the points of the curve it comes from."""
    lr: float
    min_lr: float          # where the smoothed loss was lowest
    min_loss: float
    steepest_lr: float     # where it fell fastest (per factor of learning rate)


def suggest(test: RangeTest) -> Suggestion:
    """One tenth of the learning rate where the smoothed loss was lowest (fastai's
    original rule, Smith's "an order of magnitude below where it diverges").

    The steepest descent is reported too: the slope of the smoothed loss against
    log10(lr), measured over a tenth of a decade to tame the noise of small batches,
    once the average spans a full window (after 2 / (1 - beta) steps).
    Raises ValueError when the test holds no finite smoothed loss."""
    finite = np.isfinite(test.smoothed)
    if not finite.any():
        raise ValueError("the loss was never finite: no learning rate can be suggested")
    i = int(np.nanargmin(np.where(finite, test.smoothed, np.nan)))
    min_lr = float(test.lrs[i])
    skip = min(int(2 / (1 - test.beta)), i)
    logs = np.log10(test.lrs[skip:i + 1])
    steepest = min_lr
    if len(logs) > 2:
        # The first point at least 0.1 decade ahead of each point.
        ahead = np.minimum(np.searchsorted(logs, logs + 0.1), len(logs) - 1)
        ok = logs[ahead] - logs >= 0.099
        if ok.any():
            slopes = np.full(len(logs), np.inf)
            j = np.flatnonzero(ok)
            part = test.smoothed[skip:i + 1]
            slopes[j] = (part[ahead[j]] - part[j]) / (logs[ahead[j]] - logs[j])
            steepest = float(test.lrs[skip + int(np.argmin(slopes))])
    return Suggestion(lr=min_lr / 10, min_lr=min_lr, min_loss=float(test.smoothed[i]),
                      steepest_lr=steepest)


def plot(test: RangeTest, best: Suggestion, path: Path, title: str = "") -> Path:
    """lr_finder.png: each step's loss (faint) and the smoothed loss against the learning
    rate on a log axis, the minimum and the suggestion marked; saved atomically."""
    from matplotlib.figure import Figure

    from kit.plots import save_figure
    fig = Figure(figsize=(8, 6))
    ax = fig.add_subplot()
    ax.plot(test.lrs, test.losses, color="tab:blue", alpha=0.08, linewidth=0.5,
            label="loss of each step's batch")
    ax.plot(test.lrs, test.smoothed, color="tab:blue", linewidth=2,
            label=f"smoothed (moving average, \u03b2 = {test.beta:g})")
    ax.axvline(best.min_lr, color="0.5", linestyle=":", linewidth=1)
    ax.plot([best.min_lr], [best.min_loss], "o", color="0.3",
            label=f"lowest smoothed loss {best.min_loss:.3f} at {best.min_lr:.2g}")
    at = float(np.interp(np.log10(best.lr), np.log10(test.lrs), test.smoothed))
    ax.axvline(best.lr, color="tab:red", linestyle="--", linewidth=1.5)
    ax.plot([best.lr], [at], "*", color="tab:red", markersize=14, markeredgecolor="black",
            label=f"suggested: {best.lr:.2g} (the lowest's / 10)")
    ax.plot([best.steepest_lr], [float(np.interp(np.log10(best.steepest_lr), np.log10(test.lrs),
                                                 test.smoothed))], "v", color="tab:green",
            label=f"steepest fall at {best.steepest_lr:.2g}")
    last = np.flatnonzero(np.isfinite(test.smoothed))[-1]
    ax.plot([test.lrs[last]], [test.smoothed[last]], "x", color="black",
            label=f"stopped at {test.lrs[-1]:.2g}: {test.reason}")
    ax.set_xscale("log")
    ax.set_xlabel("Learning rate (log scale)")
    ax.set_ylabel("Training loss (cross-entropy)")
    ln10 = math.log(10)
    finite = test.smoothed[np.isfinite(test.smoothed)]
    top = max(ln10 * 1.15, float(finite.max()) * 1.05) if len(finite) else ln10 * 1.15
    ax.set_ylim(0, min(top, STOP_FACTOR * best.min_loss * 1.2 + ln10))
    ax.axhline(ln10, color="0.6", linewidth=0.8)
    ax.annotate("ln 10: guessing", (test.lrs[-1], ln10), xytext=(-2, 3), ha="right",
                textcoords="offset points", fontsize="small", color="0.4")
    heading = "Learning-rate range test: too small (flat), good (falling), too large (rising)"
    ax.set_title(heading + (f"\n{title}" if title else ""), fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    # Below the axes: inside, every corner of the curve is something to see.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


# ---- train.py --find-lr ------------------------------------------------------------------

def train_command(config, lr: float, extra: list[str]) -> list[list[str]]:
    """`python train.py ...` training config with learning rate lr, as groups of words
    (a flag with its value): the eight answers, every hyperparameter that differs from
    its default, the learning rate, then extra (flag, value, flag, value...)."""
    from kit.config import RunConfig
    groups = [["python", "train.py"]]
    for name, option, default in RunConfig.options():
        value = lr if name == "learning_rate" else getattr(config, name)
        if name == "seed" or value is None or (name not in RunConfig.QUESTIONS
                                                and name != "learning_rate" and value == default):
            continue
        if isinstance(value, bool):
            text = "y" if value else "n"
        elif name == "learning_rate":
            text = f"{value:.2g}"
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
        groups.append([option.flag, text])
    return groups + [list(extra[i:i + 2]) for i in range(0, len(extra), 2)]


def shell_lines(groups: list[list[str]], width: int) -> list[str]:
    """A command as shell lines of at most width columns (a group of words is never
    split), continued with backslashes, so that it can be copied whole."""
    import shlex
    lines, line = [], "  "
    for group in groups:
        text = " ".join(map(shlex.quote, group))
        if line.strip() and len(line) + len(text) + 3 > width:
            lines.append(line + " \\")
            line = "      "
        line += ("" if not line.strip() else " ") + text
    return lines + [line]


def find_lr_command(config, data_dir, output_dir: Path, out, *, lr_min: float = LR_MIN,
                    lr_max: float = LR_MAX, extra: list[str] = (), show: bool = False) -> int:
    """train.py --find-lr: the range test on config's data and initial network, the graph
    in output_dir/lr_finder.png, the suggestion and the command using it. Returns the
    exit code. Raises MnistError or RunError (the caller reports them)."""
    from kit.config import RunError
    from kit.lifecycle import load_data_for, optimizer_for, train_options
    from kit.record import LEGACY_RECORD, RECORD, prepare_output_dir
    for record in (RECORD, LEGACY_RECORD):
        if (output_dir / record).is_file():
            raise RunError(f"--output-dir {out.path(output_dir)} is a run folder; lr_finder.png "
                           "goes beside runs, never inside one: choose its parent")
    path = output_dir / "lr_finder.png"
    rng = np.random.default_rng(config.seed)
    start = time.perf_counter()
    data = load_data_for(config, rng, data_dir)
    net = config.build_network(rng)
    options = train_options(config, data, rng)
    out.say(out.wrap(f"Learning-rate range test of {config.summary()}, seed {config.seed}: "
                     f"{lr_min:g} to {lr_max:g} over one epoch at most "
                     f"({len(data.train.y) // config.batch_size:,} steps of {config.batch_size})"))
    test = range_test(net, data.train.x, data.train.y, optimizer_for(config), rng,
                      batch_size=config.batch_size, lr_min=lr_min, lr_max=lr_max,
                      l1=options["l1"], l2=options["l2"], dropout=options["dropout"],
                      augment=options.get("augment"))
    out.say(out.wrap(f"Stopped after {test.steps:,} steps at learning rate {test.lrs[-1]:.2g}: "
                     f"{test.reason}."))
    try:
        best = suggest(test)
    except ValueError as err:
        return out.fail(f"{err}; lower --lr-min")
    prepare_output_dir(output_dir)
    plot(test, best, path, config.summary())
    seconds = time.perf_counter() - start
    out.say(f"Lowest smoothed loss {best.min_loss:.3f} at learning rate {best.min_lr:.2g}; "
            f"steepest fall at {best.steepest_lr:.2g}.")
    out.say(f"Suggested learning rate: {best.lr:.2g} (one tenth of the lowest's).")
    if best.min_lr == test.lrs[0]:
        out.say(out.wrap("Warning: the loss was lowest at the very start: lower --lr-min."))
    elif test.steps == test.planned and test.smoothed[-1] <= 1.5 * best.min_loss:
        out.say(out.wrap(f"Warning: the loss had not turned up by {lr_max:g}: raise --lr-max "
                         "to see where it does."))
    out.say(f"Graph: {out.path(path)} ({seconds:.1f} s). Train with it:")
    for line in shell_lines(train_command(config, best.lr, list(extra)), out.width() - 1):
        out.say(line)
    if show:
        from kit.plots import display_available, show_images
        if display_available():
            try:
                show_images([path])
            except KeyboardInterrupt:
                out.clear_line()
    return 0
