"""Tests of predict.py and kit/photo.py: the accuracy round trip with train.py, the run
choice, the saved grids, the preprocessing of a person's own digit, the browser's keys,
and one-line errors for every kind of bad input: damaged and empty run folders, bad flags,
bad pictures and bad data, each hostile case (@hostile) leaving the project's folders as they
were, and a hostile world (pipes that close, full streams, ASCII locales, early Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import (
    QUICK,
    ROOT,
    assert_fails,
    assert_no_traceback,
    child_env,
    flags,
    hostile,
    run_script,
    show,
    snapshot,
)

import predict
from kit import figures
from kit import photo as di
from kit.record import GRAPHS

TRAIN_FLAGS = {
    # a 1-hidden-layer ReLU run with normal normalization ...
    "relu-normal": ["--layers", "1", "--normalization", "normal", "--init", "xavier",
                    "--activation", "relu", "--l1", "n", "--decay", "n", "--optimizer", "momentum"],
    # ... and a 2-hidden-layer sigmoid run with simple normalization and L1
    "sigmoid-simple": ["--layers", "2", "--normalization", "simple", "--init", "gauss",
                       "--activation", "sigmoid", "--l1", "y", "--decay", "y", "--optimizer", "sgd",
                       "--learning-rate", "0.05"],
}
ACCURACY_LINE = re.compile(r"^Test accuracy: (\d+\.\d\d) % \(([\d,]+) of 6,000\)$")


def env(mnist_dir: Path | None = None) -> dict:
    """The subprocess environment: never a window; MNIST from the fixture's folder."""
    e = {**os.environ, "MPLBACKEND": "Agg"}
    if mnist_dir is not None:
        e["MNIST_DIR"] = str(mnist_dir)
    return e


def predict_py(*args, mnist_dir: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "predict.py"), *map(str, args)],
                          capture_output=True, text=True, env=env(mnist_dir), cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, mnist_dir) -> Path:
    """Two small runs (2,000 training images, 3 epochs) trained by train.py itself."""
    out = tmp_path_factory.mktemp("runs")
    for name, answers in TRAIN_FLAGS.items():
        done = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), *answers, "--epochs", "3", "--limit", "2000",
             "--seed", "5", "--output-dir", str(out), "--name", name, "--no-show"],
            capture_output=True, text=True, env=env(mnist_dir), cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
    return out


def history_row(run: Path, which: str = "best") -> dict:
    """The row of history.csv for the best validation accuracy (the earliest of equals) or the last."""
    import csv
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if which == "last":
        return rows[-1]
    return max(rows, key=lambda r: float(r["val_accuracy"]))   # max keeps the first of equals


def recorded_correct(run: Path, which: str = "best") -> int:
    """The number of test images right in that epoch, as the run's history.csv says."""
    return round(float(history_row(run, which)["test_accuracy"]) * 6000)


def printed_correct(stdout: str) -> int:
    first = stdout.splitlines()[0]
    match = ACCURACY_LINE.match(first)
    assert match, f"first line is not the accuracy line: {first!r}"
    return int(match.group(2).replace(",", ""))


# ---- the accuracy round trip and the choice of run --------------------------------------

@pytest.mark.parametrize("name", list(TRAIN_FLAGS))
def test_printed_accuracy_is_the_runs_final_test_accuracy(runs_dir, mnist_dir, tmp_path, name):
    run = runs_dir / name
    done = predict_py("--run", run, "--weights", "last", "--save", tmp_path / "last.png",
                      mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    assert printed_correct(done.stdout) == recorded_correct(run, "last")
    assert f"weights of epoch {history_row(run, 'last')['epoch']}, the last" in done.stdout.splitlines()[1]
    done = predict_py("--run", run, "--save", run / "grid.png", mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    right = printed_correct(done.stdout)
    assert right == recorded_correct(run, "best")        # the default: the best validation epoch
    assert f"weights of epoch {history_row(run)['epoch']}, the best on validation data" \
        in done.stdout.splitlines()[1]
    assert "Note:" not in done.stdout  # predict.py's own consistency check agrees
    # The confusion matrix: 6,000 images in all, its diagonal the right ones.
    lines = done.stdout.splitlines()
    at = lines.index("Confusion matrix (rows: true digit, columns: predicted digit):")
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in lines[at + 2:at + 12]])
    assert matrix.shape == (10, 10) and matrix.sum() == 6000 and np.trace(matrix) == right
    # The per-digit table agrees with the matrix's rows.
    at = lines.index("Per-digit accuracy:")
    table = np.array([[int(v.replace(",", "")) for v in line.split()[:3]] for line in lines[at + 2:at + 12]])
    np.testing.assert_array_equal(table[:, 0], np.arange(10))
    np.testing.assert_array_equal(table[:, 1], matrix.sum(axis=1))
    np.testing.assert_array_equal(table[:, 2], np.diag(matrix))


def _copy_run(src: Path, dest: Path, **changes) -> Path:
    shutil.copytree(src, dest)
    record = json.loads((dest / "run.json").read_text())
    record.update(changes)
    (dest / "run.json").write_text(json.dumps(record))
    return dest


def test_latest_run_is_the_latest_started_completed_one(runs_dir, mnist_dir, tmp_path):
    src = runs_dir / "relu-normal"
    # Folder names sort the other way round from the start times, so a choice by name fails.
    _copy_run(src, tmp_path / "b_older", started="2026-01-01T10:00:00+00:00")
    _copy_run(src, tmp_path / "a_newer", started="2026-02-01T10:00:00+00:00")
    # Newest of all, but it never finished: completed runs are preferred.
    _copy_run(src, tmp_path / "0_running", started="2026-03-01T10:00:00+00:00", status="running")
    done = predict_py("--runs-dir", tmp_path, "--save", tmp_path / "grid.png", mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    assert f"Run: {tmp_path / 'a_newer'} " in done.stdout
    assert printed_correct(done.stdout) == recorded_correct(src)


def test_a_run_whose_record_disagrees_gets_a_note(runs_dir, mnist_dir, tmp_path):
    run = runs_dir / "relu-normal"
    record = json.loads((run / "run.json").read_text())
    shifted = {**record["best"], "test_accuracy": record["best"]["test_accuracy"] - 1 / 6000}
    copy = _copy_run(run, tmp_path / "run", best=shifted)
    done = predict_py("--run", copy, "--save", tmp_path / "grid.png", mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    assert printed_correct(done.stdout) == recorded_correct(run)
    assert "Note: the run recorded" in done.stdout


def opened(run: Path) -> predict.LoadedRun:
    return predict.open_run(SimpleNamespace(run=run, runs_dir=None))


def test_scores_agree_with_the_networks_own_evaluate(runs_dir, mnist_dir):
    loaded = opened(runs_dir / "relu-normal")
    test = loaded.load_test_set(mnist_dir)
    scores = predict.score(loaded.net, test.x, test.y)
    # An independent oracle: the network's own evaluate, which wrote history.csv.
    assert scores.right == round(loaded.net.evaluate(test.x, test.y)[1] * 6000)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1, atol=1e-5)
    assert scores.probs.shape == (6000, 10) and scores.predicted.shape == (6000,)


# ---- saved grids ---------------------------------------------------------------------------

def _frame_is_red(png: np.ndarray, layout: figures.GridLayout, k: int) -> bool:
    x0, y0 = layout.origin(k)
    y = y0 + layout.label + figures.GAP - 2   # inside the frame, just above the tile
    x = x0 + layout.cell[0] // 2
    r, g, b = png[y, x, :3]
    return r > 0.7 and g < 0.3 and b < 0.3


def test_grid_png_has_the_layout_size_and_marks_the_mistakes(runs_dir, mnist_dir, tmp_path):
    run = runs_dir / "relu-normal"
    loaded = opened(run)
    test = loaded.load_test_set(mnist_dir)
    wrong = loaded.net.logits(test.x).argmax(axis=1) != test.y

    # 25 images, 5 x 5 tiles of 28 * 4 = 112 px; a cell is 112 + 2 * 8 = 128 px wide and
    # 26 (label) + 128 = 154 px tall; 12 px margins and a 74 px header:
    # width 2 * 12 + 5 * 128 = 664, height 74 + 5 * 154 + 12 = 856.
    # 7 images: 3 x 3 cells, 408 px of tiles widened to the 640 px minimum, 74 + 3 * 154 + 12 = 548.
    for count, start, size in ((25, 0, (856, 664)), (7, 100, (548, 640))):
        path = tmp_path / f"grid_{count}.png"
        done = predict_py("--run", run, "--save", path, "--count", count, "--start", start,
                          mnist_dir=mnist_dir)
        assert done.returncode == 0, done.stderr
        assert f"Saved a grid of {count} test images to {path}" in done.stdout
        png = mpimg.imread(path)
        assert png.shape[:2] == size
        layout = figures.GridLayout.for_count(count)
        assert [_frame_is_red(png, layout, k) for k in range(count)] == list(wrong[start:start + count])
    assert not list(tmp_path.glob("*.tmp"))  # saved atomically, nothing left behind


def test_mistakes_grid_and_default_path_without_display(runs_dir, mnist_dir, tmp_path):
    run = _copy_run(runs_dir / "relu-normal", tmp_path / "run")
    done = predict_py("--run", run, "--mistakes", "--count", "9", "--start", "50", mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    path = run / "predictions_mistakes.png"
    assert f"to {path} (no window" in done.stdout  # no --save, no display: a default path, said
    png = mpimg.imread(path)
    assert png.shape[:2] == (548, 640)
    layout = figures.GridLayout.for_count(9)
    assert all(_frame_is_red(png, layout, k) for k in range(9))


# ---- preprocessing a person's digit -----------------------------------------------------------

def drawn_seven(height: int = 200, width: int = 150) -> np.ndarray:
    """A thick '7': dark ink (0) on white paper (1), RGB, off-centre to the right."""
    img = np.ones((height, width, 3), np.float32)
    img[40:62, 40:128] = 0.05                       # the top bar
    for r in range(62, 175):                          # the slanted stem
        c = int(126 - (r - 62) * 0.45)
        img[r, c - 11:c + 11] = 0.05
    return img


def test_both_polarities_and_alpha_give_the_same_mnist_style_digit():
    dark_on_white = drawn_seven()
    light_on_black = 1 - dark_on_white[:, :, 0]                  # grayscale twin
    ink_alpha = np.zeros(dark_on_white.shape[:2] + (4,), np.float32)  # black ink on transparency
    ink_alpha[:, :, 3] = 1 - dark_on_white[:, :, 0]
    uint8_rgb = np.round(dark_on_white * 255).astype(np.uint8)   # as a JPEG reads
    a = di.preprocess(dark_on_white)
    assert a.inverted and not di.preprocess(light_on_black).inverted
    for other in (light_on_black, ink_alpha, uint8_rgb):
        diff = np.abs(di.preprocess(other).pixels.astype(int) - a.pixels)
        assert diff.max() <= 1

    x = a.pixels
    assert x.shape == (28, 28) and x.dtype == np.uint8 and x.max() == 255
    top, left, bottom, right = di.ink_box(x)
    assert bottom - top == 20 and right - left <= 20   # the taller side fits 20 exactly
    total = x.sum(dtype=np.float64)
    cy = (x.sum(axis=1) @ np.arange(28)) / total
    cx = (x.sum(axis=0) @ np.arange(28)) / total
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    # The bar is on top, wide; the stem's foot at the bottom left.
    assert x[top:top + 3].sum() > x[bottom - 3:bottom].sum()


@pytest.mark.parametrize("normalization, mean, std", [("simple", None, None), ("normal", 33.3, 78.6)])
def test_preprocessed_digit_is_in_the_networks_input_range(normalization, mean, std):
    import mnist_loader
    x = mnist_loader.normalize(di.preprocess(drawn_seven()).pixels.reshape(1, -1),
                               normalization, mean, std)
    lo, hi = ((0, 1) if normalization == "simple" else ((0 - mean) / std, (255 - mean) / std))
    assert x.dtype == np.float32 and x.shape == (1, 784)
    assert np.isclose(x.min(), lo, atol=1e-6) and np.isclose(x.max(), hi, atol=1e-5)
    assert np.isclose(np.median(x), lo, atol=1e-6)   # mostly background, as MNIST


def test_resampling_by_area_and_bilinear():
    a = np.arange(16, dtype=float).reshape(4, 4)
    # 4x4 -> 2x2 by area: the mean of each 2x2 block.
    np.testing.assert_allclose(di.resize(a, 2, 2), [[2.5, 4.5], [10.5, 12.5]])
    # 3 -> 2 pixels: each output pixel covers 1.5 input pixels.
    np.testing.assert_allclose(di.resample_matrix(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    # Enlarging interpolates: 2 -> 4 pixels of [0, 1] give 0, 0.25, 0.75, 1.
    np.testing.assert_allclose(di.resize(np.array([[0.0, 1.0]]), 1, 4), [[0, 0.25, 0.75, 1]])
    for n_in, n_out in ((517, 20), (7, 20), (20, 20)):
        np.testing.assert_allclose(di.resample_matrix(n_in, n_out).sum(axis=1), 1)


def test_thin_pen_strokes_come_out_as_strong_as_mnists():
    # A boxy '0' drawn with a 3-pixel pen in a 600-pixel photo: shrinking it 20 times
    # averages the stroke with paper, but MNIST's strokes reach full brightness.
    photo = np.full((600, 450), 0.9, np.float32)
    photo[100:500, 120:320] = 0.1
    photo[103:497, 123:317] = 0.9
    x = di.preprocess(photo).pixels
    assert x.max() == 255 and np.percentile(x[x > 0], 75) > 127
    top, left, bottom, right = di.ink_box(x)
    assert (bottom - top, right - left) == (20, 10)


def test_blank_and_faint_images_are_refused():
    for blank in (np.ones((50, 40)), np.zeros((50, 40, 3)), np.zeros((30, 30, 4))):
        with pytest.raises(di.DigitImageError, match="no ink"):
            di.preprocess(blank)
    faint = np.ones((60, 60))
    faint[20:40, 28:32] = 0.95
    with pytest.raises(di.DigitImageError, match="no ink"):
        di.preprocess(faint)


def test_image_flag_prints_prediction_and_saves_both_pictures(runs_dir, mnist_dir, tmp_path):
    picture = tmp_path / "my seven.png"
    mpimg.imsave(picture, drawn_seven())
    out = tmp_path / "seven_result.png"
    done = predict_py("--run", runs_dir / "relu-normal", "--image", picture, "--save", out,
                      mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    predicted = re.fullmatch(r"Predicted: (\d)", lines[0])
    assert predicted
    top = [re.search(r"(\d)\s+(\d+\.\d\d) %$", line) for line in lines[1:4]]
    assert all(top) and lines[1].startswith("Top 3:")
    digits = [int(m.group(1)) for m in top]
    probs = [float(m.group(2)) for m in top]
    assert digits[0] == int(predicted.group(1)) and len(set(digits)) == 3
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.01
    assert "inverted" in done.stdout
    assert mpimg.imread(out).shape == (400, 1000, 4)


# ---- windows from the command line -----------------------------------------------------------

def test_browsing_from_the_command_line(runs_dir, mnist_dir, monkeypatch, capsys):
    """With a display, main() opens one window and its keys work while plt.show() runs."""
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import KeyEvent

    from kit import plots
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setattr(plots, "display_available", lambda: True)
    monkeypatch.setattr(plots, "interactive_backend", lambda: "TkAgg")  # Agg, pretending
    seen = []

    def show():  # what a user does in the window
        fig = plt.gcf()
        seen.append(fig.canvas.manager.get_window_title())
        for name in ("m", "right", "left"):
            KeyEvent("key_press_event", fig.canvas, name)._process()
            seen.append(fig.canvas.manager.get_window_title())
        KeyEvent("key_press_event", fig.canvas, "q")._process()
        seen.append(plt.get_fignums())
    monkeypatch.setattr(plt, "show", show)
    with matplotlib.rc_context():
        assert predict.main(["--run", str(runs_dir / "relu-normal"), "--start", "5990"]) == 0
    out = capsys.readouterr().out
    assert "Browsing the test images" in out and "Saved" not in out
    assert "test image 5,990 " in seen[0]                   # --start
    assert "Predicted:" in seen[0] and "True:" in seen[0]
    assert seen[1] != seen[0]                                 # 'm' moved to a mistake
    assert seen[2] != seen[1] and seen[3] == seen[1]          # right, then left: back again
    assert seen[-1] == []                                     # q closed the one window


@pytest.fixture
def with_a_display(mnist_dir, monkeypatch):
    """main() believes a window can open (it is Agg, pretending); plt.show() is replaced
    by the user's actions: pass them to the fixture's result."""
    import matplotlib.pyplot as plt

    from kit import plots
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setattr(plots, "display_available", lambda: True)
    monkeypatch.setattr(plots, "interactive_backend", lambda: "TkAgg")

    def act(user):
        monkeypatch.setattr(plt, "show", lambda: user(plt.gcf()))
    with matplotlib.rc_context():
        yield act
    plt.close("all")


def test_confusion_window_from_the_command_line(runs_dir, with_a_display, capsys):
    """--confusion opens on the matrix; a click on a cell browses that cell's test images."""
    from matplotlib.backend_bases import KeyEvent, MouseEvent

    from kit import windows
    seen = {}

    def user(fig):
        fig.canvas.draw()
        ax = fig.axes[0]
        seen["matrix title"] = fig.canvas.manager.get_window_title()
        x, y = ax.transData.transform((1, 1))     # predicted 1, true 1
        MouseEvent("button_press_event", fig.canvas, x, y, button=1)._process()
        seen["cell title"] = fig.canvas.manager.get_window_title()
        seen["header"] = fig.texts[0].get_text()
        KeyEvent("key_press_event", fig.canvas, "escape")._process()
        seen["back"] = fig.canvas.manager.get_window_title()
        KeyEvent("key_press_event", fig.canvas, "q")._process()
    with_a_display(user)
    run = runs_dir / "relu-normal"
    assert predict.main(["--run", str(run), "--confusion"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = lines.index("Confusion matrix (rows: true digit, columns: predicted digit):")
    ones = int(lines[at + 3].split()[2])                       # row 1, column 1 of the printed matrix
    assert "The confusion matrix: click a cell" in out and "Saved" not in out
    assert seen["matrix title"].startswith("Confusion matrix")
    assert seen["cell title"].startswith("Predicted: 1   True: 1")
    assert f"true 1, predicted 1: 1 of {ones:,}" in seen["header"]
    assert seen["back"].startswith("Confusion matrix")
    assert windows.MATRIX_KEYS[0] == "c"


def test_image_window_is_titled_with_the_file_and_the_prediction(runs_dir, with_a_display, tmp_path, capsys):
    picture = tmp_path / "seven.png"
    mpimg.imsave(picture, drawn_seven())
    titles = []
    with_a_display(lambda fig: titles.append(fig.canvas.manager.get_window_title()))
    assert predict.main(["--run", str(runs_dir / "relu-normal"), "--image", str(picture)]) == 0
    predicted = re.fullmatch(r"Predicted: (\d)", capsys.readouterr().out.splitlines()[0]).group(1)
    assert len(titles) == 1 and re.fullmatch(rf"seven\.png: predicted {predicted} \(\d+\.\d %\)", titles[0])


def test_draw_and_features_windows_from_the_command_line(runs_dir, with_a_display, capsys):
    opened = []
    with_a_display(lambda fig: opened.append((fig.canvas.manager.get_window_title(), len(fig.axes))))
    run = str(runs_dir / "relu-normal")
    assert predict.main(["--run", run, "--draw"]) == 0
    assert predict.main(["--run", run, "--features"]) == 0
    assert opened[0][0].startswith("Draw a digit") and opened[0][1] == 3
    assert opened[1][0].startswith("What the first layer learned") and opened[1][1] == 64
    assert "Draw a digit with the mouse" in capsys.readouterr().out


# ---- headless: the window features save a PNG or say how to get a window ---------------------------

@pytest.mark.slow
def test_confusion_and_features_headless_save_pngs(runs_dir, mnist_dir, tmp_path):
    run = _copy_run(runs_dir / "relu-normal", tmp_path / "run")
    (run / "features.png").unlink()                     # as a run trained before features.png
    done = predict_py("--run", run, "--confusion", "--save", tmp_path / "matrix.png", mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    assert printed_correct(done.stdout) == recorded_correct(run)
    assert f"Saved the confusion matrix to {tmp_path / 'matrix.png'}" in done.stdout
    assert mpimg.imread(tmp_path / "matrix.png").shape == (700, 720, 4)
    done = predict_py("--run", run, "--features", mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    assert f"to {run / 'predictions_features.png'} (no window" in done.stdout
    png = mpimg.imread(run / "predictions_features.png")
    assert png.shape == (855, 830, 4)   # 8 x 8 tiles: (0.95 * 8 + 0.35 + 0.2 * 3 lines) by (1.0 * 8 + 0.3) inches at 100 dpi
    assert not (run / "features.png").exists()          # the run's own files are train.py's


@pytest.mark.slow
def test_draw_without_a_display_says_how_to_get_one(runs_dir):
    done = predict_py("--run", runs_dir / "relu-normal", "--draw")
    assert_one_line_error(done, "--draw needs a window", "desktop", code=1)
    assert done.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("name", GRAPHS)
def test_save_never_replaces_a_runs_own_files(runs_dir, mnist_dir, tmp_path, name):
    run = _copy_run(runs_dir / "relu-normal", tmp_path / "run")
    if not (run / name).exists():
        (run / name).write_bytes(b"the run's own")
    before = (run / name).read_bytes()
    done = predict_py("--run", run, "--features", "--save", run / name, mnist_dir=mnist_dir)
    assert_one_line_error(done, f"would replace the run's own {name}", "choose another file name", code=1)
    assert (run / name).read_bytes() == before


def test_status_of_a_run_whose_process_died(runs_dir, mnist_dir, tmp_path, monkeypatch, capsys):
    run = _copy_run(runs_dir / "relu-normal", tmp_path / "run", status="running")
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    assert predict.main(["--run", str(run), "--save", str(tmp_path / "grid.png")]) == 0
    assert "ended without a status after 3 committed epochs" in capsys.readouterr().out.splitlines()[1]


def test_unwritable_run_folder_still_reports_and_says_where_it_could_not_write(
        runs_dir, mnist_dir, tmp_path, monkeypatch, capsys):
    # Root may write anywhere, so the read-only folder is played by save_figure's error.
    from kit import plots

    def read_only(fig, path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setattr(plots, "save_figure", read_only)
    run = runs_dir / "relu-normal"
    assert predict.main(["--run", str(run), "--no-show"]) == 0
    out, err = capsys.readouterr()
    assert printed_correct(out) == recorded_correct(run) and "Confusion matrix" in out
    assert err.splitlines() == [f"predict.py: cannot write {run / 'predictions.png'} (Permission denied); "
                                "pass --save FILE.png to write it elsewhere"]
    assert predict.main(["--run", str(run), "--save", str(tmp_path / "g.png")]) == 1   # --save: an error


def test_without_a_window_backend_the_grid_is_saved(runs_dir, mnist_dir, tmp_path, monkeypatch, capsys):
    # A display, but matplotlib fell back to Agg (no GUI toolkit): show() would do nothing.
    from kit import plots
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    monkeypatch.setattr(plots, "display_available", lambda: True)
    run = _copy_run(runs_dir / "relu-normal", tmp_path / "run")
    assert predict.main(["--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "No interactive matplotlib backend" in out and (run / "predictions.png").is_file()


def test_ctrl_c_exits_130_quietly(monkeypatch, capsys):
    def interrupted(args, out):
        raise KeyboardInterrupt
    monkeypatch.setattr(predict, "run", interrupted)
    assert predict.main([]) == 130
    assert capsys.readouterr().err == ""


def test_ctrl_c_in_a_window_closes_it_and_says_so(monkeypatch, capsys):
    """As train.py and compare.py: Ctrl-C while a window is open closes it, one line says
    so, and predict.py ends normally (the windows were only to look at)."""
    from kit import windows

    def show():
        raise KeyboardInterrupt
    monkeypatch.setattr(windows, "show", show)
    predict.show_windows(predict.Output("predict.py"))
    assert capsys.readouterr().out == "Closed the window.\n"


# ---- bad input: one line on stderr, no traceback ----------------------------------------------

def _corrupt(run: Path, case: str) -> str:
    """Damage a copy of a run folder (its best epoch's checkpoint or its run.json); returns
    text the error message must contain."""
    record = json.loads((run / "run.json").read_text())
    weights = run / record["best"]["checkpoint"]
    if case == "missing weights_2.csv":
        (weights / "weights_2.csv").unlink()
        return "weights_2.csv: missing"
    if case == "wrong shape":
        w = np.loadtxt(weights / "weights_1.csv", delimiter=",")
        np.savetxt(weights / "weights_1.csv", w[:, :-1], delimiter=",")
        return "weights_1.csv: shape 784x63, expected 784x64"
    if case == "text in a CSV":
        text = (weights / "biases_2.csv").read_text().splitlines()
        text[3] = "seven"
        (weights / "biases_2.csv").write_text("\n".join(text) + "\n")
        return "biases_2.csv: not a CSV of numbers"
    if case == "NaN value":
        text = (weights / "biases_1.csv").read_text().splitlines()
        text[0] = "nan"
        (weights / "biases_1.csv").write_text("\n".join(text) + "\n")
        return "biases_1.csv: holds NaN"
    if case == "empty CSV":
        (weights / "weights_1.csv").write_text("")
        return "weights_1.csv: empty"
    if case == "record not JSON":
        (run / "run.json").write_text("{'layers': 1,")
        return "run.json"
    if case == "unknown activation":
        record["config"]["activation"] = "tanh"
        (run / "run.json").write_text(json.dumps(record))
        return "run.json"
    raise ValueError(case)


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str, code: int | None = None):
    assert done.returncode != 0 and (code is None or done.returncode == code)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("predict.py: ") and "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("case", ["missing weights_2.csv", "wrong shape", "text in a CSV", "NaN value",
                                  "empty CSV",
                                  "record not JSON", "unknown activation"])
def test_damaged_run_folder_is_named_in_one_line(runs_dir, tmp_path, case):
    run = shutil.copytree(runs_dir / "relu-normal", tmp_path / "run")
    expected = _corrupt(run, case)
    assert_one_line_error(predict_py("--run", run), str(run), expected, code=1)


# ---- the same, through predict.py's whole run: each case checks the exit code, a single stderr line
# naming the file, no traceback, and that the run folder it was given is left exactly as it was

def run_predict(args, mnist_dir: Path | None = None, env: dict | None = None):
    """predict.py offline and headless (conftest's child_env); MNIST from mnist_dir when given."""
    return run_script("predict.py", args, env=env or child_env(mnist_dir))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, mnist_dir) -> Path:
    """A real run of train.py: 1 hidden layer (two weight files), normal normalization."""
    out = tmp_path_factory.mktemp("predict_runs")
    proc = run_script("train.py", [*flags(normalization="normal"), *QUICK, "--output-dir", out, "--name", "good"],
                      env=child_env(MNIST_DIR=str(mnist_dir)))
    assert proc.returncode == 0, show(proc)
    return out / "good"


@pytest.fixture
def broken(good_run, tmp_path):
    """A copy of the good run to damage."""
    return Path(shutil.copytree(good_run, tmp_path / "run"))


NORM_KEYS = {"norm_mean": "mean", "norm_std": "std"}


def _edit_config(run: Path, **change) -> None:
    """Change keys of run.json's configuration (norm_mean / norm_std: of its normalization)."""
    path = run / "run.json"
    d = json.loads(path.read_text())
    for key, value in change.items():
        section, key = (d["normalization"], NORM_KEYS[key]) if key in NORM_KEYS else (d["config"], key)
        if value is KeyError:
            section.pop(key, None)
        else:
            section[key] = value
    path.write_text(json.dumps(d))


def ck(run: Path) -> Path:
    """The best epoch's checkpoint folder, which holds the weights predict.py loads."""
    return run / json.loads((run / "run.json").read_text())["best"]["checkpoint"]


def _edit_csv(run: Path, name: str, edit) -> None:
    path = ck(run) / name
    path.write_text(edit(path.read_text()))


def _set_cell(text: str, value: str) -> str:
    lines = text.splitlines()
    cells = lines[3].split(",")
    cells[0] = value
    lines[3] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _drop_last_cell(text: str) -> str:
    lines = text.splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]
    return "\n".join(lines) + "\n"


RUN_CASES = [
    ("weights_2-missing", lambda r: (ck(r) / "weights_2.csv").unlink(), ["weights_2.csv", "missing"]),
    ("biases_1-missing", lambda r: (ck(r) / "biases_1.csv").unlink(), ["biases_1.csv", "missing"]),
    ("config-missing", lambda r: (r / "run.json").unlink(), ["run.json", "not a run folder"]),
    ("weights_1-one-row-short", lambda r: _edit_csv(r, "weights_1.csv", lambda t: "".join(t.splitlines(True)[:-1])),
     ["weights_1.csv", "shape 783x64, expected 784x64"]),
    ("weights_2-transposed", lambda r: np.savetxt(ck(r) / "weights_2.csv", np.loadtxt(ck(r) / "weights_2.csv", delimiter=",").T,
                                                  delimiter=","), ["weights_2.csv", "expected 64x10"]),
    ("weights_1-one-value-short-in-a-row", lambda r: _edit_csv(r, "weights_1.csv", _drop_last_cell),
     ["weights_1.csv", "not a CSV of numbers"]),
    ("biases_2-text", lambda r: (ck(r) / "biases_2.csv").write_text("zero\none\n" * 5), ["biases_2.csv", "not a CSV of numbers"]),
    ("weights_1-text-in-a-cell", lambda r: _edit_csv(r, "weights_1.csv", lambda t: _set_cell(t, "0.1abc")),
     ["weights_1.csv", "not a CSV of numbers"]),
    ("weights_2-NaN", lambda r: _edit_csv(r, "weights_2.csv", lambda t: _set_cell(t, "nan")),
     ["weights_2.csv", "NaN or infinite"]),
    ("biases_1-inf", lambda r: _edit_csv(r, "biases_1.csv", lambda t: _set_cell(t, "inf")), ["biases_1.csv", "NaN or infinite"]),
    ("weights_1-empty-file", lambda r: (ck(r) / "weights_1.csv").write_text(""), ["weights_1.csv"]),
    ("weights_1-binary", lambda r: (ck(r) / "weights_1.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 50), ["weights_1.csv"]),
    ("extra-weights_3-from-another-run", lambda r: shutil.copy(ck(r) / "weights_2.csv", ck(r) / "weights_3.csv"),
     ["weights_3.csv", "mixes two runs"]),
    ("config-not-json", lambda r: (r / "run.json").write_text("{layers: 1,"), ["run.json", "not valid JSON"]),
    ("config-empty", lambda r: (r / "run.json").write_text(""), ["run.json", "not valid JSON"]),
    ("config-not-utf8", lambda r: (r / "run.json").write_bytes(b"\xff\xfe{}"), ["run.json"]),
    ("config-a-list", lambda r: (r / "run.json").write_text("[1, 2]"), ["run.json", "not a JSON object"]),
    ("config-activation-tanh", lambda r: _edit_config(r, activation="tanh"), ["run.json", "activation must be one of relu, sigmoid, not 'tanh'"]),
    ("config-normalization-minmax", lambda r: _edit_config(r, normalization="minmax"), ["run.json", "normalization must be one of simple, normal"]),
    ("config-layers-string", lambda r: _edit_config(r, layers="1"), ["run.json", "layers must be one of 0, 1, 2"]),
    ("config-layers-3", lambda r: _edit_config(r, layers=3), ["run.json", "layers must be one of 0, 1, 2"]),
    ("config-seed-missing", lambda r: _edit_config(r, seed=KeyError), ["run.json", "missing key(s) seed"]),
    ("config-layer_sizes-disagree", lambda r: _edit_config(r, layer_sizes=[784, 32, 10]), ["run.json", "layer_sizes"]),
    ("config-hidden_size-32-csv-64", lambda r: _edit_config(r, hidden_size=32, layer_sizes=KeyError),
     ["weights_1.csv", "expected 784x32"]),
    ("config-norm_std-0", lambda r: _edit_config(r, norm_std=0), ["run.json", "normalization std"]),
    ("config-norm_mean-text", lambda r: _edit_config(r, norm_mean="33"), ["run.json", "normalization mean"]),
    ("config-unknown-key", lambda r: _edit_config(r, dropout=0.5), None),  # extra keys are ignored: it loads
    ("config-hidden_size-1e9", lambda r: _edit_config(r, hidden_size=10**9, layer_sizes=KeyError),
     ["run.json"]),
]


@hostile
@pytest.mark.parametrize("damage,needles", [c[1:] for c in RUN_CASES], ids=[f"run-{c[0]}" for c in RUN_CASES])
def test_damaged_run_folder_exits_1_one_line_and_folder_unchanged(broken, tmp_path, mnist_dir, damage, needles):
    damage(broken)
    before = snapshot(broken)
    proc = run_predict(["--run", broken, "--no-show", "--save", tmp_path / "grid.png"], mnist_dir)
    if needles is None:
        assert proc.returncode == 0, show(proc)
        assert_no_traceback(proc)
    else:
        assert_fails(proc, 1, *needles)
        assert not (tmp_path / "grid.png").exists()
    assert snapshot(broken) == before


def test_no_saved_run_says_to_train_first(tmp_path):
    assert_one_line_error(predict_py("--runs-dir", tmp_path), str(tmp_path), "python train.py", code=1)
    assert_one_line_error(predict_py("--run", tmp_path / "nothing"), "no such run folder", code=1)


@hostile
def test_empty_runs_dir_says_train_first(tmp_path):
    empty = tmp_path / "saved_files"
    empty.mkdir()
    proc = run_predict(["--runs-dir", empty, "--no-show"])
    assert_fails(proc, 1, f"no saved run in {empty}", "python train.py")
    assert list(empty.iterdir()) == []


@hostile
def test_runs_dir_that_does_not_exist_says_train_first_and_is_not_created(tmp_path):
    proc = run_predict(["--runs-dir", tmp_path / "nowhere", "--no-show"])
    assert_fails(proc, 1, "no saved run in", "python train.py")
    assert not (tmp_path / "nowhere").exists()


@hostile
def test_runs_dir_holding_only_damaged_runs_says_no_saved_run(tmp_path, good_run):
    runs_dir = tmp_path / "saved_files"
    bad = Path(shutil.copytree(good_run, runs_dir / "bad"))
    (bad / "run.json").write_text("not json")
    before = snapshot(runs_dir)
    proc = run_predict(["--runs-dir", runs_dir, "--no-show"])
    assert_fails(proc, 1, "no saved run in")
    assert snapshot(runs_dir) == before


@hostile
def test_run_flag_naming_nothing_or_a_file(tmp_path):
    for target in (tmp_path / "nowhere", tmp_path / "file.txt"):
        if target.suffix:
            target.write_text("hello\n")
        proc = run_predict(["--run", target, "--no-show"])
        assert_fails(proc, 1, str(target), "no such run folder")


@hostile
def test_run_trained_with_an_accepted_flag_value_loads_in_predict(tmp_path, mnist_dir):
    """train.py accepts the largest finite --decay-factor and completes the run; predict.py must then load it."""
    out = tmp_path / "out"
    trained = run_script("train.py", [*flags(decay="y"), *QUICK, "--output-dir", out, "--name", "huge", "--decay-factor", "1e308"],
                         env=child_env(MNIST_DIR=str(mnist_dir)))
    assert trained.returncode == 0, show(trained)
    proc = run_predict(["--run", out / "huge", "--no-show", "--save", tmp_path / "g.png"], mnist_dir)
    assert proc.returncode == 0, show(proc)


def test_save_path_that_cannot_be_written_is_one_line(runs_dir, mnist_dir, tmp_path):
    (tmp_path / "a file").write_text("")
    target = tmp_path / "a file" / "grid.png"
    done = predict_py("--run", runs_dir / "relu-normal", "--save", target, mnist_dir=mnist_dir)
    assert_one_line_error(done, f"cannot write {target}", "a file is a file, not a folder", code=1)


@hostile
@pytest.mark.parametrize("where", ["under-a-file", "is-a-folder"], ids=lambda w: f"save-path-{w}")
def test_unwritable_save_path_exits_1_one_line_and_nothing_left(good_run, tmp_path, mnist_dir, where):
    if where == "under-a-file":
        (tmp_path / "file").write_text("in the way\n")
        target = tmp_path / "file" / "grid.png"
    else:
        target = tmp_path / "grid.png"
        target.mkdir()
        (target / "keep.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    proc = run_predict(["--run", good_run, "--no-show", "--save", target], mnist_dir)
    assert_fails(proc, 1, "cannot write", "choose another --save path")
    assert snapshot(tmp_path) == before


def test_bad_images_are_named_in_one_line(runs_dir, tmp_path):
    run = runs_dir / "relu-normal"
    junk = tmp_path / "digit.png"
    junk.write_text("not really a PNG\n")
    assert_one_line_error(predict_py("--run", run, "--image", junk), str(junk), "cannot read", code=1)
    assert_one_line_error(predict_py("--run", run, "--image", tmp_path / "none.png"),
                          "none.png: no such image file", code=1)
    blank = tmp_path / "blank.jpg"
    mpimg.imsave(blank, np.full((40, 30, 3), 250, np.uint8))
    assert_one_line_error(predict_py("--run", run, "--image", blank), "blank.jpg: no ink", code=1)


def _png(path: Path, image: np.ndarray) -> Path:
    import matplotlib.image as mpimg
    mpimg.imsave(path, image, cmap="gray", vmin=0, vmax=1)
    return path


@hostile
@pytest.mark.parametrize("case,needle", [
    ("missing", "no such image file"), ("folder", "is a folder"), ("text-named-png", "cannot read it as an image"),
    ("truncated-png", "cannot read it as an image"), ("blank-white", "no ink found"), ("one-pixel", "no ink found"),
])
def test_bad_picture_exits_1_one_line(good_run, tmp_path, case, needle):
    path = tmp_path / "digit.png"
    if case == "folder":
        path.mkdir()
    elif case == "text-named-png":
        path.write_text("a seven, honestly\n")
    elif case == "truncated-png":
        _png(path, np.eye(40))
        path.write_bytes(path.read_bytes()[:60])
    elif case == "blank-white":
        _png(path, np.ones((60, 40)))
    elif case == "one-pixel":
        _png(path, np.zeros((1, 1)))
    before = snapshot(good_run)
    proc = run_predict(["--run", good_run, "--no-show", "--image", path, "--save", tmp_path / "out.png"])
    assert_fails(proc, 1, "digit.png", needle)
    assert snapshot(good_run) == before and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("flags, needle", [
    (["--start", "6000"], "--start: 6000 is out of range (must be 0 to 5999)"),
    (["--start", "-1"], "--start"),
    (["--count", "0"], "--count: 0 is out of range (must be 1 to 6000)"),
    (["--count", "many"], "--count: 'many' is not a whole number"),
    (["--save", "grid.jpg"], "must end in .png"),
    (["--colour"], "unrecognized arguments: --colour"),
    (["--draw", "--save", "d.png"], "--save does not go with --draw"),
    (["--draw", "--confusion"], "not allowed with argument"),
])
def test_bad_flags_are_one_line_usage_errors(tmp_path, flags, needle):
    assert_one_line_error(predict_py("--runs-dir", tmp_path, *flags), needle, code=2)


@hostile
@pytest.mark.parametrize("args,needle", [
    (["--save", "grid.jpg"], "must end in .png"),
    (["--count", "0"], "out of range"),
    (["--count", "6001"], "out of range"),
    (["--count", "many"], "not a whole number"),
    (["--start", "-1"], "out of range"),
    (["--start", "6000"], "out of range"),
    (["--ru", "x"], "unrecognized arguments: --ru"),
    (["--verbose"], "unrecognized arguments"),
], ids=["save-jpg", "count-0", "count-6001", "count-many", "start--1", "start-6000", "abbrev-ru-refused", "unknown-flag"])
def test_bad_flag_exits_2_one_line(good_run, args, needle):
    before = snapshot(good_run)
    proc = run_predict(["--run", good_run, "--no-show", *args])
    assert_fails(proc, 2, needle, "--help")
    assert snapshot(good_run) == before


# ---- the test images

@hostile
def test_bad_data_dir_exits_1_one_line(good_run, tmp_path, mnist_dir):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (data / name).symlink_to(mnist_dir / name)
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    before = snapshot(data)
    proc = run_predict(["--run", good_run, "--no-show", "--data-dir", data, "--save", tmp_path / "g.png"])
    assert_fails(proc, 1, "t10k-labels-idx1-ubyte.gz", "empty file")
    assert snapshot(data) == before


@hostile
def test_missing_data_download_refused_exits_1_one_line(good_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = run_predict(["--run", good_run, "--no-show", "--data-dir", data, "--save", tmp_path / "g.png"])
    assert_fails(proc, 1, "could not download", "from any mirror", str(data))
    assert list(data.iterdir()) == []


# ---- run.json corrupted key by key: one line naming the file and the key ---------------------

def _record_edit(change):
    """A damage that loads run.json, lets change(record) edit it and writes it back
    (json writes NaN and 1e308 as Python reads them)."""
    def damage(run: Path) -> None:
        path = run / "run.json"
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return damage


def _set(*keys_and_value):
    """change(record): set record[k1][k2]... to the value (KeyError: remove the key)."""
    *keys, value = keys_and_value

    def change(record):
        for key in keys[:-1]:
            record = record[key]
        if value is KeyError:
            record.pop(keys[-1])
        else:
            record[keys[-1]] = value
    return change


def _best_after_last(record):
    record["best"] = {**record["best"], "epoch": record["last"]["epoch"] + 1,
                      "checkpoint": f"checkpoints/epoch-{record['last']['epoch'] + 1:04d}"}


RECORD_CASES = [  # (id, damage, the words the line must hold besides run.json)
    ("format-missing", _set("format", KeyError), "format"),
    ("format-text", _set("format", "2"), "format"),
    ("config-a-number", _set("config", 7), "configuration is not a JSON object"),
    ("config-layers-text", _set("config", "layers", "1"), "layers"),
    ("config-layer_sizes-a-number", _set("config", "layer_sizes", 784), "layer_sizes"),
    ("config-epochs-0", _set("config", "epochs", 0), "epochs"),
    ("config-learning_rate-nan", _set("config", "learning_rate", float("nan")), "learning_rate"),
    ("config-optimizer-missing", _set("config", "optimizer", KeyError), "missing key(s) optimizer"),
    ("normalization-missing", _set("normalization", KeyError), "normalization"),
    ("normalization-std-1e-320", _set("normalization", "std", 1e-320), "std"),
    ("normalization-mean-1e300", _set("normalization", "mean", 1e300), "mean"),
    ("normalization-kind-simple", _set("normalization", "kind", "simple"), "normalization"),
    ("status-unknown", _set("status", "paused"), "status"),
    ("status-missing", _set("status", KeyError), "status"),
    ("started-without-utc-offset", _set("started", "2024-03-01T12:00:00"), "started"),
    ("started-a-number", _set("started", 1709294400), "started"),
    ("ended-not-a-time", _set("ended", "yesterday"), "ended"),
    ("sizes-a-list", _set("sizes", [500, 500, 6000]), "sizes"),
    ("sizes-train-0", _set("sizes", "train", 0), "sizes.train"),
    ("versions-a-number", _set("versions", "numpy", 2), "versions"),
    ("epochs_completed-text", _set("epochs_completed", "1"), "epochs_completed"),
    ("epochs_completed-beyond-last", _set("epochs_completed", 5), "epochs_completed"),
    ("train_seconds-negative", _set("train_seconds", -1), "train_seconds"),
    ("last-a-list", _set("last", [1, 2]), "last"),
    ("last-a-string", _set("last", "checkpoints/epoch-0001"), "last"),
    ("last-test_accuracy-nan", _set("last", "test_accuracy", float("nan")), "last.test_accuracy"),
    ("last-val_loss-1e308", _set("last", "val_loss", 1e308), "last.val_loss"),
    ("last-epoch-true", _set("last", "epoch", True), "last.epoch"),
    ("last-checkpoint-another-folder", _set("last", "checkpoint", "../other/checkpoints/epoch-0001"),
     "last.checkpoint"),
    ("best-checkpoint-another-folder", _set("best", "checkpoint", "/tmp/checkpoints/epoch-0001"),
     "best.checkpoint"),
    ("best-missing", _set("best", KeyError), "best"),
    ("best-epoch-after-last", _best_after_last, "best"),
    ("best-val_accuracy-1.5", _set("best", "val_accuracy", 1.5), "best.val_accuracy"),
]


@hostile
@pytest.mark.parametrize("damage,key", [c[1:] for c in RECORD_CASES], ids=[c[0] for c in RECORD_CASES])
def test_each_corrupted_key_of_run_json_is_named_in_one_line(broken, tmp_path, capsys, damage, key):
    """A copy of a real run's run.json, damaged in one key: predict.py exits 1 with one line
    naming run.json and the key, and writes nothing."""
    import predict
    _record_edit(damage)(broken)
    before = snapshot(broken)
    save = tmp_path / "features.png"
    code = predict.main(["--run", str(broken), "--features", "--save", str(save)])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("predict.py: "), err
    assert str(broken / "run.json") in err and key in err, err
    assert not save.exists() and snapshot(broken) == before


@hostile
@pytest.mark.parametrize("case", ["nested-brackets", "a-number", "weight-overflows-float32"])
def test_a_record_or_weights_beyond_reason_are_named_in_one_line(broken, tmp_path, capsys, case):
    """100,000 nested brackets (RecursionError in json), a record that is a number, and a
    weight that is finite in float64 but not in float32 (1e39): one line each, exit 1."""
    import predict
    if case == "nested-brackets":
        (broken / "run.json").write_text("[" * 100_000 + "]" * 100_000)
        needles = [str(broken / "run.json"), "nested too deeply"]
    elif case == "a-number":
        (broken / "run.json").write_text("12")
        needles = [str(broken / "run.json"), "not a JSON object"]
    else:
        _edit_csv(broken, "weights_1.csv", lambda t: _set_cell(t, "1e39"))
        needles = [str(ck(broken) / "weights_1.csv")]
    code = predict.main(["--run", str(broken), "--features", "--save", str(tmp_path / "f.png")])
    out, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and all(n in err for n in needles), err


# ---- a hostile world: pipes that close, full or closed streams, ASCII locales, early Ctrl-C ------

BEST_MODEL = ROOT / "saved_files" / "best-model"


def _hostile_env(mnist_dir: Path, **extra: str) -> dict:
    """Headless (no DISPLAY), MNIST from the fixture's folder, and the given variables."""
    e = {k: v for k, v in env(mnist_dir).items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    e.update(extra)
    return e


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """A copy of the shipped model, so that its default output files land in tmp_path."""
    return Path(shutil.copytree(BEST_MODEL, tmp_path / "best-model"))


@pytest.mark.slow
def test_double_dash_value_through_the_real_program(tmp_path):
    for flag in ("--run", "--start", "--weights", "--save"):
        assert_one_line_error(predict_py(f"{flag}=--", "--runs-dir", tmp_path), flag, "needs a value", code=2)


@pytest.mark.slow
def test_a_reader_that_leaves_ends_quietly_at_every_line_count(model_copy, mnist_dir, tmp_path):
    """`predict.py | head -N` in a real shell pipeline, N = 1..30 (the report is about 30
    lines): exit 141 (the reader left) or 0 (it read everything), nothing on stderr."""
    whole = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--run", str(model_copy)],
                           capture_output=True, text=True, env=_hostile_env(mnist_dir), cwd=ROOT, timeout=120)
    assert whole.returncode == 0 and whole.stderr == "", whole.stderr
    lines = whole.stdout.splitlines()
    assert 25 <= len(lines) <= 31
    err = tmp_path / "stderr.txt"
    command = (f"{shlex.quote(sys.executable)} predict.py --run {shlex.quote(str(model_copy))} "
               f"2>{shlex.quote(str(err))} | head -LINES; " 'echo "status ${PIPESTATUS[0]}" >&2')
    for n in range(1, 31):
        done = subprocess.run(["bash", "-c", command.replace("LINES", str(n))], capture_output=True, text=True,
                              env=_hostile_env(mnist_dir), cwd=ROOT, timeout=120)
        status = int(done.stderr.split("status ")[-1])
        assert status in (141, 0), (n, status, err.read_text())
        assert err.read_text() == "", (n, err.read_text())
        timing = re.compile(r"scored in \d+ ms")   # the one line that differs between runs
        assert [timing.sub("", t) for t in done.stdout.splitlines()] == [timing.sub("", t) for t in lines[:n]]


@pytest.mark.slow
def test_stdout_on_a_full_device_is_one_line_and_exit_1(model_copy, mnist_dir):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--run", str(model_copy)],
                              stdout=full, stderr=subprocess.PIPE, text=True,
                              env=_hostile_env(mnist_dir), cwd=ROOT, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["predict.py: cannot write to standard output "
                                        "(No space left on device); stopped"]


@pytest.mark.slow
def test_closed_stderr_neither_crashes_nor_hides_the_exit_code(model_copy, mnist_dir, tmp_path):
    """`2>&-`: a good run still reports (exit 0); a bad one exits 1 with its line on stdout."""
    def closed_stderr(*args):
        return subprocess.run(["bash", "-c", '"$@" 2>&-', "bash", sys.executable, "predict.py", *map(str, args)],
                              capture_output=True, text=True, env=_hostile_env(mnist_dir), cwd=ROOT, timeout=120)
    done = closed_stderr("--run", model_copy)
    assert done.returncode == 0 and done.stdout.startswith("Test accuracy: ")
    assert (model_copy / "predictions.png").is_file()
    done = closed_stderr("--run", tmp_path / "nothing")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [f"predict.py: {tmp_path / 'nothing'}: no such run folder"]
    done = closed_stderr("--count", "zero")
    assert done.returncode == 2 and "Traceback" not in done.stdout


ASCII_WORLDS = {"PYTHONIOENCODING=ascii": {"PYTHONIOENCODING": "ascii"},
                "LC_ALL=C PYTHONUTF8=0": {"LC_ALL": "C", "PYTHONUTF8": "0", "LANG": "C"}}


@pytest.mark.slow
@pytest.mark.parametrize("world", list(ASCII_WORLDS))
def test_an_ascii_only_output_degrades_and_never_crashes(mnist_dir, tmp_path, world):
    """A run folder and a picture named with 'é', output with '×' and '–', help with '—':
    under an ASCII encoding every mode finishes, '?' standing in for what it cannot write."""
    run = Path(shutil.copytree(BEST_MODEL, tmp_path / "modèle é"))
    picture = tmp_path / "chiffre é.png"
    image = np.full((60, 40, 3), 255, np.uint8)
    image[10:50, 18:23] = 0   # a dark 1 on white paper
    mpimg.imsave(picture, image)
    e = _hostile_env(mnist_dir, **ASCII_WORLDS[world])

    def run_ascii(*args):
        done = subprocess.run([sys.executable, str(ROOT / "predict.py"), *map(str, args)], capture_output=True,
                              env=e, cwd=ROOT, timeout=120)
        assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
        assert done.stdout.isascii() and done.stderr.isascii()
        return done
    done = run_ascii("--help")
    assert done.returncode == 0 and b"--mistakes" in done.stdout
    done = run_ascii("--run", run, "--mistakes")
    assert done.returncode == 0 and done.stdout.startswith(b"Test accuracy: ")
    assert b"mod?" in done.stdout and b"Test images" not in done.stdout
    assert (run / "predictions_mistakes.png").is_file()
    done = run_ascii("--run", run, "--image", picture)
    assert done.returncode == 0 and b"Predicted: " in done.stdout and b"28?28" in done.stdout
    assert (run / "prediction_chiffre é.png").is_file()
    for mode in ("--confusion", "--features"):
        assert run_ascii("--run", run, mode, "--no-show").returncode == 0
    done = run_ascii("--run", tmp_path / "rien é")
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1 and b"no such run folder" in done.stderr


# STARTUP_LAUNCHER (conftest.py) runs predict.py as `python predict.py` would, once the interpreter
# has started and the script is compiled, and says so on the pipe numbered argv[1] (as in
# test_train.py): the delays count from predict.py's first line. Before it, a Ctrl-C is the
# interpreter's to report.
@pytest.mark.slow
def test_ctrl_c_at_any_moment_exits_130_quietly(model_copy, mnist_dir, tmp_path):
    """SIGINT at 40 random moments of predict.py's run, from its first line to its end (timed
    first on this machine): while modules import, while it scores, while matplotlib draws
    (whose compiled code turns a KeyboardInterrupt into a TypeError) and saves. Never a
    traceback or "Exception ignored", always exit 130 (or 0 when it finished first), and no
    half-written picture: each grid file is whole, and no temporary file is left. The child
    runs with -S, its packages through PYTHONPATH: this machine's site-packages holds a .pth
    file, not the project's, that imports certifi in every interpreter start."""
    import random

    from conftest import interrupt_while_starting, site_packages_path
    from PIL import Image
    e = _hostile_env(mnist_dir, PYTHONPATH=site_packages_path())
    args = ["--run", model_copy, "--save"]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-S", ROOT / "predict.py", *args, tmp_path / "timed.png"], env=e,
                   cwd=ROOT, capture_output=True, check=True, timeout=60)
    seconds = time.perf_counter() - t0
    rng = random.Random(2)
    delays = [rng.uniform(0, seconds) for _ in range(40)]
    results = [interrupt_while_starting(ROOT / "predict.py", [*args, tmp_path / f"grid{i}.png"], e, [d])[0]
               for i, d in enumerate(delays)]
    bad = [r for r in results if r[1] not in (130, 0) or "Traceback" in r[2] or "KeyboardInterrupt" in r[2]
           or "Exception ignored" in r[2]]
    assert not bad, bad
    assert any(r[1] == 130 for r in results)
    for png in tmp_path.glob("grid*.png"):
        with Image.open(png) as picture:
            picture.load()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_four_at_once_on_one_run_folder_all_succeed(model_copy, mnist_dir):
    """Four headless predict.py with the default output write the same predictions.png: each
    through its own temporary file, so all succeed and no temporary file is left."""
    procs = [subprocess.Popen([sys.executable, str(ROOT / "predict.py"), "--run", str(model_copy)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_hostile_env(mnist_dir), cwd=ROOT) for _ in range(4)]
    results = [(p.communicate(timeout=180), p.returncode) for p in procs]
    for (stdout, stderr), code in results:
        assert code == 0 and stderr == "", stderr
        assert f"Saved a grid of 25 test images to {model_copy / 'predictions.png'}" in stdout
    assert mpimg.imread(model_copy / "predictions.png").ndim == 3
    assert sorted(p.name for p in model_copy.iterdir() if p.name.startswith(".")) == []


def test_unreadable_folders_beside_the_runs_do_not_stop_the_run_search(tmp_path, capsys):
    """saved_files/ with a lost+found whose run.json is a folder, a plain file, a folder whose
    run.json nests 100,000 brackets, a dangling link and a link loop: the one real run is chosen."""
    runs_dir = tmp_path / "saved_files"
    shutil.copytree(BEST_MODEL, runs_dir / "best-model")
    (runs_dir / "lost+found" / "run.json").mkdir(parents=True)
    (runs_dir / "notes.txt").write_text("not a run\n")
    (runs_dir / "deep").mkdir()
    (runs_dir / "deep" / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    (runs_dir / "dangling").symlink_to(tmp_path / "nowhere")
    (runs_dir / "loop").symlink_to(runs_dir / "loop")
    loaded = predict.open_run(SimpleNamespace(run=None, runs_dir=runs_dir, weights="best"))
    assert loaded.path == runs_dir / "best-model"
    save = tmp_path / "features.png"
    assert predict.main(["--runs-dir", str(runs_dir), "--features", "--save", str(save)]) == 0
    assert save.is_file() and capsys.readouterr().err == ""
