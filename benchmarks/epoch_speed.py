"""Time the training steps of one epoch for 0, 1 and 2 hidden layers, SGD and momentum.

    python benchmarks/epoch_speed.py [--epochs 3] [--normalization simple]

Prints ms per epoch and µs per step (median over the epochs) on the real
58,000-image training split. The configurations are interleaved epoch by
epoch, so a burst of load on a shared machine hits them all alike.
Only the training steps are timed, not the per-epoch evaluation.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mnist_loader  # noqa: E402
from network import Network  # noqa: E402
from optim import make_optimizer  # noqa: E402
from training import train_epoch  # noqa: E402

TARGETS_S = {0: 0.4, 1: 0.8, 2: 1.0}  # issue 2's targets, 2-core machine, momentum


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration")
    p.add_argument("--normalization", choices=("simple", "normal"), default="simple")
    p.add_argument("--activation", choices=("relu", "sigmoid"), default="relu")
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args()

    data = mnist_loader.load_data(args.normalization, np.random.default_rng(0), data_dir=args.data_dir)
    x, y = data.train.x, data.train.y
    steps = len(x) // 4
    configs = [(h, opt) for h in (0, 1, 2) for opt in ("sgd", "momentum")]
    state, times = {}, {c: [] for c in configs}
    for h, opt in configs:
        rng = np.random.default_rng(1)
        state[(h, opt)] = (Network([784] + [64] * h + [10], args.activation, "xavier", rng),
                           make_optimizer(opt), rng)
    for _ in range(args.epochs):
        for c in configs:
            net, optimizer, rng = state[c]
            t = time.perf_counter()
            train_epoch(net, x, y, optimizer, 0.001, rng)
            times[c].append(time.perf_counter() - t)

    print(f"numpy {np.__version__}, {os.cpu_count()} cores, {args.normalization} normalization, "
          f"{args.activation}, batch 4, {steps:,} steps per epoch, median of {args.epochs} epochs")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print()
    print("| network | optimizer | ms / epoch | µs / step | target | val acc after |")
    print("|---|---|---:|---:|---:|---:|")
    for h, opt in configs:
        net = state[(h, opt)][0]
        med = statistics.median(times[(h, opt)])
        acc = net.evaluate(data.val.x, data.val.y)[1]
        target = f"≤ {TARGETS_S[h] * 1000:.0f}" if opt == "momentum" else ""
        sizes = "-".join(map(str, net.sizes))
        print(f"| {sizes} | {opt} | {med * 1000:.0f} | {med / steps * 1e6:.1f} | {target} | "
              f"{100 * acc:.2f} % |")


if __name__ == "__main__":
    main()
