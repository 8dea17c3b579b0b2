"""The data a run trained on, recorded as the sha256 of each decompressed MNIST file: a
resume on other data is refused, predict.py says when its t10k files are not the run's,
and runs saved before fingerprints resume as before, with a note."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    QUICK,
    assert_fails,
    child_env,
    flags,
    hostile,
    run_script,
    run_train,
    show,
    write_idx_images,
    write_idx_labels,
)

import mnist_loader
from kit.record import RECORD, Run

# The sha256 of each decompressed file, as /work/shared/mnist/README.md publishes them.
PUBLISHED = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@pytest.fixture(scope="module")
def raw(mnist_dir):
    return mnist_loader.load_raw(mnist_dir, download=False)


@pytest.fixture(scope="module")
def shifted(raw, tmp_path_factory) -> Path:
    """A copy of MNIST whose labels are all shifted by one (9 becomes 0): the same sizes and
    pixels, so the same normalization, but other data."""
    folder = tmp_path_factory.mktemp("shifted")
    train_x, train_y, t10k_x, t10k_y = raw
    write_idx_images(folder / "train-images-idx3-ubyte", train_x)
    write_idx_labels(folder / "train-labels-idx1-ubyte", (train_y + 1) % 10)
    write_idx_images(folder / "t10k-images-idx3-ubyte", t10k_x)
    write_idx_labels(folder / "t10k-labels-idx1-ubyte", (t10k_y + 1) % 10)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, mnist_dir) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = run_train([*flags(epochs="2"), *QUICK, "--output-dir", out, "--name", "run"],
                     env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    return out / "run"


def test_the_fingerprint_is_the_published_sha256_of_each_file(mnist_dir, raw):
    data = mnist_loader.load_data("simple", np.random.default_rng(0), data_dir=mnist_dir, limit=10)
    assert data.fingerprint == PUBLISHED
    assert data.folder == Path(mnist_dir).resolve()
    t0 = time.perf_counter()
    assert [mnist_loader.fingerprint(a) for a in raw] == list(PUBLISHED.values())
    cost = time.perf_counter() - t0
    assert cost < 1.0, f"fingerprinting the four files took {1000 * cost:.0f} ms"  # ~30 ms here


def test_a_run_records_the_fingerprint_and_folder_of_its_data(run_dir, mnist_dir):
    data = Run.load(run_dir).record.data
    assert data == {"fingerprint": PUBLISHED, "folder": str(Path(mnist_dir).resolve())}


@hostile
def test_resume_on_shifted_labels_is_refused_naming_both_folders(run_dir, shifted, mnist_dir, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    before = (target / RECORD).read_bytes()
    proc = run_train(["--resume", target, "--epochs", "3", "--no-show", "--data-dir", shifted],
                     env=child_env(mnist_dir))
    assert_fails(proc, 2, str(shifted), str(Path(mnist_dir).resolve()), "train-labels-idx1-ubyte",
                 "t10k-labels-idx1-ubyte", "--data-dir")
    assert (target / RECORD).read_bytes() == before


@hostile
def test_predict_says_when_its_t10k_files_are_not_the_runs(run_dir, shifted, mnist_dir):
    proc = run_script("predict.py", ["--run", run_dir, "--no-show", "--data-dir", shifted,
                                     "--save", shifted.parent / "grid.png"], env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    said = " ".join(proc.stdout.split())
    assert "Note: t10k-labels-idx1-ubyte in" in said and "are not the files the run was trained with" in said
    assert str(Path(mnist_dir).resolve()) in said
    same = run_script("predict.py", ["--run", run_dir, "--no-show", "--save", shifted.parent / "grid2.png"],
                      env=child_env(mnist_dir))
    assert same.returncode == 0 and "Note:" not in same.stdout, show(same)


@hostile
def test_a_run_saved_before_fingerprints_resumes_with_a_note(run_dir, mnist_dir, tmp_path):
    target = tmp_path / "old"
    shutil.copytree(run_dir, target)
    record = json.loads((target / RECORD).read_text())
    del record["data"]
    (target / RECORD).write_text(json.dumps(record, indent=2))
    proc = run_train(["--resume", target, "--epochs", "3", "--no-show"], env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    assert "saved before runs recorded a fingerprint" in " ".join(proc.stdout.split()), show(proc)
    assert Run.load(target).record.epochs_completed == 3
    assert Run.load(target).record.data is None  # not claimed for the epochs before
