"""live_plots.LiveGraphs: the lines against the rows they were given, the best-epoch marker,
the penalty lines, whole-number epochs, the limits and the redraw budget, on an Agg canvas;
LiveGraphs.open headless; a real window under Xvfb (slow)."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kit import live_plots
from kit.live_plots import LiveGraphs, grown_limits

ROOT = Path(__file__).resolve().parents[1]


def rows_for(n: int, l1: float = 0.0, l2: float = 0.0) -> list[dict]:
    """n history rows with distinct values per column (accuracy as a fraction, as history.csv)."""
    rows = []
    for e in range(1, n + 1):
        acc = 0.97 - 0.3 * math.exp(-e / 3)
        rows.append(dict(epoch=e, learning_rate=0.01 * 0.9 ** (e - 1),
                         train_loss=0.5 * math.exp(-e / 4) + 0.02, train_accuracy=acc + 0.01,
                         val_loss=0.5 * math.exp(-e / 4) + 0.05, val_accuracy=acc + 0.004 * math.sin(3 * e),
                         test_loss=0.5 * math.exp(-e / 4) + 0.06, test_accuracy=acc - 0.005,
                         l1_penalty=l1 * e, l2_penalty=l2 * e, seconds=0.7))
    return rows


def best_of(rows: list[dict]) -> int:
    return max(rows, key=lambda r: (r["val_accuracy"], -r["epoch"]))["epoch"]


class Clock:
    """A clock the test moves: updates then cost no time, and the budget never binds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def graphs(epochs: int | None = 20, clock=None) -> LiveGraphs:
    fig = Figure(figsize=live_plots.FIGSIZE)
    FigureCanvasAgg(fig)
    return LiveGraphs(fig, "784-10 test", epochs=epochs, clock=clock or Clock())


def feed(g: LiveGraphs, rows: list[dict], step: float = 1.0) -> list[str]:
    """The rows epoch by epoch, as train.py's reporter gives them; the clock moves step a time."""
    how = []
    for n in range(1, len(rows) + 1):
        if isinstance(g.clock, Clock):
            g.clock.now += step
        how.append(g.update(rows[:n], best_of(rows[:n])))
    return how


def pixels(g: LiveGraphs) -> np.ndarray:
    return np.asarray(g.fig.canvas.buffer_rgba()).copy()


def test_lines_hold_the_rows_epoch_by_epoch():
    g = graphs()
    rows = rows_for(15)
    for n in range(1, 16):
        g.update(rows[:n], best_of(rows[:n]))
        for column, line in g.lines.items():
            scale = 100 if column.endswith("accuracy") else 1
            assert list(line.get_xdata()) == [r["epoch"] for r in rows[:n]]
            np.testing.assert_allclose(line.get_ydata(), [scale * r[column] for r in rows[:n]])
    # the accuracy lines live in the accuracy panel, in percent; the loss ones in the loss panel
    assert {line.get_label() for line in g.acc_ax.lines} >= {"Train", "Validation", "Test"}
    assert g.lines["val_accuracy"] in g.acc_ax.lines and g.lines["val_loss"] in g.loss_ax.lines
    assert max(g.lines["train_accuracy"].get_ydata()) > 1


def test_best_marker_follows_the_best_epoch():
    g = graphs()
    rows = rows_for(12)
    rows[4]["val_accuracy"] = 0.999       # epoch 5 stays best from then on
    g.update(rows[:3], 3)
    assert g.best_star.get_visible()
    assert list(g.best_star.get_xdata()) == [3]
    for n in range(5, 13):
        g.update(rows[:n], best_of(rows[:n]))
        assert best_of(rows[:n]) == 5
        assert list(g.best_star.get_xdata()) == [5]
        assert g.best_star.get_ydata()[0] == pytest.approx(99.9)
        assert list(g.best_line.get_xdata()) == [5, 5]
        # the text beside the star names the best epoch and its test accuracy
        assert g.best_text.get_visible()
        assert g.best_text.get_text() == f"epoch 5\ntest {100 * rows[4]['test_accuracy']:.2f} %"
        assert g.best_text.xy == (5, pytest.approx(99.9))
    # the legend's entry stays the same whatever the best epoch: the legend is not redrawn
    labels = [t.get_text() for t in g.acc_ax.get_legend().texts]
    assert labels == ["Train", "Validation", "Test", "Best validation epoch"]
    g.finish()                               # the end: plot_history's legend entry, no text
    labels = [t.get_text() for t in g.acc_ax.get_legend().texts]
    assert f"Best validation: epoch 5 (test {100 * rows[4]['test_accuracy']:.2f} %)" in labels
    assert not g.best_text.get_visible() and g.best_star.get_visible()
    g.update(rows[:2], None)                 # no best yet: no marker, no text, no legend entry
    assert not g.best_star.get_visible() and not g.best_line.get_visible()
    assert not g.best_text.get_visible()
    assert not any(label.startswith("Best") for label in g.acc_ax.get_legend_handles_labels()[1])


def test_new_best_epochs_leave_the_legend_alone():
    """A new best epoch changes the text beside the star, drawn in the blit, not the
    legend, whose text would cost several blits to draw."""
    g = graphs(20)
    rows = rows_for(12)
    g.update(rows[:1], 1)
    legend = g.acc_ax.get_legend()
    texts = []
    for n in range(2, 13):
        rows[n - 1]["val_accuracy"] = 0.9 + 0.005 * n   # each epoch a new best
        g.update(rows[:n], n)
        assert g.acc_ax.get_legend() is legend and not g.legend_stale
        texts.append(g.best_text.get_text())
        assert texts[-1].startswith(f"epoch {n}\n")
    assert len(set(texts)) == len(texts)
    # in the right half of the planned epochs the text turns leftwards, into the panel
    assert g.best_text.get_horizontalalignment() == "right"
    g.update(rows[:3], 3)
    assert g.best_text.get_horizontalalignment() == "left"


def test_penalty_lines_only_when_nonzero():
    g = graphs()
    feed(g, rows_for(6))
    assert g.penalty_lines == {}
    assert len(g.loss_ax.lines) == 3
    g = graphs()
    rows = rows_for(6, l2=0.01)
    feed(g, rows)
    assert list(g.penalty_lines) == ["l2_penalty"]
    np.testing.assert_allclose(g.penalty_lines["l2_penalty"].get_ydata(), [0.01 * e for e in range(1, 7)])
    assert any(label.startswith("L2 penalty") for label in g.loss_ax.get_legend().texts[-1].get_text().splitlines())
    # a penalty that appears later (rows after a resume that turned it on): drawn from then
    g = graphs()
    rows = rows_for(4) + rows_for(6, l1=0.001)[4:]
    feed(g, rows)
    assert list(g.penalty_lines) == ["l1_penalty"]


def test_epoch_ticks_are_whole_numbers():
    for epochs, shown in ((8, 3), (40, 7), (None, 25)):
        g = graphs(epochs)
        feed(g, rows_for(shown))
        g.fig.canvas.draw()
        for ax in g.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks)
            if epochs is not None:   # the planned epochs fit from the start
                assert ax.get_xlim() == (0.5, epochs + 0.5)
        g.finish()
        for ax in g.axes:   # the end: the epochs done, as plot_history lays them out
            assert ax.get_xlim() == (0.5, shown + 0.5)


def test_every_point_inside_its_panel_and_few_full_redraws():
    g = graphs(30)
    rows = rows_for(30, l2=0.001)
    how = feed(g, rows)
    assert how[0] == "full"
    # limits reach 100 % and 0 from the first epoch: the history fits without redraws
    assert how.count("full") <= 3
    for ax in g.axes:
        low, high = ax.get_ylim()
        for line in ax.lines:
            if line is not g.best_line and line.get_visible():
                assert low <= min(line.get_ydata()) and max(line.get_ydata()) <= high
    assert g.acc_ax.get_ylim()[1] >= 100 and g.loss_ax.get_ylim()[0] <= 0


def test_grown_limits():
    assert grown_limits((50.0, 101.0), 60.0, 99.0, (None, 100.0)) == (50.0, 101.0)
    lo, hi = grown_limits(None, 62.0, 90.0, (None, 100.0))
    assert lo < 62.0 and 100.0 < hi <= 102.0
    lo2, hi2 = grown_limits((lo, hi), 20.0, 95.0, (None, 100.0))   # a drop below: only the low side moves
    assert lo2 < 20.0 and hi2 == hi
    lo, hi = grown_limits(None, 0.1, 0.1, (0.0, None))            # a constant learning rate
    assert lo < 0 < 0.1 < hi


def test_blit_shows_new_lines_and_matches_a_full_drawing():
    """A blitted update puts the same pixels on screen as drawing the figure anew."""
    g = graphs(12)
    rows = rows_for(12)
    how = feed(g, rows)
    assert how[-1] == "blit" and g.blits > 0
    blitted = pixels(g)
    g.fig.canvas.draw()      # a full drawing (as a resize makes): on_draw adds the lines
    drawn = pixels(g)
    # The same, but at the edges of the legends and of the best epoch's text, whose kept
    # pixels hold what was under their frame's antialiased rim when they were drawn.
    rows_, cols = np.nonzero((drawn != blitted).any(axis=2))
    height = drawn.shape[0]
    # (3 pixels: the kept pixels' box is the padded one rounded outwards to whole pixels.)
    boxes = [ax.get_legend().get_window_extent().padded(3) for ax in g.axes]
    boxes.append(g.best_text.get_bbox_patch().get_window_extent().padded(3))
    for y, x in zip(height - rows_, cols):
        assert any(box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1 for box in boxes), (x, y)
    g2 = graphs(12)
    feed(g2, rows[:6])
    assert (pixels(g2) != blitted).any(axis=2).sum() > 1000   # fewer epochs: fewer lines


@pytest.mark.parametrize("epochs, n, l1", [(20, 20, 0.0), (40, 40, 0.001), (10, 36, 0.0)])
def test_window_gets_every_changed_pixel(epochs, n, l1):
    """A blit hands the GUI only the panels, where every animated artist lives: a copy
    of the window kept from what it was handed equals the canvas after every update,
    whether the best epoch (and its text) moves back and forth, a penalty line appears,
    the dots go (past 30 epochs) or the lines run past the panel (more epochs than planned)."""
    g = graphs(epochs, clock=time.perf_counter)
    handed = []
    g.fig.canvas.blit = handed.append
    rows = rows_for(n) + rows_for(n, l1=l1)[n // 2:]
    rows = rows[:n // 2] + rows[n:]
    for r in rows[::3]:
        r["val_accuracy"] += 0.02            # the best epoch moves back and forth
    window = None
    for e in list(range(1, n + 1)) + [4, 5]:  # and rows that start again
        handed.clear()
        how = g.update(rows[:e], best_of(rows[:e]))
        canvas = pixels(g)
        if how == "full":
            window = canvas
            continue
        height = canvas.shape[0]
        for box in handed:
            x0, x1 = max(int(box.x0), 0), int(np.ceil(box.x1))
            y0, y1 = max(int(height - box.y1), 0), int(np.ceil(height - box.y0))
            window[y0:y1, x0:x1] = canvas[y0:y1, x0:x1]
        diff = np.abs(window.astype(int) - canvas).max(axis=2)
        assert diff.max() == 0, (e, (diff > 0).sum())
    assert handed and all(box.width < g.fig.bbox.width for box in handed)


def test_budget_holds_back_full_redraws():
    """When a full redraw costs more than the budget allows, updates only blit and the
    limits wait; once enough time has passed, they change."""
    clock = Clock()
    g = graphs(None, clock)   # no planned epochs: the epoch axis grows, so limits change
    rows = rows_for(10)
    g.update(rows[:1], 1)
    g.full_cost = 1.0                          # as if a full redraw took a second
    clock.now += 10.0                          # 10 s × BUDGET = 0.2 s: not enough
    assert g.update(rows[:2], 2) == "blit"
    assert g.acc_ax.get_xlim()[1] == 1.5       # the epoch axis waits
    assert not g.legend_stale                  # the legend names the new best epoch at once
    clock.now += 100.0                         # now 2 s of allowance
    assert g.update(rows[:3], 3) == "full"
    assert g.acc_ax.get_xlim()[1] == 3.5


def test_user_zoom_is_kept():
    g = graphs(20)
    rows = rows_for(10)
    feed(g, rows[:3])
    g.acc_ax.set_ylim(90, 95)                  # the learner zoomed in
    feed(g, rows)
    assert g.acc_ax.get_ylim() == (90, 95)
    assert g.loss_ax.get_xlim() == (0.5, 20.5)  # the other panels still follow the run


def test_closed_window_ignores_updates():
    g = graphs()
    g.update(rows_for(1), 1)
    g.close()
    assert g.update(rows_for(2), 2) == "closed"
    assert list(g.lines["train_loss"].get_xdata()) == [1]
    assert g.keep_open() is True


def test_saved_figure_has_the_lines():
    """savefig draws the animated lines itself: a screenshot of the window holds them."""
    g = graphs(5)
    rows = rows_for(5)
    feed(g, rows)
    empty = graphs(5)
    empty.update(rows[:1], None)
    a, b = pixels(g), pixels(empty)
    assert not np.array_equal(a, b)


def test_open_returns_none_with_agg(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert LiveGraphs.open("x") is None


def test_open_returns_none_without_display(monkeypatch):
    """On Linux (whatever the machine running the test), no DISPLAY and no WAYLAND_DISPLAY
    means no window, refused before pyplot is asked for one; on macOS, or with a Wayland
    display, a window may be tried."""
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    tried = []
    monkeypatch.setattr(live_plots.plots, "interactive_backend", lambda: tried.append(1))
    assert LiveGraphs.open("x") is None
    assert tried == []  # refused for the missing display, not for want of a backend
    monkeypatch.setattr(sys, "platform", "darwin")
    assert live_plots.plots.display_available()  # no display variable on macOS: the backend decides
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert live_plots.plots.display_available()


WINDOW_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from kit.live_plots import LiveGraphs
    from test_live_plots import rows_for, best_of
    g = LiveGraphs.open("784-10 test", epochs=10)
    assert g is not None, "no window"
    rows = rows_for(5)
    how = [g.update(rows[:n], best_of(rows[:n])) for n in range(1, 6)]
    window = g.fig.canvas.manager.window
    assert window.winfo_exists() and window.winfo_ismapped(), "window not shown"
    assert list(g.lines["val_accuracy"].get_xdata()) == [1, 2, 3, 4, 5]
    g.close()
    assert g.update(rows, 5) == "closed"
    print("ok", *how)
""")


@pytest.fixture
def xvfb():
    """A virtual X display :97 for the test, stopped after it."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    server = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "1400x900x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):   # up when its socket exists
            if Path("/tmp/.X11-unix/X97").exists():
                break
            if server.poll() is not None:
                pytest.skip("Xvfb :97 did not start (display in use?)")
            time.sleep(0.1)
        yield ":97"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_window_under_xvfb(xvfb):
    pytest.importorskip("tkinter")
    env = dict(os.environ, DISPLAY=xvfb, MPLBACKEND="TkAgg")
    script = WINDOW_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "full", "blit", "blit", "blit", "blit"]


# ---- the loss from step 0, the window's size and the features window's place ---------------

def test_window_fits_a_1280x1024_screen_whole():
    """The figure in pixels (Agg, 100 dpi), as Tk scales it, fits 1280 pixels across with
    its toolbar's height to spare below 1024 for features.png's window (7 x 4.5 inches);
    and everything drawn, titles and labels included, lies inside the figure."""
    g = graphs(40)
    feed(g, rows_for(40, l1=0.001))
    g.update_steps([(1024.0 * k, 2.3 / (1 + k)) for k in range(200)])
    for stage in ("training", "final"):
        if stage == "final":
            g.finish()
        g.fig.canvas.draw()
        width, height = g.fig.canvas.get_width_height()
        assert (width, height) == (1220, 430)
        assert width * live_plots.TK_SCALE <= 1280
        toolbar = 50   # measured under Xvfb: a 430-pixel figure makes a 498-pixel window
        assert (height * live_plots.TK_SCALE + toolbar) + (450 * live_plots.TK_SCALE + toolbar) <= 1024
        drawn = g.fig.get_tightbbox(g.fig.canvas.get_renderer())
        inches = g.fig.get_size_inches()
        assert drawn.x0 >= 0 and drawn.y0 >= 0, (stage, drawn)
        assert drawn.x1 <= inches[0] and drawn.y1 <= inches[1], (stage, drawn)


def test_loss_from_step_0_grows_point_by_point():
    clock = Clock()
    g = graphs(10, clock)
    points = [(0.0, math.log(10))] + [(1024.0 * k, 2.3 / (1 + k / 4)) for k in range(1, 60)]
    how = []
    for n in range(1, len(points) + 1):
        clock.now += live_plots.STEP_EVERY
        how.append(g.update_steps(points[:n]))
        xs, ys = g.step_line.get_data()
        assert list(xs) == [x for x, _ in points[:n]] and list(ys) == [y for _, y in points[:n]]
        low, high = g.step_ax.get_ylim()
        assert low <= 0 and max(ys) <= high and math.log(10) <= high
        assert g.step_ax.get_xlim()[0] == 0 and max(xs) <= g.step_ax.get_xlim()[1]
    assert how[0] == "full" and how.count("full") <= 3 and "blit" in how
    assert g.step_ax.get_xscale() == "symlog"
    # within STEP_EVERY of the last drawing: kept for the next one, not drawn
    assert g.update_steps(points + [(1e5, 0.1)]) == "waiting"
    assert len(g.step_line.get_xdata()) == len(points)
    g.update(rows_for(1), 1)             # the epoch's update draws the points held back
    assert len(g.step_line.get_xdata()) == len(points) + 1


def test_loss_from_step_0_reaches_the_planned_examples():
    g = LiveGraphs(Figure(figsize=live_plots.FIGSIZE), "x", epochs=5, clock=Clock(),
                   examples=5 * 58_000)
    FigureCanvasAgg(g.fig)
    g.update_steps([(0.0, 2.3), (1024.0, 1.2)])
    assert g.step_ax.get_xlim() == (0.0, 1.05 * 5 * 58_000)


def test_blitted_steps_match_a_full_drawing():
    clock = Clock()
    g = graphs(10, clock)
    points = [(1024.0 * k, 2.3 / (1 + k / 4)) for k in range(40)]
    for n in range(1, 41):
        clock.now += live_plots.STEP_EVERY
        last = g.update_steps(points[:n])
    assert last == "blit"
    blitted = pixels(g)
    g.fig.canvas.draw()
    box = g.step_ax.bbox
    height = blitted.shape[0]
    part = (slice(int(height - box.y1), int(height - box.y0)), slice(int(box.x0), int(box.x1)))
    assert np.array_equal(pixels(g)[part], blitted[part])


def test_beside_puts_a_window_where_it_covers_none():
    screen = (1280, 1024)
    live = (0, 0, 1271, 498)
    assert live_plots.beside([live], (729, 518), screen) == (0, 498)        # below
    assert live_plots.beside([(0, 0, 500, 400)], (600, 500), screen) == (500, 0)   # right
    # too large to stand clear: the corner that covers the least, on the screen
    x, y = live_plots.beside([live], (900, 700), screen)
    assert (x, y) == (380, 324) and x + 900 <= 1280 and y + 700 <= 1024
    # a second window goes beside the first two
    x, y = live_plots.beside([(0, 0, 600, 400), (600, 0, 600, 400)], (600, 400), screen)
    assert (x, y) == (0, 400)


PLACE_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    import matplotlib.pyplot as plt
    from kit.live_plots import LiveGraphs, window_box
    from test_live_plots import rows_for, best_of
    g = LiveGraphs.open("2h-relu-momentum-normal-xavier", epochs=10, examples=580000)
    rows = rows_for(3)
    for n in range(1, 4):
        g.update_steps([(1024.0 * k, 2.3 / (1 + k)) for k in range(20 * n)])
        g.update(rows[:n], best_of(rows[:n]))
    boxes = []
    def opened():
        window = g.fig.canvas.manager.window
        def measure():
            boxes.extend(window_box(plt.figure(n)) for n in plt.get_fignums())
            plt.close("all")
        window.after(500, measure)
    from pathlib import Path
    g.keep_open([Path({image!r})], opened=opened)
    print(boxes)
""")


@pytest.mark.slow
def test_window_and_features_fit_a_1280x1024_screen_under_xvfb(tmp_path):
    """Under Xvfb at 1280 x 1024 (no window manager): the graphs' window fits whole, and
    the window of features.png, opened at the end, stands below it, covering none of it."""
    pytest.importorskip("tkinter")
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    server = subprocess.Popen(["Xvfb", ":96", "-screen", "0", "1280x1024x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if Path("/tmp/.X11-unix/X96").exists():
                break
            if server.poll() is not None:
                pytest.skip("Xvfb :96 did not start (display in use?)")
            time.sleep(0.1)
        image = tmp_path / "features.png"
        fig = Figure(figsize=(7, 4.5))
        fig.add_subplot().plot([0, 1])
        fig.savefig(image)
        env = dict(os.environ, DISPLAY=":96", MPLBACKEND="TkAgg")
        script = PLACE_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), image=str(image))
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    (live, screen), (features, _) = eval(done.stdout.strip())
    assert screen == (1280, 1024)
    for x, y, w, h in (live, features):
        assert 0 <= x and 0 <= y and x + w <= 1280 and y + h <= 1024, (live, features)
    lx, ly, lw, lh = live
    fx, fy, fw, fh = features
    assert fx >= lx + lw or fy >= ly + lh, (live, features)   # beside or below: not over it
