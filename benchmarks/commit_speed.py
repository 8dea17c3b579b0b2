"""Time RunWriter.commit_epoch: what saving one epoch as a unit adds to an epoch.

    python benchmarks/commit_speed.py [--commits 10] [--sizes 784-64-64-10] [--dir /tmp]

Commits epochs of a network (default the 2-hidden 784-64-64-10) with a momentum
optimizer's state into a fresh run folder under --dir, and prints the median, min and
max seconds of one commit, against the issue's target (under 0.15 s for 784-64-64-10).
Each commit is taken apart too (weights and biases as CSV, the optimizer's state, the
generator's state and history, the fsyncs and renames), so a slow part is named.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kit.config import INPUT_SIZE, MAX_EPOCHS, NUM_CLASSES, Normalization, RunConfig
from kit.fsutil import fsync_file, write_json, write_synced
from kit.record import history_text, now, package_versions
from kit.record_writer import RunWriter
from optim import make_optimizer  # noqa: E402
from training import HISTORY_COLUMNS

TARGET_S = 0.15  # the issue: committing an epoch of the 2-hidden network adds under 0.15 s


def _row(epoch: int, rng: np.random.Generator) -> dict:
    """A history row with plausible values (the commit's cost does not depend on them)."""
    row = {k: float(rng.uniform(0.05, 0.95)) for k in HISTORY_COLUMNS[1:]}
    return {**row, "epoch": epoch}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=10, help="timed commits (median reported)")
    p.add_argument("--sizes", default="784-64-64-10", help="layer sizes, e.g. 784-64-10")
    p.add_argument("--dir", type=Path, default=None, help="where the scratch run folder goes "
                   "(default: the system's temporary folder; its disk decides the fsync cost)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split("-")]
    hidden = sizes[1:-1]
    if sizes[0] != INPUT_SIZE or sizes[-1] != NUM_CLASSES or len(set(hidden)) > 1 \
            or len(hidden) > 2:
        p.error("--sizes must be 784-10, 784-H-10 or 784-H-H-10")

    rng = np.random.default_rng(0)
    config = RunConfig.create(layers=len(hidden), normalization="simple", init="xavier",
                                   activation="relu" if hidden else None, l1=False, decay=False,
                                   optimizer="momentum", epochs=MAX_EPOCHS, seed=0,
                                   **({"hidden_size": hidden[0]} if hidden else {}))
    net = config.build_network(rng)
    optimizer = make_optimizer("momentum", config.momentum)
    # A step gives the optimizer its velocity arrays (the state a real commit saves).
    net.grad[...] = rng.standard_normal(net.grad.shape).astype(net.grad.dtype) * 1e-3
    optimizer.step(net.params, net.grad, 0.001)
    state = {k: np.asarray(v) for k, v in optimizer.state().items() if v is not None}
    state_bytes = sum(v.nbytes for v in state.values())

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="commit-speed-") as tmp:
        writer = RunWriter.create(Path(tmp), "bench", config, Normalization("simple"),
                                       (58_000, 6_000, 6_000), package_versions(), now())
        times = []
        try:
            for epoch in range(1, args.commits + 1):
                row = _row(epoch, rng)
                t = time.perf_counter()
                writer.commit_epoch(row, net, state, rng.bit_generator.state)
                times.append(time.perf_counter() - t)
                net.params[...] += np.float32(1e-4)  # new weights each epoch, as in training
            parts = _parts(Path(tmp), net, state, writer.rows)
        finally:
            writer.close()

    median = statistics.median(times)
    print(f"commit_epoch of {args.sizes} ({net.params.size:,} parameters), momentum state "
          f"{state_bytes / 1e6:.2f} MB, {args.commits} commits, {os.cpu_count()} cores, "
          f"folder under {args.dir or tempfile.gettempdir()}")
    print(f"median {median * 1000:.1f} ms  (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
          f"  target < {TARGET_S * 1000:.0f} ms: {'met' if median < TARGET_S else 'NOT met'}")
    print("parts of one commit (median of 5, ms): " +
          ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items()))


def _parts(folder: Path, net, state: dict, rows: list[dict]) -> dict[str, float]:
    """The main costs of a commit, each timed alone (median of 5, in ms)."""
    import io
    import json

    def timed(fn) -> float:
        out = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return statistics.median(out) * 1000

    scratch = folder / "parts"
    scratch.mkdir()

    def npz() -> None:
        buf = io.BytesIO()
        np.savez(buf, **state)
        write_synced(scratch / "optimizer.npz", buf.getvalue())

    def small() -> None:
        write_synced(scratch / "rng.json", (json.dumps({"k": 1}) + "\n").encode())
        write_synced(scratch / "history.csv", history_text(rows).encode())

    def fsync_csv() -> None:
        for f in scratch.glob("*.csv"):
            fsync_file(f)

    return {"weights+biases CSV": timed(lambda: net.save_csv(scratch)),
            "fsync of the CSVs": timed(fsync_csv),
            "optimizer.npz": timed(npz),
            "rng.json+history.csv": timed(small),
            "run.json": timed(lambda: write_json(scratch / "run.json", {"a": list(range(200))}))}


if __name__ == "__main__":
    main()
