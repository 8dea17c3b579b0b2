"""How hard each part of MNIST's t10k file is: a network trained on the 60,000 training
images alone (so no t10k image is seen), then its error on each part of t10k. It shows
why the project's test slice, t10k 4000-9999, scores above validation (docs/data.md).

    python docs/examples/t10k_parts.py              # 3 epochs, seeds 1 and 2
    python docs/examples/t10k_parts.py --epochs 1 --seeds 1
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from anywhere: the kit lives two folders up

import numpy as np  # noqa: E402

import mnist_loader  # noqa: E402
from network import Network  # noqa: E402
from optim import make_optimizer  # noqa: E402
from training import train_epoch  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
args = parser.parse_args()

train_u8, train_y, t10k_u8, t10k_y = mnist_loader.load_raw()
mean, std = mnist_loader.normalization_stats(train_u8)
train_x = mnist_loader.normalize(train_u8, "normal", mean, std)
t10k_x = mnist_loader.normalize(t10k_u8, "normal", mean, std)
train_y, t10k_y = train_y.astype(np.int64), t10k_y.astype(np.int64)
start = mnist_loader.TEST_START
parts = {"the 60,000 training images (trained on)": (train_x, train_y),
         f"t10k 0-{start - 1}": (t10k_x[:start], t10k_y[:start]),
         f"t10k {start}-9999 (the test slice)": (t10k_x[start:], t10k_y[start:]),
         "t10k 5000-9999": (t10k_x[5000:], t10k_y[5000:])}

errors = {name: [] for name in parts}
for seed in args.seeds:
    rng = np.random.default_rng(seed)
    net = Network([784, 64, 64, 10], "relu", "xavier", rng)
    optimizer = make_optimizer("momentum")
    for _ in range(args.epochs):
        train_epoch(net, train_x, train_y, optimizer, 0.001, rng)
    for name, (x, y) in parts.items():
        errors[name].append(np.mean(net.predict(x) != y))

print(f"784-64-64-10, ReLU, momentum, {args.epochs} epoch(s) on the training images; error by seed "
      f"({', '.join(map(str, args.seeds))}):")
for name, values in errors.items():
    print(f"  {name:40s} " + "  ".join(f"{v:6.2%}" for v in values))
