"""Tests of kit/windows.py and kit/figures.py: every window driven by real matplotlib key and mouse
events on an Agg canvas (browsing, the clickable confusion matrix, the drawing pad with the
shipped model), and the features figure."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
from matplotlib.backend_bases import KeyEvent, MouseEvent
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import predict
from kit import figures, windows
from kit.figures import Scores
from network import Network

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "saved_files" / "best-model"


def agg_figure(**kw) -> Figure:
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def press_key(fig: Figure, name: str) -> None:
    fig.canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", fig.canvas, name))


def mouse(fig: Figure, kind: str, ax, x: float, y: float, button: int = 1) -> None:
    """A mouse event at data point (x, y) of ax, sent through the canvas as a GUI would."""
    px, py = ax.transData.transform((x, y))
    fig.canvas.callbacks.process(kind, MouseEvent(kind, fig.canvas, px, py, button=button))


# ---- the browser ------------------------------------------------------------------------------

def small_scores() -> Scores:
    labels = np.arange(10) % 10
    predicted = labels.copy()
    predicted[[3, 7]] = [5, 1]                         # two mistakes
    probs = np.full((10, 10), 0.01, np.float32)
    probs[np.arange(10), predicted] = 0.91
    return Scores(probs, predicted, labels)


def key(name: str) -> SimpleNamespace:
    return SimpleNamespace(key=name)


def make_browser(**kw) -> tuple[windows.Browser, list]:
    from matplotlib.figure import Figure
    closed = []
    pictures = np.random.default_rng(0).random((10, 28, 28))
    return windows.Browser(Figure(), pictures, small_scores(), close=closed.append, **kw), closed


def test_browser_steps_wraps_and_jumps_to_mistakes():
    b, closed = make_browser(start=8)
    assert b.index == 8 and b.title == "Predicted: 8   True: 8"
    b.on_key(key("right"))
    b.on_key(key(" "))
    assert b.index == 0                                # wrapped past the last image
    b.on_key(key("left"))
    assert b.index == 9                                # and back
    assert b.on_key(key("m")) and b.index == 3         # next mistake, wrapping
    assert b.title == "Predicted: 5   True: 3"
    assert matplotlib.colors.same_color(b.ax.title.get_color(), figures.WRONG)
    assert b.ax.spines["left"].get_linewidth() > 1
    b.on_key(key("m"))
    assert b.index == 7
    b.on_key(key("right"))
    assert b.index == 8 and not matplotlib.colors.same_color(b.ax.title.get_color(), figures.WRONG)
    np.testing.assert_array_equal(b.image.get_array(), b.pictures[8])   # the one image was updated
    assert not b.on_key(key("x")) and b.index == 8     # not our key: nothing happens
    assert not closed
    assert b.on_key(key("q")) and b.closed and closed == [b.fig]


def test_browser_mistakes_only_and_escape():
    b, closed = make_browser(start=5, mistakes_only=True)
    assert b.index == 7                                # the first mistake at or after --start
    b.on_key(key("right"))
    assert b.index == 3
    b.on_key(key("m"))
    assert b.index == 7
    b.on_key(key("left"))
    assert b.index == 3
    b.on_key(key("escape"))
    assert closed == [b.fig]


def test_browser_m_without_mistakes_stays_and_says_so():
    from matplotlib.figure import Figure
    perfect = Scores(np.eye(10, dtype=np.float32), np.arange(10), np.arange(10))
    b = windows.Browser(Figure(), np.zeros((10, 28, 28)), perfect, start=4)
    assert b.on_key(key("m")) and b.index == 4
    assert "No mistakes" in b.header.get_text()


def test_browser_window_owns_its_keys():
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import KeyEvent
    with matplotlib.rc_context():
        assert "left" in matplotlib.rcParams["keymap.back"]      # matplotlib's default, to be removed
        b = windows.open_explorer(np.zeros((10, 28, 28)), small_scores(), 0, False).browser
        for name, keys in matplotlib.rcParams.items():
            if name.startswith("keymap."):
                assert not set(keys) & set(windows.BROWSER_KEYS), name
        assert "backspace" in matplotlib.rcParams["keymap.back"]  # other bindings are kept
        assert "s" in matplotlib.rcParams["keymap.save"]
        # Key presses reach the browser through the figure's canvas.
        for name in ("right", "right", "left"):
            KeyEvent("key_press_event", b.fig.canvas, name)._process()
        assert b.index == 1
        assert plt.fignum_exists(b.fig.number)
        KeyEvent("key_press_event", b.fig.canvas, "q")._process()
        assert not plt.fignum_exists(b.fig.number)
    assert "left" in matplotlib.rcParams["keymap.back"]          # rc_context restored them




# ---- the explorer: browsing and the clickable confusion matrix ---------------------------------

def random_scores(n: int = 300, seed: int = 3) -> Scores:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    predicted = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 10, n))
    probs = rng.random((n, 10)).astype(np.float32)
    probs[np.arange(n), predicted] += 10
    return Scores(probs / probs.sum(axis=1, keepdims=True), predicted, labels)


def make_explorer(scores: Scores, **kw) -> tuple[windows.Explorer, Figure, list]:
    fig = agg_figure(figsize=(9, 6))
    closed = []
    pictures = np.random.default_rng(0).random((len(scores.labels), 28, 28))
    ex = windows.Explorer(fig, pictures, scores, close=closed.append, name="test run", **kw)
    fig.canvas.mpl_connect("key_press_event", ex.on_key)
    fig.canvas.mpl_connect("button_press_event", ex.on_click)
    return ex, fig, closed


def click_cell(ex: windows.Explorer, true: int, predicted: int, button: int = 1) -> None:
    ex.fig.canvas.draw()
    mouse(ex.fig, "button_press_event", ex.matrix_ax, predicted + 0.2, true - 0.3, button)


def test_c_shows_the_matrix_and_a_click_browses_exactly_that_cell():
    scores = random_scores()
    ex, fig, closed = make_explorer(scores, start=40)
    press_key(fig, "right")
    press_key(fig, "right")
    assert ex.view == "browse" and ex.browser.index == 42
    press_key(fig, "c")
    assert ex.view == "matrix" and "Esc: back to browsing" in ex.hint.get_text()
    # The heatmap's counts are the confusion matrix, counted here independently.
    shown = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
             for t in ex.matrix_ax.texts}
    for (t, p), count in shown.items():
        assert count == sum(1 for a, b in zip(scores.labels, scores.predicted) if a == t and b == p)
    assert len(shown) == 100
    off = np.where(np.eye(10, dtype=bool), -1, ex.matrix)
    mistake_cell = tuple(int(v) for v in np.unravel_index(off.argmax(), off.shape))
    for true, pred in (mistake_cell, (7, 7)):
        click_cell(ex, true, pred)
        expected = [i for i in range(len(scores.labels))
                    if scores.labels[i] == true and scores.predicted[i] == pred]
        assert ex.view == "browse" and ex.cell == (true, pred)
        assert len(expected) > 1
        assert list(ex.browser.order) == expected and ex.browser.index == expected[0]
        seen = []
        for _ in expected:
            seen.append(ex.browser.index)
            press_key(fig, "right")
        assert seen == expected and ex.browser.index == expected[0]   # every one, then around
        assert f"true {true}, predicted {pred}" in ex.browser.header.get_text()
        press_key(fig, "escape")
        assert ex.view == "matrix" and not closed
    press_key(fig, "escape")                          # back to the browsing it came from
    assert ex.view == "browse" and ex.cell is None and ex.browser.index == 42
    press_key(fig, "q")
    assert ex.closed and closed == [fig]


def test_an_empty_cell_and_other_clicks_keep_the_matrix():
    labels = np.repeat(np.arange(10), 3)
    scores = Scores(np.eye(10, dtype=np.float32)[labels], labels.copy(), labels)   # no mistakes
    ex, fig, closed = make_explorer(scores, matrix_first=True)
    click_cell(ex, 2, 6)
    assert ex.view == "matrix" and "No test image is a 2 predicted as 6" in ex.hint.get_text()
    click_cell(ex, 2, 6, button=3)                    # a right click chooses nothing
    assert ex.view == "matrix"
    click_cell(ex, 4, 4)
    assert list(ex.browser.order) == [12, 13, 14]
    press_key(fig, "m")                               # no mistakes in this cell: it says so
    assert ex.browser.index == 12 and "No mistakes" in ex.browser.header.get_text()
    press_key(fig, "c")
    assert ex.view == "matrix"
    press_key(fig, "escape")                          # opened on the matrix: Escape quits
    assert closed == [fig]


# ---- drawing a digit ---------------------------------------------------------------------------

def stroke(fig: Figure, ax, points) -> None:
    """Press at the first point, drag through the rest, release at the last."""
    mouse(fig, "button_press_event", ax, *points[0])
    for x, y in points[1:]:
        mouse(fig, "motion_notify_event", ax, x, y)
    mouse(fig, "button_release_event", ax, *points[-1])


def line(a, b, n: int = 12) -> list[tuple[float, float]]:
    return [tuple(np.add(a, np.subtract(b, a) * t)) for t in np.linspace(0, 1, n)]


STROKES = {
    1: [line((142, 45), (136, 235))],
    7: [line((75, 55), (205, 55)) + line((205, 55), (120, 235))[1:]],
    0: [[(140 + 58 * np.sin(a), 140 - 92 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)]],
}


@pytest.fixture(scope="module")
def shipped() -> predict.LoadedRun:
    return predict.open_run(SimpleNamespace(run=SHIPPED, runs_dir=None))


def make_pad(shipped, clock=None) -> tuple[windows.DrawWindow, Figure]:
    fig = agg_figure(figsize=(11, 4.6))
    kw = {} if clock is None else {"clock": clock}
    pad = windows.DrawWindow(fig, predict.drawing_reader(shipped), close=lambda f: None, **kw)
    for kind, handler in (("button_press_event", pad.on_press), ("motion_notify_event", pad.on_move),
                          ("button_release_event", pad.on_release), ("key_press_event", pad.on_key),
                          ("draw_event", pad.on_draw)):
        fig.canvas.mpl_connect(kind, handler)
    fig.canvas.draw()
    return pad, fig


def assert_empty(pad: windows.DrawWindow) -> None:
    assert not pad.canvas.any() and pad.probs is None and pad.prediction is None
    assert not np.asarray(pad.seen_image.get_array()).any()
    assert [bar.get_height() for bar in pad.bars] == [0] * 10


@pytest.mark.parametrize("digit", list(STROKES))
def test_strokes_are_classified_by_the_shipped_model(shipped, digit):
    pad, fig = make_pad(shipped)
    assert_empty(pad)
    for points in STROKES[digit]:
        stroke(fig, pad.pad_ax, points)
    assert pad.prediction == digit, pad.probs
    assert np.isclose(pad.probs.sum(), 1, atol=1e-5)
    # The 28x28 panel shows what the network was given: MNIST's preparation of the pad.
    from kit import photo
    np.testing.assert_array_equal(pad.seen_image.get_array(), photo.preprocess(pad.canvas).pixels)
    heights = np.array([bar.get_height() for bar in pad.bars])
    np.testing.assert_allclose(heights, pad.probs)
    assert matplotlib.colors.same_color(pad.bars[digit].get_facecolor(), figures.RIGHT)
    assert f"Predicted: {digit}" in pad.verdict.get_text()
    press_key(fig, "c")
    assert_empty(pad)


def test_right_click_clears_and_q_quits(shipped):
    pad, fig = make_pad(shipped)
    closed = []
    pad._close = closed.append
    stroke(fig, pad.pad_ax, STROKES[1][0])
    assert pad.prediction == 1
    mouse(fig, "button_press_event", pad.pad_ax, 20, 20, button=3)
    assert_empty(pad)
    press_key(fig, "q")
    assert closed == [fig]


def test_the_panels_update_while_drawing_at_the_throttled_rate(shipped):
    now = [0.0]
    pad, fig = make_pad(shipped, clock=lambda: now[0])
    points = STROKES[7][0]
    mouse(fig, "button_press_event", pad.pad_ax, *points[0])
    updated_at, count = [], 0
    for x, y in points[1:]:
        now[0] += 0.03                                  # a mouse event every 30 ms
        mouse(fig, "motion_notify_event", pad.pad_ax, x, y)
        if pad.updates > count:
            updated_at.append(now[0])
            count = pad.updates
    # While the pen moves, the network is asked once every UPDATE_INTERVAL (0.08 s): at the
    # first event after that much time, so never sooner and at most one event (30 ms) later.
    gaps = np.diff(updated_at)
    assert len(updated_at) >= 7 and count == len(updated_at)
    assert (gaps >= windows.UPDATE_INTERVAL - 1e-9).all() and (gaps <= windows.UPDATE_INTERVAL + 0.03 + 1e-9).all()
    assert pad.probs is not None                      # the bars already show an answer
    mouse(fig, "button_release_event", pad.pad_ax, *points[-1])
    assert pad.updates == count + 1 and pad.prediction == 7    # and once more as it lifts


def test_stamped_stroke_is_thick_soft_edged_and_local():
    canvas = np.zeros((100, 100), np.float32)
    windows.stamp_segment(canvas, (20, 50), (80, 50), radius=6, soft=2)
    column = canvas[:, 50]
    # Full ink within radius - soft/2 = 5 pixels of the line, half at 6, none from 7 on.
    assert column[45:56].min() == 1                              # solid across the middle
    assert column[44] == column[56] == 0.5                       # a soft edge
    assert column[:44].max() == 0 and column[57:].max() == 0     # nothing beyond it
    assert canvas[50, 14] == 0.5 and canvas[50, :14].max() == 0  # round ends, no further
    assert canvas[50, 86] == 0.5 and canvas[50, 87:].max() == 0
    before = canvas.copy()
    windows.stamp_segment(canvas, (50, 20), (50, 80), radius=6, soft=2)
    assert (canvas >= before).all()                              # crossing keeps the darker ink


# ---- what the hidden units learned -------------------------------------------------------------

def test_features_of_the_shipped_model_are_64_symmetric_tiles(shipped):
    fig = figures.draw_features(shipped.net)
    images = [ax.images[0] for ax in fig.axes]
    assert len(images) == 64
    w = shipped.net.weights[0]
    for unit, image in enumerate(images):
        np.testing.assert_array_equal(image.get_array(), w[:, unit].reshape(28, 28))
        lo, hi = image.get_clim()
        assert lo == -hi and hi == np.abs(w[:, unit]).max()
        assert image.get_cmap().name == "RdBu_r"


def test_features_without_hidden_layers_are_the_ten_labelled_templates(tmp_path):
    net = Network([784, 10], rng=np.random.default_rng(1))
    fig = figures.draw_features(net)
    assert [ax.get_title() for ax in fig.axes] == [str(d) for d in range(10)]
    for d, ax in enumerate(fig.axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), net.weights[0][:, d].reshape(28, 28))
    path = figures.save_features(net, tmp_path / "features.png")
    assert path == tmp_path / "features.png" and path.stat().st_size > 0
