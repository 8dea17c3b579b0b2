"""The study: the original project's model comparison and ours, each configuration
trained under several seeds, with graphs of the mean and the spread and a table.

    python study.py                       # every category, 3 seeds, 40 epochs
    python study.py --category beyond     # one category
    python study.py --epochs 5            # a quicker version, into its own folders

Each (configuration, seed) is an ordinary run folder, saved_files/study/<configuration>-seed<N>/,
trained by lifecycle.train_run in worker processes, as many at a time as cores. A run already
completed with the same settings is not trained again and an unfinished one is resumed
exactly, so an interrupted study goes on where it stopped. Then the graphs (compare.py's:
mean line, min-max band) and the results table are written to Images/.
"""
from __future__ import annotations

from kit.startup import quiet_ctrl_c

quiet_ctrl_c(__name__)  # first: a Ctrl-C while NumPy imports exits quietly with 130

import argparse
import os
import shutil
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from kit.cli import HelpFormatter, OneLineParser, Output, run_script, whole_number

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
    hidden_size: int = 64
    decay_factor: float = 0.98

    def run_config(self, epochs: int, seed: int, limit: int | None = None):
        from kit.config import RunConfig
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
        parts = [f"{self.layers} hidden" + (f" of {self.hidden_size}" if self.hidden_size != 64 else "")]
        if self.layers:
            parts.append({"relu": "ReLU", "sigmoid": "Sigmoid"}[self.activation])
        parts.append({"sgd": "SGD", "momentum": "Momentum", "adam": "Adam"}[self.optimizer])
        if self.l1:
            parts.append("L1")
        if self.decay:
            parts.append("LR decay" + (f" {self.decay_factor:g}" if self.decay_factor != 0.98 else ""))
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


class StudyError(Exception):
    """A study that cannot go on; the message says what to do."""


# ---- planning and training -----------------------------------------------------------

@dataclass(frozen=True)
class Job:
    entry: Entry
    seed: int
    action: str  # "train", "resume" or "done"

    @property
    def name(self) -> str:
        return self.entry.folder(self.seed)


def plan(entry: Entry, seed: int, args) -> Job:
    """What a (configuration, seed) needs: 'done' (completed with these settings), 'train'
    (nothing there) or 'resume' (ours, unfinished). StudyError when the folder holds a run
    with other settings and --retrain was not given."""
    from kit.config import RunError
    from kit.record import Run
    folder = args.output_dir / entry.folder(seed)
    if not folder.exists():
        return Job(entry, seed, "train")
    expected = entry.run_config(args.epochs, seed, args.limit)
    try:
        run = Run.load(folder)
        same = run.config == expected
    except RunError:
        run, same = None, False
    if same and run.record.status == "completed":
        return Job(entry, seed, "done")
    if same and not run.legacy and run.record.epochs_completed and \
            run.record.status in ("interrupted", "running") and not run.live:
        return Job(entry, seed, "resume")
    if same or args.retrain:
        shutil.rmtree(folder)
        return Job(entry, seed, "train")
    raise StudyError(f"{Output.path(folder)} holds a run with other settings; use another "
                     "--output-dir, or --retrain to replace it")


_PROGRESS = None  # in a worker: the queue that carries committed epochs to the parent


def _init_worker(queue) -> None:
    global _PROGRESS
    _PROGRESS = queue


class _QueueReporter:
    """Tells the parent process about each committed epoch (lifecycle.Reporter)."""

    def __init__(self, name: str):
        self.name = name

    def data_loaded(self, data, seconds): ...

    def run_started(self, run_dir, config, resumed_from): ...

    def status_written(self, status): ...

    def epoch_done(self, row, record, hints):
        try:
            _PROGRESS.put_nowait(self.name)
        except Exception:  # the progress bar is a nicety: never let it stop a run
            pass


def _train_job(job: Job, output_dir: Path, epochs: int, limit: int | None, data_dir) -> tuple:
    """In a worker process: train or resume one run; returns (name, status, code, reason)."""
    from kit import lifecycle
    reporter = _QueueReporter(job.name)
    if job.action == "resume":
        outcome = lifecycle.resume_run(output_dir / job.name, data_dir=data_dir, reporter=reporter,
                                     progress=False)
    else:
        outcome = lifecycle.train_run(job.entry.run_config(epochs, job.seed, limit), output_dir,
                                    job.name, data_dir=data_dir, reporter=reporter, progress=False)
    return job.name, outcome.status, outcome.exit_code, outcome.reason


def train_all(jobs: list[Job], args, out: Output) -> list[str]:
    """Train the jobs in worker processes; returns the names of those that failed."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from kit.signals import Interrupted, StopSignals
    # One BLAS thread per run: the runs themselves fill the cores, and batches of 4 gain
    # nothing from threads. Set before the workers start, so their NumPy sees it.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["MPLBACKEND"] = "Agg"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    failed = []
    total = sum(args.epochs for _ in jobs)
    with tqdm(total=total, desc="Study", unit="epoch", dynamic_ncols=True,
              disable=None if out.progress_ok() else True) as bar, \
            ProcessPoolExecutor(max_workers=args.jobs, mp_context=context,
                                initializer=_init_worker, initargs=(queue,)) as pool, \
            StopSignals() as stop:
        futures = {pool.submit(_train_job, job, args.output_dir, args.epochs, args.limit,
                               args.data_dir): job for job in jobs}
        pending = set(futures)
        try:
            while pending:
                try:
                    while True:
                        queue.get_nowait()
                        bar.update(1)
                except Exception:  # queue.Empty
                    pass
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    try:
                        name, status, code, reason = future.result()
                    except Exception as err:  # a worker that died or raised: say which run
                        name, status = futures[future].name, "failed"
                        reason = f"{type(err).__name__}: {err}"
                    if status == "completed":
                        tqdm.write(f"  done    {name}")
                    else:
                        failed.append(name)
                        tqdm.write(f"  {status.upper():7} {name}: {reason}")
                time.sleep(0.2)
        except Interrupted as err:
            for future in futures:
                future.cancel()
            # The workers stop as train.py does (the epoch in progress dropped, the
            # committed ones kept); wait for them so no run stays 'running'.
            for process in list(getattr(pool, "_processes", {}).values()):
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except OSError:
                    pass
            with stop.held(raise_after=False):
                pool.shutdown(wait=True, cancel_futures=True)
            raise err
    return failed


def run_study(args, out: Output) -> int:
    from kit.record import prepare_output_dir
    entries = [e for e in ENTRIES if e.category in args.category]
    seeds = [args.seed + k for k in range(args.seeds)]
    prepare_output_dir(args.output_dir)
    jobs = [plan(e, s, args) for e in entries for s in seeds]
    todo = [j for j in jobs if j.action != "done"]
    resumed = sum(j.action == "resume" for j in todo)
    out.say(f"Study: {len(entries)} configurations x {len(seeds)} seeds, {args.epochs} epochs each; "
            f"{len(jobs) - len(todo)} runs already completed, {len(todo)} to train"
            + (f" ({resumed} resumed)" if resumed else "") + f", {args.jobs} at a time.")
    start = time.perf_counter()
    if todo:
        failed = train_all(todo, args, out)
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
        (f"Every configuration: Normal normalization, Xavier initialization, batch 4, learning "
         f"rate 0.001, {args.epochs} epochs, seeds {', '.join(map(str, seeds))} (each seed draws "
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
    span = _study_span(results)
    if span is not None:
        n = sum(len(r) for r in results.values())
        lines.append(f"Whole study, from the first run's start to the last run's end ({n} runs, "
                     f"{args.jobs} at a time on {os.cpu_count()} cores): {span / 60:.1f} minutes.")
        lines.append("")
    lines.append("Training time is one run's time in training steps (without evaluation and "
                 "saving), averaged over the seeds, while other runs shared the machine.")
    return "\n".join(lines) + "\n"


def _study_span(results: dict) -> float | None:
    """Seconds from the earliest start to the latest end among the runs."""
    records = [r.record for run_list in results.values() for r in run_list]
    if not records or any(r.ended is None for r in records):
        return None
    return (max(r.ended for r in records) - min(r.started for r in records)).total_seconds()


def write_outputs(results: dict, args, out: Output) -> None:
    from kit.comparison import Group, plot_groups
    from kit.fsutil import atomic_write_text
    from kit.plots import save_figure
    if args.images_dir.exists() and not args.images_dir.is_dir():
        raise StudyError(f"--images-dir {Output.path(args.images_dir)} is a file, not a folder; "
                         "choose another")
    args.images_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, title, entries in GRAPHS:
        entries = [e for e in entries if e in results]
        if len(entries) < 2:
            continue
        groups = [Group(f"{e.label} ({len(results[e])} seeds)" if len(results[e]) > 1 else e.label,
                        [r.history() for r in results[e]], runs=results[e]) for e in entries]
        fig = plot_groups(groups, "test_accuracy",
                          f"Test accuracy per epoch, mean and range over the seeds\n{title}")
        save_figure(fig, args.images_dir / name)
        written += 1
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


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=" ".join(__doc__.split("\n\n")[0].split()), formatter_class=HelpFormatter)
    p.add_argument("--category", type=_categories, default=CATEGORIES, metavar="NAMES",
                   help=f"comma-separated categories to train and draw: {', '.join(CATEGORIES)} "
                        "(default: all)")
    p.add_argument("--seeds", type=_positive, default=3, metavar="N",
                   help="seeds per configuration: --seed, --seed + 1, ...")
    p.add_argument("--epochs", type=_positive, default=40, metavar="N", help="epochs per run")
    p.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, metavar="N",
                   help="runs trained at a time")
    p.add_argument("--seed", type=_seed, default=1, metavar="N", help="the first seed")
    p.add_argument("--output-dir", type=_folder, default=None, metavar="DIR",
                   help="where the run folders go (default: saved_files/study for the 40-epoch "
                        "study, saved_files/study-N-epochs otherwise)")
    p.add_argument("--images-dir", type=_folder, default=None, metavar="DIR",
                   help="where the graphs and study_results.md go (default: Images/ for the "
                        "40-epoch study, the output folder otherwise)")
    p.add_argument("--ship", action="store_true",
                   help="copy the best-validation run of the configuration with the best mean "
                        "validation accuracy to saved_files/best-model/ (and the 'best' category's "
                        "to saved_files/best-model-wide/)")
    p.add_argument("--force", action="store_true",
                   help="with --ship, replace a shipped model even by one of lower validation accuracy")
    p.add_argument("--data-dir", type=_folder, default=None, metavar="DIR", help="folder with the MNIST files")
    p.add_argument("--retrain", action="store_true",
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


def _main(argv, out: Output) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    from kit.config import RunError
    from kit.signals import Interrupted, OutputLost
    # Only the full study writes into Images/ and saved_files/study/, so a quick
    # version never replaces the published graphs.
    full = args.epochs == 40 and args.limit is None
    if args.output_dir is None:
        args.output_dir = HERE / "saved_files" / ("study" if full else f"study-{args.epochs}-epochs")
    if args.images_dir is None:
        args.images_dir = HERE / "Images" if full and args.output_dir == HERE / "saved_files" / "study" \
            else args.output_dir
    args.ship_dir = HERE / "saved_files"
    try:
        return run_study(args, out)
    except (StudyError, RunError) as err:
        return out.fail(str(err))
    except OutputLost as err:
        return out.output_lost(err, "completed runs are kept; run study.py again to resume")
    except Interrupted as err:
        out.clear_line()
        out.error(f"interrupted ({err}); completed runs are kept, run study.py again to resume")
        return err.exit_code


if __name__ == "__main__":
    run_script(main)
