"""Does the study's engine cost training time? The whole study command against its runs
trained one by one.

    python benchmarks/study_engine.py                       # original category, 2 epochs, --jobs 2
    python benchmarks/study_engine.py --epochs 10 --rounds 3
    python benchmarks/study_engine.py --old /path/to/older/checkout   # its study.py too, same rounds

A round times, in an order shuffled each round so that load from elsewhere on a shared
machine hits them alike:
- alone: each of the study's runs trained by lifecycle.train_run one after the other in
  one process, as a worker trains them (its data loaded, its epochs trained, evaluated and
  committed, its graphs drawn); the sum of these times is the runs' own time;
- study: `study.py --category original --seeds 1 --epochs E --jobs J` into an empty
  folder, by the wall clock of the whole command (interpreter start, planning, workers,
  the final graphs and table);
- with --old, both again with another checkout's code (its runs may do other work: an
  older checkout's runs drew no dynamics.png, for one), so the engines are compared by
  their ratios of the whole command to their own runs' time.
Prints each round and the medians, and each study's time against the target
1.1 x (the runs' own time) / J. BLAS is held to one thread everywhere, as in the study.
The runs alone each load the MNIST files; a study's worker keeps them between its runs.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ALONE = r"""
import sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import study
from kit import lifecycle
epochs = int(sys.argv[2])
entries = [e for e in study.ENTRIES if e.category == "original"]
total = 0.0
with tempfile.TemporaryDirectory() as folder:
    for entry in entries:
        t = time.perf_counter()
        outcome = lifecycle.train_run(entry.run_config(epochs, 1), folder, entry.folder(1), progress=False)
        total += time.perf_counter() - t
        assert outcome.status == "completed", outcome
print(total)
"""


def env() -> dict:
    out = {**os.environ, "MPLBACKEND": "Agg"}
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        out[var] = "1"
    return out


def alone(tree: Path, epochs: int) -> float:
    proc = subprocess.run([sys.executable, "-c", ALONE, str(tree), str(epochs)], cwd=tree, env=env(),
                          capture_output=True, text=True, check=True)
    return float(proc.stdout.split()[-1])


def whole_study(tree: Path, epochs: int, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        subprocess.run([sys.executable, str(tree / "study.py"), "--category", "original", "--seeds", "1",
                        "--epochs", str(epochs), "--jobs", str(jobs), "--output-dir", f"{folder}/runs",
                        "--images-dir", f"{folder}/images"], cwd=tree, env=env(),
                       stdout=subprocess.DEVNULL, check=True, stdin=subprocess.DEVNULL)
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", type=Path, help="another checkout whose study.py is timed too")
    args = parser.parse_args()
    tasks = {"alone": lambda: alone(ROOT, args.epochs),
             "study": lambda: whole_study(ROOT, args.epochs, args.jobs)}
    if args.old:
        old = args.old.resolve()
        tasks["old alone"] = lambda: alone(old, args.epochs)
        tasks["old study"] = lambda: whole_study(old, args.epochs, args.jobs)
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for r in range(args.rounds):
        order = list(tasks)
        random.shuffle(order)
        for name in order:
            times[name].append(tasks[name]())
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.1f} s" for n in tasks), flush=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"\n8 runs of the original category, {args.epochs} epochs, --jobs {args.jobs}; medians of "
          f"{args.rounds} rounds")
    for label, prefix in (("this checkout", ""), ("the other checkout", "old ")):
        if prefix + "study" not in med:
            continue
        each, whole = med[prefix + "alone"], med[prefix + "study"]
        print(f"{label}:\n  runs alone, one after the other: {each:.1f} s  (/ {args.jobs} jobs: "
              f"{each / args.jobs:.1f} s; x 1.1: {1.1 * each / args.jobs:.1f} s)")
        print(f"  the whole study command:         {whole:.1f} s  "
              f"({whole / (each / args.jobs):.2f} x the runs' time / jobs)")

if __name__ == "__main__":
    main()
