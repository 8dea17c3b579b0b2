"""The graphs of a study of one's own (kit/own_study.py): curves.png, the mean line and
seed band of each configuration per epoch, one panel per value of the first setting and a
colour per value of the second; effects.png, one panel per setting, each configuration's
mean and spread against that setting's value."""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kit.search import Setting, Summary, format_value, ranked

MAX_LINES = 12  # lines per panel; beyond this a panel shows the best-ranked ones


def _colours(n: int) -> list:
    import matplotlib
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(1, n - 1)) for i in range(n)]


def plot_curves(summaries: list[Summary], settings: Sequence[Setting], title: str):
    """Validation accuracy per epoch: per configuration, the mean over its seeds and the
    min–max band. Configurations sharing the first setting's value share a panel, those
    sharing the second's a colour (for a single setting, or ranges, a colour each)."""
    from matplotlib.figure import Figure

    from kit.comparison import group_band
    order = ranked(summaries)
    listed = [s for s in settings if not s.is_range and len({x.point.value(s.name) for x in order}) > 1]
    panel_by = listed[0].name if len(listed) >= 2 and len(listed[0].values) <= 6 else None
    colour_by = (listed[1].name if panel_by else listed[0].name) if listed else None
    panels = list(dict.fromkeys(s.point.value(panel_by) for s in summaries)) if panel_by else [None]
    shades = list(dict.fromkeys(s.point.value(colour_by) for s in summaries)) if colour_by else []
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5.0 * cols + 1, 4.0 * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    by_rank = _colours(min(len(order), MAX_LINES))
    for k, panel in enumerate(panels):
        ax = axes[k // cols][k % cols]
        members = [s for s in order if panel_by is None or s.point.value(panel_by) == panel][:MAX_LINES]
        for i, s in enumerate(members):
            colour = _colours(len(shades))[shades.index(s.point.value(colour_by))] if colour_by \
                else by_rank[i]
            others = [f"{k2} {format_value(v)}" for k2, v in s.point.values if k2 != panel_by]
            epochs, mean, low, high = group_band([r.history() for r in s.runs], "val_accuracy")
            ax.plot(epochs, mean, color=colour, linewidth=1.6,
                    linestyle=("-", "--", ":", "-.")[_style_index(s, listed, panel_by, colour_by)],
                    label=", ".join(others) or s.point.label)
            if len(s.runs) > 1:
                ax.fill_between(epochs, low, high, color=colour, alpha=0.18, linewidth=0)
        ax.set_title(f"{panel_by} {format_value(panel)}" if panel_by else
                     (f"the {len(members)} best configurations" if len(order) > MAX_LINES else ""))
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Validation accuracy (%)")
        ax.grid(alpha=0.3)
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small", frameon=False)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    seeds = max(len(s.runs) for s in summaries)
    fig.suptitle(f"{title}\nvalidation accuracy per epoch: mean line and min–max band over "
                 f"{seeds} seed{'s' if seeds > 1 else ''}")
    return fig


def _style_index(s: Summary, listed, panel_by, colour_by) -> int:
    """A line style for the third listed setting's value, so it is told apart too."""
    rest = [x for x in listed if x.name not in (panel_by, colour_by)]
    if not rest:
        return 0
    return rest[0].values.index(s.point.value(rest[0].name)) % 4


def plot_effects(summaries: list[Summary], settings: Sequence[Setting], title: str):
    """One panel per setting: each configuration's mean best validation accuracy (± sd over
    its seeds) against that setting's value, so the effect of one setting is seen at a time."""
    from matplotlib.figure import Figure
    varying = [s for s in settings if len({x.point.value(s.name) for x in summaries}) > 1]
    n = max(1, len(varying))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.5 * cols + 0.5, 3.6 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for k, setting in enumerate(varying):
        ax = axes[k // cols][k % cols]
        xs = [s.point.value(setting.name) for s in summaries]
        means = [statistics.mean(s.val) for s in summaries]
        sds = [statistics.stdev(s.val) if len(s.runs) > 1 else 0.0 for s in summaries]
        if setting.is_range:
            pos = xs
            if setting.log:
                ax.set_xscale("log")
        else:
            order = list(setting.values)
            rng = np.random.default_rng(0)  # a little jitter, so points of one value do not hide
            pos = [order.index(x) + rng.uniform(-0.08, 0.08) for x in xs]
            ax.set_xticks(range(len(order)), [format_value(v) for v in order])
            ax.set_xlim(-0.5, len(order) - 0.5)
        # Points share a colour when they share the value of another listed setting.
        by = next((o for o in varying if o is not setting and not o.is_range), None)
        shades = list(by.values) if by else [None]
        colours = _colours(len(shades))
        for shade, colour in zip(shades, colours):
            mine = [i for i, s in enumerate(summaries) if by is None or s.point.value(by.name) == shade]
            ax.errorbar([pos[i] for i in mine], [means[i] for i in mine], yerr=[sds[i] for i in mine],
                        fmt="o", markersize=4, capsize=3, alpha=0.85, color=colour,
                        label=None if by is None else f"{by.name} {format_value(shade)}")
        if by is not None:
            ax.legend(fontsize="small", frameon=False)
        ax.set_xlabel(setting.name)
        ax.set_ylabel("Best validation accuracy (%)")
        ax.grid(alpha=0.3)
    for k in range(len(varying), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle(f"{title}\neach configuration's best validation accuracy, mean ± sd over its seeds")
    return fig


def save_curves(summaries: list[Summary], settings: Sequence[Setting], title: str, path: Path) -> None:
    from kit.plots import save_figure
    save_figure(plot_curves(summaries, settings, title), path)


def save_effects(summaries: list[Summary], settings: Sequence[Setting], title: str, path: Path) -> None:
    from kit.plots import save_figure
    save_figure(plot_effects(summaries, settings, title), path)


def write_graphs(summaries: list[Summary], settings: Sequence[Setting], folder: Path, title: str,
                 draw=None) -> list[str]:
    """curves.png and effects.png in folder; their names. draw(tasks): how to run the two
    drawing tasks (Engine.draw: side by side on the study's worker processes); by default here."""
    tasks = [(save_curves, (summaries, settings, title, folder / "curves.png")),
             (save_effects, (summaries, settings, title, folder / "effects.png"))]
    if draw is None:
        for function, arguments in tasks:
            function(*arguments)
    else:
        draw(tasks)
    return ["curves.png", "effects.png"]
