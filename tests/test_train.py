"""train.py as a user runs it: flags, piped answers, and the run folder it writes."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["epoch", "learning_rate", "train_loss", "train_accuracy",
          "val_loss", "val_accuracy", "test_loss", "test_accuracy"]


def train(args, mnist_dir, stdin=None):
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=ROOT, env=env,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == HEADER
        return list(reader)


def test_all_flags_full_split_one_epoch(tmp_path, mnist_dir):
    """All eight flags, no input, the real 58,000-image split: a complete run folder."""
    proc = train(["--layers", 2, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
                  "--l1", "n", "--decay", "n", "--optimizer", "momentum", "--epochs", 1, "--seed", 7,
                  "--output-dir", tmp_path, "--no-show"], mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    run = only_run(tmp_path)
    assert run.name.endswith("_2h-relu-momentum-normal-xavier")
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "completed" and config["seed"] == 7
    assert config["layer_sizes"] == [784, 64, 64, 10]
    assert config["train_size"] == 58_000 and config["val_size"] == 6_000 and config["test_size"] == 6_000
    assert abs(config["norm_mean"] - 33.3) < 0.5 and abs(config["norm_std"] - 78.6) < 1
    for key in ("started", "ended", "final", "versions"):
        assert config[key]
    shapes = {"weights_1.csv": (784, 64), "weights_2.csv": (64, 64), "weights_3.csv": (64, 10),
              "biases_1.csv": (64,), "biases_2.csv": (64,), "biases_3.csv": (10,)}
    for name, shape in shapes.items():
        assert np.loadtxt(run / name, delimiter=",").shape == shape, name
    rows = history(run)
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and float(rows[0]["learning_rate"]) == 0.001
    assert float(rows[0]["val_accuracy"]) > 0.94
    assert config["final"]["test_accuracy"] == float(rows[0]["test_accuracy"])
    for png in ("accuracy.png", "loss.png", "learning_rate.png"):
        assert (run / png).stat().st_size > 10_000
    assert f"Final test accuracy: {100 * float(rows[0]['test_accuracy']):.2f} %" in proc.stdout


def test_piped_answers_in_the_original_spellings(tmp_path, mnist_dir):
    """Answers read line by line from a pipe, in the original project's words and cases."""
    answers = "one\nSimple\nGauss\nSigmoid\ny\nY\nSGD\n2\n"
    proc = train(["--output-dir", tmp_path, "--limit", 1000, "--no-show"], mnist_dir, stdin=answers)
    assert proc.returncode == 0, proc.stderr
    run = only_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    assert {k: config[k] for k in ("layers", "normalization", "init", "activation", "l1", "decay",
                                   "optimizer", "epochs")} == \
        {"layers": 1, "normalization": "simple", "init": "gauss", "activation": "sigmoid", "l1": True,
         "decay": True, "optimizer": "sgd", "epochs": 2}
    assert config["norm_mean"] is None
    rows = history(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [float(r["learning_rate"]) for r in rows] == [0.001, 0.001 * 0.98]
    assert np.loadtxt(run / "weights_1.csv", delimiter=",").shape == (784, 64)


def test_invalid_then_valid_answers(tmp_path, mnist_dir):
    """Each invalid answer is explained and the question asked again; then the run goes on."""
    answers = "3\n0\nfancy\nnormal\nxavier\nmaybe\nn\nn\nadam\nmomentum\n0\n1\n"
    proc = train(["--output-dir", tmp_path, "--limit", 500, "--no-show"], mnist_dir, stdin=answers)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Invalid answer") == 5
    assert "Activation skipped" in proc.stdout
    config = json.loads((only_run(tmp_path) / "config.json").read_text())
    assert config["layers"] == 0 and config["activation"] is None and config["optimizer"] == "momentum"
    assert np.loadtxt(only_run(tmp_path) / "weights_1.csv", delimiter=",").shape == (784, 10)


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
    """Two runs with the same --seed write identical histories and weights."""
    flags = ["--layers", 1, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
             "--l1", "y", "--decay", "y", "--optimizer", "momentum", "--epochs", 2, "--seed", 11,
             "--limit", 2000, "--output-dir", tmp_path, "--no-show"]
    for name in ("a", "b"):
        assert train([*flags, "--name", name], mnist_dir).returncode == 0
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()
    assert (tmp_path / "a" / "weights_1.csv").read_text() == (tmp_path / "b" / "weights_1.csv").read_text()
