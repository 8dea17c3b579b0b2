"""Compare saved runs: every run in one table, or chosen runs in one graph.

    python compare.py                           # every run under saved_files/, best first
    python compare.py --sort time --csv         # the same table as CSV, fastest first
    python compare.py 'saved_files/study/2h-*'  # one graph of their test accuracy per epoch
    python compare.py study/* --metric val_loss --save val_loss.png

Runs whose configurations differ only in their seed are drawn as one line, the mean
of their histories, inside a band from their minimum to their maximum. Everything
about a run is read through kit/record.py; the grouping, the graph and the table are
kit/comparison.py's, which study.py uses too.
"""
from __future__ import annotations

from kit.startup import quiet_ctrl_c

quiet_ctrl_c(__name__)  # first: a Ctrl-C while NumPy imports exits quietly with 130

import argparse
import glob
import sys
from collections.abc import Sequence
from pathlib import Path

from kit import plots
from kit.cli import HelpFormatter, OneLineParser, Output, png_path, run_script
from kit.comparison import (
    COLUMN_NOTE,
    METRICS,
    SORT_KEYS,
    Group,
    configuration_text,
    csv_text,
    differing_settings,
    dynamics_column,
    figure_size,
    find_runs,
    format_table,
    format_value,
    group_runs,
    is_run_folder,
    is_study_run,
    load,
    metric_label,
    plot_groups,
    sort_rows,
    table_row,
)
from kit.config import RunError
from kit.record import LEGACY_RECORD, RECORD, Run, kit_figure
from kit.signals import OutputLost

HERE = Path(__file__).resolve().parent
DEFAULT_RUNS = HERE / "saved_files"
DEFAULT_FIGURE = Path("comparison.png")
PROG = "compare.py"


# ---- the command line ------------------------------------------------------------------------

def _metric(text: str) -> str:
    if text not in METRICS and dynamics_column(text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a history or dynamics column; choose one of {', '.join(METRICS)}, "
            f"or of dynamics.csv's: {DYNAMICS_HELP}")
    return text


DYNAMICS_HELP = ("grad_norm_I, update_ratio_I, weight_norm_I (layer I), act_mean_I, act_std_I, "
                 "dead_I, saturated_I (hidden layer I), dynamics.train_loss, "
                 "dynamics.train_accuracy, dynamics.learning_rate")


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
    p.add_argument("--mine", action="store_true",
                   help="the table lists only your own runs: not the study's (study/, study-*/, "
                        "studies/) nor the shipped best-model and best-model-wide")
    p.add_argument("--csv", action="store_true", help="print the table as CSV, whole")
    p.add_argument("--metric", type=_metric, default="test_accuracy", metavar="COLUMN",
                   help=f"what the graph shows, per epoch: {', '.join(METRICS)}; or inside the "
                        f"epochs, against examples seen (dynamics.csv): {DYNAMICS_HELP}")
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
    found = list(find_runs(root))
    study = [f for f in found if _relative_is_study(f.path, root)]
    if args.mine:
        found = [f for f in found if f not in study]
    rows = sort_rows([table_row(f, root) for f in found], args.sort)
    if args.csv:
        out.say(csv_text(rows).rstrip("\n"), whole=True)
        return 0
    if not rows:
        mine = f"No runs of yours in {out.path(root)} (it holds {len(study)} study runs)" if args.mine and study \
            else f"No runs in {out.path(root)}"
        out.say(f"{mine}; train one with: python train.py")
        return 0
    width = out.columns(sys.stdout)
    out.say(format_table(rows, width), whole=True)
    note = COLUMN_NOTE + "."
    out.say(out.wrap(note) if width else note)
    for row in rows:
        for problem in row["notes"]:
            out.error(f"{problem}; its init cell is empty")
    if study:
        out.say(f"Hid {len(study)} study runs (python compare.py without --mine lists them)." if args.mine
                else f"{len(study)} of these are study runs; python compare.py --mine lists only yours.")
    return 0


def _relative_is_study(path: Path, root: Path) -> bool:
    try:
        return is_study_run(path.relative_to(root))
    except ValueError:
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
    """The folders pattern names; a run's record file (run.json, config.json) names its run."""
    found = []
    for m in [pattern] if Path(pattern).exists() else sorted(glob.glob(pattern, recursive=True)):
        path = Path(m)
        if path.is_dir():
            found.append(path)
        elif path.name in (RECORD, LEGACY_RECORD) and path.is_file():
            found.append(path.parent)
    return found


def show_graph(args, out: Output) -> int:
    folders, problem = expand(args.runs, args.runs_dir)
    if problem:
        return out.fail(problem)
    chosen = []
    column = dynamics_column(args.metric)
    for folder in folders:
        found = load(folder)
        if found.run is None:
            out.error(f"leaving out {folder}: {found.problem}")
        elif found.run.record.epochs_completed == 0:
            out.error(f"leaving out {folder}: it has no completed epoch")
        elif column is not None:
            problem = _dynamics_problem(found.run, column)
            if problem:
                out.error(f"leaving out {folder}: {problem}")
            else:
                chosen.append(found.run)
        elif any(args.metric not in row for row in found.run.history()):
            out.error(f"leaving out {folder}: it was saved before {args.metric} was recorded")
        else:
            chosen.append(found.run)
    if not chosen:
        return out.fail("no run left to draw")
    out.say(settings_table(chosen))
    groups = group_runs(chosen, dynamics=column is not None)
    title = f"{metric_label(args.metric).split(' (')[0]} " + \
        ("per epoch" if column is None else "inside the epochs")
    return draw(groups, args, title, out)


def _dynamics_problem(run: Run, column: str) -> str | None:
    """Why a run cannot be drawn for a dynamics column, or None."""
    try:
        rows = run.dynamics()
    except RunError as err:
        return str(err)
    if not rows:
        return "it was saved before dynamics.csv was recorded"
    if column not in rows[0]:
        return f"its dynamics.csv has no {column} (a network of {run.config.layers} hidden layers" + \
            (f", {run.config.activation}" if run.config.layers else "") + ")"
    return None


def settings_table(run_list: Sequence[Run]) -> str:
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
        plots.fit_to_screen(fig)
        plot_groups(groups, args.metric, title, figure=fig)
        out.say("Showing the graph; close its window (or press Ctrl-C) to finish.")
        try:
            plots.show_windows()
        except KeyboardInterrupt:
            out.say("Closed the graph window.")
        return 0
    target = args.save or DEFAULT_FIGURE
    if kit_figure(target.name) and is_run_folder(target.resolve().parent):
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
