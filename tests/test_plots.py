"""kit/plots.py: the saved graphs of a run's history (whole epochs on the axis, legends beside
the curves)."""
from __future__ import annotations

import pytest

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

