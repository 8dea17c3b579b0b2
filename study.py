"""The study: train the original project's model comparison and redraw its graphs.

    python study.py                 # 11 runs of 40 epochs, as many at a time as cores
    python study.py --epochs 5      # a quicker version (into its own folders)

Each configuration is trained once by train.py, with a fixed seed, into
saved_files/study/<configuration>/ (the normal run-folder format). A
configuration already completed with the same settings is not trained again,
so an interrupted study resumes where it stopped. Then the comparison graphs
and a results table are written to Images/.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from tqdm import tqdm

import runs
from plots import save_figure

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    """One configuration of the study."""
    layers: int
    activation: str
    optimizer: str
    l1: bool = False
    decay: bool = False
    repeat: int = 0   # 0 for the study's seed; k for a repeat with seed + k

    def run_config(self, epochs: int = 1, seed: int = 0, limit: int | None = None) -> runs.RunConfig:
        """The train.py configuration of this study entry (Normal, Xavier, the seed's defaults)."""
        return runs.RunConfig(layers=self.layers, normalization="normal", init="xavier",
                              activation=self.activation if self.layers else None, l1=self.l1,
                              decay=self.decay, optimizer=self.optimizer, epochs=epochs,
                              seed=seed, limit=limit)

    @property
    def name(self) -> str:
        return self.run_config().summary() + (f"-repeat{self.repeat}" if self.repeat else "")

    @property
    def label(self) -> str:
        """A legend label, e.g. '2 hidden, ReLU, Momentum, L1'."""
        parts = [f"{self.layers} hidden"]
        if self.layers:
            parts.append({"relu": "ReLU", "sigmoid": "Sigmoid"}[self.activation])
        parts.append({"sgd": "SGD", "momentum": "Momentum"}[self.optimizer])
        if self.l1:
            parts.append("L1")
        if self.decay:
            parts.append("LR decay")
        return ", ".join(parts) + (f" (seed +{self.repeat})" if self.repeat else "")

    def flags(self) -> list[str]:
        return ["--layers", str(self.layers), "--normalization", "normal", "--init", "xavier",
                "--activation", self.activation, "--l1", "y" if self.l1 else "n",
                "--decay", "y" if self.decay else "n", "--optimizer", self.optimizer]


C = Config


# The original project's three categories, then our fourth.
CONFIGS = [
    C(0, "relu", "sgd"), C(1, "relu", "sgd"), C(2, "relu", "sgd"),
    C(1, "sigmoid", "sgd"), C(2, "sigmoid", "sgd"),
    C(0, "relu", "momentum"), C(1, "relu", "momentum"), C(2, "relu", "momentum"),
    C(2, "relu", "momentum", l1=True), C(2, "relu", "momentum", decay=True),
    C(2, "relu", "momentum", l1=True, decay=True),
    # The same baseline with two other seeds (another split, initialization and
    # order): how far apart runs land by chance, the scale for reading the others.
    C(2, "relu", "momentum", repeat=1), C(2, "relu", "momentum", repeat=2),
]

# Test accuracy at 40 epochs read off the original project's graphs.
SEED_FIGURES = {
    C(0, "relu", "sgd"): 92.5, C(1, "relu", "sgd"): 97.3, C(2, "relu", "sgd"): 97.0,
    C(1, "sigmoid", "sgd"): 95.7, C(2, "sigmoid", "sgd"): 95.3,
    C(0, "relu", "momentum"): 92.0, C(1, "relu", "momentum"): 97.2, C(2, "relu", "momentum"): 97.2,
}

# (file name, title, configurations): the original's six graphs under their
# original names, then the fourth category's.
GRAPHS = [
    ("Test_accuracy_comparision.png", "ReLU + SGD: 0, 1 and 2 hidden layers",
     [C(0, "relu", "sgd"), C(1, "relu", "sgd"), C(2, "relu", "sgd")]),
    ("com_acc.png", "Sigmoid + SGD: 1 and 2 hidden layers",
     [C(1, "sigmoid", "sgd"), C(2, "sigmoid", "sgd")]),
    ("layer1_acc_com.png", "1 hidden layer, SGD: ReLU against sigmoid",
     [C(1, "relu", "sgd"), C(1, "sigmoid", "sgd")]),
    ("com_acc_3.png", "ReLU + Momentum: 0, 1 and 2 hidden layers",
     [C(0, "relu", "momentum"), C(1, "relu", "momentum"), C(2, "relu", "momentum")]),
    ("com_acc_layer2.png", "2 hidden layers, ReLU: SGD against Momentum",
     [C(2, "relu", "sgd"), C(2, "relu", "momentum")]),
    ("com_acc_best.png", "2 hidden + Momentum against 1 hidden + SGD (ReLU)",
     [C(2, "relu", "momentum"), C(1, "relu", "sgd")]),
    ("com_acc_l1_decay.png", "2 hidden, ReLU, Momentum: L1 and learning-rate decay",
     [C(2, "relu", "momentum"), C(2, "relu", "momentum", l1=True),
      C(2, "relu", "momentum", decay=True), C(2, "relu", "momentum", l1=True, decay=True),
      C(2, "relu", "momentum", repeat=1), C(2, "relu", "momentum", repeat=2)]),
]

SETTINGS = ("layers", "normalization", "init", "activation", "l1", "decay", "optimizer", "epochs",
            "seed", "batch_size", "learning_rate", "decay_factor", "momentum", "l1_lambda",
            "hidden_size", "limit")


class StudyError(Exception):
    """A study that cannot go on; the message says what to do."""


def expected_settings(cfg: Config, args) -> dict:
    rc = cfg.run_config(args.epochs, args.seed + cfg.repeat, args.limit)
    return {k: v for k, v in rc.to_json().items() if k in SETTINGS}


def plan(cfg: Config, args) -> str:
    """'done' (completed with these settings), 'train' (nothing there) or
    'redo' (our own unfinished run with these settings); raises StudyError when
    the folder holds a run with other settings and --retrain was not given."""
    folder = args.output_dir / cfg.name
    if not folder.exists():
        return "train"
    try:
        saved = json.loads((folder / "config.json").read_text())
        same = {k: saved.get(k) for k in SETTINGS} == expected_settings(cfg, args)
        completed = saved.get("status") == "completed"
    except (OSError, ValueError, AttributeError):
        same, completed = False, False
    if same and completed and (folder / "history.csv").is_file():
        return "done"
    if same or args.retrain:
        return "redo"
    raise StudyError(f"{folder} holds a run with other settings; use another --output-dir, "
                     "or --retrain to replace it")


def train_one(cfg: Config, args, bar: tqdm, lock: threading.Lock) -> tuple[Config, int, float, str]:
    """Run train.py for one configuration; returns (cfg, exit code, seconds, output)."""
    cmd = [sys.executable, str(HERE / "train.py"), *cfg.flags(), "--epochs", str(args.epochs),
           "--seed", str(args.seed + cfg.repeat), "--output-dir", str(args.output_dir), "--name", cfg.name,
           "--no-show"]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    # One BLAS thread per run: the runs themselves fill the cores, and batches of 4
    # gain nothing from threads.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, stdin=subprocess.DEVNULL)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Epoch "):
            with lock:
                bar.update(1)
    code = proc.wait()
    return cfg, code, time.perf_counter() - start, "".join(lines)


def run_study(args) -> int:
    todo = []
    for cfg in CONFIGS:
        state = plan(cfg, args)
        if state == "done":
            continue
        if state == "redo":
            shutil.rmtree(args.output_dir / cfg.name)
        todo.append(cfg)
    done = len(CONFIGS) - len(todo)
    print(f"Study: {len(CONFIGS)} configurations, {args.epochs} epochs each; {done} already "
          f"completed, {len(todo)} to train, {args.jobs} at a time.")
    runs.prepare_output_dir(args.output_dir)
    wall = {}
    failed = []
    start = time.perf_counter()
    lock = threading.Lock()
    with tqdm(total=len(todo) * args.epochs, desc="Study", unit="epoch", dynamic_ncols=True,
              disable=None) as bar, \
            ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(train_one, cfg, args, bar, lock) for cfg in todo]
        try:
            for future in futures:
                cfg, code, seconds, output = future.result()
                wall[cfg] = seconds
                if code == 0:
                    tqdm.write(f"  done  {cfg.name:<32} {seconds:6.1f}s")
                else:
                    failed.append(cfg)
                    tqdm.write(f"  FAILED {cfg.name} (exit {code}):\n" + output.strip()[-2000:])
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            tqdm.write("\nInterrupted: completed configurations are kept; run study.py again to resume.")
            return 130
    elapsed = time.perf_counter() - start
    if failed:
        print(f"study.py: {len(failed)} configuration(s) failed: {', '.join(c.name for c in failed)}",
              file=sys.stderr)
        return 1
    if todo:
        print(f"Trained {len(todo)} configuration(s) in {elapsed:.0f} s.")
    results = collect(args)
    write_outputs(results, args)
    return 0


def collect(args) -> dict[Config, dict]:
    """Each configuration's history and config.json."""
    results = {}
    for cfg in CONFIGS:
        folder = args.output_dir / cfg.name
        config = json.loads((folder / "config.json").read_text())
        results[cfg] = {"history": runs.read_history(folder / "history.csv"), "config": config,
                        "folder": folder}
    return results


def write_outputs(results: dict, args) -> None:
    args.images_dir.mkdir(parents=True, exist_ok=True)
    for name, title, cfgs in GRAPHS:
        fig = Figure(figsize=(8, 5))
        ax = fig.add_subplot()
        for cfg in cfgs:
            hist = results[cfg]["history"]
            style = dict(color="0.6", linewidth=1.0, linestyle="--") if cfg.repeat else dict(linewidth=1.6)
            ax.plot([r["epoch"] for r in hist], [100 * r["test_accuracy"] for r in hist],
                    label=cfg.label, **style)
        ax.set_title(f"Test accuracy per epoch\n{title}")
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Test accuracy (%) on the 6,000 test images")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        save_figure(fig, args.images_dir / name)
    table = results_table(results, args)
    runs.atomic_write_text(args.images_dir / "study_results.md", table)
    print(f"Wrote {len(GRAPHS)} graphs and study_results.md to {args.images_dir}")
    best = max((c for c in CONFIGS if not c.repeat), key=lambda c: results[c]["history"][-1]["val_accuracy"])
    final = results[best]["history"][-1]
    print(f"Best by final validation accuracy: {best.label} (validation "
          f"{100 * final['val_accuracy']:.2f} %, test {100 * final['test_accuracy']:.2f} %)")
    if args.ship:
        ship = HERE / "saved_files" / "best-model"
        tmp = ship.with_name(ship.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(results[best]["folder"], tmp)
        shutil.rmtree(ship, ignore_errors=True)
        os.replace(tmp, ship)
        print(f"Shipped it as {ship} (python predict.py uses it until you train a newer run)")


def results_table(results: dict, args) -> str:
    lines = [
        "# Study results",
        "",
        f"Every configuration: Normal normalization, Xavier initialization, batch {4}, "
        f"learning rate 0.001, {args.epochs} epochs, seed {args.seed} (the same split and the "
        "same shuffles for all but the two repeats, which use the next two seeds), 58,000 training / 6,000 validation / 6,000 test images "
        "(t10k 4000-9999)." if not args.limit else
        f"Developer run on {args.limit} training images, {args.epochs} epochs.",
        "",
        "| configuration | final test acc. | best test acc. | epoch of best val. acc. (test acc. there) "
        "| final train acc. | wall time | original's figure |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cfg in CONFIGS:
        hist = results[cfg]["history"]
        config = results[cfg]["config"]
        best_val = max(hist, key=lambda r: r["val_accuracy"])
        original = SEED_FIGURES.get(cfg)
        wall = _seconds(config)
        lines.append(
            f"| {cfg.label} | {100 * hist[-1]['test_accuracy']:.2f} % | "
            f"{100 * max(r['test_accuracy'] for r in hist):.2f} % | "
            f"{best_val['epoch']} ({100 * best_val['test_accuracy']:.2f} %) | "
            f"{100 * hist[-1]['train_accuracy']:.2f} % | {wall} | "
            f"{f'{original:.1f} %' if original else '—'} |")
    lines.append("")
    span = _study_span(results)
    if span is not None:
        lines.append(f"Whole study, from the first run's start to the last run's end "
                     f"({len(CONFIGS)} runs, {args.jobs} at a time on {os.cpu_count()} cores): "
                     f"{span / 60:.1f} minutes.")
        lines.append("")
    lines.append("Wall time is one run's, from train.py's start to its end (data loading, training, "
                 "evaluation of all three splits after every epoch, saving), while the other runs "
                 "shared the machine.")
    return "\n".join(lines) + "\n"


def _study_span(results: dict) -> float | None:
    """Seconds from the earliest start to the latest end among the runs."""
    try:
        starts = [dt.datetime.fromisoformat(r["config"]["started"]) for r in results.values()]
        ends = [dt.datetime.fromisoformat(r["config"]["ended"]) for r in results.values()]
    except (KeyError, TypeError, ValueError):
        return None
    return (max(ends) - min(starts)).total_seconds()


def _seconds(config: dict) -> str:
    try:
        s = (dt.datetime.fromisoformat(config["ended"]) - dt.datetime.fromisoformat(config["started"]))
        return f"{s.total_seconds():.0f} s"
    except (KeyError, TypeError, ValueError):
        return "—"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=40, help="epochs per configuration")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs trained at a time")
    p.add_argument("--seed", type=int, default=1, help="seed of every run")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="where the run folders go (default: saved_files/study for the 40-epoch "
                        "study, saved_files/study-N-epochs otherwise)")
    p.add_argument("--images-dir", type=Path, default=None,
                   help="where the graphs and study_results.md go (default: Images/ for the "
                        "40-epoch study, the output folder otherwise)")
    p.add_argument("--ship", action="store_true",
                   help="copy the best run (by final validation accuracy) to saved_files/best-model/")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the MNIST files")
    p.add_argument("--retrain", action="store_true",
                   help="replace run folders that hold runs with other settings")
    p.add_argument("--limit", type=int, default=None,
                   help="developer option: train on this many images (for tests)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.jobs < 1:
        p.error("--epochs and --jobs must be at least 1")
    # Only the full study writes into Images/ and saved_files/study/, so a quick
    # version never replaces the published graphs.
    full = args.epochs == 40 and args.limit is None
    if args.output_dir is None:
        args.output_dir = HERE / "saved_files" / ("study" if full else f"study-{args.epochs}-epochs")
    if args.images_dir is None:
        args.images_dir = HERE / "Images" if full and args.output_dir == HERE / "saved_files" / "study" \
            else args.output_dir
    try:
        return run_study(args)
    except (StudyError, runs.RunError) as err:
        print(f"study.py: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
