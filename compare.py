"""Compare saved runs: every run in one table, or chosen runs in one graph.

    python compare.py                           # every run under saved_files/, best first
    python compare.py --sort time --csv         # the same table as CSV, fastest first
    python compare.py 'saved_files/study/2h-*'  # one graph of their test accuracy per epoch
    python compare.py study/* --metric val_loss --save val_loss.png

Runs whose configurations differ only in their seed are drawn as one line, the mean
of their histories, inside a band from their minimum to their maximum. Everything
about a run is read through runs.py. plot_groups() and group_runs() are also used by
study.py for its graphs.
"""
# The SIGINT lines come first, as in train.py: a Ctrl-C while NumPy and matplotlib
# import exits quietly with 130 instead of printing an import traceback.
from __future__ import annotations

import os
import signal

if __name__ == "__main__" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))

import argparse
import csv
import glob
import io
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import plots
import runs
from cli import HelpFormatter, OneLineParser, Output, png_path, readable, run_script
from interrupts import OutputLost

HERE = Path(__file__).resolve().parent
DEFAULT_RUNS = HERE / "saved_files"
DEFAULT_FIGURE = Path("comparison.png")
PROG = "compare.py"
METRICS = runs.HISTORY_COLUMNS[1:]        # every history column but the epoch itself
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
    runs: list[runs.Run] = field(default_factory=list)


def seedless(config: runs.RunConfig) -> runs.RunConfig:
    """The configuration with its seed blanked: equal for runs that differ only in the seed."""
    return replace(config, seed=None)


def group_runs(run_list: Sequence[runs.Run]) -> list[Group]:
    """Runs whose configurations are equal apart from the seed, as one Group each, in
    the order each configuration first appears. Labels: a lone run's folder name; a
    group's configuration summary and its number of runs (with the settings that tell
    it apart when two groups share a summary)."""
    by_config: dict[runs.RunConfig, list[runs.Run]] = {}
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
        groups.append(Group(label, [r.history() for r in group], runs=list(group)))
    return groups


def differing_settings(run_list: Sequence[runs.Run], include_seed: bool = True) -> dict[str, list]:
    """{setting: [its value in each run, in order]} for the RunConfig fields whose values
    are not all equal; empty when the runs share one configuration."""
    differing = {}
    for f in fields(runs.RunConfig):
        if f.name == "seed" and not include_seed:
            continue
        values = [getattr(r.config, f.name) for r in run_list]
        # Compare with type: True == 1 in Python, but l1=True and layers=1 are unrelated.
        if len({(type(v), v) for v in values}) > 1:
            differing[f.name] = values
    return differing


def format_value(value) -> str:
    """A setting as the tables show it: y/n for booleans, - for unset, %g for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---- the figure ---------------------------------------------------------------------------

def metric_label(metric: str) -> str:
    """The y-axis label of a history column, e.g. 'Test accuracy (%)'."""
    if metric.endswith("_accuracy"):
        return f"{_split_name(metric)} accuracy (%)"
    if metric.endswith("_loss"):
        return f"{_split_name(metric)} loss (mean cross-entropy)"
    return {"learning_rate": "Learning rate", "l1_penalty": "L1 penalty λ·Σ|W|",
            "l2_penalty": "L2 penalty λ/2·ΣW²", "seconds": "Seconds per epoch"}.get(metric, metric)


def _split_name(metric: str) -> str:
    return {"train": "Training", "val": "Validation", "test": "Test"}[metric.split("_")[0]]


def metric_values(history: Sequence[dict], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one history; accuracies in percent. KeyError when a row lacks it."""
    epochs = np.array([r["epoch"] for r in history], dtype=int)
    values = np.array([r[metric] for r in history], dtype=float)
    return epochs, values * 100 if metric.endswith("_accuracy") else values


def group_band(histories: Sequence[Sequence[dict]], metric: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, min, max) over the histories, epoch by epoch. Where runs stopped at
    different epochs, each epoch counts the runs that reached it."""
    series = [metric_values(h, metric) for h in histories]
    epochs = np.unique(np.concatenate([e for e, _ in series])) if series else np.array([], int)
    table = np.full((len(series), len(epochs)), np.nan)
    for i, (e, v) in enumerate(series):
        table[i, np.searchsorted(epochs, e)] = v
    if not len(epochs):
        return epochs, *(np.array([]),) * 3
    return epochs, np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)


def figure_size(n_entries: int) -> tuple[float, float]:
    """Width and height (inches) that leave the plot its size beside a legend of n entries below."""
    return 9.0, 5.0 + 0.25 * n_entries


def plot_groups(groups: Sequence[Group], metric: str, title: str,
                figure: Figure | None = None) -> Figure:
    """One graph of metric per epoch: a plain line for a group of one run, the mean line
    and a min–max band for a group of several; the legend below the axes, outside them.

    figure: an empty figure to draw into (pyplot's, to show it in a window); by default
    a new one of figure_size(len(groups)) with the constrained layout the legend needs."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    fig = figure if figure is not None else Figure(figsize=figure_size(len(groups)),
                                                   layout="constrained")
    fig.set_layout_engine("constrained")  # what places the legend outside the axes
    ax = fig.add_subplot()
    longest = max((len(h) for g in groups for h in g.histories), default=0)
    marker = dict(marker="o", markersize=3) if longest <= 30 else {}
    for group in groups:
        style = {"linewidth": 1.6, **marker, **group.style}
        if len(group.histories) == 1:
            epochs, values = metric_values(group.histories[0], metric)
            ax.plot(epochs, values, label=group.label, **style)
            continue
        epochs, mean, low, high = group_band(group.histories, metric)
        (line,) = ax.plot(epochs, mean, label=group.label, **style)
        ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(title)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(metric_label(metric))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.grid(alpha=0.3)
    if groups:
        fig.legend(loc="outside lower center", ncols=1, fontsize="small", frameon=False)
    return fig


# ---- finding and reading runs ---------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """A run folder found on disk: its Run, or why it could not be read."""
    path: Path
    run: runs.Run | None
    problem: str | None = None


def is_run_folder(path: Path) -> bool:
    return (path / runs.RECORD).exists() or (path / runs.LEGACY_RECORD).exists()


def find_runs(root: Path) -> Iterator[Found]:
    """Every run folder under root (root itself included), depth first in name order.

    A folder holding run.json or config.json is a run and is not looked into further;
    other folders are descended into (hidden ones and symbolic-link loops skipped). A
    folder that cannot be listed is reported as a problem, not skipped in silence."""
    seen: set[Path] = set()

    def walk(folder: Path, depth: int) -> Iterator[Found]:
        try:
            real = folder.resolve()
            if real in seen:
                return
            seen.add(real)
            if is_run_folder(folder):
                yield load(folder)
                return
            if depth >= MAX_DEPTH:
                return
            children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith("."))
        except OSError as err:
            yield Found(folder, None, f"{folder}: not readable ({err.strerror or err})")
            return
        for child in children:
            yield from walk(child, depth + 1)

    yield from walk(Path(root), 0)


def load(path: Path) -> Found:
    try:
        run = runs.Run.load(path)
        run.history()  # a run whose history cannot be read is damaged too
        return Found(path, run)
    except runs.RunError as err:
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
)
SORT_KEYS = tuple(c.key for c in COLUMNS)
COLUMN_NOTE = ("val%: the best validation accuracy; best: its epoch; test%: the test accuracy "
               "at that epoch; last%: at the last epoch; time(s): training time in seconds")


def configuration_text(config: runs.RunConfig) -> str:
    """The configuration's summary and the hyperparameters that are not the defaults."""
    parts = [config.summary()]
    defaults = {name: default for name, _, default in runs.RunConfig.options()}
    shown = {"batch_size": "batch", "learning_rate": "lr", "momentum": "momentum",
             "decay_factor": "decay-factor", "l1_lambda": "l1-lambda", "patience": "patience",
             "limit": "limit"}
    relevant = {"momentum": config.optimizer == "momentum", "decay_factor": config.decay,
                "l1_lambda": config.l1}
    for name, short in shown.items():
        value = getattr(config, name)
        if value != defaults[name] and relevant.get(name, True):
            parts.append(f"{short}={format_value(value)}")
    return " ".join(parts)


def status_word(run: runs.Run) -> str:
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
                "val": None, "best": None, "test": None, "last": None, "time": None}
    r = found.run.record
    # From the history, not record.best: a run of the first format kept only its last
    # weights, so its record names the last epoch, yet its history knows the best one.
    history = found.run.history()
    best, last = runs.best_row(history), (history[-1] if history else None)
    pct = lambda row, k: None if row is None else round(100 * row[k], 2)  # noqa: E731
    return {"run": name, "configuration": configuration_text(r.config), "status": status_word(found.run),
            "epochs": r.epochs_completed, "val": pct(best, "val_accuracy"),
            "best": None if best is None else best["epoch"], "test": pct(best, "test_accuracy"),
            "last": pct(last, "test_accuracy"), "time": round(r.train_seconds, 1)}


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


# ---- the command line ------------------------------------------------------------------------

def _metric(text: str) -> str:
    if text not in METRICS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a history column; choose one of "
                                         f"{', '.join(METRICS)}")
    return text


def _sort_key(text: str) -> str:
    key = text.strip().lower().removesuffix("(s)").rstrip("%")
    if key not in SORT_KEYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a column; choose one of {', '.join(SORT_KEYS)}")
    return key


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog=PROG, formatter_class=HelpFormatter,
        description="Without RUN arguments: a table of every run under --runs-dir (study runs "
                    "included), best validation accuracy first. With RUN folders or glob "
                    "patterns: one graph of --metric per epoch, one line per run (runs that "
                    "differ only in their seed: one mean line and a min-max band), and a table "
                    "of the settings that differ between them.",
        epilog=f"Table columns: {COLUMN_NOTE}.")
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="run folders, folders of runs, or glob patterns (quote them); a pattern "
                        "that matches nothing here is tried inside --runs-dir")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS, metavar="DIR",
                   help="where the runs are (default: saved_files/ beside compare.py)")
    p.add_argument("--sort", type=_sort_key, default="val", metavar="COLUMN",
                   help=f"the table's order: {', '.join(SORT_KEYS)} (numbers largest first, "
                        "text A to Z; default: val, the best validation accuracy)")
    p.add_argument("--csv", action="store_true", help="print the table as CSV, whole")
    p.add_argument("--metric", type=_metric, default="test_accuracy", metavar="COLUMN",
                   help=f"what the graph shows: {', '.join(METRICS)}")
    p.add_argument("--save", type=png_path, default=None, metavar="FILE.png",
                   help="write the graph to this PNG instead of opening a window (headless "
                        f"default: {DEFAULT_FIGURE} in the current folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    out = Output(PROG)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if not args.runs:
            return show_table(args, out)
        return show_graph(args, out)
    except OutputLost as err:
        return out.output_lost(err)


def show_table(args, out: Output) -> int:
    root = args.runs_dir
    if not root.is_dir():
        return out.fail(f"--runs-dir {root}: no such folder; train a run first with python "
                        "train.py, or give the folder that holds your runs")
    rows = sort_rows([table_row(f, root) for f in find_runs(root)], args.sort)
    if args.csv:
        out.say(csv_text(rows).rstrip("\n"))
        return 0
    if not rows:
        out.say(f"No runs in {out.path(root)}; train one with: python train.py")
        return 0
    width = out.width() if _is_terminal() else None
    out.say(format_table(rows, width))
    note = COLUMN_NOTE + "."
    out.say(out.wrap(note) if width else note)
    return 0


def _is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (ValueError, OSError):
        return False


def expand(patterns: Sequence[str], runs_dir: Path) -> tuple[list[Path], str | None]:
    """The run folders the arguments name, each once, in argument order (a pattern's
    matches sorted); or a problem: the first pattern that matches no run."""
    folders, seen = [], set()
    for pattern in patterns:
        matches = _matches(pattern)
        if not matches and not Path(pattern).is_absolute():
            matches = _matches(str(runs_dir / pattern))
        found = [f.path for m in matches for f in find_runs(m)] if matches else []
        if not found:
            where = "" if Path(pattern).is_absolute() else f" (here or in {runs_dir})"
            what = "no run folder" if matches else "nothing"
            return [], f"{pattern}: {what} matches{where}; see python compare.py for the runs"
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                folders.append(path)
    return folders, None


def _matches(pattern: str) -> list[Path]:
    if Path(pattern).is_dir():
        return [Path(pattern)]
    return [Path(m) for m in sorted(glob.glob(pattern, recursive=True)) if Path(m).is_dir()]


def show_graph(args, out: Output) -> int:
    folders, problem = expand(args.runs, args.runs_dir)
    if problem:
        return out.fail(problem)
    chosen = []
    for folder in folders:
        found = load(folder)
        if found.run is None:
            out.error(f"leaving out {folder}: {found.problem}")
        elif found.run.record.epochs_completed == 0:
            out.error(f"leaving out {folder}: it has no completed epoch")
        elif any(args.metric not in row for row in found.run.history()):
            out.error(f"leaving out {folder}: it was saved before {args.metric} was recorded")
        else:
            chosen.append(found.run)
    if not chosen:
        return out.fail("no run left to draw")
    out.say(settings_table(chosen))
    groups = group_runs(chosen)
    title = f"{metric_label(args.metric).split(' (')[0]} per epoch"
    return draw(groups, args, title, out)


def settings_table(run_list: Sequence[runs.Run]) -> str:
    """The settings that differ between the runs, one row per run."""
    names = [r.path.name for r in run_list]
    if len(run_list) == 1:
        return f"One run: {names[0]} ({configuration_text(run_list[0].config)}, seed {run_list[0].config.seed})"
    differing = differing_settings(run_list)
    if not differing:
        return f"The {len(run_list)} runs have the same settings ({configuration_text(run_list[0].config)}, " \
               f"seed {run_list[0].config.seed})."
    headers = ["run"] + list(differing)
    body = [[n] + [format_value(v[i]) for v in differing.values()] for i, n in enumerate(names)]
    widths = [max(len(r[k]) for r in [headers] + body) for k in range(len(headers))]
    lines = [f"Settings that differ between the {len(run_list)} runs:"]
    lines += ["  ".join(t.ljust(w) for t, w in zip(r, widths)).rstrip() for r in [headers] + body]
    return "\n".join(lines)


def draw(groups: list[Group], args, title: str, out: Output) -> int:
    """Open the graph in a window when one can open and --save is not given; else write it."""
    if args.save is None and plots.display_available() and plots.interactive_backend() is not None:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=figure_size(len(groups)))
        plot_groups(groups, args.metric, title, figure=fig)
        out.say("Showing the graph; close its window (or press Ctrl-C) to finish.")
        try:
            plt.show()
        except KeyboardInterrupt:
            out.say("Closed the graph window.")
        return 0
    target = args.save or DEFAULT_FIGURE
    if runs.kit_figure(target.name) and is_run_folder(target.resolve().parent):
        return out.fail(f"{target} belongs to the run folder {target.parent}; choose another "
                        "--save name")
    if not target.resolve().parent.is_dir():
        return out.fail(f"--save {target}: the folder {target.parent} does not exist")
    fig = plot_groups(groups, args.metric, title)
    try:
        plots.save_figure(fig, target.resolve())
    except OSError as err:
        return out.fail(f"cannot write {target} ({err.strerror or err})")
    out.say(f"Saved the graph to {out.path(target)}" +
            ("" if args.save else " (no window can open here; --save FILE.png to choose the name)"))
    return 0


if __name__ == "__main__":
    run_script(main)
