"""The study: the original project's model comparison and ours, each configuration
trained under several seeds, with graphs of the mean and the spread and a table.

    python study.py                       # every category, 3 seeds, 40 epochs
    python study.py --category beyond     # one category
    python study.py --epochs 5            # a quicker version, into its own folders
    python study.py --grid "hidden_size=32,64 activation=relu,sigmoid"     # a study of your own
    python study.py --random 20 "learning_rate=1e-4..1e-1:log l2=0..1e-3" --name lr-l2

A study of your own (docs/your-own-study.md) goes to saved_files/studies/NAME/: run folders,
results.md, results.csv, curves.png and effects.png, with a verdict per setting.

Each (configuration, seed) is an ordinary run folder, saved_files/study/<configuration>-seed<N>/,
trained by lifecycle.train_run in worker processes (kit/engine.py: joblib, or a Dask cluster
with --scheduler), as many at a time as cores. A run already
completed with the same settings is not trained again and an unfinished one is resumed
exactly, so an interrupted study goes on where it stopped. Then the graphs (compare.py's:
mean line, min-max band) and the results table are written to Images/.
"""
from __future__ import annotations

from kit.startup import quiet_ctrl_c

quiet_ctrl_c(__name__)  # first: a Ctrl-C while NumPy imports exits quietly with 130

import argparse
import contextlib
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from kit.cli import HelpFormatter, OneLineParser, Output, run_script, whole_number
from kit.config import RunConfig
from kit.own_study import SearchFlagError, default_name, own_points, run_own_study
from kit.study_runs import Job, StudyError, plan_run, study_lock, train_jobs

HERE = Path(__file__).resolve().parent
PROG = "study.py"


@dataclass(frozen=True)
class Entry:
    """One configuration of the study: Normal normalization and Xavier initialization,
    the original's hyperparameters, and what the entry changes."""
    category: str
    layers: int
    activation: str | None
    optimizer: str
    l1: bool = False
    decay: bool = False
    l2: float = 0.0
    dropout: float = 0.0
    augment: str | None = None
    hidden_size: int = RunConfig.default("hidden_size")
    decay_factor: float = RunConfig.default("decay_factor")

    def run_config(self, epochs: int, seed: int, limit: int | None = None) -> RunConfig:
        return RunConfig.create(
            layers=self.layers, normalization="normal", init="xavier", activation=self.activation,
            l1=self.l1, decay=self.decay, optimizer=self.optimizer, epochs=epochs, seed=seed,
            l2=self.l2, dropout=self.dropout, augment=self.augment, hidden_size=self.hidden_size,
            decay_factor=self.decay_factor, limit=limit)

    @property
    def name(self) -> str:
        return self.run_config(1, 0).summary()

    def folder(self, seed: int) -> str:
        return f"{self.name}-seed{seed}"

    @property
    def label(self) -> str:
        """A legend label, e.g. '2 hidden, ReLU, Momentum, L1'."""
        wide = self.hidden_size != RunConfig.default("hidden_size")
        parts = [f"{self.layers} hidden" + (f" of {self.hidden_size}" if wide else "")]
        if self.layers:
            parts.append({"relu": "ReLU", "sigmoid": "Sigmoid"}[self.activation])
        parts.append({"sgd": "SGD", "momentum": "Momentum", "adam": "Adam"}[self.optimizer])
        if self.l1:
            parts.append("L1")
        if self.decay:
            parts.append("LR decay" + (f" {self.decay_factor:g}"
                                  if self.decay_factor != RunConfig.default("decay_factor") else ""))
        if self.l2:
            parts.append(f"L2 {self.l2:g}")
        if self.dropout:
            parts.append(f"dropout {self.dropout:g}")
        if self.augment:
            parts.append(f"{self.augment} augmentation")
        return ", ".join(parts)


def E(category, layers, activation, optimizer, **kw) -> Entry:
    return Entry(category, layers, activation if layers else None, optimizer, **kw)


BASE = dict(layers=2, activation="relu", optimizer="momentum")
# The original project's three categories, our fourth (L1, decay), the fifth (what peers
# offer beyond the original's knobs) and the kit's best result.
ENTRIES = [
    E("original", 0, None, "sgd"), E("original", 1, "relu", "sgd"), E("original", 2, "relu", "sgd"),
    E("original", 1, "sigmoid", "sgd"), E("original", 2, "sigmoid", "sgd"),
    E("original", 0, None, "momentum"), E("original", 1, "relu", "momentum"),
    E("original", 2, "relu", "momentum"),
    E("l1-decay", **BASE, l1=True), E("l1-decay", **BASE, decay=True),
    E("l1-decay", **BASE, l1=True, decay=True),
    E("beyond", **BASE, l2=1e-4), E("beyond", **BASE, dropout=0.2),
    E("beyond", 2, "relu", "adam"), E("beyond", **BASE, augment="shift"),
    E("beyond", **BASE, augment="affine"),
    E("best", 2, "relu", "momentum", hidden_size=256, augment="affine", decay=True),
]
CATEGORIES = ("original", "l1-decay", "beyond", "best")
BASELINE = E("original", **BASE)

# Test accuracy at 40 epochs read off the original project's graphs.
ORIGINAL_FIGURES = {
    E("original", 0, None, "sgd"): 92.5, E("original", 1, "relu", "sgd"): 97.3,
    E("original", 2, "relu", "sgd"): 97.0, E("original", 1, "sigmoid", "sgd"): 95.7,
    E("original", 2, "sigmoid", "sgd"): 95.3, E("original", 0, None, "momentum"): 92.0,
    E("original", 1, "relu", "momentum"): 97.2, E("original", 2, "relu", "momentum"): 97.2,
}


def _pick(*entries: Entry) -> list[Entry]:
    return list(entries)


# (file name, title, entries): the original's six graphs under their original names,
# then ours.
GRAPHS = [
    ("Test_accuracy_comparision.png", "ReLU + SGD: 0, 1 and 2 hidden layers",
     _pick(ENTRIES[0], ENTRIES[1], ENTRIES[2])),
    ("com_acc.png", "Sigmoid + SGD: 1 and 2 hidden layers", _pick(ENTRIES[3], ENTRIES[4])),
    ("layer1_acc_com.png", "1 hidden layer, SGD: ReLU against sigmoid", _pick(ENTRIES[1], ENTRIES[3])),
    ("com_acc_3.png", "ReLU + Momentum: 0, 1 and 2 hidden layers",
     _pick(ENTRIES[5], ENTRIES[6], ENTRIES[7])),
    ("com_acc_layer2.png", "2 hidden layers, ReLU: SGD against Momentum", _pick(ENTRIES[2], ENTRIES[7])),
    ("com_acc_best.png", "2 hidden + Momentum against 1 hidden + SGD (ReLU)",
     _pick(ENTRIES[7], ENTRIES[1])),
    ("com_acc_l1_decay.png", "2 hidden, ReLU, Momentum: L1 and learning-rate decay",
     _pick(ENTRIES[7], ENTRIES[8], ENTRIES[9], ENTRIES[10])),
    ("com_acc_beyond.png", "2 hidden, ReLU: L2, dropout, Adam and augmentation",
     _pick(ENTRIES[7], *ENTRIES[11:16])),
    ("com_acc_kit_best.png", "The kit's best: 2 hidden of 256, affine augmentation",
     _pick(ENTRIES[7], ENTRIES[15], ENTRIES[16])),
]


# ---- planning and training -----------------------------------------------------------

def plan(entry: Entry, seed: int, args) -> Job:
    """What a (configuration, seed) of the built-in study needs (see plan_run)."""
    return plan_run(args.output_dir / entry.folder(seed), entry.run_config(args.epochs, seed, args.limit),
                    args.retrain)


def run_study(args, out: Output) -> int:
    from kit.record import prepare_output_dir
    entries = [e for e in ENTRIES if e.category in args.category]
    seeds = [args.seed + k for k in range(args.seeds)]
    prepare_output_dir(args.output_dir)
    with study_lock(args.output_dir):
        return _run_study(entries, seeds, args, out)


def _run_study(entries: list[Entry], seeds: list[int], args, out: Output) -> int:
    jobs = [plan(e, s, args) for e in entries for s in seeds]
    todo = [j for j in jobs if j.action != "done"]
    resumed = sum(j.action == "resume" for j in todo)
    out.say(f"Study: {len(entries)} configurations x {len(seeds)} seeds, {args.epochs} epochs each; "
            f"{len(jobs) - len(todo)} runs already completed, {len(todo)} to train"
            + (f" ({resumed} resumed)" if resumed else "") + f", {args.engine.where}.")
    start = time.perf_counter()
    if todo:
        try:
            failed = train_jobs(todo, args.output_dir, args, out)
        finally:  # stopped or not, the time it ran counts; the time it stood still does not
            add_study_time(args.output_dir, time.perf_counter() - start)
        if failed:
            return out.fail(f"{len(failed)} run(s) did not complete: {', '.join(failed)}")
        out.say(f"Trained {len(todo)} run(s) in {(time.perf_counter() - start) / 60:.1f} minutes.")
    # The graphs and the table cover every configuration completed here with these
    # settings, not only the categories just trained: a run of one category never
    # leaves a table that has lost the others.
    results = collect([e for e in ENTRIES if e in entries or completed(e, seeds, args)], seeds, args)
    write_outputs(results, args, out)
    if args.ship:
        return ship(results, args, out)
    return 0



# ---- results ---------------------------------------------------------------------------

def completed(entry: Entry, seeds: list[int], args) -> bool:
    """Whether every seed of entry has a completed run with these settings here."""
    from kit.config import RunError
    from kit.record import Run
    for seed in seeds:
        try:
            run = Run.load(args.output_dir / entry.folder(seed))
        except RunError:
            return False
        if run.config != entry.run_config(args.epochs, seed, args.limit) or \
                run.record.status != "completed":
            return False
    return True


def collect(entries: list[Entry], seeds: list[int], args) -> dict:
    """Each entry's runs, one per seed."""
    from kit.record import Run
    return {e: [Run.load(args.output_dir / e.folder(s)) for s in seeds] for e in entries}


def _mean_sd(values: list[float]) -> str:
    """'98.52 ± 0.12' (percent) over the seeds; no ± for one value."""
    values = [100 * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summary(run_list) -> dict:
    """The numbers of one configuration over its seeds."""
    last = [r.record.last for r in run_list]
    best = [r.record.best for r in run_list]
    return {
        "final_test": [e["test_accuracy"] for e in last],
        "best_test": [e["test_accuracy"] for e in best],
        "best_val": [e["val_accuracy"] for e in best],
        "best_epoch": [e["epoch"] for e in best],
        "train": [e["train_accuracy"] for e in last],
        "seconds": [r.record.train_seconds for r in run_list],
        "wall": [((r.record.ended - r.record.started).total_seconds()) for r in run_list
                 if r.record.ended],
    }


def results_table(results: dict, args) -> str:
    seeds = [args.seed + k for k in range(args.seeds)]
    lines = [
        "# Study results",
        "",
        (f"Every configuration: Normal normalization, Xavier initialization, batch "
         f"{RunConfig.default('batch_size')}, learning rate {RunConfig.default('learning_rate'):g}, "
         f"{args.epochs} epochs, seeds {', '.join(map(str, seeds))} (each seed draws "
         "its own split of 58,000 training / 6,000 validation images, initialization and "
         "shuffles; the 6,000 test images, t10k 4000-9999, are the same for all)."
         if not args.limit else
         f"Developer run on {args.limit} training images, {args.epochs} epochs, seeds "
         f"{', '.join(map(str, seeds))}."),
        "",
        f"Mean ± standard deviation over the {len(seeds)} seeds, in percent. \"At best val.\" is "
        "the test accuracy of the epoch with the best validation accuracy (the weights "
        "predict.py uses); the model is chosen on validation data, never on test data.",
        "",
        "| configuration | final test acc. | test acc. at best val. | best val. acc. | best val. epoch "
        "| final train acc. | training time | original's figure |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry, run_list in results.items():
        s = summary(run_list)
        original = ORIGINAL_FIGURES.get(entry)
        lines.append(
            f"| {entry.label} | {_mean_sd(s['final_test'])} | {_mean_sd(s['best_test'])} | "
            f"{_mean_sd(s['best_val'])} | {', '.join(map(str, s['best_epoch']))} | "
            f"{_mean_sd(s['train'])} | {statistics.mean(s['seconds']):.0f} s | "
            f"{f'{original:.1f}' if original else '—'} |")
    lines.append("")
    n = sum(len(r) for r in results.values())
    ran = study_time(args.output_dir)
    span = None if ran else _study_span(results)
    if ran:
        seconds, sessions = ran
        lines.append(f"Whole study ({n} runs, {args.jobs} at a time on {os.cpu_count()} cores): "
                     f"{seconds / 60:.1f} minutes of training"
                     + (f" over {sessions} sessions (the time it stood stopped is not counted)"
                        if sessions > 1 else "") + ".")
        lines.append("")
    elif span is not None:  # a study trained before study.py kept its own time
        lines.append(f"Whole study, from the first run's start to the last run's end ({n} runs, "
                     f"{args.jobs} at a time on {os.cpu_count()} cores): {span / 60:.1f} minutes.")
        lines.append("")
    lines.append("Training time is one run's time in training steps (without evaluation and "
                 "saving), averaged over the seeds, while other runs shared the machine.")
    return "\n".join(lines) + "\n"


STUDY_TIME = "study-time.json"   # the seconds study.py has spent training, over its sessions


def study_time(folder: Path) -> tuple[float, int] | None:
    """(seconds, sessions) that study.py has trained in folder, or None when it has no
    record of them (a study trained before it kept one) or the record is damaged."""
    import json
    try:
        data = json.loads((folder / STUDY_TIME).read_text(encoding="utf-8"))
        return float(data["seconds"]), int(data["sessions"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def add_study_time(folder: Path, seconds: float) -> None:
    """Add one session of training to folder's record of it (best effort: a study whose
    time cannot be written still trains and reports)."""
    from kit.fsutil import write_json
    before = study_time(folder) or (0.0, 0)
    with contextlib.suppress(OSError):
        write_json(folder / STUDY_TIME, {"seconds": round(before[0] + seconds, 3),
                                         "sessions": before[1] + 1})


def _study_span(results: dict) -> float | None:
    """Seconds from the earliest start to the latest end among the runs."""
    records = [r.record for run_list in results.values() for r in run_list]
    if not records or any(r.ended is None for r in records):
        return None
    return (max(r.ended for r in records) - min(r.started for r in records)).total_seconds()


def write_outputs(results: dict, args, out: Output) -> None:
    from kit.comparison import Group, save_groups
    from kit.fsutil import atomic_write_text
    if args.images_dir.exists() and not args.images_dir.is_dir():
        raise StudyError(f"--images-dir {Output.path(args.images_dir)} is a file, not a folder; "
                         "choose another")
    args.images_dir.mkdir(parents=True, exist_ok=True)
    graphs = []
    for name, title, entries in GRAPHS:
        entries = [e for e in entries if e in results]
        if len(entries) < 2:
            continue
        groups = [Group(f"{e.label} ({len(results[e])} seeds)" if len(results[e]) > 1 else e.label,
                        [r.history() for r in results[e]], runs=results[e]) for e in entries]
        graphs.append((save_groups, (groups, "test_accuracy", "Test accuracy per epoch, mean and range "
                                     f"over the seeds\n{title}", args.images_dir / name)))
    args.engine.draw(graphs)
    written = len(graphs)
    atomic_write_text(args.images_dir / "study_results.md", results_table(results, args))
    out.say(f"Wrote {written} graphs and study_results.md to {Output.path(args.images_dir)}")
    best = best_entry(results)
    if best is not None:
        s = summary(results[best])
        out.say(f"Best mean validation accuracy: {best.label} (validation "
                f"{_mean_sd(s['best_val'])} %, test at that epoch {_mean_sd(s['best_test'])} %)")


def best_entry(results: dict, categories=("original", "l1-decay", "beyond")) -> Entry | None:
    """The configuration with the best mean validation accuracy (at each run's best epoch)."""
    eligible = [e for e in results if e.category in categories]
    if not eligible:
        return None
    return max(eligible, key=lambda e: statistics.mean(summary(results[e])["best_val"]))


def ship(results: dict, args, out: Output) -> int:
    """Copy the best-validation run of the best configuration to saved_files/best-model
    (and the kit's best, when it was trained and is better, to best-model-wide), never
    replacing a shipped model of higher validation accuracy without --force."""
    from kit.config import RunError
    from kit.record import Run
    targets = [("best-model", best_entry(results))]
    kit_best = next((e for e in results if e.category == "best"), None)
    if kit_best is not None:
        targets.append(("best-model-wide", kit_best))
    code = 0
    for folder_name, entry in targets:
        if entry is None:
            continue
        run = max(results[entry], key=lambda r: (r.record.best["val_accuracy"], -r.config.seed))
        new_val = run.record.best["val_accuracy"]
        try:  # the study's weights are not committed: a clone has records and histories only
            run.network("best"), run.network("last")
        except RunError:
            out.error(f"not shipping {run.path.name}: its weights are not in {Output.path(run.path)} "
                      "(a clone holds the study's records and histories only); train it into a "
                      "folder of its own first: python study.py --output-dir saved_files/my-study --ship")
            code = 1
            continue
        target = args.ship_dir / folder_name
        if target.exists() and not args.force:
            try:
                old_val = Run.load(target).record.best["val_accuracy"]
            except (RunError, TypeError):
                old_val = None
            if old_val is not None and old_val > new_val:
                out.error(f"not shipping {run.path.name} as {folder_name}: its validation accuracy "
                          f"{100 * new_val:.2f} % is below the shipped model's {100 * old_val:.2f} %; "
                          "add --force to replace it anyway")
                code = 1
                continue
        tmp = target.with_name(f".{target.name}.shipping")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(run.path, tmp, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        out.say(f"Shipped {run.path.name} as {Output.path(target)} (validation "
                f"{100 * new_val:.2f} %, test {100 * run.record.best['test_accuracy']:.2f} % at "
                f"epoch {run.record.best['epoch']})")
    return code


# ---- the command line ------------------------------------------------------------------

_positive, _seed = whole_number(1), whole_number(0)


def _folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a folder")
    return Path(text)


def _categories(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [n for n in names if n not in CATEGORIES + ("all",)]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: categories are {', '.join(CATEGORIES)} or all")
    return CATEGORIES if "all" in names else names


def _setting_flag(name: str):
    """An argparse type for one of train.py's configuration flags, checked by RunConfig."""
    def convert(text: str):
        from kit.search import SpecError, parse_value
        try:
            return parse_value(name, text)
        except SpecError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = name
    return convert


def build_parser() -> argparse.ArgumentParser:
    from kit.search import SETTINGS
    p = OneLineParser(prog=PROG, description=" ".join(__doc__.split("\n\n")[0].split()), formatter_class=HelpFormatter,
                      epilog="A study of your own: --grid \"hidden_size=32,64 activation=relu,sigmoid\" "
                             "or --random 20 \"learning_rate=1e-4..1e-1:log l2=0..1e-3\", over the base "
                             "configuration given by train.py's flags; see docs/your-own-study.md.")
    own = p.add_argument_group("a study of your own")
    own.add_argument("--grid", default=None, metavar="SPEC",
                     help="every combination of these settings' values, e.g. \"hidden_size=32,64,128 "
                          "activation=relu,sigmoid\"")
    own.add_argument("--random", nargs=2, default=None, metavar=("N", "SPEC"),
                     help="N configurations drawn from these settings, e.g. 20 \"learning_rate=1e-4..1e-1:log "
                          "l2=0..1e-3 activation=relu,sigmoid\" (LOW..HIGH uniform, :log log-uniform; "
                          "reproducible from --seed)")
    own.add_argument("--name", default=None, metavar="NAME",
                     help="the study's folder, saved_files/studies/NAME (default: from the settings "
                          "searched); the same command again trains only what is missing")
    own.add_argument("--yes", action="store_true", help=f"train a study of more than "
                     f"{1000:,} runs")
    base = p.add_argument_group("the base configuration of --grid/--random",
                                "train.py's flags; default: 2 hidden layers, relu, momentum, "
                                "normal, xavier and RunConfig's hyperparameters")
    for name in SETTINGS:
        option = RunConfig.option(name)
        base.add_argument(option.flag, dest=name, type=_setting_flag(name), default=None,
                          metavar=option.metavar, help=option.help)
    builtin = p.add_argument_group("the built-in study")
    builtin.add_argument("--category", type=_categories, default=None, metavar="NAMES",
                         help=f"comma-separated categories to train and draw: {', '.join(CATEGORIES)} "
                              "(default: all)")
    p.add_argument("--seeds", type=_positive, default=3, metavar="N",
                   help="seeds per configuration: --seed, --seed + 1, ...")
    p.add_argument("--epochs", type=_positive, default=40, metavar="N", help="epochs per run")
    p.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, metavar="N",
                   help="runs trained at a time on this machine")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="train on the Dask cluster of this scheduler (tcp://host:8786) instead; "
                        "the study's folder and the data must be on storage every worker sees")
    p.add_argument("--seed", type=_seed, default=1, metavar="N",
                   help="the first seed (and, for --random, the seed of the draw)")
    p.add_argument("--output-dir", type=_folder, default=None, metavar="DIR",
                   help="where the run folders go (default: saved_files/study for the 40-epoch "
                        "study, saved_files/study-N-epochs otherwise; saved_files/studies/NAME "
                        "for --grid and --random)")
    builtin.add_argument("--images-dir", type=_folder, default=None, metavar="DIR",
                         help="where the graphs and study_results.md go (default: Images/ for the "
                              "40-epoch study, the output folder otherwise)")
    builtin.add_argument("--ship", action="store_true",
                         help="copy the best-validation run of the configuration with the best mean "
                              "validation accuracy to saved_files/best-model/ (and the 'best' category's "
                              "to saved_files/best-model-wide/)")
    builtin.add_argument("--force", action="store_true",
                         help="with --ship, replace a shipped model even by one of lower validation accuracy")
    p.add_argument("--data-dir", type=_folder, default=None, metavar="DIR", help="folder with the MNIST files")
    builtin.add_argument("--retrain", action="store_true",
                         help="replace run folders that hold runs with other settings")
    p.add_argument("--limit", type=_positive, default=None, metavar="N",
                   help="developer option: train on this many images (for tests)")
    return p


def main(argv=None) -> int:
    out = Output(PROG)
    try:
        return _main(argv, out)
    except KeyboardInterrupt:
        out.clear_line()
        out.error("interrupted; completed runs are kept, run study.py again to resume")
        return 130


def _misused(args) -> str | None:
    """Flags that do not go together, in words, or None."""
    from kit.search import SETTINGS
    own = args.grid is not None or args.random is not None
    if args.grid is not None and args.random is not None:
        return "--grid and --random do not go together; give one"
    if own:
        wrong = [flag for flag, given in (("--category", args.category is not None),
                                          ("--images-dir", args.images_dir is not None),
                                          ("--ship", args.ship), ("--force", args.force),
                                          ("--retrain", args.retrain)) if given]
        if wrong:
            return f"{', '.join(wrong)} go with the built-in study, not with --grid or --random"
        return None
    wrong = [RunConfig.option(n).flag for n in SETTINGS if getattr(args, n) is not None]
    wrong += [flag for flag, given in (("--name", args.name is not None), ("--yes", args.yes)) if given]
    if wrong:
        return (f"{', '.join(wrong)} go with --grid or --random (a study of your own); the built-in "
                "study has its own configurations")
    return None


def _main(argv, out: Output) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    import mnist_loader
    from kit.config import RunError
    from kit.engine import Engine, EngineError
    from kit.record import check_run_name
    from kit.signals import Interrupted, OutputLost
    problem = _misused(args)
    if problem:
        return out.fail(problem, 2)
    own = args.grid is not None or args.random is not None
    if own:
        try:
            own_points(args)  # every spec and flag checked before anything is touched
        except SearchFlagError as err:
            return out.fail(str(err), 2)
        if args.output_dir is None:
            from kit.search import parse_spec
            settings = parse_spec(args.grid if args.grid is not None else args.random[1],
                                  "--grid" if args.grid is not None else "--random")
            name = args.name or default_name("grid" if args.grid is not None else "random", settings)
            problem = check_run_name(name)
            if problem:
                return out.fail(problem, 2)
            args.output_dir = HERE / "saved_files" / "studies" / name
    else:
        args.category = args.category or CATEGORIES
        # Only the full study writes into Images/ and saved_files/study/, so a quick
        # version never replaces the published graphs.
        full = args.epochs == 40 and args.limit is None
        if args.output_dir is None:
            args.output_dir = HERE / "saved_files" / ("study" if full else f"study-{args.epochs}-epochs")
        if args.images_dir is None:
            args.images_dir = HERE / "Images" if full and args.output_dir == HERE / "saved_files" / "study" \
                else args.output_dir
        args.ship_dir = HERE / "saved_files"
    args.engine = Engine(args.jobs, args.scheduler)
    try:
        args.engine.connect()  # an unreachable scheduler is said before anything is touched
        args.data_dir = mnist_loader.ensure_data(args.data_dir).resolve()
        return run_own_study(args, out) if own else run_study(args, out)
    except (StudyError, RunError, EngineError, mnist_loader.MnistError) as err:
        return out.fail(str(err))
    except SearchFlagError as err:
        return out.fail(str(err), 2)
    except OutputLost as err:
        return out.output_lost(err, "completed runs are kept; run study.py again to resume")
    except Interrupted as err:
        out.clear_line()
        out.error(f"interrupted ({err}); no run was started after it, the runs that were training "
                  "are marked interrupted and completed runs are kept; run the same command again "
                  "to resume")
        return err.exit_code
    finally:
        args.engine.close()


if __name__ == "__main__":
    run_script(main)
