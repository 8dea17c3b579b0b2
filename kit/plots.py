"""Graphs of a run's history, and the rule for when a window may be opened.

Figures are drawn with matplotlib's object API on the Agg canvas and saved
before anything is shown (the original project saved after plt.show(), which
wrote blank images), so saving never needs a display.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from kit import signals
from kit.fsutil import atomic_file

# The look shared by the saved graphs and the live window (live_plots.py).
SPLIT_STYLE = {"train": ("Train", "tab:blue"), "val": ("Validation", "tab:orange"),
               "test": ("Test", "tab:green")}
LOSS_LABEL = "Mean cross-entropy (without penalty)"
PENALTIES = (("l1_penalty", "L1 penalty \u03bb\u00b7\u03a3|W|"),
             ("l2_penalty", "L2 penalty \u03bb/2\u00b7\u03a3W\u00b2"))
PENALTY_NOTE = "(added to the training objective)"
PENALTY_STYLE = dict(color="0.35", linestyle="--")
BEST_LINE_STYLE = dict(color="0.5", linestyle=":", linewidth=1)
BEST_STAR_STYLE = dict(marker="*", markersize=12, color="tab:orange", markeredgecolor="black",
                       linestyle="none")


def best_label(epoch: int, row: dict) -> str:
    """The legend entry of the best validation epoch's star; row: that epoch's history row."""
    return f"Best validation: epoch {epoch} (test {100 * row['test_accuracy']:.2f} %)"


def save_figure(fig: Figure, path: Path) -> Path:
    """Save a figure atomically as PNG (a temporary file beside it, then a rename)."""
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return path


def plot_history(rows: Sequence[dict], folder: Path, title: str = "",
                 best_epoch: int | None = None) -> list[Path]:
    """accuracy.png, loss.png and learning_rate.png of a run's per-epoch history.

    best_epoch: the best validation epoch, marked on the accuracy graph (its weights are kept).
    The loss graph shows the mean cross-entropy of each split; when a penalty is on (L1, L2)
    it is drawn apart, as the amount the training objective adds to the cross-entropy.
    The legends stand beside the plotting area, where they cannot hide a curve."""
    epochs = [r["epoch"] for r in rows]
    marker = dict(marker="o", markersize=3) if len(rows) <= 30 else {}
    paths = []
    for metric, ylabel, name in (("accuracy", "Accuracy (%)", "accuracy.png"),
                                 ("loss", LOSS_LABEL, "loss.png")):
        fig = Figure(figsize=(9, 4.5))
        ax = fig.add_subplot()
        for split, (label, colour) in SPLIT_STYLE.items():
            values = [r[f"{split}_{metric}"] * (100 if metric == "accuracy" else 1) for r in rows]
            ax.plot(epochs, values, color=colour, label=label, **marker)
        if metric == "accuracy" and best_epoch is not None:
            best = next((r for r in rows if r["epoch"] == best_epoch), None)
            if best is not None:
                ax.axvline(best_epoch, **BEST_LINE_STYLE)
                ax.plot([best_epoch], [100 * best["val_accuracy"]], **BEST_STAR_STYLE,
                        label=best_label(best_epoch, best))
        if metric == "loss":
            for column, label in PENALTIES:
                values = [r.get(column) for r in rows]
                if any(values):
                    ax.plot(epochs, values, **PENALTY_STYLE, label=f"{label}\n{PENALTY_NOTE}", **marker)
        if metric == "accuracy":
            least_span(ax, MIN_ACCURACY_SPAN, 0.0, 100.0)
        ax.set_title(f"{metric.capitalize()} per epoch" + (f"\n{title}" if title else ""))
        _epoch_axis(ax, epochs)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize="small")
        fig.tight_layout()
        paths.append(save_figure(fig, folder / name))
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.plot(epochs, [r["learning_rate"] for r in rows], color="tab:purple", **marker)
    ax.set_title("Learning rate per epoch" + (f"\n{title}" if title else ""))
    _epoch_axis(ax, epochs)
    ax.set_ylabel("Learning rate")
    # From 0: a constant rate is a flat line at its value (autoscaling spanned 0.96-1.04
    # x 1e-3 with an offset label), a decay is seen for how much of the rate it took.
    rates = [r["learning_rate"] for r in rows]
    if rates and max(rates) > 0:
        ax.set_ylim(0, 1.1 * max(rates))
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3), useOffset=False)
    ax.grid(alpha=0.3)  # one curve, named by the title and the axis: no legend
    fig.tight_layout()
    paths.append(save_figure(fig, folder / "learning_rate.png"))
    return paths


# The least span of the accuracy graph's y axis, in percentage points: a run at chance
# level wobbles by tenths of a point, which a zoomed axis draws as a trend.
MIN_ACCURACY_SPAN = 5.0


def least_span(ax, span: float, low: float, high: float) -> None:
    """Widen ax's y limits around their middle to at least span, kept within low..high."""
    bottom, top = ax.get_ylim()
    if top - bottom >= span:
        return
    middle = (bottom + top) / 2
    bottom, top = middle - span / 2, middle + span / 2
    if bottom < low:
        bottom, top = low, low + span
    if top > high:
        bottom, top = high - span, high
    ax.set_ylim(bottom, top)


def _epoch_axis(ax, epochs: Sequence[int]) -> None:
    """Epochs are whole numbers: integer ticks only, every epoch labelled on short runs."""
    from matplotlib.ticker import MaxNLocator
    ax.set_xlabel("Epoch")
    if epochs:
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        if len(epochs) <= 12:
            ax.set_xticks(list(epochs))
            return
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# Backends that draw into files only: with one of these, show() opens nothing.
NON_INTERACTIVE = ("agg", "pdf", "svg", "ps", "cairo", "template", "pgf")


def display_available() -> bool:
    """Whether a window can be opened: an interactive matplotlib backend and,
    on Linux, a display. MPLBACKEND is respected (MPLBACKEND=Agg means never)."""
    backend = os.environ.get("MPLBACKEND", "").lower()
    if backend:
        return backend not in NON_INTERACTIVE \
            and not backend.startswith("module://matplotlib_inline")
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def interactive_backend() -> str | None:
    """The name of pyplot's backend when it can open windows, else None. Without a GUI
    toolkit (no tkinter, say), matplotlib quietly falls back to Agg, whose show() does nothing."""
    import matplotlib.pyplot as plt
    backend = plt.get_backend()
    return None if backend.lower() in NON_INTERACTIVE else backend


def show_images(paths: Sequence[Path], opened=None) -> str | None:
    """Open saved PNGs in windows and block until they are closed; opened(), when given,
    is called once the windows really exist (a GUI backend started), before blocking.

    Returns None when they were shown, else why no window could open, in words with the
    cure: no display, no GUI toolkit installed, or a display that cannot be reached."""
    if not display_available():
        backend = os.environ.get("MPLBACKEND", "")
        return (f"MPLBACKEND={backend} draws into files only" if backend
                else "no display (DISPLAY and WAYLAND_DISPLAY are not set)")
    display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or "the display"

    def unreachable(err: BaseException) -> str:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"the display {display} cannot be reached ({detail}); check DISPLAY"

    try:
        import matplotlib.image as mpimg
        import matplotlib.pyplot as plt
    except ImportError as err:  # MPLBACKEND names a toolkit that is not installed
        return f"no GUI toolkit for matplotlib ({err}); install one (python3-tk, for example)"
    if interactive_backend() is None:
        # matplotlib fell back to Agg: either no toolkit is installed or the display is
        # unreachable (it checks). Tk ships with most Pythons: it tells the two apart.
        try:
            import tkinter
        except ImportError:
            return ("no GUI toolkit for matplotlib (none of Tk, Qt or GTK is installed); "
                    "install one (python3-tk, for example)")
        try:
            tkinter.Tk().destroy()
        except Exception as err:  # TclError: no display name, or cannot connect
            if signals.received():  # a Ctrl-C that a library turned into its own error
                raise
            return unreachable(err)
        return "matplotlib chose a backend that cannot open windows; set MPLBACKEND=TkAgg"
    try:
        for path in paths:
            image = mpimg.imread(path)
            fig = plt.figure(path.name)
            # Pixel for pixel (a smaller window would shrink the text of features.png's
            # tiles past reading), unless the screen is too small for it.
            fig.set_size_inches(image.shape[1] / fig.dpi, image.shape[0] / fig.dpi)
            fit_to_screen(fig)
            ax = fig.add_axes((0, 0, 1, 1))
            ax.imshow(image, interpolation="antialiased")
            ax.axis("off")
    except ImportError as err:
        plt.close("all")
        return f"no GUI toolkit for matplotlib ({err}); install one (python3-tk, for example)"
    except Exception as err:  # the backend could not start a window (display gone, say)
        plt.close("all")
        if signals.received():
            raise
        return unreachable(err)
    if opened is not None:
        opened()
    show_windows()
    return None


# ---- dynamics.png: inside the epochs ------------------------------------------------------

LN10 = 2.302585092994046   # the loss of a network that gives every digit 1/10
UPDATE_BAND = (1e-4, 1e-2)   # healthy update ratios ||dW|| / ||W||; 1e-3 the rule of thumb
EXAMPLES_LINEAR = 1000     # the examples axis is linear below this (so step 0 shows), log above


SMOOTH = 9                 # rows in the running median drawn over a noisy per-step measure


def examples_axis(ax, most: float) -> None:
    """Examples seen, from 0 (step 0, before any update) to most on a log scale: symlog,
    linear below EXAMPLES_LINEAR, ticks at 0 and the powers of ten."""
    from matplotlib.ticker import FixedLocator, NullFormatter
    ax.set_xscale("symlog", linthresh=EXAMPLES_LINEAR, linscale=0.3)
    top = max(most, 10 * EXAMPLES_LINEAR)
    ax.set_xlim(0, top * 1.05)
    powers = [10.0 ** k for k in range(3, int(math.log10(top)) + 1)]
    ax.xaxis.set_major_locator(FixedLocator([0.0, *powers]))
    ax.xaxis.set_minor_locator(FixedLocator([m * p for p in powers for m in range(2, 10)]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Examples seen (log scale; 0 = before any update)")


def running_median(values: Sequence[float], window: int = SMOOTH) -> list[float]:
    """Each value's centred running median over window values (NaN ones left out)."""
    import numpy as np
    v = np.asarray(values, dtype=float)
    half = window // 2
    out = []
    for i in range(len(v)):
        part = v[max(0, i - half):i + half + 1]
        part = part[~np.isnan(part)]
        out.append(float(np.median(part)) if len(part) else math.nan)
    return out


def _noisy_lines(ax, seen, rows, columns, colours, prefix="layer") -> None:
    """One measure per layer: each step's value faint, its running median solid."""
    for k, column in enumerate(columns):
        values = [r[column] for r in rows]
        colour = colours[k % len(colours)]
        ax.plot(seen, values, color=colour, linewidth=0.6, alpha=0.3)
        ax.plot(seen, running_median(values), color=colour, linewidth=1.6,
                label=f"{prefix} {column.rsplit('_', 1)[1]}")


def plot_dynamics(rows: Sequence[dict], folder: Path, title: str = "") -> Path:
    """dynamics.png of dynamics.csv's rows (kit/dynamics.py): four panels against examples
    seen: the training loss from step 0 with ln 10 marked, each layer's gradient norm,
    each layer's update ratio in its healthy band, and each hidden layer's dead (ReLU) or
    saturated (sigmoid) share of units. Each title says what healthy looks like."""
    from kit.dynamics import layer_columns
    header = list(rows[0]) if rows else []
    seen = [r["examples_seen"] for r in rows]
    fig = Figure(figsize=(12, 8.5))
    (loss_ax, grad_ax), (ratio_ax, unit_ax) = fig.subplots(2, 2)
    colours = [f"C{i}" for i in range(10)]

    loss_ax.plot(seen, [r["train_loss"] for r in rows], color="tab:blue", marker=".",
                 markersize=3, linewidth=1, label="Training loss (mean since the previous point)")
    loss_ax.axhline(LN10, color="0.4", linestyle="--", linewidth=1,
                    label="ln 10 = 2.30: guessing (where step 0 should be)")
    loss_ax.set_title("Training loss from step 0\nhealthy: starts at ln 10, falls within the "
                      "first thousands of examples; sick: flat at ln 10", fontsize="medium")
    loss_ax.set_ylabel("Mean cross-entropy")
    top = max([LN10] + [r["train_loss"] for r in rows if r["train_loss"] == r["train_loss"]])
    loss_ax.set_ylim(0, 1.35 * top)   # room above for the legend

    _noisy_lines(grad_ax, seen, rows, layer_columns(header, "grad_norm"), colours)
    grad_ax.set_yscale("log")
    grad_ax.set_title("Gradient norm per layer (faint: one step's batch; solid: running median)\nhealthy: "
                      "layers within ~10x of each other; sick: the first 100x below the last",
                      fontsize="medium")
    grad_ax.set_ylabel("||dLoss/dW||")

    _noisy_lines(ratio_ax, seen, rows, layer_columns(header, "update_ratio"), colours)
    low, high = UPDATE_BAND
    ratio_ax.axhspan(low, high, color="tab:green", alpha=0.12, label=f"healthy band {low:g} to {high:g}")
    ratio_ax.axhline(1e-3, color="tab:green", linestyle="--", linewidth=1, label="1e-3 (rule of thumb)")
    ratio_ax.set_yscale("log")
    ratio_ax.set_title("Update ratio ||dW|| / ||W|| of one step per layer\nhealthy: near 1e-3; "
                       "above 1e-2: learning rate too high; below 1e-4: too low", fontsize="medium")
    ratio_ax.set_ylabel("||dW|| / ||W||")

    kind = "dead" if layer_columns(header, "dead") else "saturated"
    unit_columns = layer_columns(header, kind)
    for k, column in enumerate(unit_columns):
        unit_ax.plot(seen, [100 * r[column] for r in rows], color=colours[k % 10], linewidth=1,
                     label=f"hidden layer {column.rsplit('_', 1)[1]}")
    unit_ax.set_ylim(-3, 103)
    unit_ax.set_ylabel(f"{kind.capitalize()} units (%)")
    if kind == "dead":
        what = "Dead ReLU units (0 on every probe image)"
    else:
        what = "Saturated sigmoid units (<0.02 or >0.98 on 95 % of probe images)"
    unit_ax.set_title(f"{what}\nhealthy: near 0 %; sick: a large share, which learns no more",
                      fontsize="medium")
    if not unit_columns:
        unit_ax.text(0.5, 0.5, "no hidden layer", transform=unit_ax.transAxes, ha="center",
                     va="center", color="0.4")

    for ax in (loss_ax, grad_ax, ratio_ax, unit_ax):
        examples_axis(ax, max(seen, default=0))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="upper right" if ax is loss_ax else "best")
    if title:
        fig.suptitle(f"Inside the epochs: {title}")
    fig.tight_layout()
    return save_figure(fig, folder / "dynamics.png")


# What a window manager and a desktop's panels take around a window, in pixels: a title
# bar and a frame, a top or a bottom bar.
DECORATION = (16, 72)


def fit_scale(figure_px: tuple[float, float], toolbar_px: float, screen_px: tuple[int, int],
              decoration: tuple[int, int] = DECORATION) -> float:
    """The factor (at most 1) by which a figure of figure_px (width, height) must shrink
    so that its window, the figure above a toolbar of toolbar_px, fits screen_px with
    room for the decoration."""
    width, height = figure_px
    room_w = screen_px[0] - decoration[0]
    room_h = screen_px[1] - decoration[1] - toolbar_px
    return min(1.0, room_w / width, room_h / height)


def fit_to_screen(fig: Figure) -> float:
    """Shrink a pyplot figure, proportions kept, whose window (the figure and its toolbar)
    would not fit the screen; returns the factor (1.0: it fits as it is). Text keeps its
    size in points, so only the room between it shrinks. Tk windows only: other toolkits
    size their windows themselves."""
    manager = getattr(fig.canvas, "manager", None)
    window = getattr(manager, "window", None)
    if window is None or not hasattr(window, "winfo_screenheight"):
        return 1.0
    toolbar = getattr(manager, "toolbar", None)
    bar = toolbar.winfo_reqheight() if hasattr(toolbar, "winfo_reqheight") else 0
    w, h = fig.get_size_inches()
    scale = fit_scale((w * fig.dpi, h * fig.dpi), bar,
                      (window.winfo_screenwidth(), window.winfo_screenheight()))
    if scale < 1:
        fig.set_size_inches(w * scale, h * scale, forward=True)
    return scale


# How often the GUI's event loop hands control back to Python while windows are open.
POLL_MS = 50


@contextlib.contextmanager
def ctrl_c_closes_windows(poll_ms: int = POLL_MS) -> Iterator[None]:
    """Within the block (which runs the GUI's event loop: plt.show()), a Ctrl-C closes
    every pyplot window at once; the block then ends and the SIGINT handler that was in
    place runs (KeyboardInterrupt, usually), outside any GUI callback.

    Tk's event loop waits inside Tcl for the next GUI event, and Python runs a signal's
    handler only when it runs Python code again: a Ctrl-C did nothing until the mouse
    passed over a window. A timer on every window wakes the loop every poll_ms. The
    handler only notes the signal: raised inside a Tk callback (the timer's, a redraw's),
    KeyboardInterrupt would be printed as a traceback by Tk and swallowed."""
    import matplotlib.pyplot as plt
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield  # Ctrl-C ignored (nohup, a background job), or not ours to handle
        return
    pending: list[int] = []

    def note(signum, frame) -> None:
        pending.append(signum)

    def poll() -> None:
        if pending:
            plt.close("all")

    timers = []
    for number in plt.get_fignums():
        canvas = plt.figure(number).canvas
        timer = canvas.new_timer(interval=poll_ms)
        timer.add_callback(poll)
        # A closed window's timer would fire into a destroyed widget: stopped with it.
        canvas.mpl_connect("close_event", lambda event, t=timer: t.stop())
        timer.start()
        timers.append(timer)
    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        for timer in timers:
            timer.stop()
    if pending:
        previous(pending[0], None)


def show_windows() -> None:
    """plt.show(): block until every pyplot window is closed, or Ctrl-C closes them
    (KeyboardInterrupt then, from the handler in place; see ctrl_c_closes_windows)."""
    import matplotlib.pyplot as plt
    with ctrl_c_closes_windows():
        plt.show()
