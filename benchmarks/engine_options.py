"""What each training option costs an epoch of the 784-64-64-10 momentum network.

    python benchmarks/engine_options.py [--epochs 5]

The epoch is timed plain and with each option (--l2, --dropout 0.2, adam, --augment
shift and affine), the configurations alternating epoch by epoch so that load from
elsewhere on a shared machine hits them alike, and Adam's two ways of receiving the
gradient are compared. Prints ms per epoch, median over the epochs, on the real
58,000 training images, batch 4. (Before and after a change to the plain epoch:
benchmarks/epoch_ab.py.)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mnist_loader  # noqa: E402
import network  # noqa: E402
import optim  # noqa: E402
import training  # noqa: E402
from kit.augment import Augmenter  # noqa: E402

ENGINE = {"network": network, "optim": optim, "training": training}


def time_epochs(configs: dict, x, y, epochs: int) -> dict[str, list[float]]:
    """configs: name -> (make() -> run_epoch callable). Epochs alternate between configs."""
    runners = {name: make() for name, make in configs.items()}
    times = {name: [] for name in configs}
    for _ in range(epochs):
        for name, run in runners.items():
            t = time.perf_counter()
            run(x, y)
            times[name].append(time.perf_counter() - t)
    return times


def runner(engine: dict, sizes, opt: str, **options):
    """A make() for time_epochs: a fresh seeded network and optimizer, one epoch per call."""
    def make():
        rng = np.random.default_rng(1)
        net = engine["network"].Network(sizes, "relu", "xavier", rng)
        optimizer = opt() if callable(opt) else engine["optim"].make_optimizer(opt)
        return lambda x, y: engine["training"].train_epoch(net, x, y, optimizer, 0.001, rng, **options)
    return make


def report(title: str, times: dict[str, list[float]], bases: dict[str, str]) -> None:
    """A table of median and fastest epoch per configuration, each against its base's."""
    print(f"\n{title}\n")
    print("| configuration | ms / epoch (median) | min–max | median vs base | fastest vs base |")
    print("|---|---:|---:|---:|---:|")
    for name, ts in times.items():
        med, base = statistics.median(ts), times[bases[name]]
        print(f"| {name} | {med * 1000:.0f} | {min(ts) * 1000:.0f}–{max(ts) * 1000:.0f} | "
              f"{100 * (med / statistics.median(base) - 1):+.1f} % | {100 * (min(ts) / min(base) - 1):+.1f} % |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per configuration")
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args()

    data = mnist_loader.load_data("simple", np.random.default_rng(0), data_dir=args.data_dir)
    x, y = data.train.x, data.train.y
    print(f"numpy {np.__version__}, simple normalization, relu, batch 4, lr 0.001, "
          f"median of {args.epochs} epochs, configurations alternating")
    big = [784, 64, 64, 10]
    configs = {
        "momentum": runner(ENGINE, big, "momentum"),
        "momentum --l2 1e-4": runner(ENGINE, big, "momentum", l2=1e-4),
        "momentum --dropout 0.2": runner(ENGINE, big, "momentum", dropout=0.2),
        "adam": runner(ENGINE, big, "adam"),
        "adam, gradient times lr divided back": runner(ENGINE, big, lambda: _AdamDividingLr(optim)),
        "momentum --augment shift": runner(ENGINE, big, "momentum",
                                           augment=Augmenter("shift", 0.0, np.random.default_rng(2))),
        "momentum --augment affine": runner(ENGINE, big, "momentum",
                                            augment=Augmenter("affine", 0.0, np.random.default_rng(2))),
    }
    report("What each option costs, 784-64-64-10; base: momentum", time_epochs(configs, x, y, args.epochs),
           {name: "momentum" for name in configs})


def _AdamDividingLr(optim_module):
    """Adam handed lr * gradient (as SGD and momentum are) that divides it back: the rejected design."""
    class AdamDividingLr(optim_module.Adam):
        lr_in_grad = True

        def step(self, params, lr_grad, lr):
            if getattr(self, "_g", None) is None:
                self._g = np.empty_like(params)
            np.divide(lr_grad, lr, out=self._g)
            super().step(params, self._g, lr)
    return AdamDividingLr()


if __name__ == "__main__":
    main()
