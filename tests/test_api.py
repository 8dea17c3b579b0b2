"""kit.load_run, the API for notebooks: the shipped model read back, its predictions on raw
pixels against the test accuracy its record holds, bad input, and a damaged folder raising
RunError with predict.py's own one-line message. The example in docs/ runs as written."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, child_env, run_script

import mnist_loader
from kit import LoadedRun, RunError, load_run
from kit.config import RunConfig
from network import Network

SHIPPED = ROOT / "saved_files" / "best-model"


@pytest.fixture(scope="module")
def run() -> LoadedRun:
    return load_run(SHIPPED)


@pytest.fixture(scope="module")
def t10k(mnist_dir):
    _, _, images, labels = mnist_loader.load_raw(mnist_dir, download=False)
    return images[mnist_loader.TEST_START:], labels[mnist_loader.TEST_START:]


def test_config_and_history_are_the_folders_own(run):
    assert isinstance(run.config, RunConfig)
    record = json.loads((SHIPPED / "run.json").read_text())
    assert run.config.to_json() == record["config"]
    with open(SHIPPED / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(run.history) == len(rows) == record["epochs_completed"]
    for mine, theirs in zip(run.history, rows):
        assert mine == {k: (int(v) if k == "epoch" else float(v)) for k, v in theirs.items()}
        assert all(isinstance(v, float) for k, v in mine.items() if k != "epoch")
    run.history.clear()  # a copy: the run's own rows are untouched
    assert len(run.history) == len(rows)


def test_best_and_last_networks_hold_their_epochs_weights(run):
    best, last = run.network("best"), run.network("last")
    assert isinstance(best, Network) and run.network() is best
    record = json.loads((SHIPPED / "run.json").read_text())
    for which, net in (("best", best), ("last", last)):
        folder = SHIPPED / record[which]["checkpoint"]
        w1 = np.loadtxt(folder / "weights_1.csv", delimiter=",")
        np.testing.assert_array_equal(net.weights[0], w1.astype(net.weights[0].dtype))
    assert record["best"]["epoch"] != record["last"]["epoch"]
    assert not np.array_equal(best.weights[0], last.weights[0])
    with pytest.raises(ValueError, match="'best' or 'last'"):
        run.network("first")


def test_predictions_on_raw_pixels_give_the_recorded_test_accuracy(run, t10k):
    images, labels = t10k
    record = json.loads((SHIPPED / "run.json").read_text())
    for which in ("best", "last"):
        accuracy = (run.predict(images, which=which) == labels).mean()
        assert accuracy == pytest.approx(record[which]["test_accuracy"], abs=0.5 / len(labels))


def test_every_pixel_layout_gives_the_same_answer(run, t10k):
    images = t10k[0][:50]
    expected = run.predict_proba(images)
    assert expected.shape == (50, 10)
    np.testing.assert_allclose(expected.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(run.predict_proba(images.reshape(50, 28, 28)), expected)
    np.testing.assert_allclose(run.predict_proba(images.astype(np.float64)), expected, atol=1e-6)
    np.testing.assert_array_equal(run.predict(images), expected.argmax(axis=1))


@pytest.mark.parametrize("images, needle", [
    (np.zeros((3, 783)), "shape"),
    (np.zeros(784), "shape"),
    (np.zeros((2, 28, 27)), "shape"),
    (np.full((1, 784), 256.0), "from 0 to 255"),
    (np.full((1, 784), -0.5), "from 0 to 255"),
    (np.full((1, 784), np.nan), "from 0 to 255"),
    (np.array([["a"] * 784]), "numbers"),
])
def test_bad_images_are_a_clear_value_error(run, images, needle):
    with pytest.raises(ValueError, match=needle):
        run.predict(images)


@pytest.mark.parametrize("damage", ["no-run-json", "bad-json", "weights-gone"])
def test_a_damaged_folder_raises_run_error_with_predict_pys_message(tmp_path, mnist_dir, damage):
    folder = tmp_path / "run"
    shutil.copytree(SHIPPED, folder)
    record = json.loads((folder / "run.json").read_text())
    checkpoint = folder / record["best"]["checkpoint"]
    if damage == "no-run-json":
        (folder / "run.json").unlink()
    elif damage == "bad-json":
        (folder / "run.json").write_text("{ not json")
    else:
        (checkpoint / "weights_1.csv").unlink()
    with pytest.raises(RunError) as caught:
        load_run(folder).predict(np.zeros((1, 784), np.uint8))
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    proc = run_script("predict.py", ["--run", folder], env=child_env(mnist_dir))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"predict.py: {message}"


def test_a_damaged_history_is_named_when_asked_for(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(SHIPPED, folder)
    record = json.loads((folder / "run.json").read_text())
    history = folder / record["last"]["checkpoint"] / "history.csv"
    history.write_text(history.read_text().replace("0.", "zero.", 1))
    run = load_run(folder)  # the network is still there to use
    assert run.predict(np.zeros((1, 784), np.uint8)).shape == (1,)
    with pytest.raises(RunError, match=f"{history}: unreadable"):
        _ = run.history


def test_the_docs_example_runs_as_written(mnist_dir, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "look_at_a_run.py")],
                          cwd=tmp_path, env=child_env(mnist_dir), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("best-model: 2h-relu-momentum")
    record = json.loads((SHIPPED / "run.json").read_text())
    assert f"test {record['best']['test_accuracy']:.2%}" in lines[1]
    assert lines[2] == f"accuracy on the 6,000 test images: {record['best']['test_accuracy']:.2%}"
    assert len(lines) == 3 + 8 and all(" read as " in line for line in lines[3:])


def test_dynamics_are_the_rows_of_dynamics_csv(tmp_path, mnist_dir):
    """A run saved before dynamics were recorded gives []; a new run gives dynamics.csv's
    rows, step 0 first, as floats and ints."""
    assert load_run(SHIPPED).dynamics == []
    proc = run_script("train.py", ["--layers", "1", "--normalization", "simple", "--init", "xavier",
                                   "--activation", "relu", "--l1", "n", "--decay", "n",
                                   "--optimizer", "sgd", "--epochs", "1", "--limit", "2000",
                                   "--seed", "3", "--output-dir", tmp_path, "--name", "d"],
                      env=child_env(mnist_dir))
    assert proc.returncode == 0, proc.stderr
    rows = load_run(tmp_path / "d").dynamics
    with open(tmp_path / "d" / "dynamics.csv", newline="") as f:
        text_rows = list(csv.DictReader(f))
    assert len(rows) == len(text_rows) > 1 and rows[0]["step"] == 0
    assert float(text_rows[-1]["train_loss"]) == rows[-1]["train_loss"]
    assert rows[0]["train_loss"] == pytest.approx(np.log(10), abs=0.5)
