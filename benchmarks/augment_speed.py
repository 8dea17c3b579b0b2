"""Time Augmenter.apply for "affine" and "shift" on blocks of training-sized images.

    python benchmarks/augment_speed.py [--repeats 7] [--compare /tmp/aug_before.py]

Prints the median ms per block of 1,024 float32 images (the block train_epoch
gathers: 256 steps of batch 4) and ms per epoch (57 such blocks, 58,000 images).
With --compare, another augment.py is imported by path and timed in the same
run, alternating with ours block by block, so load from elsewhere on a shared
machine hits both alike; the ratio is theirs over ours.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 1024           # images per block, as train_epoch gathers them
BLOCKS_PER_EPOCH = 57  # ceil(58,000 / 1,024)
FILL = -0.4242         # a black pixel after "normal" normalization


def load(path: Path, name: str) -> ModuleType:
    """Import the augment module at path under its own name."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_apply(augmenter, images: np.ndarray) -> float:
    """Seconds for one apply on a fresh copy of images (the copy is not timed)."""
    block = images.copy()
    start = time.perf_counter()
    augmenter.apply(block)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7, help="timed blocks per kind and module")
    p.add_argument("--compare", type=Path, default=None, help="another augment.py to time alongside")
    args = p.parse_args()

    modules = {"now": load(ROOT / "augment.py", "augment_now")}
    if args.compare:
        modules["before"] = load(args.compare, "augment_before")
    # Digit-like rows: mostly background, some bright strokes.
    rng = np.random.default_rng(0)
    images = np.where(rng.random((BLOCK, 784)) < 0.2, rng.random((BLOCK, 784)) * 3, FILL)
    images = images.astype(np.float32)

    for kind in ("affine", "shift"):
        augmenters = {name: m.Augmenter(kind, FILL, np.random.default_rng(1)) for name, m in modules.items()}
        for a in augmenters.values():  # warm up: buffers allocated, caches filled
            time_apply(a, images)
        times: dict[str, list[float]] = {name: [] for name in modules}
        for _ in range(args.repeats):
            for name, a in augmenters.items():
                times[name].append(time_apply(a, images))
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, s in medians.items():
            print(f"{kind:6s} {name:6s}: {s * 1e3:7.2f} ms / block, "
                  f"{s * 1e3 * BLOCKS_PER_EPOCH:7.0f} ms / epoch")
        if "before" in medians:
            print(f"{kind:6s} before / now: {medians['before'] / medians['now']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
