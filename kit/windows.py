"""The interactive windows of predict.py: browsing the test images, the clickable confusion
matrix, and a pad to draw a digit on.

Each window is a class that draws on a Figure it is given and answers matplotlib events
(on_key, on_press, ...), so tests drive it with real KeyEvent and MouseEvent objects on an
Agg canvas; the open_* functions make the pyplot figure and connect the handlers. The
figures themselves come from kit/figures.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from kit.figures import RIGHT, WRONG, Scores, draw_confusion, highlight, probability_bars
from kit.plots import fit_to_screen, show_windows

# The keys of the windows. Matplotlib binds some of them itself (left and right to its zoom
# history, c to "back", q to close), so they are taken out of its keymaps while ours are open.
NEXT_KEYS, PREVIOUS_KEYS, MISTAKE_KEYS, QUIT_KEYS = ("right", " "), ("left",), ("m",), ("q", "escape")
MATRIX_KEYS, BACK_KEYS, CLEAR_KEYS = ("c",), ("escape",), ("c",)
BROWSER_KEYS = NEXT_KEYS + PREVIOUS_KEYS + MISTAKE_KEYS + QUIT_KEYS + MATRIX_KEYS
DRAW_KEYS = CLEAR_KEYS + QUIT_KEYS

BROWSE_HELP = "→ / space: next    ←: previous    m: next mistake    c: confusion matrix    q / Esc: quit"
CELL_HELP = "→ / space: next    ←: previous    c / Esc: back to the matrix    q: quit"
MATRIX_HELP = "click a cell to browse its test images    q / Esc: quit"
MATRIX_FROM_BROWSING_HELP = "click a cell to browse its test images    Esc: back to browsing    q: quit"


def release_keys(keys=BROWSER_KEYS, rc=None) -> dict[str, list[str]]:
    """Take `keys` out of matplotlib's keymap.* settings so the window's handler is the only
    one answering them (left/right would also step matplotlib's zoom history, q close the
    window behind our back). Returns what was removed, by setting name."""
    if rc is None:
        rc = matplotlib.rcParams
    removed = {}
    for name in [k for k in rc if k.startswith("keymap.")]:
        kept = [k for k in rc[name] if k not in keys]
        if len(kept) != len(rc[name]):
            removed[name] = [k for k in rc[name] if k in keys]
            rc[name] = kept
    return removed


def _set_window_title(fig: Figure, title: str) -> None:
    manager = getattr(fig.canvas, "manager", None)
    if manager is not None:
        manager.set_window_title(title)


class _Window:
    """What every window here has: its figure, and quit(), which marks it closed and calls
    close(fig) (plt.close in a real window; nothing, or a test's recorder, headless)."""

    def __init__(self, fig: Figure, close: Callable | None):
        self.fig = fig
        self.closed = False
        self._close = close

    def quit(self, fig=None) -> None:
        self.closed = True
        if self._close is not None:
            self._close(self.fig)


# ---- browsing ------------------------------------------------------------------------------

class Browser(_Window):
    """One test image at a time on fig, stepped through with keys.

    right arrow / space: next image; left arrow: previous; m: the next mistake;
    q / escape: close (calls close(fig)). Stepping wraps around at both ends, so the
    keys always do something visible. order: the test image numbers to step through
    (default: all of them; with mistakes_only, the mistakes); `what` names that subset
    in the header. `index` is the test image shown (0-based, as --start).
    """

    def __init__(self, fig: Figure, pictures: np.ndarray, scores: Scores, start: int = 0,
                 mistakes_only: bool = False, close: Callable | None = None, name: str = "",
                 order: np.ndarray | None = None, what: str = "", help_text: str = BROWSE_HELP):
        super().__init__(fig, close)
        self.pictures = pictures
        self.scores = scores
        if order is None:
            order = scores.mistakes if mistakes_only else np.arange(len(scores.labels))
        self.order = np.asarray(order)
        if not len(self.order):
            raise ValueError("nothing to browse")
        self.mistakes_only = mistakes_only
        # Positions in self.order that hold a mistake: 'm' steps through these.
        self.mistake_positions = np.flatnonzero(~scores.correct[self.order])
        # The first image at or after `start` (wrapping to the first one).
        self.pos = int(np.searchsorted(self.order, start)) % len(self.order)
        self.note = ""
        self.name = name
        self.what = what
        self._build(help_text)
        self.render()

    @property
    def index(self) -> int:
        return int(self.order[self.pos])

    def on_key(self, event) -> bool:
        """Handle a key_press_event; returns whether the key was one of ours."""
        key = getattr(event, "key", None)
        self.note = ""
        if key in NEXT_KEYS:
            self.pos = (self.pos + 1) % len(self.order)
        elif key in PREVIOUS_KEYS:
            self.pos = (self.pos - 1) % len(self.order)
        elif key in MISTAKE_KEYS:
            self._next_mistake()
        elif key in QUIT_KEYS:
            self.quit()
            return True
        else:
            return False
        self.render()
        return True

    def _next_mistake(self) -> None:
        if not len(self.mistake_positions):
            self.note = ("No mistakes: every test image is predicted right." if self.what == ""
                         else "No mistakes among these images.")
            return
        later = self.mistake_positions[self.mistake_positions > self.pos]
        self.pos = int(later[0] if len(later) else self.mistake_positions[0])

    def _build(self, help_text: str) -> None:
        fig = self.fig
        self.ax = fig.add_axes((0.04, 0.11, 0.46, 0.68))
        self.image = self.ax.imshow(self.pictures[self.index], cmap="gray", vmin=0, vmax=1,
                                    interpolation="nearest")
        self.ax.set_xticks([])
        self.ax.set_yticks([])
        self.bars_ax = fig.add_axes((0.62, 0.2, 0.35, 0.58))
        self.bars = probability_bars(self.bars_ax)
        self.header = fig.text(0.5, 0.96, "", ha="center", va="center", fontsize=10, color="0.35")
        self.footer = fig.text(0.5, 0.04, help_text, ha="center", va="center", fontsize=9, color="0.35")

    def render(self) -> None:
        i, s = self.index, self.scores
        pred, true = int(s.predicted[i]), int(s.labels[i])
        wrong = pred != true
        colour = WRONG if wrong else RIGHT
        self.title = f"Predicted: {pred}   True: {true}"
        self.confidence = s.confidence(i)
        self.image.set_data(self.pictures[i])
        self.ax.set_title(f"{self.title}\nconfidence {100 * self.confidence:.1f} %"
                          + ("  —  wrong" if wrong else ""), color=colour, fontsize=13,
                          fontweight="bold" if wrong else "normal")
        for spine in self.ax.spines.values():
            spine.set_color(colour if wrong else "0.6")
            spine.set_linewidth(5 if wrong else 1)
        for d, bar in enumerate(self.bars):
            bar.set_height(float(s.probs[i, d]))
            bar.set_color(colour if d == pred else ("0.45" if d == true else "0.8"))
        self.bars_ax.set_title(f"the model's probabilities (true digit: {true})", fontsize=10)
        if self.what:
            where = f"{self.what}: {self.pos + 1:,} of {len(self.order):,}, test image {i:,}"
        elif self.mistakes_only:
            where = f"mistake {self.pos + 1:,} of {len(self.order):,}: test image {i:,}"
        else:
            where = f"test image {i:,} (of 0–{len(self.order) - 1:,})"
        self.header.set_text("   ".join(t for t in (self.name, where, self.note) if t))
        _set_window_title(self.fig, f"{self.title}   ({100 * self.confidence:.1f} %)  —  {where}")
        self.fig.canvas.draw_idle()


class Explorer(_Window):
    """The browsing window and the clickable confusion matrix, in one figure.

    Browsing: the Browser's keys, and c shows the confusion matrix. The matrix: clicking
    a cell browses exactly the test images of that true and predicted digit; there,
    Escape (or c) goes back to the matrix. Escape on the matrix returns to the browsing
    it was opened from (or quits when the window opened on the matrix); q always quits.
    `view` is "browse" or "matrix"; `browser` the Browser shown, if any.
    """

    def __init__(self, fig: Figure, pictures: np.ndarray, scores: Scores, start: int = 0,
                 mistakes_only: bool = False, name: str = "", close: Callable | None = None,
                 matrix_first: bool = False):
        super().__init__(fig, close)
        self.pictures = pictures
        self.scores = scores
        self.name = name
        self.mistakes_only = mistakes_only
        self.matrix = scores.confusion
        self.browser: Browser | None = None
        self.cell: tuple[int, int] | None = None     # the matrix cell being browsed
        self._resume: int | None = None             # the image the plain browsing was at
        self.view = ""
        if matrix_first:
            self.show_matrix()
        else:
            self.browse_all(start)

    # -- views --

    def browse_all(self, start: int = 0) -> None:
        self._reset()
        self.cell = None
        self.browser = Browser(self.fig, self.pictures, self.scores, start, self.mistakes_only,
                               close=self.quit, name=self.name)
        self.view = "browse"

    def browse_cell(self, true: int, predicted: int) -> bool:
        """Browse the test images of one matrix cell; False (and a note) if it is empty."""
        images = self.scores.cell(true, predicted)
        if not len(images):
            self.hint.set_text(f"No test image is a {true} predicted as {predicted}.   " + self._matrix_help)
            self.fig.canvas.draw_idle()
            return False
        self._reset()
        self.cell = (true, predicted)
        what = f"true {true}, predicted {predicted}"
        self.browser = Browser(self.fig, self.pictures, self.scores, close=self.quit, name=self.name,
                               order=images, what=what, help_text=CELL_HELP)
        self.view = "browse"
        return True

    def show_matrix(self) -> None:
        if self.view == "browse" and self.cell is None:
            self._resume = self.browser.index
        self._reset()
        self.cell = None
        self.browser = None
        self._matrix_help = MATRIX_HELP if self._resume is None else MATRIX_FROM_BROWSING_HELP
        draw_confusion(self.matrix, self.name, self.fig, hint=self._matrix_help)
        self.matrix_ax = self.fig.axes[0]
        self.hint = self.fig.texts[-1]
        self.view = "matrix"
        _set_window_title(self.fig, f"Confusion matrix — {self.name}" if self.name else "Confusion matrix")
        self.fig.canvas.draw_idle()

    def _reset(self) -> None:
        self.fig.clear()

    # -- events --

    def on_key(self, event) -> bool:
        """Handle a key_press_event; returns whether the key was one of ours."""
        key = getattr(event, "key", None)
        if self.view == "matrix":
            if key in BACK_KEYS and self._resume is not None:
                self.browse_all(self._resume)
            elif key in QUIT_KEYS:
                self.quit()
            else:
                return False
            return True
        if key in MATRIX_KEYS or (key in BACK_KEYS and self.cell is not None):
            self.show_matrix()
            return True
        return self.browser.on_key(event)

    def on_click(self, event) -> bool:
        """Handle a button_press_event: a left click on a matrix cell browses it."""
        if self.view != "matrix" or getattr(event, "inaxes", None) is not self.matrix_ax:
            return False
        if getattr(event, "button", 1) != 1 or event.xdata is None or event.ydata is None:
            return False
        toolbar = getattr(self.fig.canvas, "toolbar", None)
        if toolbar is not None and getattr(toolbar, "mode", ""):   # zooming or panning, not choosing
            return False
        p, t = int(round(event.xdata)), int(round(event.ydata))
        n = len(self.matrix)
        if not (0 <= t < n and 0 <= p < n):
            return False
        return self.browse_cell(t, p)


# ---- drawing a digit ---------------------------------------------------------------------

PAD = 280                # the drawing canvas in pixels: 10x MNIST's 28
BRUSH_RADIUS = 10.0      # a 200-pixel digit shrinks 10x to MNIST's 20x20 box: 20-pixel
BRUSH_SOFT = 4.0         # strokes become MNIST's 2-pixel ones; a soft 4-pixel edge
UPDATE_INTERVAL = 0.08   # seconds between network updates while drawing: 12.5 a second at most


def stamp_segment(canvas: np.ndarray, p0: tuple[float, float], p1: tuple[float, float],
                  radius: float = BRUSH_RADIUS, soft: float = BRUSH_SOFT) -> None:
    """Ink a thick line with round ends from p0 to p1 ((x, y) in pixel units, pixel (r, c)
    centred on (c, r)) into canvas (H, W) of 0..1 in place, keeping the darker of old and
    new ink, so strokes crossing themselves stay opaque like a marker's. Only the segment's
    bounding box is touched: one stamp costs what its area costs."""
    (x0, y0), (x1, y1) = p0, p1
    reach = radius + soft
    h, w = canvas.shape
    r0, r1 = max(int(np.floor(min(y0, y1) - reach)), 0), min(int(np.ceil(max(y0, y1) + reach)) + 1, h)
    c0, c1 = max(int(np.floor(min(x0, x1) - reach)), 0), min(int(np.ceil(max(x0, x1) + reach)) + 1, w)
    if r0 >= r1 or c0 >= c1:
        return
    ys = np.arange(r0, r1, dtype=np.float32)[:, None]
    xs = np.arange(c0, c1, dtype=np.float32)[None, :]
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1) if length2 > 0 else 0
    distance = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
    ink = np.clip((radius + soft / 2 - distance) / soft, 0, 1)
    np.maximum(canvas[r0:r1, c0:c1], ink, out=canvas[r0:r1, c0:c1])


class DrawWindow(_Window):
    """A drawing pad beside the 28x28 the network sees and its ten probabilities.

    Press and drag the left button on the pad to draw; c or a right click clears; q or
    Escape quits (calls close(fig)). see(canvas) turns the (PAD, PAD) ink canvas into
    (pixels (28, 28) uint8, probs (10,)), or None when there is no ink; it runs when a
    stroke ends and, while drawing, at most every UPDATE_INTERVAL seconds.
    """

    def __init__(self, fig: Figure, see: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray] | None],
                 close: Callable | None = None, name: str = "", clock: Callable[[], float] = time.perf_counter):
        super().__init__(fig, close)
        self.see = see
        self.name = name
        self._clock = clock
        self.canvas = np.zeros((PAD, PAD), np.float32)
        self.pen: tuple[float, float] | None = None   # the last point while the button is held
        self.down = False
        self.last_update = -np.inf
        self.updates = 0
        self.pixels: np.ndarray | None = None
        self.probs: np.ndarray | None = None
        self._background = None      # the pad's pixels after the last full drawing
        self._stale = False          # panels changed since: the next redraw is a full one
        self._build()

    def _build(self) -> None:
        fig = self.fig
        self.pad_ax = fig.add_axes((0.02, 0.1, 0.42, 0.76))
        # Ink is shown dark on white paper; the canvas holds it as 0 (paper) to 1 (ink).
        self.pad_image = self.pad_ax.imshow(self.canvas, cmap="gray_r", vmin=0, vmax=1,
                                            interpolation="bilinear")
        self.pad_ax.set_title("draw a digit here", fontsize=11)
        self.seen_ax = fig.add_axes((0.47, 0.38, 0.2, 0.36))
        self.seen_image = self.seen_ax.imshow(np.zeros((28, 28), np.uint8), cmap="gray", vmin=0,
                                              vmax=255, interpolation="nearest")
        self.seen_ax.set_title("as the network sees it\n28×28, like MNIST", fontsize=9)
        for ax in (self.pad_ax, self.seen_ax):
            ax.set_xticks([])
            ax.set_yticks([])
        self.bars_ax = fig.add_axes((0.74, 0.2, 0.24, 0.6))
        self.bars = probability_bars(self.bars_ax)
        self.verdict = self.bars_ax.set_title(" ", fontsize=13, fontweight="bold")
        fig.text(0.5, 0.04, "drag to draw    c / right click: clear    q / Esc: quit",
                 ha="center", va="center", fontsize=9, color="0.35")
        if self.name:
            fig.text(0.5, 0.95, self.name, ha="center", va="center", fontsize=10, color="0.35")
        _set_window_title(fig, "Draw a digit" + (f" — {self.name}" if self.name else ""))

    # -- events --

    def _point(self, event) -> tuple[float, float] | None:
        if getattr(event, "inaxes", None) is not self.pad_ax or event.xdata is None:
            return None
        return float(event.xdata), float(event.ydata)

    def on_press(self, event) -> bool:
        point = self._point(event)
        if point is None:
            return False
        if event.button == 3:
            self.clear()
            return True
        if event.button != 1:
            return False
        self.down, self.pen = True, point
        stamp_segment(self.canvas, point, point)
        self._redraw_pad()
        return True

    def on_move(self, event) -> bool:
        if not self.down:
            return False
        point = self._point(event)
        if point is None:          # off the pad: lift the pen, so no line jumps across on return
            self.pen = None
            return False
        stamp_segment(self.canvas, self.pen or point, point)
        self.pen = point
        if self._clock() - self.last_update >= UPDATE_INTERVAL:
            self.update()
        self._redraw_pad()
        return True

    def on_release(self, event) -> bool:
        if not self.down:
            return False
        self.down, self.pen = False, None
        self.update()
        self.fig.canvas.draw_idle()
        return True

    def on_key(self, event) -> bool:
        key = getattr(event, "key", None)
        if key in CLEAR_KEYS:
            self.clear()
        elif key in QUIT_KEYS:
            self.quit()
        else:
            return False
        return True

    # -- state --

    def clear(self) -> None:
        """Empty the pad, the 28x28 and the bars."""
        self.canvas[...] = 0
        self.down, self.pen = False, None
        self._show(None)
        self._redraw_pad()

    def update(self) -> None:
        """Ask the network about the pad now."""
        self.last_update = self._clock()
        self.updates += 1
        self._show(self.see(self.canvas))

    def _show(self, seen) -> None:
        self.pixels, self.probs = (None, None) if seen is None else seen
        self.seen_image.set_data(np.zeros((28, 28), np.uint8) if self.pixels is None else self.pixels)
        highlight(self.bars, self.probs)
        if self.probs is None:
            self.verdict.set_text(" ")
        else:
            top = int(np.argmax(self.probs))
            self.verdict.set_text(f"Predicted: {top}  ({100 * self.probs[top]:.1f} %)")
            self.verdict.set_color(RIGHT)
        self._stale = True
        self.fig.canvas.draw_idle()

    def _redraw_pad(self) -> None:
        """Show the canvas's new ink. Between network updates only the pad changes, so it is
        blitted onto the last full drawing when the backend can (a full redraw costs several
        times more, see benchmarks/draw_update.py); otherwise the whole figure is redrawn."""
        self.pad_image.set_data(self.canvas)
        canvas = self.fig.canvas
        if self._background is None or self._stale or not getattr(canvas, "supports_blit", False):
            canvas.draw_idle()
            return
        canvas.restore_region(self._background)
        self.pad_ax.draw_artist(self.pad_image)
        canvas.blit(self.pad_ax.bbox)

    def on_draw(self, event=None) -> None:
        """After every full drawing: keep the pad's region, the background of later blits."""
        canvas = self.fig.canvas
        self._stale = False
        if getattr(canvas, "supports_blit", False):
            self._background = canvas.copy_from_bbox(self.pad_ax.bbox)

    @property
    def prediction(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))


# ---- opening windows -----------------------------------------------------------------------

def _connect(fig: Figure, handlers: dict[str, Callable]) -> None:
    for event, handler in handlers.items():
        fig.canvas.mpl_connect(event, handler)


def open_explorer(pictures: np.ndarray, scores: Scores, start: int, mistakes_only: bool,
                  name: str = "", matrix_first: bool = False) -> Explorer:
    """The browsing / confusion-matrix window (not yet shown): one pyplot figure.
    Keep the result referenced while the window is open: matplotlib holds the handlers
    only weakly, and a collected handler silently stops."""
    import matplotlib.pyplot as plt  # pyplot starts a GUI toolkit: only when a window is wanted
    release_keys(BROWSER_KEYS)
    fig = plt.figure(figsize=(9, 6))
    fit_to_screen(fig)
    explorer = Explorer(fig, pictures, scores, start, mistakes_only, name, close=plt.close,
                        matrix_first=matrix_first)
    _connect(fig, {"key_press_event": explorer.on_key, "button_press_event": explorer.on_click})
    return explorer


def open_draw(see: Callable, name: str = "") -> DrawWindow:
    """The drawing window (not yet shown); keep the result referenced, as open_explorer's."""
    import matplotlib.pyplot as plt  # as in open_explorer
    release_keys(DRAW_KEYS)
    fig = plt.figure(figsize=(11, 4.6))
    fit_to_screen(fig)
    window = DrawWindow(fig, see, close=plt.close, name=name)
    _connect(fig, {"button_press_event": window.on_press, "motion_notify_event": window.on_move,
                   "button_release_event": window.on_release, "key_press_event": window.on_key,
                   "draw_event": window.on_draw})
    return window


def open_figure(draw: Callable[[Figure], Figure], title: str,
                figsize: tuple[float, float] | None = None) -> Figure:
    """A window showing a static figure from kit/figures.py, with a window title (not yet shown)."""
    import matplotlib.pyplot as plt  # as in open_explorer
    fig = draw(plt.figure(figsize=figsize))
    fit_to_screen(fig)
    _set_window_title(fig, title)
    return fig


def show() -> None:
    """Show the open windows until they are closed (Ctrl-C closes them: KeyboardInterrupt)."""
    show_windows()
