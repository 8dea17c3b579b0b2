"""Look at a saved run from Python, as in a notebook: its settings, its history, and what
it predicts for the first test images.

    python docs/examples/look_at_a_run.py                       # the shipped model
    python docs/examples/look_at_a_run.py saved_files/MY-RUN    # one of yours
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from anywhere: the kit lives two folders up

import mnist_loader  # noqa: E402
from kit import RunError, load_run  # noqa: E402

path = sys.argv[1] if len(sys.argv) > 1 else ROOT / "saved_files" / "best-model"
try:
    run = load_run(path)
except RunError as err:
    sys.exit(f"look_at_a_run.py: {err}")

print(f"{run.path.name}: {run.config.summary()}, {run.status}")
best = max(run.history, key=lambda row: row["val_accuracy"])
print(f"best epoch {best['epoch']} of {len(run.history)}: "
      f"validation {best['val_accuracy']:.2%}, test {best['test_accuracy']:.2%}")

# Raw t10k pixels (0..255): the run applies its own normalization.
_, _, images, labels = mnist_loader.load_raw(download=False)
test_images, test_labels = images[mnist_loader.TEST_START:], labels[mnist_loader.TEST_START:]
predicted = run.predict(test_images)
print(f"accuracy on the {len(test_labels):,} test images: {(predicted == test_labels).mean():.2%}")

confidence = run.predict_proba(test_images[:8]).max(axis=1)
for digit, guess, p in zip(test_labels[:8], predicted[:8], confidence):
    print(f"  a {digit} read as {guess} ({p:.1%} sure)")
