"""The run's accuracy, loss and learning-rate graphs in one window that grows while it trains.

`LiveGraphs` draws on a Figure it is given, so tests drive it on an Agg canvas;
`LiveGraphs.open` makes the pyplot window, or returns None when no window can open
(headless, MPLBACKEND=Agg, no toolkit, an unreachable display). The three panels show what
plots.plot_history saves: accuracy per split with the best validation epoch marked, the
mean cross-entropy per split (and the penalties when one is on), the learning rate.

Cost: a full redraw of the three panels (axes, ticks, text) costs a sizeable share of an
epoch, and so does drawing a legend's text; so most updates draw the lines alone. The
panels' limits are chosen to last (the epoch axis spans the planned epochs; accuracy
reaches up to 100 %, loss and learning rate down to 0, with headroom on the other side),
the lines and legends are `animated` (left out of full drawings), and an update pastes
the lines, then the legends' saved pixels, over the saved background (blitting), and
hands the GUI the panels alone. A full redraw, when a panel's limits must change, is done
only while the updates so far have taken under BUDGET of the time since the window
opened; else it waits (the lines still move; a line past a panel's edge is clipped until
then). So that the legends never change with the best epoch, the star's entry reads
"Best validation epoch" and a small boxed text below the star names the epoch and its
test accuracy: drawn anew only at a new best, its pixels pasted meanwhile, as a legend's.
The end lays the whole history out as plot_history does, the epoch and its test accuracy
back in the legend.
benchmarks/live_plots_speed.py measures all of this.

Updates never raise or focus the window: the new pixels are shown by the GUI's own event
processing (canvas.flush_events), never plt.pause, whose show() raises the window on some
backends.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from kit import plots

# Four panels side by side at 100 dpi: 1220 x 430 pixels. Tk scales a figure by the
# screen's dots per inch over 96 (measured under Xvfb: 1240 pixels became a 1292-pixel
# window), so the window is 1271 x 497 with its toolbar: it fits a 1280 x 1024 screen
# whole, and features.png's window (729 x 518) below it.
FIGSIZE = (12.2, 4.3)
TK_SCALE = 100 / 96
WIDTHS = (1.25, 1, 1, 0.8)   # the loss from step 0 first, the widest; the learning rate least
# Share of the time since the window opened that updates may take: the issue allows 3 %
# of the training time; the lines' blit (a few ms) runs whatever the budget says.
BUDGET = 0.02
# Seconds between drawings of the in-epoch loss: its points come every 256 steps (a
# fiftieth of a second for a small network), a blit costs a few milliseconds.
STEP_EVERY = 0.5
# Room left past the data on a panel's open side, as a share of the span shown, so that
# the next epochs' points land inside and need no full redraw.
HEADROOM = 0.25
MARGIN = 0.05           # matplotlib's own autoscale margin: the room past 100 % or 0
# Fixed legend places, empty while the lines grow from the left of a span of the planned
# epochs (accuracy rises, loss and learning rate fall); loc="best" would make legends jump.
LEGEND_LOC = ("lower right", "upper right", "upper right")
# Opaque: a legend's pixels are saved once and pasted over the lines at every blit.
LEGEND = dict(fontsize="small", framealpha=1.0)
# Where each panel's values head during training (accuracy up to 100 %, the loss and the
# learning rate down to 0): its y axis reaches there from the first epoch on.
ANCHORS = ((None, 100.0), (0.0, None), (0.0, None))


def grown_limits(view: tuple[float, float] | None, low: float, high: float,
                 anchors: tuple[float | None, float | None]) -> tuple[float, float]:
    """The y limits for data spanning low..high: view itself while the data fits in it;
    else limits that reach each anchor (low, high; None: open) with MARGIN, and the data's
    open side with HEADROOM, of the span shown; a side of view the data did not leave stays."""
    if view is not None and view[0] <= low and high <= view[1]:
        return view
    a_low, a_high = anchors
    bottom = low if a_low is None else min(low, a_low)
    top = high if a_high is None else max(high, a_high)
    span = max(top - bottom, 0.1 * abs(top), 1e-12)   # one constant value: a tenth of it
    lo = bottom - (HEADROOM if a_low is None else MARGIN) * span
    hi = top + (HEADROOM if a_high is None else MARGIN) * span
    if view is not None:
        lo = view[0] if low >= view[0] else lo
        hi = view[1] if high <= view[1] else hi
    return (float(lo), float(hi))


Box = tuple[int, int, int, int]   # a window on screen: x, y (its top left corner), width, height


def beside(taken: Sequence[Box], size: tuple[int, int], screen: tuple[int, int]) -> tuple[int, int]:
    """Where a window of size (width, height) goes on a screen of (width, height) so that it
    covers none of the windows in taken (the first: the live graphs): right of the last
    one when it fits, else below the lowest, else where it covers the least of them."""
    w, h = size
    sw, sh = screen
    right = max(x + bw for x, _, bw, _ in taken)
    low = max(y + bh for _, y, _, bh in taken)
    first_x, first_y = taken[0][0], taken[0][1]
    candidates = [(right, first_y), (first_x, low), (sw - w, sh - h), (right, low)]

    def covered(at: tuple[int, int]) -> int:
        x, y = at
        return sum(max(0, min(x + w, bx + bw) - max(x, bx)) * max(0, min(y + h, by + bh) - max(y, by))
                   for bx, by, bw, bh in taken)
    fitting = [(x, y) for x, y in candidates if x >= 0 and y >= 0 and x + w <= sw and y + h <= sh]
    if fitting:
        return min(fitting, key=covered)
    x, y = min(candidates, key=covered)
    return max(0, min(x, sw - w)), max(0, min(y, sh - h))


def window_box(fig: Figure) -> tuple[Box, tuple[int, int]] | None:
    """(where fig's window is, with its frame, and the screen's size), or None when its
    backend cannot say (only Tk and Qt windows are asked)."""
    window = getattr(getattr(fig.canvas, "manager", None), "window", None)
    if window is None:
        return None
    try:
        if hasattr(window, "winfo_rootx"):   # Tk
            window.update_idletasks()
            w = max(window.winfo_width(), window.winfo_reqwidth())
            h = max(window.winfo_height(), window.winfo_reqheight())
            return ((window.winfo_x(), window.winfo_y(), w, h),
                    (window.winfo_screenwidth(), window.winfo_screenheight()))
        if hasattr(window, "frameGeometry"):   # Qt
            g, screen = window.frameGeometry(), window.screen().availableGeometry()
            return (g.x(), g.y(), g.width(), g.height()), (screen.width(), screen.height())
    except _window_errors():   # a window closed meanwhile
        return None
    return None


def move_window(fig: Figure, x: int, y: int) -> None:
    """Put fig's window's top left corner at (x, y) on screen (Tk and Qt)."""
    window = getattr(getattr(fig.canvas, "manager", None), "window", None)
    try:
        if hasattr(window, "wm_geometry"):
            window.wm_geometry(f"+{int(x)}+{int(y)}")
        elif hasattr(window, "move"):
            window.move(int(x), int(y))
    except _window_errors():   # placing is a courtesy: a window that refuses stays
        pass


def _window_errors() -> tuple[type[BaseException], ...]:
    """What Tk (TclError) and Qt (RuntimeError: its window deleted) raise about a window."""
    try:
        from tkinter import TclError
    except ImportError:
        return (RuntimeError,)
    return (TclError, RuntimeError)


class LiveGraphs:
    """The three graphs of a run's history on fig: accuracy, loss and learning rate.

    update(rows, best_epoch) shows the history so far (rows: history.csv's dicts, one per
    committed epoch, in order); keep_open() shows the final layout and blocks until the
    window is closed; close() closes it. epochs: the run's planned last epoch (the epoch
    axis spans it from the start). close_window: what closes fig's window (plt.close for a
    pyplot figure). clock: seconds, for the redraw budget (tests pass their own)."""

    def __init__(self, fig: Figure, title: str = "", epochs: int | None = None,
                 close_window: Callable | None = None, clock: Callable[[], float] = time.perf_counter,
                 examples: int | None = None):
        self.fig = fig
        self.epochs = epochs
        self.close_window = close_window
        self.clock = clock
        self.closed = False
        self.shown = False           # the window appears at the first update
        self.rows: list[dict] = []
        self.best_epoch: int | None = None
        self.background = None       # the pixels of the last full drawing, without the lines
        self.legend_pixels: dict = {}  # each legend's drawn pixels, by panel
        self.legend_stale: set = set()  # panels whose legend changed since its pixels were kept
        self.text_pixels: tuple | None = None   # the best epoch's text: (what it said, pixels)
        self.opened_at: float | None = None   # when the first update showed the window
        self.spent = 0.0             # seconds all later updates took
        self.full_cost = 0.0         # seconds the last full redraw took
        self.full_redraws = self.blits = 0
        # One row of three panels, fixed margins: a layout engine would re-run at every
        # full redraw, and panels that shift as tick labels change are hard to read.
        fig.subplots_adjust(left=0.055, right=0.985, bottom=0.12, top=0.85, wspace=0.32)
        if title:
            fig.suptitle(title)
        self.step_ax, self.acc_ax, self.loss_ax, self.lr_ax = fig.subplots(
            1, 4, gridspec_kw={"width_ratios": WIDTHS})
        self.axes = (self.acc_ax, self.loss_ax, self.lr_ax)   # the per-epoch panels
        self.panels = (self.step_ax, *self.axes)
        self.steps: list[tuple[float, float]] = []   # (examples seen, training loss)
        self.examples = examples
        self.step_most: float | None = None   # the examples the in-epoch panel reaches
        self.steps_drawn = -math.inf           # when update_steps last drew
        self.lines: dict[str, Line2D] = {}
        for ax, metric, panel, ylabel in (
                (self.acc_ax, "accuracy", "Accuracy per epoch", "Accuracy (%)"),
                (self.loss_ax, "loss", "Loss per epoch", "Mean cross-entropy")):
            for split, (label, colour) in plots.SPLIT_STYLE.items():
                self.lines[f"{split}_{metric}"], = ax.plot([], [], color=colour, label=label)
            ax.set_title(panel)
            ax.set_ylabel(ylabel)
        # The best epoch: a dotted vertical line and a star on the validation curve.
        self.best_line = self.acc_ax.axvline(1, **plots.BEST_LINE_STYLE, visible=False)
        self.best_star, = self.acc_ax.plot([], [], **plots.BEST_STAR_STYLE, visible=False,
                                           label="_best")
        # The best epoch and its test accuracy, beside the star while training: in the
        # legend they would change it at each new best, and a legend costs several blits'
        # time to draw (benchmarks/live_plots_speed.py). Below the star, under the curves,
        # where the panel is empty: the curves run near the top (ANCHORS), the legend sits
        # at the bottom right. Opaque, as the legends, so that its pixels are kept and
        # pasted until it changes; clipped to the panel, which is all a blit shows.
        self.best_text = self.acc_ax.annotate(
            "", (1, 0), xytext=(0, -16), textcoords="offset points", va="top",
            fontsize="small", animated=True, visible=False, clip_on=True,
            bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="0.7"))
        self.lines["learning_rate"], = self.lr_ax.plot([], [], color="tab:purple",
                                                       label="Learning rate")
        self.lr_ax.set_title("Learning rate per epoch")
        self.lr_ax.set_ylabel("Learning rate")
        self.lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        self.penalty_lines: dict[str, Line2D] = {}   # made when a penalty is first nonzero
        for ax in self.axes:
            ax.set_xlabel("Epoch")
        # The training loss from step 0, every 256 steps (dynamics.csv's rows), against the
        # examples seen on a log scale, so that the first thousand steps take half the panel.
        self.step_line, = self.step_ax.plot([], [], color="tab:blue", marker=".", markersize=3,
                                            linewidth=1, label="Training loss")
        self.step_ax.axhline(plots.LN10, color="0.4", linestyle="--", linewidth=1,
                             label="ln 10: guessing")
        self.step_ax.set_title("Training loss from step 0")
        self.step_ax.set_ylabel("Mean cross-entropy")
        plots.examples_axis(self.step_ax, examples or 0)
        self.step_ax.set_xlabel("Examples seen (log)")
        # Its labels never change: a legend in the background, under the line.
        self.step_ax.legend(loc="upper right", **LEGEND)
        for ax in self.panels:
            ax.grid(alpha=0.3)
            for line in ax.lines:
                line.set_animated(line is not self.step_ax.lines[1])
        # The limits each panel was last given: a panel showing others was zoomed or
        # panned by the learner, and keeps that view (its Home button brings ours back).
        self.views: dict[Axes, tuple] = {}
        self.legend_labels: dict[Axes, list[str]] = {}
        fig.canvas.mpl_connect("draw_event", self.on_draw)
        fig.canvas.mpl_connect("close_event", self._on_close)

    # ---- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(cls, title: str = "", epochs: int | None = None,
             examples: int | None = None) -> LiveGraphs | None:
        """The graphs in a new window, shown at the first update; None when no window can
        open (no display, a backend that draws into files only, no GUI toolkit, a display
        that cannot be reached: plots.show_images tells which)."""
        if not plots.display_available():
            return None
        try:
            import matplotlib.pyplot as plt  # pyplot starts a GUI toolkit: only for a window
        except ImportError:   # MPLBACKEND names a toolkit that is not installed
            return None
        if plots.interactive_backend() is None:
            return None
        try:
            fig = plt.figure(figsize=FIGSIZE)
        except Exception:   # the backend could not start a window (TclError: no display)
            return None
        manager = getattr(fig.canvas, "manager", None)
        if manager is not None:
            manager.set_window_title(f"Training: {title}" if title else "Training")
        return cls(fig, title, epochs, close_window=plt.close, examples=examples)

    def place_others(self) -> None:
        """Move every other pyplot window (features.png's, at the end) beside this one, so
        that none covers the graphs (see beside). Only Tk and Qt windows can be asked
        where they are; on other backends the window manager places them."""
        import matplotlib.pyplot as plt
        ours = window_box(self.fig)
        if ours is None:
            return
        box, screen = ours
        taken = [box]
        for number in plt.get_fignums():
            fig = plt.figure(number)
            if fig is self.fig:
                continue
            theirs = window_box(fig)
            if theirs is None:
                continue
            (_, _, w, h), _ = theirs
            x, y = beside(taken, (w, h), screen)
            move_window(fig, x, y)
            taken.append((x, y, w, h))

    def _on_close(self, event=None) -> None:
        self.closed = True

    def close(self) -> None:
        """Close the window (nothing happens to the run)."""
        if not self.closed and self.close_window is not None:
            self.close_window(self.fig)
        self.closed = True

    def keep_open(self, images: Sequence[Path] = (), opened: Callable | None = None) -> bool:
        """Lay the whole history out as plot_history does, open the saved PNGs in `images`
        beside it (features.png, say), and block until every window is closed; opened() is
        called once they are all open. Returns False when Ctrl-C closed them (quietly),
        True when the learner did (or had already closed the graphs)."""
        if self.closed:
            return True
        self.finish()
        import matplotlib.pyplot as plt

        def placed() -> None:
            self.place_others()
            if opened is not None:
                opened()
        try:
            # Our window exists, so show_images finds a display: it opens the PNGs and
            # blocks in plt.show() until every pyplot window (ours too) is closed.
            plots.show_images(list(images), opened=placed)
        except KeyboardInterrupt:
            plt.close("all")
            return False
        finally:
            self.closed = True
        return True

    # ---- the graphs --------------------------------------------------------------------------

    def update(self, rows: Sequence[dict], best_epoch: int | None) -> str:
        """Show rows (every committed epoch so far) with best_epoch marked, then let the
        window handle its events without raising it. Returns how: "full" (a full redraw:
        the first update, or a panel's limits changed and the budget allows), "blit" (the
        lines and legends only), or "closed" (the window was closed: nothing to do)."""
        if self.closed:
            return "closed"
        self.rows, self.best_epoch = list(rows), best_epoch
        return self._refresh()

    def update_steps(self, points: Sequence[tuple[float, float]]) -> str:
        """Show the training loss so far inside the epochs: points are (examples seen, loss),
        one per dynamics.csv row from step 0. Returns as update does, or "waiting" when the
        last drawing was less than STEP_EVERY ago (the points show at the next one)."""
        if self.closed:
            return "closed"
        self.steps = list(points)
        now = self.clock()
        if self.opened_at is not None and now - self.steps_drawn < STEP_EVERY:
            return "waiting"   # shown at the next update (an epoch's, at the latest)
        self.steps_drawn = now
        return self._refresh()

    def _refresh(self) -> str:
        start = self.clock()
        self._set_lines()
        views = {ax: self._wanted_view(ax) for ax in self.panels}
        if self.opened_at is None:   # opening the window: a one-off, outside the budget
            self._set_views(views)
            self._full_redraw()
            self.opened_at = self.clock()
            return "full"
        allowance = BUDGET * (start - self.opened_at) - self.spent
        stale = self.background is None or any(
            view is not None and view != self.views.get(ax) for ax, view in views.items())
        if stale and allowance >= self.full_cost:
            self._set_views(views)
            self._full_redraw()
            how = "full"
        else:
            self._blit()
            how = "blit"
        self.spent += self.clock() - start
        return how

    def finish(self) -> None:
        """The whole history laid out as plot_history saves it (the epoch axis ends at the
        last epoch, the other fits the data, the legend names the best epoch and its test
        accuracy), in one full redraw."""
        if self.closed:
            return
        self._set_lines(final=True)
        epochs = [r["epoch"] for r in self.rows]
        for ax in self.axes:
            if self._user_view(ax) or not epochs:
                continue
            ax.relim()
            ax.autoscale_view(scalex=False)
            plots._epoch_axis(ax, epochs)   # whole-number epochs, as the saved graphs
            self.views[ax] = (ax.get_xlim(), ax.get_ylim())
        self._full_redraw()

    def _set_views(self, views: dict) -> None:
        for ax, view in views.items():
            if view is not None:
                self._set_view(ax, *view)

    def on_draw(self, event=None) -> None:
        """After every full drawing (ours, or a resize or zoom): keep its pixels as the
        background of later blits, and draw the lines, which it left out, over it."""
        canvas = self.fig.canvas
        if canvas.is_saving():   # savefig draws animated artists itself
            return
        if getattr(canvas, "supports_blit", False):
            self.background = canvas.copy_from_bbox(self.fig.bbox)
        self.legend_pixels.clear()   # a resize or a new layout moved them
        self.text_pixels = None
        self._draw_lines()

    def _full_redraw(self) -> None:
        start = self.clock()
        canvas = self.fig.canvas
        if not self.shown and canvas.manager is not None:
            # Not through plt.show or plt.pause: with figure.raise_window (on by default)
            # they raise the window above the learner's terminal at every call.
            with matplotlib.rc_context({"figure.raise_window": False}):
                canvas.manager.show()
            canvas.flush_events()   # the window appears: a one-off, not a redraw's cost
            start = self.clock()
        self.shown = True
        canvas.draw_idle()
        canvas.flush_events()   # the GUI runs the drawing now, then on_draw
        self.full_redraws += 1
        self.full_cost = self.clock() - start

    def _blit(self) -> None:
        canvas = self.fig.canvas
        if self.background is not None:
            canvas.restore_region(self.background)
            self._draw_lines()
            # Only the panels, where every animated artist lives: the GUI's copy of the
            # whole figure costs a third more. (Handing it only each panel's part right of
            # the last epoch, three copies, was measured no faster.)
            canvas.blit(Bbox.union([ax.bbox for ax in self.panels]).padded(1))
            self.blits += 1
        canvas.flush_events()   # a resize, a zoom: still answered

    def _draw_lines(self) -> None:
        """The lines, then the best epoch's text and the legends over them. Text costs
        far more to draw than the lines, so the pixels of each legend and of the best
        epoch's text are kept and pasted until it changes; a changed one is drawn at
        once, budget or not (a text naming another best epoch than the star's would
        mislead)."""
        canvas = self.fig.canvas
        blit = getattr(canvas, "supports_blit", False)
        for ax in self.panels:
            for line in ax.lines:
                if line.get_animated():
                    ax.draw_artist(line)
            if ax is self.acc_ax and self.best_text.get_visible():
                self._draw_best_text(blit)
            legend = ax.get_legend()
            if legend is None or not legend.get_animated():
                continue
            if ax in self.legend_pixels and ax not in self.legend_stale:
                canvas.restore_region(self.legend_pixels[ax])
                continue
            ax.draw_artist(legend)
            if blit:   # two pixels more each side: the frame's antialiased edge
                self.legend_pixels[ax] = canvas.copy_from_bbox(
                    legend.get_window_extent().padded(2))
            self.legend_stale.discard(ax)

    def _draw_best_text(self, blit: bool) -> None:
        text, canvas = self.best_text, self.fig.canvas
        shows = (text.get_text(), tuple(text.xy), text.get_horizontalalignment())
        if self.text_pixels is not None and self.text_pixels[0] == shows:
            canvas.restore_region(self.text_pixels[1])
            return
        self.acc_ax.draw_artist(text)
        if blit:   # its box holds the text; two pixels more for the box's rim
            box = text.get_bbox_patch().get_window_extent().padded(2)
            self.text_pixels = (shows, canvas.copy_from_bbox(box))

    def _set_lines(self, final: bool = False) -> None:
        """The lines, best-epoch marker and legends for self.rows (no drawing). While
        training, the legend's best-epoch entry stays "Best validation epoch" and the text
        beside the star tells which and its test accuracy; final: plot_history's legend
        entry, which tells both, and no text."""
        rows, best_epoch = self.rows, self.best_epoch
        epochs = [r["epoch"] for r in rows]
        self.step_line.set_data([x for x, _ in self.steps], [y for _, y in self.steps])
        for column, line in self.lines.items():
            scale = 100 if column.endswith("accuracy") else 1
            line.set_data(epochs, [scale * r[column] for r in rows])
        for column, label in plots.PENALTIES:
            values = [r.get(column) or 0.0 for r in rows]
            if column not in self.penalty_lines and any(values):
                self.penalty_lines[column], = self.loss_ax.plot(
                    [], [], **plots.PENALTY_STYLE, animated=True,
                    label=f"{label}\n{plots.PENALTY_NOTE}")
            if column in self.penalty_lines:
                self.penalty_lines[column].set_data(epochs, values)
        best = next((r for r in rows if r["epoch"] == best_epoch), None)
        self.best_line.set_visible(best is not None)
        self.best_star.set_visible(best is not None)
        self.best_text.set_visible(best is not None and not final)
        if best is None:
            self.best_star.set_label("_best")
        else:
            y, test = 100 * best["val_accuracy"], 100 * best["test_accuracy"]
            self.best_line.set_xdata([best_epoch, best_epoch])
            self.best_star.set_data([best_epoch], [y])
            self.best_star.set_label(plots.best_label(best_epoch, best) if final
                                     else "Best validation epoch")
            self.best_text.set_text(f"epoch {best_epoch}\ntest {test:.2f} %")
            self.best_text.xy = (best_epoch, y)
            # Leftwards in the right half of the planned epochs, so that it stays in the panel.
            right = best_epoch > (epochs[0] + max(epochs[-1], self.epochs or 0)) / 2
            self.best_text.set_horizontalalignment("right" if right else "left")
            self.best_text.set_position((4 if right else -4, -16))
        # plot_history's look: dots on each epoch up to 30 epochs, plain lines beyond.
        marker = "o" if len(rows) <= 30 else "None"
        for line in (*self.lines.values(), *self.penalty_lines.values()):
            if line.get_marker() != marker:   # a new marker is built at each set_marker
                line.set_marker(marker)
                line.set_markersize(3)
        for ax, loc in zip(self.axes, LEGEND_LOC):
            handles, labels = ax.get_legend_handles_labels()
            # A legend copies its lines' looks: a new one for a new best epoch, a penalty
            # line, or the dots gone.
            if self.legend_labels.get(ax) != [*labels, marker]:
                ax.legend(handles, labels, loc=loc, **LEGEND).set_animated(True)
                self.legend_labels[ax] = [*labels, marker]
                self.legend_stale.add(ax)

    def _user_view(self, ax: Axes) -> bool:
        return ax in self.views and self.views[ax] != (ax.get_xlim(), ax.get_ylim())

    def _wanted_view(self, ax: Axes) -> tuple | None:
        """(x limits, y limits) the panel should show while training: the epoch axis over
        the planned epochs, the values grown with headroom; None when the learner zoomed."""
        if ax is self.step_ax:
            return self._wanted_step_view()
        if self._user_view(ax) or not self.rows:
            return None
        first, last = self.rows[0]["epoch"], self.rows[-1]["epoch"]
        xlim = (first - 0.5, max(last, self.epochs or last) + 0.5)
        values = [y for line in ax.lines if line.get_visible() and line is not self.best_line
                  for y in line.get_ydata()]
        old = self.views.get(ax)
        ylim = grown_limits(old[1] if old else None, min(values), max(values),
                            ANCHORS[self.axes.index(ax)])
        return (xlim, ylim)

    def _wanted_step_view(self) -> tuple | None:
        """The in-epoch panel's limits: examples from 0 to the planned total (or, when it
        is not known, room for ten times those seen), the loss from 0 to above ln 10."""
        ax = self.step_ax
        if self._user_view(ax) or not self.steps:
            return None
        seen = max(x for x, _ in self.steps)
        old = self.views.get(ax)
        if self.examples:
            self.step_most = self.examples
        elif self.step_most is None or seen > self.step_most:
            self.step_most = max(10 * seen, 10 * plots.EXAMPLES_LINEAR)
        losses = [y for _, y in self.steps if math.isfinite(y)] or [plots.LN10]
        ylim = grown_limits(old[1] if old else None, 0.0, max(max(losses), plots.LN10),
                            (0.0, None))
        return ((0.0, 1.05 * max(self.step_most, 10 * plots.EXAMPLES_LINEAR)), ylim)

    def _set_view(self, ax: Axes, xlim: tuple, ylim: tuple) -> None:
        if ax is self.step_ax:
            if ax.get_xlim() != xlim:
                plots.examples_axis(ax, self.step_most)
                ax.set_xlabel("Examples seen (log)")
                ax.set_xlim(xlim)
            ax.set_ylim(ylim)
            self.views[ax] = (ax.get_xlim(), ax.get_ylim())
            return
        if self.views.get(ax, (None,))[0] != xlim:
            plots._epoch_axis(ax, range(int(xlim[0] + 0.5), int(xlim[1] - 0.5) + 1))
        ax.set_ylim(ylim)
        self.views[ax] = (ax.get_xlim(), ax.get_ylim())
