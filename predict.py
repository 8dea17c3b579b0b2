"""Score a trained run on the 6,000 test images, look through its predictions, or
classify a digit you wrote or drew yourself.

    python predict.py                          # the latest run in saved_files/
    python predict.py --run saved_files/best-model --mistakes
    python predict.py --save grid.png --count 49
    python predict.py --image my_digit.jpg
    python predict.py --draw                   # draw a digit with the mouse
    python predict.py --confusion              # the confusion matrix; click a cell
    python predict.py --features               # what the first layer learned

The network is rebuilt from the run folder alone, and the test images get the run's
own normalization, so the accuracy printed here is the test accuracy in the run's
history.csv. This script parses, prints and decides what to show; the figures are
in kit/figures.py and the windows in kit/windows.py.
"""
from __future__ import annotations

from kit.startup import quiet_ctrl_c

quiet_ctrl_c(__name__)  # first: a Ctrl-C while NumPy imports exits quietly with 130

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import mnist_loader
from kit import figures, photo, plots, signals, windows
from kit.cli import OneLineParser, Output, png_path, readable, run_script, whole_number
from kit.config import RunError
from kit.figures import Scores
from kit.record import GRAPHS, Run, find_latest_run
from kit.signals import OutputLost

HERE = Path(__file__).resolve().parent
PROG = "predict.py"
DEFAULT_RUNS = HERE / "saved_files"
TEST_SIZE = 6000            # the test split: t10k images 4000..9999
DEFAULT_COUNT = 25          # images in a saved grid


# ---- the run ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedRun:
    """A run folder as predict.py uses it: its network and how it was trained.

    normalize: uint8 pixels (N, 784) -> float32 inputs as the network saw them;
    pixel_range: the inputs that pixels 0 and 255 become;
    recorded_accuracy: the test accuracy the run's history holds for these weights' epoch.
    """
    path: Path
    summary: str            # e.g. '2h-relu-momentum-normal-xavier-l1'
    status: str             # e.g. 'completed after 40 epochs'
    weights: str            # which weights are used, in words
    net: object
    normalize: Callable[[np.ndarray], np.ndarray]
    pixel_range: tuple[float, float]
    recorded_accuracy: float | None
    load_test_set: Callable      # (data_dir) -> mnist_loader.Split, normalized as the run's
    data: dict | None = None     # what the run trained on (RunRecord.data): fingerprints, folder

    @property
    def name(self) -> str:
        return readable(self.path.resolve().name)


def open_run(args: argparse.Namespace) -> LoadedRun:
    """The run of --run (or the latest in --runs-dir) with the weights of --weights
    ("best": the best validation epoch's, the default; "last"), read through Run.

    Everything predict.py reads from a run folder is read here. Raises RunError.
    """
    path = Path(args.run) if args.run is not None else find_latest_run(args.runs_dir)
    which = getattr(args, "weights", "best")
    run = Run.load(path)
    net = run.network(which)
    entry = run.epoch_entry(which)
    epoch = entry["epoch"]
    if run.legacy:     # saved before best epochs were kept: its only weights are the last
        weights = f"weights of epoch {epoch}, the last (this run kept no others)"
    elif which == "best":
        weights = f"weights of epoch {epoch}, the best on validation data"
    else:
        weights = f"weights of epoch {epoch}, the last"
    norm = run.record.normalization
    return LoadedRun(
        path=path, summary=run.config.summary(), status=run.status_line(), weights=weights,
        net=net, normalize=norm.apply, pixel_range=norm.pixel_range(),
        recorded_accuracy=entry.get("test_accuracy"),
        load_test_set=lambda data_dir: mnist_loader.load_test_set(norm.kind, norm.mean, norm.std,
                                                                  data_dir=data_dir),
        data=run.record.data)


# ---- scoring ---------------------------------------------------------------------------

def score(net, x: np.ndarray, y: np.ndarray) -> Scores:
    """The network's answers on every row of x (N, 784): its own chunked predict_proba,
    the predicted digit the most probable one."""
    probs = net.predict_proba(x)
    return Scores(probs, probs.argmax(axis=1), np.asarray(y, np.int64))


# ---- printed reports -------------------------------------------------------------------

def accuracy_line(scores: Scores) -> str:
    n = len(scores.labels)
    return f"Test accuracy: {100 * scores.right / n:.2f} % ({scores.right:,} of {n:,})"


def per_digit_table(scores: Scores) -> str:
    """Images, right answers and accuracy for each true digit."""
    matrix = scores.confusion
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


def grid_selection(scores: Scores, start: int, count: int, mistakes_only: bool) -> np.ndarray:
    """The test image numbers of a grid: count images from start, or the first count mistakes from start."""
    if mistakes_only:
        return scores.mistakes[scores.mistakes >= start][:count]
    return np.arange(start, min(start + count, len(scores.labels)))


# ---- the command line ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Score a trained run on the 6,000 test images and look through its "
                    "predictions (a window when there is a display, else a saved grid); "
                    "or classify your own digit (--image, --draw), see the confusion matrix "
                    "(--confusion) or what the first layer learned (--features).",
        epilog="Keys in the browsing window: right arrow or space for the next image, left "
               "arrow for the previous one, m for the next mistake, c for the confusion matrix "
               "(click a cell to browse it, Escape to go back), q or Escape to quit.")
    p.add_argument("--run", type=Path, default=None, metavar="DIR",
                   help="run folder made by train.py (default: the latest run in --runs-dir)")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS, metavar="DIR",
                   help="where to look for the latest run (default: saved_files/ beside predict.py)")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="folder with the MNIST files (default: $MNIST_DIR, then data/, "
                        "downloading into data/ if they are nowhere)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--image", type=Path, default=None, metavar="FILE",
                      help="classify this picture of one handwritten digit instead (PNG or JPEG, "
                           "any size, dark ink on light paper or light ink on dark)")
    what.add_argument("--draw", action="store_true",
                      help="open a window to draw a digit with the mouse and see the network's "
                           "answer as you draw (needs a display)")
    what.add_argument("--confusion", action="store_true",
                      help="show the confusion matrix as a heatmap; click a cell to browse its "
                           "test images (headless: save it)")
    what.add_argument("--features", action="store_true",
                      help="show the first layer's weights as 28x28 pictures (headless: save them)")
    p.add_argument("--weights", choices=("best", "last"), default="best",
                   help="score the weights of the epoch with the best validation accuracy (the "
                        "model is chosen on validation data, never on test data) or of the last "
                        "epoch (default: best)")
    p.add_argument("--save", type=png_path, default=None, metavar="FILE.png",
                   help="write the figure to this PNG instead of opening a window")
    p.add_argument("--count", type=whole_number(1, TEST_SIZE), default=DEFAULT_COUNT, metavar="N",
                   help=f"test images in a saved grid, 1 to {TEST_SIZE} (default: {DEFAULT_COUNT})")
    p.add_argument("--start", type=whole_number(0, TEST_SIZE - 1), default=0, metavar="I",
                   help=f"first test image to show, 0-based: 0 to {TEST_SIZE - 1} (default: 0)")
    p.add_argument("--mistakes", action="store_true",
                   help="show only the wrongly predicted test images")
    p.add_argument("--no-show", action="store_true",
                   help="never open a window; save the figure (to --save, else into the run folder)")
    return p


def fail(out: Output, message, code: int = 1) -> int:
    """One line on stderr (a message that holds line breaks is joined), and the exit code."""
    return out.fail(" ".join(str(message).split()), code)


def main(argv: list[str] | None = None) -> int:
    out = Output(PROG)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return run(args, out)
    except KeyboardInterrupt:
        return 130
    except OutputLost as err:
        return out.output_lost(err)


NEEDS_A_DISPLAY = ("--draw needs a window to draw in: run it in a desktop session (or over "
                   "ssh -X, or under Xvfb) with a GUI toolkit for matplotlib, e.g. tkinter")


def run(args: argparse.Namespace, out: Output) -> int:
    if args.draw and (args.save is not None or args.no_show):
        return fail(out, f"{'--save' if args.save is not None else '--no-show'} does not go with --draw, "
                          "which draws in a window and saves nothing", 2)
    try:
        loaded = open_run(args)
    except RunError as err:
        return fail(out, err)
    problem = protected_path(args.save, loaded.path)
    if problem:
        return fail(out, problem)
    show = plots.display_available() and args.save is None and not args.no_show
    if args.draw:
        return draw_digit(out, loaded)
    if args.features:
        return show_features(out, args, loaded, show)
    if args.image is not None:
        return classify_image(out, args, loaded, show)

    try:
        test = loaded.load_test_set(args.data_dir)
    except mnist_loader.MnistError as err:
        return fail(out, err)
    t0 = time.perf_counter()
    scores = score(loaded.net, test.x, test.y)
    seconds = time.perf_counter() - t0
    report(out, loaded, scores, seconds, test)

    pictures = figures.as_pictures(test.x, loaded.pixel_range)
    if args.confusion:
        return show_confusion(out, args, loaded, scores, pictures, show)
    mistakes_after = scores.mistakes[scores.mistakes >= args.start]
    if args.mistakes and not len(mistakes_after):
        out.say(f"No mistakes among test images {args.start:,}–{len(scores.labels) - 1:,}: nothing to show.")
        return 0
    if show:
        # Keep the window's object referenced while it is open: matplotlib holds its
        # handlers only weakly, and a collected handler silently stops.
        explorer = in_a_window(out, lambda: windows.open_explorer(pictures, scores, args.start,
                                                                  args.mistakes, loaded.name))
        if explorer is not None:
            out.say("Browsing the test images: → / space next, ← previous, m next mistake, "
                  "c confusion matrix, q quit.")
            show_windows(out)
            del explorer
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
    fig = figures.draw_grid(pictures[chosen], scores.predicted[chosen], scores.labels[chosen], chosen,
                            run_title(loaded), (what, accuracy_line(scores)))
    images = f"a grid of {len(chosen)} test image{'s' if len(chosen) > 1 else ''}"
    default = "predictions_mistakes.png" if args.mistakes else "predictions.png"
    return save_output(out, fig, args, loaded.path / default, images)


def other_t10k(loaded: LoadedRun, test) -> list[str]:
    """The t10k files whose fingerprint differs from the one the run recorded (none when
    the run recorded none, saved before fingerprints were)."""
    recorded = (loaded.data or {}).get("fingerprint") or {}
    now = getattr(test, "fingerprint", None) or {}
    return [mnist_loader.FILE_NAMES[k] for k in now if k in recorded and recorded[k] != now[k]]


def report(out: Output, loaded: LoadedRun, scores: Scores, seconds: float, test=None) -> None:
    """The printed report: accuracy, the run and its weights, per-digit table, confusion matrix."""
    out.say(accuracy_line(scores))
    out.say(f"Run: {out.path(loaded.path)} ({loaded.summary}, {loaded.status}); {loaded.weights}; "
          f"scored in {1000 * seconds:.0f} ms")
    recorded = loaded.recorded_accuracy
    differ = other_t10k(loaded, test) if test is not None else []
    if differ:
        out.say(out.wrap(f"Note: {' and '.join(differ)} in {out.path(test.folder)} are not the files "
                         f"the run was trained with (in {loaded.data.get('folder', 'another folder')}); "
                         "this accuracy is on other test images than the one it recorded."))
    elif recorded is not None and round(recorded * len(scores.labels)) != scores.right:
        out.say(f"Note: the run recorded {100 * recorded:.2f} % on these images when it was trained; "
              "its weights or the MNIST files have changed since.")
    out.say()
    out.say(per_digit_table(scores))
    out.say()
    out.say(confusion_table(scores.confusion))
    out.say()


def run_title(loaded: LoadedRun) -> str:
    return loaded.name if loaded.summary in loaded.name else f"{loaded.name}  ({loaded.summary})"


def protected_path(save: Path | None, run_dir: Path) -> str | None:
    """Why --save may not write this path (one of the run's own files), or None."""
    if save is None or save.name not in GRAPHS:  # its own pictures it may write again
        return None
    try:
        inside = save.resolve().parent == Path(run_dir).resolve()
    except OSError:
        return None
    if inside:
        return (f"--save {save} would replace the run's own {save.name}; "
                "choose another file name (predict.py never overwrites a run's files)")
    return None


def default_path_note(args) -> str:
    """Why a figure went to a default path instead of a window, when it did."""
    if args.save is not None:
        return ""
    return f" ({'--no-show' if args.no_show else 'no window'}; --save FILE.png picks the path)"


def in_a_window(out: Output, make: Callable):
    """make() a window and return what it returns, or None with a note when no
    window can be opened (the caller then saves the figure instead)."""
    if plots.interactive_backend() is None:
        out.say("No interactive matplotlib backend (install tkinter, for example): saving instead.")
        return None
    try:
        return make()
    except Exception as err:  # noqa: BLE001 - a GUI toolkit that cannot start (Tk with an
        # unreachable display raises TclError, Qt others); the figure is saved instead
        if signals.received():  # a Ctrl-C that matplotlib turned into its own error
            raise
        out.say(f"Cannot open a window ({type(err).__name__}: {' '.join(str(err).split())}); "
              "saving instead.")
        return None


def show_windows(out: Output) -> None:
    """Show the open windows until they are closed; Ctrl-C closes them too, as in train.py
    and compare.py (the figures were only to look at: nothing is lost)."""
    try:
        windows.show()
    except KeyboardInterrupt:
        out.clear_line()  # the ^C the terminal echoed
        out.say("Closed the window.")


# ---- the modes ---------------------------------------------------------------------------------

def show_confusion(out: Output, args, loaded: LoadedRun, scores: Scores, pictures: np.ndarray, show: bool) -> int:
    """--confusion: the clickable matrix in a window, or the heatmap saved."""
    if show:
        explorer = in_a_window(out, lambda: windows.open_explorer(
            pictures, scores, args.start, args.mistakes, loaded.name, matrix_first=True))
        if explorer is not None:  # referenced while open, as in run()
            out.say("The confusion matrix: click a cell to browse its test images "
                  "(Escape back to the matrix), q quit.")
            show_windows(out)
            del explorer
            return 0
    fig = figures.draw_confusion(scores.confusion, run_title(loaded))
    return save_output(out, fig, args, loaded.path / "predictions_confusion.png", "the confusion matrix")


def show_features(out: Output, args, loaded: LoadedRun, show: bool) -> int:
    """--features: the first layer's weights as pictures, in a window or saved."""
    title = f"{run_title(loaded)}, {loaded.weights}"
    if show:
        fig = in_a_window(out, lambda: windows.open_figure(
            lambda f: figures.draw_features(loaded.net, title, f),
            f"What the first layer learned — {loaded.name}"))
        if fig is not None:
            show_windows(out)
            return 0
    fig = figures.draw_features(loaded.net, title)
    return save_output(out, fig, args, loaded.path / "predictions_features.png",
                       "the first layer's weights as pictures")


def drawing_reader(loaded: LoadedRun) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """The drawing window's question to the network: a (H, W) ink canvas (0 paper .. 1 ink)
    -> (the 28x28 uint8 the network sees, its 10 probabilities), or None without ink.
    The canvas is prepared exactly as --image prepares a picture."""
    def see(canvas: np.ndarray):
        try:
            prepared = photo.preprocess(canvas, "the drawing")
        except photo.DigitImageError:
            return None
        return prepared.pixels, loaded.net.predict_proba(loaded.normalize(prepared.pixels.reshape(1, -1)))[0]
    return see


def draw_digit(out: Output, loaded: LoadedRun) -> int:
    """--draw: the drawing window; without one, a one-line error."""
    if not plots.display_available():
        return fail(out, NEEDS_A_DISPLAY)
    if plots.interactive_backend() is None:
        return fail(out, "--draw needs a window, but matplotlib has no GUI toolkit here: install "
                          "tkinter (e.g. apt install python3-tk) or set MPLBACKEND to a GUI backend")
    try:
        window = windows.open_draw(drawing_reader(loaded), f"{run_title(loaded)}, {loaded.weights}")
    except Exception as err:  # noqa: BLE001 - a GUI toolkit that cannot start (see in_a_window)
        if signals.received():
            raise
        return fail(out, f"cannot open the drawing window ({type(err).__name__}: {err}); {NEEDS_A_DISPLAY}")
    out.say("Draw a digit with the mouse: c or right click clears, q quits.")
    show_windows(out)
    del window  # referenced until the window closed, as in run()
    return 0


def classify_image(out: Output, args, loaded: LoadedRun, show: bool) -> int:
    """--image: preprocess a picture of a digit, predict it, print and show or save the result."""
    ignored = [f for f, on in (("--mistakes", args.mistakes), ("--count", args.count != DEFAULT_COUNT),
                               ("--start", args.start != 0)) if on]
    if ignored:
        out.say(f"Note: {', '.join(ignored)} apply to the test images and are ignored with --image.")
    try:
        picture = photo.load_picture(args.image)
        original = picture.pixels  # upright, and reduced when large: picture.size is the file's
        prepared = photo.preprocess(original, str(args.image))
    except photo.DigitImageError as err:
        return fail(out, err)
    probs = loaded.net.predict_proba(loaded.normalize(prepared.pixels.reshape(1, -1)))[0]
    top = top_classes(probs)
    image_name = readable(args.image.name)
    out.say(f"Predicted: {top[0][0]}")
    out.say("Top 3:" + "\n      ".join(f"  {d}  {100 * p:6.2f} %" for d, p in top))
    out.say(f"Run: {out.path(loaded.path)} ({loaded.summary}; {loaded.weights}); image "
          f"{picture.size[0]}×{picture.size[1]}, "
          + ("dark ink on light paper (inverted)" if prepared.inverted else "light ink on dark"))
    if show:
        fig = in_a_window(out, lambda: windows.open_figure(
            lambda f: figures.draw_own_digit(original, prepared.pixels, probs, image_name, f, picture.size),
            f"{image_name}: predicted {top[0][0]} ({100 * top[0][1]:.1f} %)", (10, 4)))
        if fig is not None:
            show_windows(out)
            return 0
    fig = figures.draw_own_digit(original, prepared.pixels, probs, image_name, size=picture.size)
    return save_output(out, fig, args, loaded.path / f"prediction_{args.image.stem}.png",
                       "the picture and its 28×28 version")


# ---- writing figures ------------------------------------------------------------------------

def save_output(out: Output, fig, args, default: Path, what: str) -> int:
    """Write fig to --save, else to its default path in the run folder, and say where.

    A --save path that cannot be written is an error (exit 1); a default path that cannot
    be written (a read-only run folder) is said in one line, and the exit code stays 0:
    the printed report, the main result, is complete."""
    path = args.save or default
    code = save(out, fig, path, quiet=args.save is None)
    if code:
        return code if args.save is not None else 0
    out.say(f"Saved {what} to {out.path(path)}" + default_path_note(args))
    return 0


def save(out: Output, fig, path: Path, quiet: bool = False) -> int:
    """Write fig to path atomically; 0, or the exit code of a one-line error."""
    fix = "pass --save FILE.png to write it elsewhere" if quiet else "choose another --save path"
    for parent in path.parents:  # a file where a folder should be: say so plainly
        if parent.exists():
            if not parent.is_dir():
                return fail(out, f"cannot write {path}: {parent} is a file, not a folder; {fix}")
            break
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        plots.save_figure(fig, path)
    except OSError as err:
        reason = err.strerror or str(err)
        if err.filename and str(err.filename) != str(path):  # e.g. a parent that is a file
            reason += f": {err.filename}"
        return fail(out, f"cannot write {path} ({reason}); {fix}")
    return 0


if __name__ == "__main__":
    run_script(main)
