"""train.py as a user runs it: flags, piped answers, and the run folder it writes."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import runs

ROOT = Path(__file__).resolve().parents[1]


def train(args, mnist_dir, stdin=None):
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=ROOT, env=env,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)


def only_run(out: Path) -> Path:
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def history(run: runs.Run) -> list[dict]:
    """The run's committed history, checked against the file people read beside run.json."""
    rows = run.history()
    with open(run.path / "history.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == runs.HISTORY_COLUMNS
        assert [int(r["epoch"]) for r in reader] == [r["epoch"] for r in rows]
    return rows


def test_all_flags_full_split_one_epoch(tmp_path, mnist_dir):
    """All eight flags, no input, the real 58,000-image split: a complete run folder."""
    proc = train(["--layers", 2, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
                  "--l1", "n", "--decay", "n", "--optimizer", "momentum", "--epochs", 1, "--seed", 7,
                  "--output-dir", tmp_path, "--no-show"], mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    run = runs.Run.load(only_run(tmp_path))
    assert run.path.name.endswith("_2h-relu-momentum-normal-xavier")
    record = run.record
    assert record.status == "completed" and record.config.seed == 7 and not run.legacy
    assert record.config.layer_sizes == [784, 64, 64, 10]
    assert (record.train_size, record.val_size, record.test_size) == (58_000, 6_000, 6_000)
    assert abs(record.normalization.mean - 33.3) < 0.5 and abs(record.normalization.std - 78.6) < 1
    assert record.ended >= record.started and record.versions["numpy"] == np.__version__
    for which in ("last", "best"):
        net = run.network(which)
        assert [w.shape for w in net.weights] == [(784, 64), (64, 64), (64, 10)]
        assert [b.size for b in net.biases] == [64, 64, 10]
    assert (run.path / "checkpoints" / "epoch-0001" / "weights_1.csv").is_file()
    rows = history(run)
    assert len(rows) == 1 and rows[0]["epoch"] == 1 and rows[0]["learning_rate"] == 0.001
    assert rows[0]["val_accuracy"] > 0.94
    assert record.last["test_accuracy"] == rows[0]["test_accuracy"] == record.best["test_accuracy"]
    for png in ("accuracy.png", "loss.png", "learning_rate.png"):
        assert (run.path / png).stat().st_size > 10_000
    assert f"Last epoch (1): test accuracy {100 * rows[0]['test_accuracy']:.2f} %" in proc.stdout
    assert "Completed 1 epoch." in proc.stdout


def test_piped_answers_in_the_original_spellings(tmp_path, mnist_dir):
    """Answers read line by line from a pipe, in the original project's words and cases."""
    answers = "one\nSimple\nGauss\nSigmoid\ny\nY\nSGD\n2\n"
    proc = train(["--output-dir", tmp_path, "--limit", 1000, "--no-show"], mnist_dir, stdin=answers)
    assert proc.returncode == 0, proc.stderr
    run = runs.Run.load(only_run(tmp_path))
    config = run.config
    assert {k: getattr(config, k) for k in ("layers", "normalization", "init", "activation", "l1",
                                            "decay", "optimizer", "epochs")} == \
        {"layers": 1, "normalization": "simple", "init": "gauss", "activation": "sigmoid", "l1": True,
         "decay": True, "optimizer": "sgd", "epochs": 2}
    assert run.record.normalization.mean is None
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["learning_rate"] for r in rows] == [0.001, 0.001 * 0.98]
    assert rows[0]["l1_penalty"] > 0  # L1 on: its penalty is logged apart from the loss
    assert [w.shape for w in run.network("last").weights] == [(784, 64), (64, 10)]


def test_invalid_then_valid_answers(tmp_path, mnist_dir):
    """Each invalid answer is explained and the question asked again; then the run goes on."""
    answers = "3\n0\nfancy\nnormal\nxavier\nmaybe\nn\nn\nrmsprop\nmomentum\n0\n1\n"
    proc = train(["--output-dir", tmp_path, "--limit", 500, "--no-show"], mnist_dir, stdin=answers)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Invalid answer") == 5
    assert "Activation skipped" in proc.stdout
    run = runs.Run.load(only_run(tmp_path))
    assert run.config.layers == 0 and run.config.activation is None and run.config.optimizer == "momentum"
    assert [w.shape for w in run.network("last").weights] == [(784, 10)]


def test_input_ending_early_creates_nothing(tmp_path, mnist_dir):
    """Input that stops after three answers: exit 2, the fourth question and its flag named."""
    out = tmp_path / "out"
    proc = train(["--output-dir", out], mnist_dir, stdin="2\nnormal\nxavier\n")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train.py: input ended before question 4 (Activation for the hidden layers) was answered; "
        "answer it, or pass --activation"]
    assert not out.exists()


def test_same_seed_repeats_a_run(tmp_path, mnist_dir):
    """Two runs with the same --seed write identical histories (all but the timing) and weights."""
    flags = ["--layers", 1, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
             "--l1", "y", "--decay", "y", "--optimizer", "momentum", "--epochs", 2, "--seed", 11,
             "--limit", 2000, "--output-dir", tmp_path, "--no-show"]
    for name in ("a", "b"):
        assert train([*flags, "--name", name], mnist_dir).returncode == 0
    a, b = runs.Run.load(tmp_path / "a"), runs.Run.load(tmp_path / "b")
    untimed = [k for k in runs.HISTORY_COLUMNS if k != "seconds"]
    assert [[r[k] for k in untimed] for r in a.history()] == [[r[k] for k in untimed] for r in b.history()]
    for which in ("last", "best"):
        for wa, wb in zip(a.network(which).weights,
                          b.network(which).weights):
            assert np.array_equal(wa, wb)
    last = a.record.last["checkpoint"]
    assert (a.path / last / "weights_1.csv").read_bytes() == (b.path / last / "weights_1.csv").read_bytes()
