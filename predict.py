"""Score a trained run on the 6,000 test images, look through its predictions, or
classify a digit you wrote yourself.

    python predict.py                          # the latest run in saved_files/
    python predict.py --run saved_files/best-model --mistakes
    python predict.py --save grid.png --count 49
    python predict.py --image my_digit.jpg

The network is rebuilt from the run folder alone (config.json and the CSVs), and
the test images get the run's own normalization, so the accuracy printed here is
the final test accuracy in the run's history.csv.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from cli import OneLineParser
from network import softmax
from plots import interactive_backend

HERE = Path(__file__).resolve().parent
DEFAULT_RUNS = HERE / "saved_files"
TEST_SIZE = 6000            # the test split: t10k images 4000..9999
DEFAULT_COUNT = 25          # images in a saved grid
CHUNK = 4096                # rows per forward pass: Network.evaluate's, so the counts agree exactly

# The keys of the browsing window. Matplotlib binds some of them itself (left and
# right to its zoom history, q to close), so they are taken out of its keymaps.
NEXT_KEYS, PREVIOUS_KEYS, MISTAKE_KEYS, QUIT_KEYS = ("right", " "), ("left",), ("m",), ("q", "escape")
BROWSER_KEYS = NEXT_KEYS + PREVIOUS_KEYS + MISTAKE_KEYS + QUIT_KEYS

RIGHT, WRONG = "#1a7f37", "#d62728"   # green for a right answer, red for a mistake


# ---- scoring ---------------------------------------------------------------------------

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


def score(net, x: np.ndarray, y: np.ndarray) -> Scores:
    """Predict every row of x (N, 784) at once, in CHUNK-row pieces.

    The predicted digit is the argmax of the logits, chunked exactly as in
    Network.evaluate, which wrote the run's history: the same float32 sums in
    the same order give the same answers, so the two accuracies agree to the
    image (the argmax of the softmax could differ when two probabilities round
    to the same float32).
    """
    probs = np.empty((len(x), net.sizes[-1]), np.float32)
    predicted = np.empty(len(x), np.int64)
    with np.errstate(over="ignore"):
        for s in range(0, len(x), CHUNK):
            z = net.logits(x[s:s + CHUNK])
            predicted[s:s + CHUNK] = z.argmax(axis=1)
            probs[s:s + CHUNK] = softmax(z)
    return Scores(probs, predicted, np.asarray(y, np.int64))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """(classes, classes) counts: row = true digit, column = predicted digit."""
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)


# ---- printed reports -------------------------------------------------------------------

def accuracy_line(scores: Scores) -> str:
    n = len(scores.labels)
    return f"Test accuracy: {100 * scores.right / n:.2f} % ({scores.right:,} of {n:,})"


def per_digit_table(scores: Scores) -> str:
    """Images, right answers and accuracy for each true digit."""
    matrix = confusion_matrix(scores.labels, scores.predicted)
    lines = ["Per-digit accuracy:", "  digit  images  correct  accuracy"]
    for d in range(len(matrix)):
        total, right = int(matrix[d].sum()), int(matrix[d, d])
        acc = f"{100 * right / total:6.2f} %" if total else "     - "
        lines.append(f"  {d:>5}  {total:>6,}  {right:>7,}  {acc:>8}")
    return "\n".join(lines)


def confusion_table(matrix: np.ndarray) -> str:
    """The confusion matrix with a header row of predicted digits and a column of true ones."""
    width = max(4, len(str(int(matrix.max()))) + 1)
    head = "true\\pred"
    lines = ["Confusion matrix (rows: true digit, columns: predicted digit):",
             head + "".join(f"{d:>{width}}" for d in range(matrix.shape[1]))]
    for d, row in enumerate(matrix):
        lines.append(f"{d:>{len(head)}}" + "".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)


def top_classes(probs: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The k most probable classes of one (K,) probability vector, most probable first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(c), float(probs[c])) for c in order]


# ---- display helpers ---------------------------------------------------------------------

def display_range(normalization: str, mean: float | None, std: float | None) -> tuple[float, float]:
    """The normalized values of pixels 0 and 255: the colour range that shows images as MNIST."""
    import mnist_loader
    lo, hi = mnist_loader.normalize(np.array([0, 255], np.uint8), normalization, mean, std, np.float64)
    return float(lo), float(hi)


def as_pictures(x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Normalized rows (N, 784) back to (N, 28, 28) brightness in 0..1 for drawing."""
    lo, hi = value_range
    return np.clip((x.reshape(-1, 28, 28) - lo) / (hi - lo), 0, 1)


def release_keys(keys=BROWSER_KEYS, rc=None) -> dict[str, list[str]]:
    """Take `keys` out of matplotlib's keymap.* settings so the browser's handler is the only
    one answering them (left/right would also step matplotlib's zoom history, q close the
    window behind our back). Returns what was removed, by setting name."""
    if rc is None:
        import matplotlib
        rc = matplotlib.rcParams
    removed = {}
    for name in [k for k in rc if k.startswith("keymap.")]:
        kept = [k for k in rc[name] if k not in keys]
        if len(kept) != len(rc[name]):
            removed[name] = [k for k in rc[name] if k in keys]
            rc[name] = kept
    return removed


class Browser:
    """One figure showing one test image at a time, stepped through with keys.

    right arrow / space: next image; left arrow: previous; m: the next mistake;
    q / escape: close. Stepping wraps around at both ends (after the last image
    comes the first), so the keys always do something visible. With
    mistakes_only, only the wrongly predicted images are stepped through.
    `index` is the test image shown (0-based, as --start).
    """

    def __init__(self, fig, pictures: np.ndarray, scores: Scores, start: int = 0,
                 mistakes_only: bool = False, close: Callable | None = None, name: str = ""):
        self.fig = fig
        self.pictures = pictures
        self.scores = scores
        self.mistakes = scores.mistakes
        self.mistakes_only = mistakes_only
        self.order = self.mistakes if mistakes_only else np.arange(len(scores.labels))
        if not len(self.order):
            raise ValueError("nothing to browse")
        # The first image at or after `start` (wrapping to the first one).
        self.pos = int(np.searchsorted(self.order, start)) % len(self.order)
        self.closed = False
        self.note = ""
        self.name = name
        self._close = close
        self._build()
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
            self.closed = True
            if self._close is not None:
                self._close(self.fig)
            return True
        else:
            return False
        self.render()
        return True

    def _next_mistake(self) -> None:
        if not len(self.mistakes):
            self.note = "No mistakes: every test image is predicted right."
            return
        if self.mistakes_only:
            self.pos = (self.pos + 1) % len(self.order)
            return
        later = self.mistakes[self.mistakes > self.index]
        # Browsing every image, a position is an image number.
        self.pos = int(later[0] if len(later) else self.mistakes[0])

    # -- drawing --

    def _build(self) -> None:
        fig = self.fig
        self.ax = fig.add_axes((0.04, 0.11, 0.46, 0.68))
        self.image = self.ax.imshow(self.pictures[self.index], cmap="gray", vmin=0, vmax=1,
                                    interpolation="nearest")
        self.ax.set_xticks([])
        self.ax.set_yticks([])
        self.bars_ax = fig.add_axes((0.62, 0.2, 0.35, 0.58))
        self.bars = self.bars_ax.bar(range(10), np.zeros(10), color="0.7")
        self.bars_ax.set_xticks(range(10))
        self.bars_ax.set_ylim(0, 1)
        self.bars_ax.set_xlabel("digit")
        self.bars_ax.set_ylabel("probability")
        self.bars_ax.spines[["top", "right"]].set_visible(False)
        self.header = fig.text(0.5, 0.96, "", ha="center", va="center", fontsize=10, color="0.35")
        keys = "→ / space: next    ←: previous    m: next mistake    q / Esc: quit"
        self.footer = fig.text(0.5, 0.04, keys, ha="center", va="center", fontsize=9, color="0.35")

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
        if self.mistakes_only:
            where = f"mistake {self.pos + 1:,} of {len(self.order):,}: test image {i:,}"
        else:
            where = f"test image {i:,} (of 0–{len(self.order) - 1:,})"
        self.header.set_text("   ".join(t for t in (self.name, where, self.note) if t))
        manager = getattr(self.fig.canvas, "manager", None)
        if manager is not None:
            manager.set_window_title(f"{self.title}   ({100 * self.confidence:.1f} %)  —  {where}")
        self.fig.canvas.draw_idle()


def open_browser(pictures: np.ndarray, scores: Scores, start: int, mistakes_only: bool,
                 name: str = "") -> Browser:
    """The browsing window (not yet shown): one pyplot figure and its key handler."""
    import matplotlib.pyplot as plt
    release_keys()
    fig = plt.figure(figsize=(9, 5))
    browser = Browser(fig, pictures, scores, start, mistakes_only, close=plt.close, name=name)
    fig.canvas.mpl_connect("key_press_event", browser.on_key)
    return browser


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
    def for_count(cls, count: int) -> "GridLayout":
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
              indices: np.ndarray, title: str, lines: tuple[str, str]):
    """A Figure of pictures (n, 28, 28) in 0..1 with 'pred P · true T' above each, mistakes
    framed and labelled in red; indices are the test image numbers (drawn small); below
    the title, two lines of grey text."""
    from matplotlib.figure import Figure
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


def grid_selection(scores: Scores, start: int, count: int, mistakes_only: bool) -> np.ndarray:
    """The test image numbers of a grid: count images from start, or the first count mistakes from start."""
    if mistakes_only:
        return scores.mistakes[scores.mistakes >= start][:count]
    return np.arange(start, min(start + count, len(scores.labels)))


# ---- your own digit -----------------------------------------------------------------------------

def draw_own_digit(original: np.ndarray, pixels: np.ndarray, probs: np.ndarray, name: str, fig=None):
    """The picture as given, beside the 28x28 the network saw and its probabilities."""
    if fig is None:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(10, 4), dpi=100)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.25]})
    import digit_image
    shown = digit_image.thumbnail(original)
    if shown.ndim == 3 and shown.shape[2] == 2:   # gray + alpha: imshow wants gray or RGBA
        shown = np.dstack([shown[..., 0]] * 3 + [shown[..., 1]])
    axes[0].imshow(shown, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"{name}\n{original.shape[1]}×{original.shape[0]} pixels", fontsize=10)
    axes[1].imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes[1].set_title("as the network sees it\n28×28, like MNIST", fontsize=10)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    pred = int(np.argmax(probs))
    colours = ["0.75"] * len(probs)
    colours[pred] = RIGHT
    axes[2].bar(range(len(probs)), probs, color=colours)
    axes[2].set_xticks(range(len(probs)))
    axes[2].set_ylim(0, 1)
    axes[2].set_xlabel("digit")
    axes[2].set_ylabel("probability")
    axes[2].spines[["top", "right"]].set_visible(False)
    axes[2].set_title(f"Predicted: {pred}  ({100 * probs[pred]:.1f} %)", fontsize=12, fontweight="bold")
    fig.tight_layout()
    return fig


# ---- the command line ---------------------------------------------------------------------------

def _int_in(low: int, high: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {low} to {high})")
        return value
    convert.__name__ = "int"
    return convert


def _png_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"{text!r} must end in .png (the figure is saved as PNG)")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="predict.py",
        description="Score a trained run on the 6,000 test images and look through its "
                    "predictions (a window when there is a display, else a saved grid), "
                    "or classify your own handwritten digit with --image.",
        epilog="Keys in the window: right arrow or space for the next image, left arrow for "
               "the previous one, m for the next mistake, q or Escape to quit.")
    p.add_argument("--run", type=Path, default=None, metavar="DIR",
                   help="run folder made by train.py (default: the latest run in --runs-dir)")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS, metavar="DIR",
                   help="where to look for the latest run (default: saved_files/ beside predict.py)")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="folder with the MNIST files (default: $MNIST_DIR, then data/, "
                        "downloading into data/ if they are nowhere)")
    p.add_argument("--image", type=Path, default=None, metavar="FILE",
                   help="classify this picture of one handwritten digit instead (PNG or JPEG, "
                        "any size, dark ink on light paper or light ink on dark)")
    p.add_argument("--save", type=_png_path, default=None, metavar="FILE.png",
                   help="write the figure to this PNG instead of opening a window")
    p.add_argument("--count", type=_int_in(1, TEST_SIZE), default=DEFAULT_COUNT, metavar="N",
                   help=f"test images in a saved grid, 1 to {TEST_SIZE} (default: {DEFAULT_COUNT})")
    p.add_argument("--start", type=_int_in(0, TEST_SIZE - 1), default=0, metavar="I",
                   help=f"first test image to show, 0-based: 0 to {TEST_SIZE - 1} (default: 0)")
    p.add_argument("--mistakes", action="store_true",
                   help="show only the wrongly predicted test images")
    p.add_argument("--no-show", action="store_true",
                   help="never open a window; save the figure (to --save, else into the run folder)")
    return p


def fail(message: str, code: int = 1) -> int:
    print(f"predict.py: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` or similar, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1


def run(args: argparse.Namespace) -> int:
    import runs
    from plots import display_available

    try:
        run_dir = args.run if args.run is not None else runs.find_latest_run(args.runs_dir)
        record, config, net = runs.load_run(run_dir)
    except runs.RunError as err:
        return fail(err)
    mean, std = record.get("norm_mean"), record.get("norm_std")
    show = display_available() and args.save is None and not args.no_show
    if args.image is not None:
        return classify_image(args, run_dir, config, net, mean, std, show)

    import mnist_loader
    try:
        test = mnist_loader.load_test_set(config.normalization, mean, std, data_dir=args.data_dir)
    except mnist_loader.MnistError as err:
        return fail(err)
    t0 = time.perf_counter()
    scores = score(net, test.x, test.y)
    seconds = time.perf_counter() - t0

    print(accuracy_line(scores))
    epochs = record.get("epochs_completed")
    print(f"Run: {run_dir} ({config.summary()}, {epochs} epoch(s), {record.get('status', '?')}); "
          f"scored in {1000 * seconds:.0f} ms")
    recorded = (record.get("final") or {}).get("test_accuracy")
    if isinstance(recorded, (int, float)) and round(recorded * len(scores.labels)) != scores.right:
        print(f"Note: the run recorded {100 * recorded:.2f} % on these images when it was trained; "
              "its weights or the MNIST files have changed since.")
    print()
    print(per_digit_table(scores))
    print()
    print(confusion_table(confusion_matrix(scores.labels, scores.predicted)))
    print()

    mistakes_after = scores.mistakes[scores.mistakes >= args.start]
    if args.mistakes and not len(mistakes_after):
        print(f"No mistakes among test images {args.start:,}–{len(scores.labels) - 1:,}: nothing to show.")
        return 0
    pictures = as_pictures(test.x, display_range(config.normalization, mean, std))
    name = Path(run_dir).resolve().name
    if show:
        # Keep the browser referenced while the window is open: matplotlib holds
        # its key handler only weakly, and a collected handler silently stops.
        browser = in_a_window(lambda: open_browser(pictures, scores, args.start, args.mistakes, name))
        if browser is not None:
            import matplotlib.pyplot as plt
            print("Browsing the test images: → / space next, ← previous, m next mistake, q quit.")
            plt.show()
            del browser
            return 0

    chosen = grid_selection(scores, args.start, args.count, args.mistakes)
    right_here = int(np.count_nonzero(scores.correct[chosen]))
    if args.mistakes:
        what = (f"The first {len(chosen):,} mistakes from test image {args.start:,} "
                f"({len(scores.mistakes):,} mistakes in all)")
    else:
        span = f"Test image {chosen[0]:,}" if len(chosen) == 1 else \
            f"Test images {chosen[0]:,}–{chosen[-1]:,}"
        what = f"{span}: {right_here:,} of {len(chosen):,} predicted right"
    summary = config.summary()
    title = name if summary in name else f"{name}  ({summary})"
    fig = draw_grid(pictures[chosen], scores.predicted[chosen], scores.labels[chosen], chosen,
                    title, (what, accuracy_line(scores)))
    path = args.save or Path(run_dir) / ("predictions_mistakes.png" if args.mistakes else "predictions.png")
    code = save(fig, path)
    if code:
        return code
    images = f"{len(chosen)} test image{'s' if len(chosen) > 1 else ''}"
    print(f"Saved a grid of {images} to {path}" + default_path_note(args))
    return 0


def default_path_note(args) -> str:
    """Why a figure went to a default path instead of a window, when it did."""
    if args.save is not None:
        return ""
    return f" ({'--no-show' if args.no_show else 'no window'}; --save FILE.png picks the path)"


def in_a_window(make: Callable):
    """make() a pyplot figure and return what it returns, or None with a note when no
    window can be opened (the caller then saves the figure instead)."""
    if interactive_backend() is None:
        print("No interactive matplotlib backend (install tkinter, for example): saving instead.")
        return None
    try:
        return make()
    except Exception as err:  # noqa: BLE001 - a GUI toolkit that cannot start (Tk with an
        # unreachable display raises TclError, Qt others); the figure is saved instead
        print(f"Cannot open a window ({type(err).__name__}: {' '.join(str(err).split())}); "
              "saving instead.")
        return None


def classify_image(args, run_dir, config, net, mean, std, show: bool) -> int:
    """--image: preprocess a picture of a digit, predict it, print and show or save the result."""
    import digit_image
    import mnist_loader
    ignored = [f for f, on in (("--mistakes", args.mistakes), ("--count", args.count != DEFAULT_COUNT),
                               ("--start", args.start != 0)) if on]
    if ignored:
        print(f"Note: {', '.join(ignored)} apply to the test images and are ignored with --image.")
    try:
        original = digit_image.read_image(args.image)
        prepared = digit_image.preprocess(original, str(args.image))
    except digit_image.DigitImageError as err:
        return fail(err)
    x = mnist_loader.normalize(prepared.pixels.reshape(1, -1), config.normalization, mean, std)
    with np.errstate(over="ignore"):
        probs = softmax(net.logits(x))[0]
    top = top_classes(probs)
    print(f"Predicted: {top[0][0]}")
    print("Top 3:" + "\n      ".join(f"  {d}  {100 * p:6.2f} %" for d, p in top))
    print(f"Run: {run_dir} ({config.summary()}); image {original.shape[1]}×{original.shape[0]}, "
          + ("dark ink on light paper (inverted)" if prepared.inverted else "light ink on dark"))
    if show:
        def window():
            import matplotlib.pyplot as plt
            return draw_own_digit(original, prepared.pixels, probs, args.image.name,
                                  plt.figure(figsize=(10, 4)))
        if in_a_window(window) is not None:
            import matplotlib.pyplot as plt
            plt.show()
            return 0
    fig = draw_own_digit(original, prepared.pixels, probs, args.image.name)
    path = args.save or Path(run_dir) / f"prediction_{args.image.stem}.png"
    code = save(fig, path)
    if not code:
        print(f"Saved the picture and its 28×28 version to {path}" + default_path_note(args))
    return code


def save(fig, path: Path) -> int:
    """Write fig to path atomically; 0, or the exit code of a one-line error."""
    from plots import save_figure
    for parent in path.parents:  # a file where a folder should be: say so plainly
        if parent.exists():
            if not parent.is_dir():
                return fail(f"cannot write {path}: {parent} is a file, not a folder; "
                            "choose another --save path")
            break
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path)
    except OSError as err:
        reason = err.strerror or str(err)
        if err.filename and str(err.filename) != str(path):  # e.g. a parent that is a file
            reason += f": {err.filename}"
        return fail(f"cannot write {path} ({reason}); choose another --save path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
