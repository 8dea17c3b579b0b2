"""Two revisions' plain training epochs, side by side: is a change to the hot loop slower?

    python benchmarks/epoch_ab.py 391f6a0              # that commit against the working tree
    python benchmarks/epoch_ab.py 391f6a0 HEAD --rounds 9

Each revision runs in its own worker process (its own network.py, optim.py and
training.py, exported with `git archive`), and the driver asks them for one epoch at
a time, alternating A and B within every round and shuffling the configurations, so
a burst of load on a shared machine hits both alike. Prints, for 0, 1 and 2 hidden
layers with SGD and momentum, the median ms per epoch of each and the ratio B / A of
the medians, with the spread of the per-round ratios. --clock cpu times the worker's
CPU time instead of the wall clock: on a machine shared with other jobs, time spent
waiting for a core then does not count. Only train_epoch is timed, with
the options a run without --l2, --dropout or --augment uses: the plain epoch.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [(h, opt) for h in (0, 1, 2) for opt in ("sgd", "momentum")]

# Runs inside a revision's folder: loads the data once, keeps one network and optimizer
# per configuration, and answers each line "hidden optimizer" with one epoch's seconds.
WORKER = r"""
import json, sys, time
import numpy as np
sys.path[:] = [p for p in sys.path if p not in ("", ".")]   # python -c: not the current folder
sys.path.insert(0, sys.argv[1])
import mnist_loader
from network import Network
from optim import make_optimizer
from training import train_epoch
try:  # a revision that records dynamics.csv trains with its recorder, as a run does
    from kit.dynamics import Recorder
except ImportError:
    Recorder = None
data = mnist_loader.load_data("simple", np.random.default_rng(0),
                              data_dir=sys.argv[2] if len(sys.argv) > 2 else None)
state = {}
print("ready", flush=True)
for line in sys.stdin:
    h, opt = line.split()
    if (h, opt) not in state:
        rng = np.random.default_rng(1)
        net = Network([784] + [64] * int(h) + [10], "relu", "xavier", rng)
        watch = None if Recorder is None else Recorder(
            net, (data.train.x, data.train.y), data.val.x, batch_size=4)
        state[h, opt] = (net, make_optimizer(opt), rng, watch, [0])
    net, optimizer, rng, watch, epoch = state[h, opt]
    epoch[0] += 1
    extra = {} if watch is None else {"watch": watch, "epoch": epoch[0]}
    t, cpu = time.perf_counter(), time.process_time()
    train_epoch(net, data.train.x, data.train.y, optimizer, 0.001, rng, **extra)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    probe = None
    if watch is not None:   # the probe's statistics, which a run computes beside its evaluation
        t = time.perf_counter()
        watch.flush()
        probe = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "cpu": cpu, "probe": probe,
                      "val": net.evaluate(data.val.x, data.val.y)[1]}), flush=True)
"""


def export(rev: str, into: Path) -> Path:
    """The revision's files in a folder of their own ('' for the working tree)."""
    if not rev:
        return ROOT
    folder = into / rev.replace("/", "_")
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                             check=True, capture_output=True).stdout
    tar_path = into / f"{folder.name}.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(folder, filter="data")
    return folder


class Worker:
    def __init__(self, folder: Path, data_dir: str | None):
        args = [sys.executable, "-c", WORKER, str(folder)] + ([data_dir] if data_dir else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"the worker for {folder} did not start")

    def epoch(self, hidden: int, optimizer: str) -> dict:
        self.proc.stdin.write(f"{hidden} {optimizer}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="the revision to compare against (e.g. a commit before the change)")
    p.add_argument("b", nargs="?", default="", help="the other revision (default: the working tree)")
    p.add_argument("--rounds", type=int, default=7, help="epochs per revision and configuration")
    p.add_argument("--data-dir", default=None, help="the MNIST folder (default: as train.py finds it)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time an epoch by the wall clock (default) or by the worker's CPU time, "
                        "which a machine shared with other jobs disturbs far less")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = [export(args.a, Path(tmp)), export(args.b, Path(tmp))]
        workers = [Worker(f, args.data_dir) for f in folders]
        times = {c: ([], []) for c in CONFIGS}
        probes = {c: ([], []) for c in CONFIGS}
        vals = {}
        order = random.Random(0)
        for _ in range(args.rounds):
            for c in order.sample(CONFIGS, len(CONFIGS)):
                sides = [0, 1] if order.random() < 0.5 else [1, 0]
                for side in sides:
                    r = workers[side].epoch(*c)
                    times[c][side].append(r["seconds"] if args.clock == "wall" else r["cpu"])
                    if r.get("probe") is not None:
                        probes[c][side].append(r["probe"])
                    vals[c, side] = r["val"]
        for w in workers:
            w.close()
    names = [args.a, args.b or "working tree"]
    print(f"A = {names[0]}, B = {names[1]}; median of {args.rounds} epochs each, alternated; "
          f"{args.clock} time")
    print()
    print("(a revision with kit/dynamics.py trains with its recorder; probe: the unit statistics it")
    print("computes after the epoch, beside the evaluation, not in the timed epoch)")
    print()
    print("| network | optimizer | A ms / epoch | B ms / epoch | B / A | per-round B / A | same val acc "
          "| A / B probe ms |")
    print("|---|---|---:|---:|---:|---|---|---|")
    for h, opt in CONFIGS:
        a, b = times[h, opt]
        ratios = sorted(y / x for x, y in zip(a, b))
        ma, mb = statistics.median(a), statistics.median(b)
        same = "yes" if vals[(h, opt), 0] == vals[(h, opt), 1] else \
            f"no ({100 * vals[(h, opt), 0]:.2f} / {100 * vals[(h, opt), 1]:.2f} %)"
        probe = " / ".join(f"{statistics.median(p) * 1000:.0f}" if p else "-"
                           for p in probes[h, opt])
        print(f"| 784-{'64-' * h}10 | {opt} | {ma * 1000:.0f} | {mb * 1000:.0f} | "
              f"{mb / ma:.3f} | {ratios[0]:.2f}–{ratios[-1]:.2f} | {same} | {probe} |")


if __name__ == "__main__":
    main()
