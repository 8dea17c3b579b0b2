"""kit/plots.py: the saved graphs of a run's history (what the curves hold, the best epoch, the
penalties, whole epochs on the axis, legends beside the curves) and when a window may open."""
from __future__ import annotations

import sys

import pytest
from matplotlib import image

from kit import plots

# A history row as training.EpochRecord.as_row gives it.
ROW = {"epoch": 7, "learning_rate": 0.00098, "train_loss": 0.18754, "train_accuracy": 0.9436,
       "val_loss": 0.2291, "val_accuracy": 0.9285, "test_loss": 0.1782, "test_accuracy": 0.9448,
       "l1_penalty": 0.0, "l2_penalty": 0.0, "seconds": 12.34}


@pytest.mark.parametrize("n", [1, 2, 30])
def test_graph_epoch_ticks_are_whole_numbers(tmp_path, monkeypatch, n):
    from kit import plots
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figures.append(fig), real_save(fig, path))[1])
    rows = [{**ROW, "epoch": e} for e in range(1, n + 1)]
    plots.plot_history(rows, tmp_path, "test", best_epoch=1)
    assert len(figures) == 3
    for fig in figures:
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert 1 in ticks or n > 12


def test_graph_legends_never_hide_a_curve(tmp_path, monkeypatch):
    """With penalties on (five loss entries), each legend stands beside the plotting area."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from kit import plots
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figures.append(fig), real_save(fig, path))[1])
    rows = [{**ROW, "epoch": e, "l1_penalty": 0.01, "l2_penalty": 0.003} for e in range(1, 5)]
    plots.plot_history(rows, tmp_path, "test", best_epoch=2)
    for fig in figures:
        ax = fig.axes[0]
        legend = ax.get_legend()
        if legend is None:  # the learning rate's single curve is named by its title
            continue
        canvas = FigureCanvasAgg(fig)  # as saved: the Agg canvas
        canvas.draw()
        renderer = canvas.get_renderer()
        box, area = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert box.x0 > area.x1, (box, area)
        assert box.x1 <= fig.bbox.x1, "the legend is cut off at the figure's edge"
    assert sum(fig.axes[0].get_legend() is not None for fig in figures) == 2


# ---- what the graphs hold -------------------------------------------------------------------

def captured(monkeypatch) -> dict:
    """{file name: figure} of every figure plot_history saves (saved as well)."""
    figures = {}
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figures.update({path.name: fig}), real_save(fig, path))[1])
    return figures


def history(n: int, **extra) -> list[dict]:
    return [{**ROW, "epoch": e, "val_accuracy": 0.9 + 0.01 * e - (0.03 if e == 3 else 0),
             "learning_rate": 0.001 * 0.5 ** (e - 1), **extra} for e in range(1, n + 1)]


def test_plot_history_writes_the_three_pngs_and_nothing_else(tmp_path):
    paths = plots.plot_history(history(4), tmp_path, "784-10 run", best_epoch=4)
    assert [p.name for p in paths] == ["accuracy.png", "loss.png", "learning_rate.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporaries
    for p in paths:
        pixels = image.imread(p)
        assert pixels.shape[2] == 4 and pixels.std() > 0.01  # a real, non-blank picture


def test_the_curves_hold_the_rows_in_percent_and_the_best_epoch_is_starred(tmp_path, monkeypatch):
    figures = captured(monkeypatch)
    rows = history(5)
    plots.plot_history(rows, tmp_path, best_epoch=2)
    ax = figures["accuracy.png"].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["Validation"].get_xdata()) == [1, 2, 3, 4, 5]
    assert list(lines["Validation"].get_ydata()) == pytest.approx([100 * r["val_accuracy"] for r in rows])
    star = lines[plots.best_label(2, rows[1])]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([2], pytest.approx([100 * rows[1]["val_accuracy"]]))
    assert "test 94.48 %" in star.get_label()
    loss = {line.get_label() for line in figures["loss.png"].axes[0].get_lines()}
    assert loss == {"Train", "Validation", "Test"}  # no penalty lines when the penalties are 0
    rate = figures["learning_rate.png"].axes[0].get_lines()[0]
    assert list(rate.get_ydata()) == pytest.approx([r["learning_rate"] for r in rows])


def test_penalty_lines_appear_only_for_the_penalties_in_use(tmp_path, monkeypatch):
    figures = captured(monkeypatch)
    plots.plot_history(history(3, l2_penalty=0.004), tmp_path)
    labels = [line.get_label() for line in figures["loss.png"].axes[0].get_lines()]
    assert sum("L2 penalty" in label for label in labels) == 1 and not any("L1" in label for label in labels)


def test_a_best_epoch_outside_the_rows_draws_no_star(tmp_path, monkeypatch):
    figures = captured(monkeypatch)
    plots.plot_history(history(3), tmp_path, best_epoch=9)
    assert [line.get_label() for line in figures["accuracy.png"].axes[0].get_lines()] == ["Train", "Validation", "Test"]


# ---- when a window may open ---------------------------------------------------------------------

@pytest.mark.parametrize("platform, env, expected", [
    ("linux", {"MPLBACKEND": "Agg", "DISPLAY": ":0"}, False),
    ("linux", {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}, False),
    ("linux", {"MPLBACKEND": "TkAgg"}, True),  # the user asked for a window: let it try
    ("linux", {}, False),
    ("linux", {"DISPLAY": ":0"}, True),
    ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, True),
    ("darwin", {}, True),
    ("win32", {}, True),
])
def test_display_available(monkeypatch, platform, env, expected):
    for name in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert plots.display_available() is expected


@pytest.mark.parametrize("env, reason", [({"MPLBACKEND": "Agg"}, "MPLBACKEND=Agg draws into files only"),
                                         ({}, "no display (DISPLAY and WAYLAND_DISPLAY are not set)")])
def test_show_images_without_a_window_says_why(monkeypatch, env, reason):
    for name in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", "linux")
    assert plots.show_images([]) == reason
