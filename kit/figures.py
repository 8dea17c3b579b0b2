"""The static figures of predict.py: a grid of test images, your own digit, the confusion
matrix as a heatmap, and the first layer's weights as 28x28 pictures (features.png).

Every function here draws on a matplotlib Figure (the Agg canvas unless a window's
figure is passed in) and never needs a display; kit/windows.py reuses them in windows.
"""
from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from kit.plots import save_figure

RIGHT, WRONG = "#1a7f37", "#d62728"   # green for a right answer, red for a mistake
FEATURE_TILES = 64                     # first-layer units drawn in features.png (all of a 64-unit layer)
FEATURE_CELL = (1.0, 0.95)             # inches of features.png per tile, across and down
FEATURE_LABEL_PT = 7.5                 # the tiles' labels ("unit 12"): 10 pixels high at 100 dpi


# ---- what the network answered ------------------------------------------------------------

@dataclass(frozen=True)
class Scores:
    """The network's answers on labelled images.

    probs: (N, 10) softmax probabilities; predicted, labels: (N,) digits.
    """
    probs: np.ndarray
    predicted: np.ndarray
    labels: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    @property
    def mistakes(self) -> np.ndarray:
        """Indices of the wrongly predicted images, in order."""
        return np.flatnonzero(~self.correct)

    @property
    def right(self) -> int:
        return int(np.count_nonzero(self.correct))

    def confidence(self, i: int) -> float:
        return float(self.probs[i, self.predicted[i]])

    @functools.cached_property
    def confusion(self) -> np.ndarray:
        """The confusion matrix, (10, 10) counts: row = true digit, column = predicted digit."""
        classes = self.probs.shape[1]
        return np.bincount(self.labels * classes + self.predicted,
                           minlength=classes * classes).reshape(classes, classes)

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the images of one confusion-matrix cell: that true and that predicted digit."""
        return np.flatnonzero((self.labels == true) & (self.predicted == predicted))


def as_pictures(x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Normalized rows (N, 784) back to (N, 28, 28) brightness in 0..1 for drawing;
    value_range is the normalized values of pixels 0 and 255."""
    lo, hi = value_range
    return np.clip((x.reshape(-1, 28, 28) - lo) / (hi - lo), 0, 1)


# ---- the grid of test images ---------------------------------------------------------------

# The grid is one pixel-exact image (figimage) plus text: a pyplot axes per image
# would take seconds for a few hundred images, and its size would not be exact.
GAP = 8              # pixels around each tile; a mistake's red frame fills FRAME of them
FRAME = 4
MARGIN = 12          # outer margin, left, right and bottom
HEADER = 74          # the title and two lines of text above the tiles
MIN_WIDTH = 640      # so the title fits above a grid of a few images
MAX_TILES_WIDTH = 1600
MAX_ZOOM = 4         # a 28x28 image is drawn as 112x112 pixels at most


@dataclass(frozen=True)
class GridLayout:
    """Where everything of a grid of `count` images goes, in pixels."""
    count: int
    cols: int
    rows: int
    zoom: int

    @classmethod
    def for_count(cls, count: int) -> GridLayout:
        cols = math.ceil(math.sqrt(count))
        # Shrink the tiles of big grids so that they stay about MAX_TILES_WIDTH wide.
        zoom = min(MAX_ZOOM, max(1, int((MAX_TILES_WIDTH / cols - 2 * GAP) // 28)))
        return cls(count, cols, math.ceil(count / cols), zoom)

    @property
    def tile(self) -> int:
        return 28 * self.zoom

    @property
    def label(self) -> int:
        return 6 * self.zoom + 2

    @property
    def cell(self) -> tuple[int, int]:
        return self.tile + 2 * GAP, self.label + self.tile + 2 * GAP

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the PNG."""
        cw, ch = self.cell
        return max(MIN_WIDTH, 2 * MARGIN + self.cols * cw), HEADER + self.rows * ch + MARGIN

    def origin(self, k: int) -> tuple[int, int]:
        """(x, y) of the top left corner of cell k, y counted from the top."""
        width = self.size[0]
        cw, ch = self.cell
        left = (width - self.cols * cw) // 2
        return left + (k % self.cols) * cw, HEADER + (k // self.cols) * ch


def draw_grid(pictures: np.ndarray, predicted: np.ndarray, labels: np.ndarray,
              indices: np.ndarray, title: str, lines: tuple[str, str]) -> Figure:
    """A Figure of pictures (n, 28, 28) in 0..1 with 'pred P · true T' above each, mistakes
    framed and labelled in red; indices are the test image numbers (drawn small); below
    the title, two lines of grey text."""
    layout = GridLayout.for_count(len(pictures))
    width, height = layout.size
    canvas = np.full((height, width, 3), 255, np.uint8)
    z, tile = layout.zoom, layout.tile
    red = np.array([214, 39, 40], np.uint8)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    # Small tiles get short labels, "predicted/true", as large as their strip allows.
    font = 2.5 * z if z >= 3 else 0.6 * layout.label
    for k, picture in enumerate(pictures):
        x0, y0 = layout.origin(k)
        top, left = y0 + layout.label + GAP, x0 + GAP
        wrong = predicted[k] != labels[k]
        if wrong:
            canvas[top - FRAME:top + tile + FRAME, left - FRAME:left + tile + FRAME] = red
        big = np.kron(picture, np.ones((z, z)))  # nearest-neighbour zoom: the pixels stay visible
        canvas[top:top + tile, left:left + tile] = np.round(big * 255).astype(np.uint8)[..., None]
        text = f"pred {predicted[k]} · true {labels[k]}" if z >= 3 else f"{predicted[k]}/{labels[k]}"
        fig.text((x0 + layout.cell[0] / 2) / width, 1 - (y0 + layout.label / 2 + 2) / height, text,
                 ha="center", va="center", fontsize=font, color=WRONG if wrong else "0.15",
                 fontweight="bold" if wrong else "normal")
        if z >= 3:
            fig.text((left + 3) / width, 1 - (top + 3) / height, f"{indices[k]}", ha="left",
                     va="top", fontsize=font * 0.62, color="0.75")
    fig.figimage(canvas, xo=0, yo=0, origin="upper")
    # Bold DejaVu Sans averages about 0.7 em a character: shrink a long title to fit.
    title_size = min(12.0, (width - 2 * MARGIN) / (0.7 * len(title) * 100 / 72))
    fig.text(MARGIN / width, 1 - 18 / height, title, ha="left", va="center", fontsize=title_size,
             fontweight="bold")
    if z < 3:
        lines = (lines[0] + "   (labels: predicted/true)", *lines[1:])
    for row, line in enumerate(lines):
        fig.text(MARGIN / width, 1 - (41 + 17 * row) / height, line, ha="left", va="center",
                 fontsize=9.5, color="0.3")
    fig.text(1 - MARGIN / width, 1 - (41 + 17 * (len(lines) - 1)) / height, "red = wrong",
             ha="right", va="center", fontsize=10, color=WRONG, fontweight="bold")
    return fig


# ---- probabilities as bars (your own digit, the drawing window) ---------------------------------

def probability_bars(ax, probs: np.ndarray | None = None):
    """Ten bars on ax, one per digit; returns the BarContainer (heights 0 without probs)."""
    bars = ax.bar(range(10), np.zeros(10) if probs is None else probs, color="0.75")
    ax.set_xticks(range(10))
    ax.set_ylim(0, 1)
    ax.set_xlabel("digit")
    ax.set_ylabel("probability")
    ax.spines[["top", "right"]].set_visible(False)
    if probs is not None:
        highlight(bars, probs)
    return bars


def highlight(bars, probs: np.ndarray | None) -> None:
    """Set the bars to probs (all 0 for None), the most probable digit in green."""
    top = -1 if probs is None else int(np.argmax(probs))
    for d, bar in enumerate(bars):
        bar.set_height(0.0 if probs is None else float(probs[d]))
        bar.set_color(RIGHT if d == top else "0.75")


def draw_own_digit(original: np.ndarray, pixels: np.ndarray, probs: np.ndarray, name: str,
                   fig: Figure | None = None, size: tuple[int, int] | None = None) -> Figure:
    """The picture as given, beside the 28x28 the network saw (uint8) and its probabilities.
    size: the file's (width, height), when original was reduced while reading it."""
    from kit import photo  # only --image needs it; a figures import stays light without it
    if fig is None:
        fig = Figure(figsize=(10, 4), dpi=100)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.25]})
    shown = photo.thumbnail(original)
    if shown.ndim == 3 and shown.shape[2] == 2:   # gray + alpha: imshow wants gray or RGBA
        shown = np.dstack([shown[..., 0]] * 3 + [shown[..., 1]])
    axes[0].imshow(shown, cmap="gray", vmin=0, vmax=1)
    width, height = size or (original.shape[1], original.shape[0])
    axes[0].set_title(f"{name}\n{width}×{height} pixels", fontsize=10)
    axes[1].imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes[1].set_title("as the network sees it\n28×28, like MNIST", fontsize=10)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    probability_bars(axes[2], probs)
    pred = int(np.argmax(probs))
    axes[2].set_title(f"Predicted: {pred}  ({100 * probs[pred]:.1f} %)", fontsize=12, fontweight="bold")
    fig.tight_layout()
    return fig


# ---- the confusion matrix -------------------------------------------------------------------

def draw_confusion(matrix: np.ndarray, title: str = "", fig: Figure | None = None,
                   hint: str = "") -> Figure:
    """The confusion matrix (rows: true digit, columns: predicted) as a heatmap with its counts.

    The colour is log(1 + count) so that the few mistakes show beside the hundreds of right
    answers; the cell of true t and predicted p is centred on data point (x=p, y=t) of
    fig.axes[0], which is how kit/windows.py maps a click to a cell.
    """
    if fig is None:
        fig = Figure(figsize=(7.2, 7), dpi=100)
    ax = fig.add_axes((0.1, 0.07, 0.86, 0.76))
    n = len(matrix)
    shade = np.log1p(matrix.astype(float))
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=max(float(shade.max()), 1e-9), interpolation="nearest")
    for t in range(n):
        for p in range(n):
            count = int(matrix[t, p])
            dark = shade[t, p] > 0.6 * shade.max()
            colour = "white" if dark else (WRONG if count and t != p else "0.55")
            ax.text(p, t, f"{count}", ha="center", va="center", fontsize=10,
                    color=colour, fontweight="bold" if count and t != p else "normal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    total, right = int(matrix.sum()), int(np.trace(matrix))
    heading = f"Confusion matrix: {right:,} of {total:,} right ({100 * right / max(total, 1):.2f} %)"
    fig.text(0.5, 0.975, heading + (f"\n{title}" if title else ""), ha="center", va="top",
             fontsize=11, fontweight="bold")
    if hint:
        fig.text(0.5, 0.02, hint, ha="center", va="center", fontsize=9, color="0.35")
    return fig


# ---- what the hidden units learned ---------------------------------------------------------------

def feature_tiles(net) -> tuple[np.ndarray, list[str]]:
    """The first layer's weights as (K, 28, 28) pictures and a label for each.

    With hidden layers these are the incoming weights of the first FEATURE_TILES hidden
    units ("unit 1", ...); without, they are the ten class templates ("0" to "9").
    """
    w = np.asarray(net.weights[0], np.float64)           # (784, fan_out)
    if len(net.sizes) == 2:
        return w.T.reshape(-1, 28, 28), [str(d) for d in range(w.shape[1])]
    k = min(FEATURE_TILES, w.shape[1])
    return w[:, :k].T.reshape(k, 28, 28), [f"unit {u + 1}" for u in range(k)]


def draw_features(net, title: str = "", fig: Figure | None = None) -> Figure:
    """features.png: each tile a first-layer weight picture in diverging colours centred at
    zero (red positive, blue negative, white zero), each scaled to its own largest |weight|
    so that weak units show their pattern too. title (e.g. the run and its epoch) goes under
    the heading, wrapped to the figure's width."""
    tiles, labels = feature_tiles(net)
    cols = 5 if len(tiles) <= 10 else math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    small = len(tiles) > 10
    what = (f"the weights into the first {len(tiles)} hidden units" if small
            else "each digit's template (0 hidden layers)")
    raised = "the unit" if small else "the digit's score"
    width = FEATURE_CELL[0] * cols + 0.3
    font = 9.5 if small else 8.5
    # DejaVu Sans averages under 0.6 em a character: the title's lines fit the width.
    chars = int((width - 0.3) * 72 / (0.6 * font))
    lines = [f"What the first layer learned: {what}",
             *textwrap.wrap(title, chars, break_on_hyphens=False),
             f"red: ink there raises {raised}, blue: lowers it, white: no effect"]
    header = 0.35 + 0.2 * len(lines)                  # inches of text above the tiles
    # 64 tiles: 8.3 x 8.6 in (860 pixels high with a title of two lines): with a window's toolbar and title bar, it
    # fits a 1280x1024 screen pixel for pixel (kit/plots.fit_to_screen shrinks it on smaller ones).
    size = (width, FEATURE_CELL[1] * rows + header)
    if fig is None:
        fig = Figure(figsize=size, dpi=100)
    else:
        fig.set_size_inches(size)
    grid = fig.add_gridspec(rows, cols, left=0.02, right=0.98, bottom=0.01, top=1 - header / size[1],
                            wspace=0.08, hspace=0.28)
    for k, (tile, label) in enumerate(zip(tiles, labels)):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        limit = float(np.abs(tile).max()) or 1.0
        ax.imshow(tile, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=FEATURE_LABEL_PT if small else 12, pad=2)
    fig.text(0.5, 1 - 0.1 / size[1], "\n".join(lines), ha="center", va="top",
             fontsize=font, linespacing=1.5)
    return fig


def save_features(net, path: Path, title: str = "") -> Path:
    """Write features.png of a trained network (see draw_features) atomically to path."""
    return save_figure(draw_features(net, title), Path(path))
