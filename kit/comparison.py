"""The comparison library behind compare.py and study.py: runs grouped by their settings
(seeds as one mean line inside a band), the graph of groups, and the table of every run.

Everything about a run is read through kit.record.
"""
from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kit.cli import readable
from kit.config import RunConfig, RunError, setting_text
from kit.record import LEGACY_RECORD, RECORD, Run, best_row
from training import HISTORY_COLUMNS

METRICS = HISTORY_COLUMNS[1:]        # every history column but the epoch itself
# dynamics.csv's columns (kit/dynamics.py), drawn against examples seen: those of every run,
# each layer's (name_i), and "dynamics." before a name history.csv has too (train_loss).
DYNAMICS_PREFIX = "dynamics."
DYNAMICS_FIXED = ("learning_rate", "train_loss", "train_accuracy")
DYNAMICS_LAYERED = ("weight_norm", "grad_norm", "update_ratio", "act_mean", "act_std", "dead",
                    "saturated")
MAX_DEPTH = 8                             # how deep the table looks for run folders


# ---- groups of runs and what differs between them ---------------------------------------

@dataclass
class Group:
    """Runs drawn as one line: one history per run (usually one per seed).

    style: matplotlib line keywords for the line (color, linestyle, linewidth, ...);
    runs: the Run objects the histories came from, when there are any."""
    label: str
    histories: list[list[dict]]
    style: dict[str, Any] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


def seedless(config: RunConfig) -> RunConfig:
    """The configuration with its seed blanked: equal for runs that differ only in the seed."""
    return replace(config, seed=None)


def group_runs(run_list: Sequence[Run], dynamics: bool = False) -> list[Group]:
    """Runs whose configurations are equal apart from the seed, as one Group each, in
    the order each configuration first appears; dynamics: their dynamics.csv's rows
    instead of their histories (RunError when one has none). Labels: a lone run's folder name; a
    group's configuration summary and its number of runs (with the settings that tell
    it apart when two groups share a summary)."""
    by_config: dict[RunConfig, list[Run]] = {}
    for run in run_list:
        by_config.setdefault(seedless(run.config), []).append(run)
    members = list(by_config.values())
    summaries = [m[0].config.summary() for m in members]
    groups = []
    for i, group in enumerate(members):
        label = readable(group[0].path.name)
        if len(group) > 1:
            twins = [m[0] for m, s in zip(members, summaries) if s == summaries[i]]
            extra = ""
            if len(twins) > 1:
                differing = differing_settings(twins, include_seed=False)
                mine = twins.index(group[0])
                extra = " " + " ".join(f"{k}={format_value(v[mine])}" for k, v in differing.items())
            seeds = ", ".join(str(r.config.seed) for r in group)
            label = f"{summaries[i]}{extra}: mean of {len(group)} runs (seeds {seeds}), min–max band"
        rows = [(r.dynamics() or []) if dynamics else r.history() for r in group]
        groups.append(Group(label, rows, runs=list(group)))
    return groups


def differing_settings(run_list: Sequence[Run], include_seed: bool = True) -> dict[str, list]:
    """{setting: [its value in each run, in order]} for the RunConfig fields whose values
    are not all equal; empty when the runs share one configuration."""
    differing = {}
    for f in fields(RunConfig):
        if f.name == "seed" and not include_seed:
            continue
        values = [getattr(r.config, f.name) for r in run_list]
        # Compare with type: True == 1 in Python, but l1=True and layers=1 are unrelated.
        if len({(type(v), v) for v in values}) > 1:
            differing[f.name] = values
    return differing


def format_value(value) -> str:
    """A setting as compare's tables show it (config.setting_text: - when unset)."""
    return setting_text(value, "-")


# ---- the figure ---------------------------------------------------------------------------

def dynamics_column(metric: str) -> str | None:
    """The dynamics.csv column a --metric names (grad_norm_1, dynamics.train_loss), or None
    when it names a history column or nothing."""
    name = metric.removeprefix(DYNAMICS_PREFIX)
    stem, _, layer = name.rpartition("_")
    if stem in DYNAMICS_LAYERED and layer.isdigit() and int(layer) >= 1:
        return name
    if metric.startswith(DYNAMICS_PREFIX) and name in DYNAMICS_FIXED:
        return name
    return None


def metric_label(metric: str) -> str:
    """The y-axis label of a history or dynamics column, e.g. 'Test accuracy (%)'."""
    column = dynamics_column(metric)
    if column is not None:
        stem, _, layer = column.rpartition("_")
        return {"weight_norm": f"Weight norm ||W|| of layer {layer}",
                "grad_norm": f"Gradient norm ||dLoss/dW|| of layer {layer}",
                "update_ratio": f"Update ratio ||dW||/||W|| of layer {layer}",
                "act_mean": f"Mean output of hidden layer {layer}",
                "act_std": f"Spread (std) of hidden layer {layer}'s outputs",
                "dead": f"Dead units of hidden layer {layer} (%)",
                "saturated": f"Saturated units of hidden layer {layer} (%)",
                }.get(stem, {"train_loss": "Training loss (mean since the previous point)",
                             "train_accuracy": "Training accuracy (%)",
                             "learning_rate": "Learning rate"}.get(column, column))
    if metric.endswith("_accuracy"):
        return f"{_split_name(metric)} accuracy (%)"
    if metric.endswith("_loss"):
        return f"{_split_name(metric)} loss (mean cross-entropy)"
    return {"learning_rate": "Learning rate", "l1_penalty": "L1 penalty λ·Σ|W|",
            "l2_penalty": "L2 penalty λ/2·ΣW²", "seconds": "Seconds per epoch"}.get(metric, metric)


def _split_name(metric: str) -> str:
    return {"train": "Training", "val": "Validation", "test": "Test"}[metric.split("_")[0]]


def metric_values(history: Sequence[dict], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one history, or (examples seen, values) of one run's dynamics
    rows for a dynamics metric; accuracies and unit shares in percent. KeyError when a row
    lacks it."""
    column = dynamics_column(metric)
    x = "epoch" if column is None else "examples_seen"
    column = column or metric
    epochs = np.array([r[x] for r in history], dtype=int)
    values = np.array([r[column] for r in history], dtype=float)
    percent = column.endswith("_accuracy") or column.rpartition("_")[0] in ("dead", "saturated")
    return epochs, values * 100 if percent else values


def group_band(histories: Sequence[Sequence[dict]], metric: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, min, max) over the histories, epoch by epoch (examples seen for a
    dynamics metric). Where runs stopped at different epochs, each epoch counts the runs
    that reached it."""
    series = [metric_values(h, metric) for h in histories]
    epochs = np.unique(np.concatenate([e for e, _ in series])) if series else np.array([], int)
    table = np.full((len(series), len(epochs)), np.nan)
    for i, (e, v) in enumerate(series):
        table[i, np.searchsorted(epochs, e)] = v
    if not len(epochs):
        return epochs, *(np.array([]),) * 3
    return epochs, np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)


MAX_LEGEND = 30  # legend lines below a graph; more runs are counted in one last line


def figure_size(n_entries: int) -> tuple[float, float]:
    """Width and height (inches) that leave the plot its size beside a legend of n entries
    below, at most MAX_LEGEND of them: 500 runs make a graph 12.5 inches tall, not 130."""
    return 9.0, 5.0 + 0.25 * min(n_entries, MAX_LEGEND)


def line_colours(n: int) -> list | None:
    """n colours, all different: None (matplotlib's cycle of 10) for up to 10 lines, then
    tab20, then evenly spaced along a perceptually ordered map (turbo)."""
    from matplotlib import colormaps
    if n <= 10:
        return None
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    from matplotlib.colors import LinearSegmentedColormap
    # Interpolated to n entries of its own: turbo itself holds only 256 colours.
    turbo = LinearSegmentedColormap.from_list("turbo-n", colormaps["turbo"].colors, N=n)
    return [turbo(i) for i in range(n)]


COLOURS = tuple(f"tab:{c}" for c in ("blue", "orange", "green", "red", "purple", "brown",
                                       "pink", "gray", "olive", "cyan"))
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")


def line_style(i: int, markers: bool = True) -> dict[str, Any]:
    """The look of the i-th line of a graph: ten colours, then the ten again in the next
    line style and marker, so that no two of 40 lines look alike (17 lines in one colour
    cycle drew two pairs the legend could not tell apart)."""
    turn = (i // len(COLOURS)) % len(LINESTYLES)
    style = {"color": COLOURS[i % len(COLOURS)], "linestyle": LINESTYLES[turn]}
    if markers:
        style.update(marker=MARKERS[turn], markersize=3)
    return style


def is_study_run(relative: Path) -> bool:
    """Whether a run folder, relative to the runs folder, is the study's: under study/,
    study-N-epochs/ or studies/, or one of the study runs shipped as best-model(-wide)."""
    parts = relative.parts
    if not parts:
        return False
    return parts[0] in ("study", "studies", "best-model", "best-model-wide") or \
        parts[0].startswith("study-")


def save_groups(groups: Sequence[Group], metric: str, title: str, path: Path) -> Path:
    """plot_groups into a PNG at path (atomically); a task for a worker process."""
    from kit.plots import save_figure
    return save_figure(plot_groups(groups, metric, title), path)


def plot_groups(groups: Sequence[Group], metric: str, title: str,
                figure: Figure | None = None) -> Figure:
    """One graph of metric per epoch: a plain line for a group of one run, the mean line
    and a min–max band for a group of several; the legend below the axes, outside them.

    figure: an empty figure to draw into (pyplot's, to show it in a window); by default
    a new one of figure_size(len(groups)) with the constrained layout the legend needs."""
    if metric not in METRICS and dynamics_column(metric) is None:
        raise ValueError(f"metric must be one of {', '.join(METRICS)} or a dynamics column, "
                         f"not {metric!r}")
    fig = figure if figure is not None else Figure(figsize=figure_size(len(groups)),
                                                   layout="constrained")
    fig.set_layout_engine("constrained")  # what places the legend outside the axes
    ax = fig.add_subplot()
    longest = max((len(h) for g in groups for h in g.histories), default=0)
    column = dynamics_column(metric)
    # Up to 40 lines: ten colours in four line styles; beyond, every line its own colour.
    colours = line_colours(len(groups)) if len(groups) > len(COLOURS) * len(LINESTYLES) else None
    for i, group in enumerate(groups):
        look = line_style(i, markers=longest <= 30)
        if colours:
            look["color"] = colours[i]
        style = {"linewidth": 1.6, **look, **group.style}
        if i >= MAX_LEGEND - 1 and len(groups) > MAX_LEGEND:
            style["label"] = "_nolegend_"  # counted in the legend's last line instead
        if len(group.histories) == 1:
            epochs, values = metric_values(group.histories[0], metric)
            ax.plot(epochs, values, **{"label": group.label, **style})
            continue
        epochs, mean, low, high = group_band(group.histories, metric)
        (line,) = ax.plot(epochs, mean, **{"label": group.label, **style})
        ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(title)
    ax.set_ylabel(metric_label(metric))
    if column is None:
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    else:
        from kit.plots import examples_axis
        examples_axis(ax, max((r["examples_seen"] for g in groups for h in g.histories for r in h),
                              default=0))
        if column.rpartition("_")[0] in ("grad_norm", "update_ratio", "weight_norm"):
            ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(groups) > MAX_LEGEND:
        hidden = len(groups) - (MAX_LEGEND - 1)
        ax.plot([], [], " ", label=f"… and {hidden} more lines, not named here "
                                   "(compare.py's table lists every run)")
    if groups:
        fig.legend(loc="outside lower center", ncols=1, fontsize="small", frameon=False)
    return fig


# ---- finding and reading runs ---------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """A run folder found on disk: its Run, or why it could not be read."""
    path: Path
    run: Run | None
    problem: str | None = None


def is_run_folder(path: Path) -> bool:
    return (path / RECORD).exists() or (path / LEGACY_RECORD).exists()


def find_runs(root: Path) -> Iterator[Found]:
    """Every run folder under root (root itself included), depth first in name order.

    A folder holding run.json or config.json is a run and is not looked into further;
    other folders are descended into (hidden ones and symbolic-link loops skipped). A
    folder that cannot be listed is reported as a problem, not skipped in silence.
    A run is listed once, under its own folder when that is under root: the real folders
    are walked first, then the symbolic links, whose runs come only when not met already
    (the one predict.py's latest-run search also prefers, record.find_latest_run)."""
    runs_seen: set[Path] = set()

    def walk(folder: Path, depth: int, links: bool, seen: set[Path]) -> Iterator[Found]:
        try:
            real = folder.resolve()
            if real in seen:
                return
            seen.add(real)
            if is_run_folder(folder):
                if real not in runs_seen:
                    runs_seen.add(real)
                    yield load(folder)
                return
            if depth >= MAX_DEPTH:
                return
            children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")
                              and (links or not c.is_symlink()))
        except OSError as err:
            if not links:  # reported once, by the first walk
                yield Found(folder, None, f"{folder}: not readable ({err.strerror or err})")
            return
        for child in children:
            yield from walk(child, depth + 1, links, seen)

    yield from walk(Path(root), 0, False, set())
    yield from walk(Path(root), 0, True, set())


def load(path: Path) -> Found:
    try:
        run = Run.load(path)
        run.history()  # a run whose history cannot be read is damaged too
        return Found(path, run)
    except RunError as err:
        return Found(path, None, str(err))
    except OSError as err:
        return Found(path, None, f"{path}: not readable ({err.strerror or err})")


# ---- the table ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str            # the --sort name
    header: str
    numeric: bool       # right-aligned; sorted largest first
    flexible: bool = False  # may wrap to fit the terminal


COLUMNS = (
    Column("run", "run", False, True),
    Column("configuration", "configuration", False, True),
    Column("status", "status", False),
    Column("epochs", "epochs", True),
    Column("val", "val%", True),
    Column("best", "best", True),
    Column("test", "test%", True),
    Column("last", "last%", True),
    Column("time", "time(s)", True),
    Column("init", "init", True),
)
SORT_KEYS = tuple(c.key for c in COLUMNS)
COLUMN_NOTE = ("val%: the best validation accuracy; best: its epoch; test%: the test accuracy "
               "at that epoch; last%: at the last epoch; time(s): training time in seconds; "
               "init: the training loss before any update (ln 10 = 2.30 is guessing)")


def configuration_text(config: RunConfig) -> str:
    """The configuration's summary: its choices and every setting away from its default."""
    return config.summary()


def status_word(run: Run) -> str:
    """The record's status; a 'running' run whose process is gone says so."""
    if run.record.status == "running" and not run.live:
        return "no-status"  # its process died before it could record how it ended
    return run.record.status


def table_row(found: Found, root: Path | None) -> dict[str, Any]:
    """One row's values by column key (None where there is nothing), plus the sort value."""
    name = found.path
    if root is not None:
        try:
            name = found.path.relative_to(root)
        except ValueError:
            pass
    name = name.as_posix()
    if found.run is None:
        reason = found.problem or "unreadable"
        # The path is in the run column already: keep the file and the reason.
        reason = reason.replace(f"{found.path}{os.sep}", "").replace(f"{found.path}: ", "")
        return {"run": name, "configuration": reason, "status": "damaged", "epochs": None,
                "val": None, "best": None, "test": None, "last": None, "time": None,
                "init": None, "notes": []}
    r = found.run.record
    # From the history, not record.best: a run of the first format kept only its last
    # weights, so its record names the last epoch, yet its history knows the best one.
    history = found.run.history()
    best, last = best_row(history), (history[-1] if history else None)
    pct = lambda row, k: None if row is None else round(100 * row[k], 2)  # noqa: E731
    return {"run": name, "configuration": configuration_text(r.config), "status": status_word(found.run),
            "epochs": r.epochs_completed, "val": pct(best, "val_accuracy"),
            "best": None if best is None else best["epoch"], "test": pct(best, "test_accuracy"),
            "last": pct(last, "test_accuracy"), "time": round(r.train_seconds, 1),
            **_initial_loss(found.run)}


def _initial_loss(run: Run) -> dict[str, Any]:
    """{"init": the loss of dynamics.csv's row 0 (None without one), "notes": [why it
    could not be read]}: a damaged dynamics.csv leaves the rest of the row as it is."""
    try:
        rows = run.dynamics(limit=1)
    except RunError as err:
        return {"init": None, "notes": [str(err)]}
    first = rows[0] if rows else None
    init = round(first["train_loss"], 2) if first is not None and first["step"] == 0 else None
    return {"init": init, "notes": []}


def sort_rows(rows: list[dict], key: str) -> list[dict]:
    """Numbers largest first, text A to Z; damaged rows and empty cells last (ties by name)."""
    column = next(c for c in COLUMNS if c.key == key)

    def order(row):
        value = row[key]
        damaged = row["status"] == "damaged"
        if value is None:
            return (damaged, 1, 0, row["run"])
        return (damaged, 0, -value if column.numeric else str(value).lower(), row["run"])
    return sorted(rows, key=order)


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def cells(row: dict) -> list[str]:
    """A row's cells as text, in column order: what the table and the CSV print."""
    out = []
    for c in COLUMNS:
        value = row[c.key]
        if c.key == "time" and value is not None:
            out.append(f"{value:.1f}")
        else:
            out.append(cell_text(value))
    return out


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.header for c in COLUMNS])
    for row in rows:
        writer.writerow(cells(row))
    return buf.getvalue()


def wrap_cell(text: str, width: int) -> list[str]:
    """text in lines of at most width, broken after '-', '_', '/' or a space where it can."""
    if len(text) <= width:
        return [text]
    pieces = re.findall(r"[^-_/ ]*[-_/ ]|[^-_/ ]+$", text)
    lines, current = [], ""
    for piece in pieces:
        while len(piece) > width:  # a piece too long for any line is cut
            if current:
                lines.append(current.rstrip())
                current = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if len(current) + len(piece.rstrip()) > width:
            lines.append(current.rstrip())
            current = ""
        current += piece
    if current.strip():
        lines.append(current.rstrip())
    return lines or [""]


def format_table(rows: list[dict], width: int | None) -> str:
    """The table as text. width: the terminal's columns, or None to print it whole.

    When the one-line rows do not fit the width, each run takes two lines: its name
    whole, then its configuration (indented, wrapped at '-' to fit) beside the numbers."""
    text_rows = [cells(r) for r in rows]
    headers = [c.header for c in COLUMNS]
    widths = [max([len(h)] + [len(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    gap = "  "
    if width is None or len(gap.join(" " * w for w in widths)) <= width - 1:
        return "\n".join(_lines([headers] + text_rows, widths, gap))
    # Column 0 (the run) goes on a line of its own; the configuration gets what is left.
    indent = "  "
    rest = widths[2:]
    room = width - 1 - len(indent) - len(gap) * (len(rest)) - sum(rest)
    widths = [max(12, room)] + rest
    lines = ["run", *_lines([[indent + "configuration"] + headers[2:]], [widths[0] + len(indent)] + rest, gap)]
    for row in text_rows:
        lines += wrap_cell(row[0], width - 1)
        lines += [indent + line for line in _lines([row[1:]], widths, gap)]
    return "\n".join(lines)


def _lines(rows: list[list[str]], widths: list[int], gap: str) -> list[str]:
    """Rows of cells laid out in columns of these widths (the first len(widths) columns of
    COLUMNS from the end), a cell wider than its column wrapped onto more lines."""
    columns = COLUMNS[len(COLUMNS) - len(widths):]
    lines = []
    for row in rows:
        wrapped = [wrap_cell(text, w) for text, w in zip(row, widths)]
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for c, w, cell in zip(columns, widths, wrapped):
                text = cell[k] if k < len(cell) else ""
                parts.append(text.rjust(w) if c.numeric else text.ljust(w))
            lines.append(gap.join(parts).rstrip())
    return lines
