"""Time the live training graphs (live_plots.LiveGraphs) against the epochs they watch.

    DISPLAY=:98 MPLBACKEND=TkAgg python benchmarks/live_plots_speed.py [--arch 784-10] [--epochs 20]

Needs a window (under Xvfb: `Xvfb :98 &` first). Prints, median of --repeats each:
  1. for histories of 1 to 40 epochs, the ways an update shows them in the window:
     a full redraw (axes, ticks, text: when a panel's limits change) and a blit (the
     lines, the legends' and best epoch's text's kept pixels pasted over the saved
     background: most epochs), and a blit at a new best epoch (its text drawn anew);
  2. a training run of --epochs real epochs (training.train_epoch on the real MNIST
     split, --arch, SGD with momentum, batch 4), each followed by LiveGraphs.update, as
     train.py will call it: the time of each epoch and of each update side by side, how
     many updates were full redraws, and the share of the training time the updates took
     (the issue asks for under 3 %), the opening update (the window appears) apart.
     The graphs are fed history rows shaped like a run's, the best epoch moving often.
Everything is timed in one process, epochs and updates interleaved, so load from
elsewhere on a shared machine hits both alike.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mnist_loader  # noqa: E402
from kit.live_plots import LiveGraphs  # noqa: E402
from kit.record import best_row  # noqa: E402
from network import Network  # noqa: E402
from optim import make_optimizer  # noqa: E402
from training import train_epoch  # noqa: E402


def history(n: int) -> list[dict]:
    """n epochs of rows with a run's shape: accuracy rising to ~98 %, losses falling, the
    validation loss turning up late, the learning rate decaying, an L2 penalty on."""
    rows = []
    for e in range(1, n + 1):
        acc = 0.99 - 0.12 * math.exp(-e / 3)
        rows.append(dict(epoch=e, learning_rate=0.01 * 0.95 ** (e - 1),
                         train_loss=0.4 * math.exp(-e / 4) + 0.02, train_accuracy=min(acc + 0.005, 1),
                         val_loss=0.4 * math.exp(-e / 4) + 0.05 + 0.001 * e,
                         val_accuracy=acc - 0.01 - 0.003 * math.sin(e),
                         test_loss=0.4 * math.exp(-e / 4) + 0.06, test_accuracy=acc - 0.012,
                         l1_penalty=0.0, l2_penalty=0.01 * (1 + e / 10), seconds=0.7))
    return rows


def ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):7.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="784-10", help="layer sizes of the trained network")
    p.add_argument("--epochs", type=int, default=20, help="real epochs in part 2")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args()

    graphs = LiveGraphs.open("live_plots_speed", epochs=40)
    if graphs is None:
        print("live_plots_speed.py: no window can open (set DISPLAY and MPLBACKEND=TkAgg; "
              "headless, run `Xvfb :98 &` and DISPLAY=:98)", file=sys.stderr)
        return 2
    import matplotlib
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"matplotlib {matplotlib.__version__}, backend {matplotlib.get_backend()}, "
          f"DISPLAY={os.environ.get('DISPLAY', '')}, {os.cpu_count()} cores, "
          f"load average {load:.1f} at the start\n")

    print(f"1. One update of the window, ms (median of {args.repeats})")
    print("| epochs shown | full redraw | blit | blit, new best epoch |")
    print("|---:|---:|---:|---:|")
    for n in (1, 5, 10, 20, 30, 40):
        graphs.update(history(n), best_row(history(n))["epoch"])
        full, blit, best = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            graphs._full_redraw()
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            graphs._blit()
            blit.append(time.perf_counter() - t)
            graphs.text_pixels = None   # as a new best epoch makes it
            t = time.perf_counter()
            graphs._blit()
            best.append(time.perf_counter() - t)
        print(f"| {n} | {ms(full)} | {ms(blit)} | {ms(best)} |")
    graphs.close()

    try:
        data = mnist_loader.load_data("simple", np.random.default_rng(0), data_dir=args.data_dir)
    except mnist_loader.MnistError as err:
        print(f"\n2. skipped: {err}")
        return 0
    sizes = [int(s) for s in args.arch.split("-")]
    rng = np.random.default_rng(1)
    net = Network(sizes, "relu", "xavier", rng)
    optimizer = make_optimizer("momentum")
    graphs = LiveGraphs.open(f"{args.arch} (benchmark)", epochs=args.epochs)
    rows = history(args.epochs)
    epoch_s, update_s, how = [], [], []
    for e in range(1, args.epochs + 1):
        t = time.perf_counter()
        train_epoch(net, data.train.x, data.train.y, optimizer, 0.001, rng)
        epoch_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        how.append(graphs.update(rows[:e], best_row(rows[:e])["epoch"]))
        update_s.append(time.perf_counter() - t)
    t = time.perf_counter()
    graphs.finish()
    final = time.perf_counter() - t
    graphs.close()
    print(f"\n2. A run of {args.epochs} epochs of {args.arch}, each followed by update(), ms")
    print("| epoch | training | update | how |")
    print("|---:|---:|---:|---|")
    for e, (a, b, h) in enumerate(zip(epoch_s, update_s, how), 1):
        print(f"| {e} | {1000 * a:7.0f} | {1000 * b:7.1f} | {h} |")
    later, later_how = update_s[1:], how[1:]
    full = [u for u, h in zip(later, later_how) if h == "full"]
    blits = [u for u, h in zip(later, later_how) if h == "blit"]
    print(f"\nmedian epoch {ms(epoch_s)} ms. The first update opens the window: "
          f"{1000 * update_s[0]:.0f} ms once ({100 * update_s[0] / sum(epoch_s):.2f} % of this run).")
    print(f"Updates after it: median {ms(later)} ms ({len(full)} full redraws"
          f"{', median ' + ms(full) + ' ms' if full else ''}; {len(blits)} blits"
          f"{', median ' + ms(blits) + ' ms' if blits else ''}), "
          f"{100 * sum(later) / sum(epoch_s[1:]):.2f} % of the training time of epochs 2-{args.epochs} "
          f"(target: under 3 %)")
    print(f"The final layout (finish, as keep_open draws it) took {1000 * final:.0f} ms once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
