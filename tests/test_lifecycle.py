"""The run lifecycle against real processes: train.py killed (SIGKILL) and stopped (SIGTERM,
SIGHUP, a double Ctrl-C) at random moments, then every folder loaded and scored; exact
resume; the refusals of --resume; early stopping; losses apart from penalties; the best
epoch; the hints.

The oracle for a killed run is an uninterrupted computation of the same configuration
and seed: the killed folder's last (and best) epoch must hold that computation's weights
of the same epoch, bit for bit, and score that epoch's recorded test accuracy on the
6,000 test images. The real MNIST files are copied once, uncompressed, so that a child
spends its time training rather than decompressing.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from conftest import popen_default_sigint

import mnist_loader
from kit import lifecycle
from kit.config import Normalization, RunConfig
from kit.fsutil import write_json
from kit.record import RECORD, Run, best_row
from training import train

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "train.py")

# Tiny runs: 300 training images in batches of 4 (75 steps), an epoch (and its commit)
# every ~0.1-0.2 s, so a random moment lands in startup, data loading, a training step,
# the evaluation, a commit or the first graphs alike.
# The reference runs all of a child's epochs: a fast machine commits a dozen within the
# 1.2 s of a startup moment (see moment()), so a shorter one would not cover every kill.
EPOCHS = 60
SMALL = ["--limit", "300", "--batch-size", "4", "--epochs", str(EPOCHS), "--no-show"]
KILL_CONFIGS = {
    "sgd": ["--layers", "0", "--normalization", "simple", "--init", "xavier", "--l1", "n",
            "--decay", "n", "--optimizer", "sgd", "--seed", "11"],
    "momentum": ["--layers", "1", "--hidden-size", "16", "--normalization", "normal", "--init",
                 "xavier", "--activation", "relu", "--l1", "y", "--decay", "y",
                 "--optimizer", "momentum", "--seed", "12"],
}
KILLS = 52           # SIGKILLs at random moments (the issue asks for at least 50)
STOPS = 6            # of each of SIGTERM, SIGHUP and double Ctrl-C
IN_FLIGHT = 4        # children alive at once
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP, "SIGINT": signal.SIGINT}


# ---- helpers ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def plain_mnist(mnist_dir, tmp_path_factory) -> Path:
    """The real MNIST files, uncompressed (train.py reads either spelling)."""
    folder = tmp_path_factory.mktemp("f-mnist")
    for name in mnist_loader.FILE_NAMES.values():
        source = mnist_loader._find_file(mnist_dir, name)
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as f, open(folder / name, "wb") as out:
            shutil.copyfileobj(f, out)
    return folder


class ScoringSets:
    """The 6,000 test images, normalized as each run's record says (cached per normalization)."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._cache: dict = {}

    def get(self, norm: Normalization) -> mnist_loader.Split:
        key = (norm.kind, norm.mean, norm.std)
        if key not in self._cache:
            self._cache[key] = mnist_loader.load_test_set(norm.kind, norm.mean, norm.std,
                                                          data_dir=self.data_dir, download=False)
        return self._cache[key]


@pytest.fixture(scope="session")
def test_sets(plain_mnist) -> ScoringSets:
    return ScoringSets(plain_mnist)


def child_env(data_dir: Path) -> dict:
    return {**os.environ, "MNIST_DIR": str(data_dir), "MPLBACKEND": "Agg"}


def start(args: list, data_dir: Path, log: Path) -> subprocess.Popen:
    """train.py as a child with SIGINT at its default, output into log."""
    with open(log, "wb") as f:
        return popen_default_sigint([sys.executable, TRAIN, *map(str, args)], cwd=ROOT,
                                    env=child_env(data_dir), stdin=subprocess.DEVNULL,
                                    stdout=f, stderr=subprocess.STDOUT)


def train_py(args: list, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TRAIN, *map(str, args)], cwd=ROOT,
                          env=child_env(data_dir), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def epochs_done(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / RECORD).read_text())["epochs_completed"]
    except (OSError, ValueError, KeyError):
        return -1


def wait_until(predicate, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert proc is None or proc.poll() is None or predicate(), "the child ended first"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "checkpoint")} for row in rows]


@dataclass
class Reference:
    """An uninterrupted computation of a configuration: each epoch's row and parameters."""
    rows: list[dict]
    params: list[np.ndarray]


def reference(config: RunConfig, data_dir: Path) -> Reference:
    """Train config from its seed without saving anything, as lifecycle.train_run does."""
    rng = np.random.default_rng(config.seed)
    data = lifecycle.load_data_for(config, rng, data_dir)
    net = config.build_network(rng)
    optimizer = lifecycle.optimizer_for(config)
    rows, params = [], []
    for rec in train(net, data, optimizer=optimizer, rng=rng, progress=False,
                     **lifecycle.train_options(config, data, rng)):
        rows.append(rec.as_row())
        params.append(net.params.copy())
    return Reference(rows, params)


def config_of(args: list[str]) -> RunConfig:
    """The RunConfig that train.py makes of these flags."""
    flags = dict(zip(args[::2], args[1::2]))
    convert = {"--layers": int, "--hidden-size": int, "--seed": int, "--epochs": int,
               "--limit": int, "--batch-size": int, "--l1": lambda v: v == "y",
               "--decay": lambda v: v == "y"}
    values = {k[2:].replace("-", "_"): convert.get(k, str)(v) for k, v in flags.items()}
    return RunConfig.create(**values)


def stray_files(run_dir: Path) -> list[Path]:
    """Half-written files and folders a crash can leave (temporary names)."""
    return [p for p in run_dir.rglob("*") if p.name.endswith((".partial", ".tmp"))]


def check_run(run_dir: Path, test_sets: ScoringSets, ref: Reference | None = None) -> Run:
    """The folder loads as one committed epoch: record, history, checkpoints, optimizer and
    generator state agree; the last and best weights score their recorded test accuracy
    exactly on the 6,000 test images (and equal the reference's weights of that epoch)."""
    run = Run.load(run_dir)
    record = run.record
    rows = run.history()
    n = record.epochs_completed
    assert len(rows) == n and [r["epoch"] for r in rows] == list(range(1, n + 1))
    assert not run.live
    if n == 0:
        assert record.last is None and record.best is None
        return run
    assert without_seconds([record.last]) == without_seconds(rows[-1:])
    assert record.best == {**best_row(rows), "checkpoint": record.best["checkpoint"]}
    test = test_sets.get(record.normalization)
    for which in ("last", "best"):
        entry = run.epoch_entry(which)
        net = run.network(which)
        correct = int(np.count_nonzero(net.predict(test.x) == test.y))
        assert len(test.y) == 6000
        assert correct / 6000 == entry["test_accuracy"], (which, entry["epoch"])
        if ref is not None:
            assert np.array_equal(net.params, ref.params[entry["epoch"] - 1]), (which, entry["epoch"])
    if ref is not None:
        assert without_seconds(rows) == without_seconds(ref.rows[:n])
    optimizer_state, rng_state = run.training_state()
    assert rng_state["bit_generator"] == "PCG64"
    optimizer = lifecycle.optimizer_for(record.config)  # the saved state loads back whole
    optimizer.load_state({k: (v.item() if v.ndim == 0 else v) for k, v in optimizer_state.items()})
    assert set(lifecycle._state_arrays(optimizer)) == set(optimizer_state)
    return run


def schedule(jobs: list, launch, act, in_flight: int = IN_FLIGHT, timeout: float = 120) -> None:
    """Run jobs with in_flight children alive at once. launch(job) -> (child, run folder,
    after, delay): act(job, child) is called delay seconds after the child started
    (after < 0) or after its run.json first showed `after` committed epochs. Moments gated
    on epochs stay spread over the epoch, the commit and the graphs however loaded the
    machine is, where a delay from the start alone would land in the startup."""
    pending, alive = list(jobs), []
    end = time.monotonic() + timeout
    while pending or alive:
        while pending and len(alive) < in_flight:
            job = pending.pop(0)
            proc, run_dir, after, delay = launch(job)
            due = time.monotonic() + delay if after < 0 else None
            alive.append([job, proc, run_dir, after, delay, due])
        now = time.monotonic()
        for entry in list(alive):
            job, proc, run_dir, after, delay, due = entry
            if due is None and (epochs_done(run_dir) >= after or proc.poll() is not None):
                entry[5] = due = now + delay
            if due is not None and now >= due:
                act(job, proc)
                alive.remove(entry)
        assert time.monotonic() < end, "timed out"
        time.sleep(0.003)


def moment(draw: random.Random) -> tuple[int, float]:
    """A random moment: (-1, seconds from the start) in the startup and data loading, or
    (epochs, seconds after that many committed epochs) in a training step, the evaluation,
    a commit or the graphs drawn after epoch 1. Few epochs: every epoch's commit is alike,
    and a child that lives long costs the suite time."""
    phase = draw.random()
    if phase < 0.3:
        return -1, draw.uniform(0.0, 1.2)
    if phase < 0.65:
        return 0, draw.uniform(0.0, 0.25)
    return draw.randint(1, 3), draw.uniform(0.0, 0.25)


# ---- SIGKILL at random moments -----------------------------------------------------------

@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_the_last_committed_epoch(plain_mnist, test_sets, tmp_path):
    """52 children killed with SIGKILL at random moments; every folder loads as the
    uninterrupted run's epoch it last committed; a few are resumed to completion."""
    refs = {name: reference(config_of(args + SMALL[:-1]), plain_mnist)
            for name, args in KILL_CONFIGS.items()}
    draw = random.Random(20261125)
    jobs = [(f"k{i:02d}", list(KILL_CONFIGS)[i % 2], moment(draw)) for i in range(KILLS)]
    out = tmp_path / "runs"
    out.mkdir()

    def launch(job):
        name, kind, (after, delay) = job
        args = KILL_CONFIGS[kind] + SMALL + ["--output-dir", out, "--name", name]
        return start(args, plain_mnist, tmp_path / f"{name}.log"), out / name, after, delay

    procs = []

    def act(job, proc):
        proc.kill()
        procs.append(proc)

    schedule(jobs, launch, act)
    for proc in procs:
        assert proc.wait(timeout=30) == -signal.SIGKILL or proc.returncode == 0

    reached = []
    for name, kind, _ in jobs:
        run_dir = out / name
        if not run_dir.exists():  # killed before its folder was renamed into place
            reached.append(-1)
            continue
        run = check_run(run_dir, test_sets, refs[kind])
        n = run.record.epochs_completed
        reached.append(n)
        if run.record.status == "running":
            assert run.status_line() == f"ended without a status after {n} committed epoch" + \
                ("s" if n != 1 else ""), name
        else:  # only a child that finished all its epochs ends otherwise before a kill
            assert run.record.status == "completed" and n == EPOCHS, name
    # A kill while a folder was being made leaves only a hidden one, which nothing lists.
    assert all(p.name.startswith(".") and p.name.endswith(".partial")
               for p in out.iterdir() if p.name not in {name for name, _, _ in jobs})
    # The moments were spread: some children died before a run folder, some with epochs.
    assert sum(n >= 1 for n in reached) >= KILLS // 4, reached
    assert any(n <= 0 for n in reached), reached

    # Resume a few of them to completion: each ends exactly as the uninterrupted run.
    resumable = [(name, kind) for (name, kind, _), n in zip(jobs, reached)
                 if 1 <= n <= EPOCHS - 3][:3]
    assert len(resumable) >= 2, reached
    procs = []
    for name, kind in resumable:
        total = epochs_done(out / name) + 3
        procs.append((name, kind, total, start(["--resume", out / name, "--epochs", total],
                                               plain_mnist, tmp_path / f"{name}.resume.log")))
    for name, kind, total, proc in procs:
        assert proc.wait(timeout=120) == 0, (tmp_path / f"{name}.resume.log").read_text()
        run = check_run(out / name, test_sets, refs[kind])
        assert run.record.status == "completed" and run.record.epochs_completed == total
        assert not stray_files(out / name), stray_files(out / name)


# ---- SIGTERM, SIGHUP and a double Ctrl-C at random moments ----------------------------------

@pytest.mark.slow
def test_stop_signals_at_random_moments_interrupt_cleanly(plain_mnist, test_sets, tmp_path):
    """SIGTERM, SIGHUP and Ctrl-C twice (the second during the save) at random moments:
    exit 128 + the signal, status interrupted, the committed epochs kept exactly."""
    refs = {name: reference(config_of(args + SMALL[:-1]), plain_mnist)
            for name, args in KILL_CONFIGS.items()}
    draw = random.Random(7)
    jobs = [(f"{sig.lower()}{i}", sig, list(KILL_CONFIGS)[i % 2], moment(draw),
             draw.uniform(0.0, 0.15)) for sig in SIGNALS for i in range(STOPS)]
    out = tmp_path / "runs"
    out.mkdir()
    codes = {}

    def launch(job):
        name, sig, kind, (after, delay), _ = job
        args = KILL_CONFIGS[kind] + SMALL + ["--output-dir", out, "--name", name]
        return start(args, plain_mnist, tmp_path / f"{name}.log"), out / name, after, delay

    def act(job, proc):
        name, sig, kind, _, second = job
        proc.send_signal(SIGNALS[sig])
        if sig == "SIGINT":  # the second Ctrl-C, while the first one's save may be running
            time.sleep(second)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        codes[name] = proc

    schedule(jobs, launch, act)
    codes = {name: proc.wait(timeout=60) for name, proc in codes.items()}

    for name, sig, kind, _, _ in jobs:
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log, log
        run_dir = out / name
        if not run_dir.exists():
            # Stopped before its folder: a signal while Python starts (before train.py
            # handles any) ends the process by the signal itself, which a shell also
            # reports as 128 + the signal (a Ctrl-C then exits quietly with 130); once
            # handled, it says nothing was saved. A Ctrl-C in the interpreter's own
            # startup, before train.py's first line, is Python's: one line, exit 1.
            if sig == "SIGINT" and log.strip() == "KeyboardInterrupt":
                assert codes[name] == 1
                continue
            assert codes[name] in (128 + SIGNALS[sig], -SIGNALS[sig]), (name, codes[name], log)
            assert codes[name] < 0 or "nothing was saved" in log or \
                (sig == "SIGINT" and not log.strip()), log
            continue
        run = check_run(run_dir, test_sets, refs[kind])
        assert run.record.status == "interrupted", (name, log)
        if sig == "SIGINT" and codes[name] == -signal.SIGINT:
            # Known, reported: a second Ctrl-C just after train.py's closing lines (a run with
            # no epoch, so no final graphs to absorb it) ends Python by SIGINT itself, which
            # a shell shows as 130 too. The run's status is already final, as checked above.
            assert "holds no weights" in log, log
        else:
            assert codes[name] == 128 + SIGNALS[sig], (name, codes[name], log)
        assert run.record.ended is not None
        n = run.record.epochs_completed
        assert run.status_line() == f"interrupted after {n} epoch{'s' if n != 1 else ''}"
        if n:
            assert f"kept the {n} epoch" in log and "--resume" in log, log


# ---- exact resume ---------------------------------------------------------------------------

EXACT = {
    "sgd": ["--layers", "1", "--hidden-size", "16", "--normalization", "normal", "--init", "xavier",
            "--activation", "relu", "--l1", "n", "--decay", "y", "--optimizer", "sgd", "--seed", "3"],
    "momentum": ["--layers", "2", "--hidden-size", "16", "--normalization", "simple", "--init",
                 "xavier", "--activation", "sigmoid", "--l1", "y", "--decay", "y",
                 "--optimizer", "momentum", "--seed", "4"],
    "adam": ["--layers", "1", "--hidden-size", "16", "--normalization", "normal", "--init", "gauss",
             "--activation", "relu", "--l1", "y", "--decay", "y", "--optimizer", "adam",
             "--seed", "5"],
}
EXACT_RUN = ["--limit", "300", "--batch-size", "4", "--epochs", "6", "--no-show"]


def files_of(run_dir: Path, which: str) -> dict[str, bytes]:
    run = Run.load(run_dir)
    folder = run_dir / run.epoch_entry(which)["checkpoint"]
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.name.startswith(("weights_", "biases_")) or p.name in ("optimizer.npz", "rng.json")}


@pytest.mark.slow
def test_interrupted_after_epoch_3_and_resumed_ends_identical(plain_mnist, tmp_path):
    """A 6-epoch run and the same run stopped after epoch 3 (Ctrl-C, SIGTERM, SIGKILL) then
    resumed to 6: identical weight files, optimizer and generator states, history rows."""
    out = tmp_path / "runs"
    out.mkdir()
    cases = [(opt, sig) for opt in EXACT for sig in ("SIGINT", "SIGTERM", "SIGKILL")
             if opt != "adam" or sig == "SIGTERM"]
    # The uninterrupted runs in this process (what train.py runs, without the graphs).
    for opt, args in EXACT.items():
        outcome = lifecycle.train_run(config_of(args + EXACT_RUN[:-1]), out, f"{opt}-whole",
                                    data_dir=plain_mnist, progress=False, plots=False)
        assert outcome.status == "completed" and outcome.exit_code == 0

    # All at once; each is stopped as soon as its run.json says 3 epochs.
    procs = {}
    for opt, sig in cases:
        name = f"{opt}-{sig.lower()}"
        procs[name] = (sig, start(EXACT[opt] + EXACT_RUN + ["--output-dir", out, "--name", name],
                                  plain_mnist, tmp_path / f"{name}.log"))
    waiting = dict(procs)
    end = time.monotonic() + 120
    while waiting:
        for name, (sig, proc) in list(waiting.items()):
            if epochs_done(out / name) >= 3:
                proc.send_signal(signal.SIGKILL if sig == "SIGKILL" else SIGNALS[sig])
                del waiting[name]
            else:
                assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)
    for name, (sig, proc) in procs.items():
        code = proc.wait(timeout=60)
        assert code == (-signal.SIGKILL if sig == "SIGKILL" else 128 + SIGNALS[sig]), (name, code)
        assert 3 <= epochs_done(out / name) < 6, name
    # Resumed in this process, by what train.py --resume runs (the SIGKILL test resumes
    # through train.py itself).
    for name in procs:
        outcome = lifecycle.resume_run(out / name, data_dir=plain_mnist, progress=False, plots=False)
        assert outcome.status == "completed" and outcome.exit_code == 0, name

    for opt, sig in cases:
        name = f"{opt}-{sig.lower()}"
        a, b = Run.load(out / f"{opt}-whole"), Run.load(out / name)
        assert b.record.status == "completed" and b.record.epochs_completed == 6
        assert without_seconds(b.history()) == without_seconds(a.history()), name
        assert a.record.best["epoch"] == b.record.best["epoch"]
        for which in ("last", "best"):
            assert files_of(out / name, which) == files_of(out / f"{opt}-whole", which), (name, which)


# ---- the live lock, and what a killed run says -------------------------------------------

@pytest.mark.slow
def test_resume_of_a_live_run_is_refused_and_a_killed_one_says_so(plain_mnist, tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    args = KILL_CONFIGS["sgd"] + SMALL + ["--output-dir", out, "--name", "live"]
    proc = start(args, plain_mnist, tmp_path / "live.log")
    try:
        wait_until(lambda: epochs_done(out / "live") >= 1, proc)
        run = Run.load(out / "live")
        assert run.live and run.status_line().startswith("running: ")
        refused = train_py(["--resume", out / "live", "--epochs", "100"], plain_mnist)
        assert refused.returncode == 2, refused
        assert refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "being written by a running train.py" in refused.stderr
        assert proc.poll() is None  # the writer was not disturbed
    finally:
        proc.kill()
        proc.wait(timeout=30)
    run = Run.load(out / "live")
    n = run.record.epochs_completed
    assert run.record.status == "running" and not run.live
    assert run.status_line() == f"ended without a status after {n} committed epoch{'s' if n != 1 else ''}"


# ---- Ctrl-C while the final graphs are drawn ----------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_while_the_final_graphs_are_drawn_changes_nothing(plain_mnist, tmp_path):
    from PIL import Image
    out = tmp_path / "runs"
    out.mkdir()
    args = KILL_CONFIGS["sgd"] + ["--limit", "300", "--epochs", "3", "--no-show",
                                  "--output-dir", out, "--name", "final"]
    proc = start(args, plain_mnist, tmp_path / "final.log")
    record = out / "final" / RECORD
    wait_until(lambda: record.exists() and json.loads(record.read_text())["status"] != "running", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    log = (tmp_path / "final.log").read_text()
    assert code == 0, log
    assert "Traceback" not in log and "error" not in log.lower() and "nterrupt" not in log, log
    assert "Completed 3 epochs." in log
    run = Run.load(out / "final")
    assert run.record.status == "completed"
    for name in ("accuracy.png", "loss.png", "learning_rate.png"):
        with Image.open(out / "final" / name) as image:
            image.verify()


# ---- --resume refusals ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def done_run(plain_mnist, tmp_path_factory) -> Path:
    """A completed 2-epoch run to refuse things on (not changed by the tests)."""
    out = tmp_path_factory.mktemp("f-done")
    proc = train_py(KILL_CONFIGS["sgd"] + ["--limit", "300", "--epochs", "2", "--no-show",
                                           "--output-dir", out, "--name", "done"], plain_mnist)
    assert proc.returncode == 0, proc.stderr
    return out / "done"


def with_status(run_dir: Path, target: Path, status: str) -> Path:
    shutil.copytree(run_dir, target)
    run = Run.load(target)
    write_json(target / RECORD, replace(run.record, status=status).to_json())
    return target


def legacy_run(target: Path) -> Path:
    """A run in the first format (config.json, weights beside it, no optimizer state): the
    model this project shipped before run.json existed, kept in tests/fixtures."""
    shutil.copytree(ROOT / "tests" / "fixtures" / "legacy-best-model", target)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("case", ["diverged", "not-a-run", "legacy", "total-below",
                                  "total-equal", "config-flag", "name-flag", "output-dir-flag"])
def test_resume_refusals_are_one_line(case, done_run, plain_mnist, tmp_path):
    before = (done_run / RECORD).read_bytes()
    target, extra, says = done_run, [], ""
    if case == "diverged":  # a failed run (a full disk) resumes: tests/test_resume_safety.py
        target, says = with_status(done_run, tmp_path / case, case), f"the run {case}"
    elif case == "not-a-run":
        target, says = tmp_path / "empty", "not a run folder"
        target.mkdir()
    elif case == "legacy":
        target, says = legacy_run(tmp_path / "legacy"), "saved before runs could be resumed"
    elif case == "total-below":
        extra, says = ["--epochs", "1"], "below the 2 epochs"
    elif case == "total-equal":
        extra, says = ["--epochs", "2"], "already has 2 epochs"
    elif case == "config-flag":
        extra, says = ["--epochs", "5", "--learning-rate", "0.1"], "drop --learning-rate"
    elif case == "name-flag":
        extra, says = ["--name", "other"], "drop --name"
    elif case == "output-dir-flag":
        extra, says = ["--output-dir", tmp_path], "drop --output-dir"
    listing = sorted(p.name for p in target.rglob("*"))
    proc = train_py(["--resume", target, *extra], plain_mnist)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in target.rglob("*")) == listing  # nothing written
    assert (done_run / RECORD).read_bytes() == before


# ---- early stopping, losses apart, the best epoch ---------------------------------------------

@pytest.mark.slow
def test_patience_stops_early_and_keeps_the_best_epoch(plain_mnist, test_sets, tmp_path):
    """A run that overfits 100 images stops when validation accuracy has not improved for 3
    epochs; the best epoch's weights score its recorded test accuracy; losses and L1 apart."""
    out = tmp_path / "runs"
    args = ["--layers", "1", "--hidden-size", "32", "--normalization", "normal", "--init", "xavier",
            "--activation", "relu", "--l1", "y", "--decay", "n", "--optimizer", "momentum",
            "--learning-rate", "0.01", "--seed", "8", "--limit", "100", "--epochs", "200",
            "--patience", "3", "--no-show", "--output-dir", out, "--name", "p"]
    proc = train_py(args, plain_mnist)
    assert proc.returncode == 0, proc.stderr
    run = check_run(out / "p", test_sets)
    rows = run.history()
    best = run.record.best
    assert run.record.status == "stopped-early"
    assert run.status_line().startswith(f"stopped early after {len(rows)} epochs")
    assert len(rows) < 200 and len(rows) - best["epoch"] == 3
    assert all(r["val_accuracy"] <= best["val_accuracy"] for r in rows[best["epoch"]:])
    assert f"Stopped early after {len(rows)} epochs: validation accuracy has not improved for 3 " \
           f"epochs (best: epoch {best['epoch']})" in proc.stdout
    assert (out / "p" / "accuracy.png").stat().st_size > 0
    # Losses are cross-entropy alone; the L1 term is lambda * sum|W| of the saved weights.
    test = test_sets.get(run.record.normalization)
    for which in ("last", "best"):
        net, entry = run.network(which, dtype=np.float64), run.epoch_entry(which)
        l1 = run.config.l1_lambda * sum(float(np.abs(w).sum()) for w in net.weights)
        assert entry["l1_penalty"] == pytest.approx(l1, rel=1e-9)
        loss, _ = run.network(which).evaluate(test.x, test.y)
        assert entry["test_loss"] == loss  # cross-entropy alone, as the run computed it


@pytest.mark.slow
def test_without_l1_the_penalty_is_zero_and_best_is_the_first_maximum(plain_mnist, test_sets, tmp_path):
    out = tmp_path / "runs"
    proc = train_py(KILL_CONFIGS["sgd"] + ["--limit", "300", "--epochs", "8", "--no-show",
                                           "--output-dir", out, "--name", "b"], plain_mnist)
    assert proc.returncode == 0, proc.stderr
    run = check_run(out / "b", test_sets)
    rows = run.history()
    assert all(r["l1_penalty"] == 0.0 and r["l2_penalty"] == 0.0 for r in rows)
    top = max(r["val_accuracy"] for r in rows)
    assert run.record.best["epoch"] == next(r["epoch"] for r in rows if r["val_accuracy"] == top)
    assert (out / "b" / "accuracy.png").exists()


# ---- hints -------------------------------------------------------------------------------------

def hint_config(**changes) -> RunConfig:
    values = dict(layers=2, normalization="normal", init="gauss", activation="sigmoid", l1=False,
                  decay=False, optimizer="sgd", epochs=10, seed=0)
    return RunConfig.create(**{**values, **changes})


def hint_rows(val_acc: list[float], train_loss: list[float] | None = None,
              val_loss: list[float] | None = None) -> list[dict]:
    n = len(val_acc)
    train_loss = train_loss or [1.0 - 0.01 * i for i in range(n)]
    val_loss = val_loss or [1.0 - 0.01 * i for i in range(n)]
    return [{"epoch": i + 1, "val_accuracy": a, "train_loss": t, "val_loss": v}
            for i, (a, t, v) in enumerate(zip(val_acc, train_loss, val_loss))]


def test_chance_hint_names_the_slow_choices_once():
    shown: set[str] = set()
    out = lifecycle.hints(hint_rows([0.11]), hint_config(), shown)
    assert len(out) == 1 and "11.0 %" in out[0] and "chance level" in out[0]
    for cause in ("2 sigmoid layers", "Gauss initialization", "plain SGD at learning rate 0.001"):
        assert cause in out[0]
    assert "ReLU, Xavier initialization or Momentum would learn much faster" in out[0]
    assert lifecycle.hints(hint_rows([0.11, 0.12]), hint_config(), shown) == []  # once only


def test_chance_hint_without_slow_choices_and_no_hint_when_learning():
    out = lifecycle.hints(hint_rows([0.1]), hint_config(init="xavier", activation="relu",
                                                       optimizer="momentum"), set())
    assert len(out) == 1 and "With " not in out[0]
    assert lifecycle.hints(hint_rows([0.9]), hint_config(), set()) == []
    assert lifecycle.hints(hint_rows([lifecycle.CHANCE_LEVEL]), hint_config(), set()) == []


def test_overfit_hint_after_three_epochs_of_rising_validation_loss():
    val = [0.9, 0.91, 0.92, 0.93, 0.94]
    rising = hint_rows(val, train_loss=[1.0, 0.8, 0.6, 0.4, 0.3], val_loss=[0.5, 0.4, 0.45, 0.5, 0.55])
    shown: set[str] = set()
    assert lifecycle.hints(rising[:4], hint_config(), shown) == []  # risen only twice
    out = lifecycle.hints(rising, hint_config(), shown)
    assert len(out) == 1 and "overfit" in out[0] and "epoch 5" in out[0] and "--patience" in out[0]
    assert lifecycle.hints(rising, hint_config(), shown) == []  # once only
    flat_train = hint_rows(val, train_loss=[1.0, 0.8, 0.8, 0.7, 0.6], val_loss=[0.5, 0.4, 0.45, 0.5, 0.55])
    assert lifecycle.hints(flat_train, hint_config(), set()) == []


@pytest.mark.slow
def test_a_real_run_at_chance_level_prints_the_hint_once(plain_mnist, tmp_path):
    args = ["--layers", "2", "--normalization", "simple", "--init", "gauss", "--activation", "sigmoid",
            "--l1", "n", "--decay", "n", "--optimizer", "sgd", "--seed", "1", "--limit", "500",
            "--epochs", "3", "--no-show", "--output-dir", tmp_path, "--name", "slow"]
    proc = train_py(args, plain_mnist)
    assert proc.returncode == 0, proc.stderr
    rows = Run.load(tmp_path / "slow").history()
    assert all(r["val_accuracy"] < lifecycle.CHANCE_LEVEL for r in rows), rows
    assert proc.stdout.count("Hint: validation accuracy is") == 1, proc.stdout
    assert "2 sigmoid layers" in proc.stdout.replace("\n  ", " ")


def test_overfit_hint_does_not_suggest_patience_to_a_run_that_has_it():
    val = [0.9, 0.91, 0.92, 0.93, 0.94]
    rising = hint_rows(val, train_loss=[1.0, 0.8, 0.6, 0.4, 0.3], val_loss=[0.5, 0.4, 0.45, 0.5, 0.55])
    out = lifecycle.hints(rising, hint_config(patience=5), set())
    assert len(out) == 1 and "overfit" in out[0] and "--patience" not in out[0]
