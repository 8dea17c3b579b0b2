"""Tests of mnist_loader: IDX reading and validation on small files (and every kind of damage), the
search order, damaged data through train.py, and the real splits."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    GZ,
    QUICK,
    ROOT,
    assert_fails,
    child_env,
    flags,
    hostile,
    idx_bytes,
    run_folders,
    run_train,
    snapshot,
    write_bytes,
    write_fake_mnist,
    write_idx_images,
    write_idx_labels,
)

import mnist_loader as ml

# Known facts from /work/shared/mnist/README.md.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
README_TRAIN_MEAN = 33.318


def small_images(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8)


def assert_one_line_naming(error: pytest.ExceptionInfo, name: str) -> None:
    message = str(error.value)
    assert name in message
    assert "\n" not in message


# ---------------------------------------------------------------- small files

@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                  "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz"])
def test_images_round_trip_in_every_spelling(tmp_path: Path, name: str) -> None:
    images = small_images()
    write_idx_images(tmp_path / name, images, gz=name.endswith(".gz"))
    read = ml.read_idx_images(tmp_path / name)
    assert read.dtype == np.uint8 and read.shape == (5, 784)
    np.testing.assert_array_equal(read, images)


@pytest.mark.parametrize("gz", [False, True])
def test_labels_round_trip(tmp_path: Path, gz: bool) -> None:
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    path = write_idx_labels(tmp_path / ("labels" + (".gz" if gz else "")), labels, gz=gz)
    read = ml.read_idx_labels(path)
    assert read.dtype == np.uint8 and read.shape == (5,)
    np.testing.assert_array_equal(read, labels)


def _gz_cut_in_half(path: Path) -> None:
    data = gzip.compress(idx_bytes(small_images(50)))
    path.write_bytes(data[: len(data) // 2])


def _gz_without_trailer(path: Path) -> None:
    # the whole payload decompresses, only the CRC/size trailer is missing
    path.write_bytes(gzip.compress(idx_bytes(small_images()))[:-8])


CORRUPT_IMAGES = {
    "wrong magic": (lambda p: write_bytes(p, idx_bytes(small_images(), magic=2049)), "magic number 2049"),
    "wrong dims": (lambda p: write_bytes(p, idx_bytes(small_images(), dims=(27, 29))), "27x29"),
    "truncated header": (lambda p: write_bytes(p, idx_bytes(small_images())[:10]), "truncated header"),
    "truncated payload": (lambda p: write_bytes(p, idx_bytes(small_images())[:-5]),
                          "header says 5 images but the file holds 4 and 779 bytes"),
    "extra bytes": (lambda p: write_bytes(p, idx_bytes(small_images()) + b"abc"), "3 extra bytes"),
    "count says more": (lambda p: write_bytes(p, idx_bytes(small_images(), count=6)),
                        "header says 6 images but the file holds 5"),
    "absurd count": (lambda p: write_bytes(p, idx_bytes(small_images(), count=2**32 - 1)), "more than any"),
    "empty file": (lambda p: write_bytes(p, b""), "empty file"),
    "empty gz": (lambda p: write_bytes(p.with_suffix(".gz"), b"", gz=True), "empty file"),
    "not gzip but .gz": (lambda p: write_bytes(p.with_suffix(".gz"), idx_bytes(small_images())), "gzip"),
    "gzip but not .gz": (lambda p: write_bytes(p, idx_bytes(small_images()), gz=True), "gzip"),
    "truncated gzip": (lambda p: _gz_cut_in_half(p.with_suffix(".gz")), "truncated gzip"),
    "gzip without trailer": (lambda p: _gz_without_trailer(p.with_suffix(".gz")), "truncated gzip"),
    "directory": (lambda p: p.mkdir(), "is a directory, not a file"),
}


@pytest.mark.parametrize("case", CORRUPT_IMAGES)
def test_corrupt_image_file_raises_mnist_error_naming_it(tmp_path: Path, case: str) -> None:
    make, problem = CORRUPT_IMAGES[case]
    make(tmp_path / "images")
    path = next(tmp_path.iterdir())  # the .gz cases write images.gz
    with pytest.raises(ml.MnistError) as error:
        ml.read_idx_images(path)
    assert_one_line_naming(error, path.name)
    assert problem in str(error.value)


@pytest.mark.parametrize("data, problem", [
    (idx_bytes(np.array([1, 2, 10, 3], np.uint8)), "label 10 at position 2"),
    (idx_bytes(np.array([1, 2, 3], np.uint8), magic=2051), "magic number 2051"),
    (idx_bytes(np.array([1, 2, 3], np.uint8))[:-1], "header says 3 labels but the file holds 2"),
    (idx_bytes(np.array([1, 2, 3], np.uint8)) + b"\0", "1 extra bytes"),
])
def test_corrupt_label_file_raises_mnist_error_naming_it(tmp_path: Path, data: bytes, problem: str) -> None:
    path = write_bytes(tmp_path / "train-labels-idx1-ubyte", data)
    with pytest.raises(ml.MnistError) as error:
        ml.read_idx_labels(path)
    assert_one_line_naming(error, "train-labels-idx1-ubyte")
    assert problem in str(error.value)


def test_image_and_label_counts_must_match(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, n_train=6)
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), gz=True)
    with pytest.raises(ml.MnistError) as error:
        ml.load_raw(tmp_path, download=False)
    assert_one_line_naming(error, "train-images-idx3-ubyte.gz")
    assert "6 images but train-labels-idx1-ubyte.gz holds 5 labels" in str(error.value)


def test_files_must_have_the_mnist_counts(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path)
    with pytest.raises(ml.MnistError, match="train-images-idx3-ubyte.gz: holds 6 images, MNIST has 60000"):
        ml.load_raw(tmp_path, download=False)


# ---------------------------------------------------------------- every kind of damage, in-process

def _images(n=3):
    return np.arange(n * 784, dtype=np.uint32).astype(np.uint8).reshape(n, 784)


def _labels(n=3):
    return np.arange(n, dtype=np.uint8) % 10


LOADER_CASES = {
    "empty": lambda kind: b"",
    "header-truncated": lambda kind: idx_bytes(_images() if kind == "images" else _labels())[:5],
    "payload-truncated": lambda kind: idx_bytes(_images() if kind == "images" else _labels())[:-3],
    "wrong-magic": lambda kind: idx_bytes(_images(), magic=2049) if kind == "images" else idx_bytes(_labels(), magic=2051),
    "count-says-more": lambda kind: idx_bytes(_images(), count=4) if kind == "images" else idx_bytes(_labels(), count=4),
    "count-absurd": lambda kind: idx_bytes(_images(), count=2**31) if kind == "images" else idx_bytes(_labels(), count=2**31),
    "extra-bytes": lambda kind: idx_bytes(_images() if kind == "images" else _labels()) + b"xyz",
    "text-file": lambda kind: b"hello, this is not MNIST\n" * 10,
}
LOADER_NEEDLES = {"empty": "empty file", "header-truncated": "truncated header", "payload-truncated": "truncated",
                  "wrong-magic": "magic number", "count-says-more": "truncated", "count-absurd": "more than any MNIST",
                  "extra-bytes": "extra bytes", "text-file": "magic number"}


def _read(kind: str, path: Path):
    return (ml.read_idx_images if kind == "images" else ml.read_idx_labels)(path)


def _assert_mnist_error(excinfo, path: Path, needle: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message and needle in message, message
    assert any(fix in message for fix in ("delete it", "replace", "remove it", "add .gz", "check")), message


@hostile
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", ["images", "labels"])
@pytest.mark.parametrize("case", list(LOADER_CASES))
def test_loader_refuses_damaged_idx_file(tmp_path, case, kind, gz):
    path = write_bytes(tmp_path / (f"{kind}-idx-ubyte" + (".gz" if gz else "")), LOADER_CASES[case](kind), gz)
    with pytest.raises(ml.MnistError) as excinfo:
        _read(kind, path)
    _assert_mnist_error(excinfo, path, LOADER_NEEDLES[case])


@hostile
@pytest.mark.parametrize("case,needle", [
    ("images-28x27", "of size 28x27"), ("label-above-9", "label 10 at position 1"),
    ("gz-name-plain-content", "not a valid gzip file"), ("gz-content-plain-name", "add .gz"),
    ("gz-stream-cut", "truncated gzip data"), ("gz-corrupt-body", "gzip"), ("folder", "is a directory"),
    ("missing", "cannot read it")])
def test_loader_refuses_misnamed_cut_corrupt_or_absent_file(tmp_path, case, needle):
    good_labels = idx_bytes(_labels())
    kind, path = "labels", tmp_path / "labels-idx1-ubyte.gz"
    if case == "images-28x27":
        kind, path = "images", tmp_path / "images-idx3-ubyte"
        path.write_bytes(idx_bytes(_images())[:8] + (28).to_bytes(4, "big") + (27).to_bytes(4, "big")
                         + bytes(3 * 28 * 27))
    elif case == "label-above-9":
        write_idx_labels(path, np.array([1, 10, 2], np.uint8), gz=True)
    elif case == "gz-name-plain-content":
        path.write_bytes(good_labels)
    elif case == "gz-content-plain-name":
        path = tmp_path / "labels-idx1-ubyte"
        path.write_bytes(gzip.compress(good_labels))
    elif case == "gz-stream-cut":
        path.write_bytes(gzip.compress(good_labels)[:-12])
    elif case == "gz-corrupt-body":
        data = bytearray(gzip.compress(idx_bytes(_labels(500))))
        data[20:40] = b"\xff" * 20
        path.write_bytes(bytes(data))
    elif case == "folder":
        path.mkdir()
    with pytest.raises(ml.MnistError) as excinfo:
        _read(kind, path)
    _assert_mnist_error(excinfo, path, needle)


@hostile
def test_loader_refuses_image_and_label_counts_that_differ(tmp_path):
    write_fake_mnist(tmp_path, n_train=6, n_test=4)
    write_idx_labels(tmp_path / GZ["train_labels"], _labels(5), gz=True)
    with pytest.raises(ml.MnistError) as excinfo:
        ml.load_raw(tmp_path, download=False)
    message = str(excinfo.value)
    assert "holds 6 images but train-labels-idx1-ubyte.gz holds 5 labels" in message and "\n" not in message


@hostile
@pytest.mark.parametrize("key", list(GZ), ids=[f"missing-{n}" for n in GZ.values()])
def test_loader_each_file_missing_download_refused_names_it_and_leaves_nothing(tmp_path, key):
    """The mirrors are a closed local port here (see no_internet): the attempt fails at once."""
    write_fake_mnist(tmp_path)
    (tmp_path / GZ[key]).unlink()
    before = snapshot(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ml.MnistError) as excinfo:
        ml.load_raw(tmp_path)
    assert time.monotonic() - t0 < 5
    message = str(excinfo.value)
    assert f"could not download {GZ[key]} from any mirror" in message and "\n" not in message
    assert f"put {GZ[key]} in {tmp_path}" in message
    assert snapshot(tmp_path) == before


@hostile
def test_loader_with_download_off_names_every_missing_file(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / GZ["test_images"]).unlink()
    with pytest.raises(ml.MnistError) as excinfo:
        ml.load_raw(tmp_path, download=False)
    message = str(excinfo.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "train-images" not in message.split("put")[1]


# ---------------------------------------------------------------- search order

@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No MNIST_DIR, and empty stand-ins for data/ and the module's directory."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(ml, "MODULE_DIR", tmp_path / "module")
    monkeypatch.setattr(ml, "DEFAULT_DIR", tmp_path / "module" / "data")
    (tmp_path / "module" / "data").mkdir(parents=True)
    return tmp_path


def test_search_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ml.find_data_dir() is None
    write_fake_mnist(ml.MODULE_DIR)
    assert ml.find_data_dir() == ml.MODULE_DIR
    write_fake_mnist(ml.DEFAULT_DIR)
    assert ml.find_data_dir() == ml.DEFAULT_DIR
    monkeypatch.setenv("MNIST_DIR", str(isolated / "incomplete"))  # not holding the files: look further
    assert ml.find_data_dir() == ml.DEFAULT_DIR
    write_fake_mnist(isolated / "env")
    monkeypatch.setenv("MNIST_DIR", str(isolated / "env"))
    assert ml.find_data_dir() == isolated / "env"
    write_fake_mnist(isolated / "explicit", gz=False)
    assert ml.find_data_dir(isolated / "explicit") == isolated / "explicit"


def test_explicit_dir_is_the_only_place_looked_at(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_mnist(isolated / "env")
    monkeypatch.setenv("MNIST_DIR", str(isolated / "env"))
    (isolated / "explicit").mkdir()
    assert ml.find_data_dir(isolated / "explicit") is None
    with pytest.raises(ml.MnistError) as error:
        ml.load_raw(isolated / "explicit", download=False)
    assert_one_line_naming(error, str(isolated / "explicit"))


def test_dotted_spelling_is_found(isolated: Path) -> None:
    write_fake_mnist(isolated / "d")
    for path in (isolated / "d").iterdir():
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    assert ml.find_data_dir(isolated / "d") == isolated / "d"


def test_missing_files_without_download_say_where_to_put_them(isolated: Path) -> None:
    write_idx_labels(ml.DEFAULT_DIR / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ml.MnistError) as error:
        ml.load_raw(download=False)
    message = str(error.value)
    assert_one_line_naming(error, str(ml.DEFAULT_DIR))
    assert "MNIST_DIR" in message and "train-images-idx3-ubyte.gz" in message
    assert "t10k-labels" not in message  # already there


def test_unknown_normalization_is_a_value_error_before_any_reading(isolated: Path) -> None:
    with pytest.raises(ValueError, match="unknown normalization"):
        ml.load_data("minmax", download=False)
    with pytest.raises(ValueError, match="unknown normalization"):
        ml.normalize(small_images(), "minmax")
    with pytest.raises(ValueError, match="mean"):
        ml.normalize(small_images(), "normal")


# ---------------------------------------------------------------- two spellings of one file

SPELLING_PAIRS = [("", ".gz"), ("", "dotted"), (".gz", "dotted.gz"), ("dotted", "dotted.gz"), ("", "dotted.gz")]


def spelled(name: str, spelling: str) -> str:
    return (name.replace("-idx", ".idx") if "dotted" in spelling else name) + (".gz" if spelling.endswith("gz") else "")


def write_labels_as(directory: Path, spelling: str, labels: np.ndarray) -> Path:
    name = spelled(ml.FILE_NAMES["test_labels"], spelling)
    return write_idx_labels(directory / name, labels, gz=name.endswith(".gz"))


@pytest.mark.parametrize("first, second", SPELLING_PAIRS)
def test_two_spellings_holding_different_data_stop_naming_both(isolated, first, second) -> None:
    """The issue's case: a copy with shuffled labels beside the original must not silently win."""
    d = isolated / "d"
    write_fake_mnist(d, n_test=10_000)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    labels = np.random.default_rng(0).integers(0, 10, 10_000, dtype=np.uint8)
    a = write_labels_as(d, first, labels)
    b = write_labels_as(d, second, np.random.default_rng(1).permutation(labels))  # shuffled: same counts
    for call in (lambda: ml.ensure_data(d, download=False), lambda: ml.load_test_set("simple", data_dir=d)):
        with pytest.raises(ml.MnistError) as error:
            call()
        assert_one_line_naming(error, a.name)
        assert b.name in str(error.value) and "different" in str(error.value)


@pytest.mark.parametrize("first, second", SPELLING_PAIRS)
def test_two_spellings_holding_the_same_data_are_read_without_complaint(isolated, first, second) -> None:
    d = isolated / "d"
    arrays = write_fake_mnist(d, n_test=10_000)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    write_labels_as(d, first, arrays["test_labels"])
    write_labels_as(d, second, arrays["test_labels"])
    assert ml.ensure_data(d, download=False) == d
    np.testing.assert_array_equal(ml.load_test_set("simple", data_dir=d).y, arrays["test_labels"][4000:])


@pytest.mark.parametrize("change", ["one byte", "one byte longer", "one byte shorter", "corrupt gzip"])
def test_same_content_sees_any_difference(tmp_path: Path, change: str) -> None:
    data = idx_bytes(small_images(40))
    plain = write_bytes(tmp_path / "a", data)
    other = {"one byte": data[:-1] + bytes([data[-1] ^ 1]), "one byte longer": data + b"\0",
             "one byte shorter": data[:-1], "corrupt gzip": None}[change]
    gz = tmp_path / "b.gz"
    if other is None:
        gz.write_bytes(gzip.compress(data)[:-20])
    else:
        write_bytes(gz, other, gz=True)
    assert ml._same_content(plain, write_bytes(tmp_path / "c.gz", data, gz=True))
    assert not ml._same_content(plain, gz)
    if other is not None:
        assert not ml._same_content(plain, write_bytes(tmp_path / "d", other))


def test_same_content_streams_instead_of_holding_the_files(tmp_path: Path) -> None:
    """Comparing an 8 MiB file with its .gz must not hold either file in memory (1 MiB pieces)."""
    import tracemalloc
    data = np.random.default_rng(0).integers(0, 4, 8 << 20, dtype=np.uint8).tobytes()
    plain, gz = write_bytes(tmp_path / "a", data), tmp_path / "a.gz"
    gz.write_bytes(gzip.compress(data, compresslevel=1))
    del data
    tracemalloc.start()
    try:
        assert ml._same_content(plain, gz)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB"


# ---------------------------------------------------------------- a folder that is not usable

@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record download attempts instead of making them: a broken folder must not lead to one."""
    calls: list = []
    monkeypatch.setattr(ml, "download_mnist", lambda *a, **k: calls.append((a, k)))
    return calls


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_mnist_dir_that_is_a_file_is_named_not_passed_over(isolated, monkeypatch, no_download, where) -> None:
    write_fake_mnist(ml.DEFAULT_DIR)  # good files further down the search: not silently used instead
    target = _file(isolated / "f") if where == "file" else _file(isolated / "f") / "sub"
    monkeypatch.setenv("MNIST_DIR", str(target))
    for call in (ml.find_data_dir, lambda: ml.ensure_data(), lambda: ml.load_test_set("simple")):
        with pytest.raises(ml.MnistError) as error:
            call()
        assert_one_line_naming(error, f"MNIST_DIR={target}")
        assert ("is a file" if where == "file" else "lies under a file") in str(error.value)
    assert no_download == []


def test_data_dir_that_is_a_file_is_named(isolated, no_download) -> None:
    target = _file(isolated / "f")
    with pytest.raises(ml.MnistError) as error:
        ml.ensure_data(target)
    assert_one_line_naming(error, f"data folder {target} is a file")
    assert no_download == []


def test_default_data_folder_that_is_a_file_is_named_not_downloaded_into(isolated, monkeypatch, no_download) -> None:
    monkeypatch.setattr(ml, "DEFAULT_DIR", _file(isolated / "module" / "datafile"))
    with pytest.raises(ml.MnistError) as error:
        ml.ensure_data()
    assert_one_line_naming(error, str(ml.DEFAULT_DIR))
    assert no_download == []


def _unreadable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Listing folder fails as without read permission (chmod cannot show it: tests may run as root)."""
    real = os.listdir

    def listdir(path):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)
    monkeypatch.setattr(ml.os, "listdir", listdir)


@pytest.mark.parametrize("which", ["MNIST_DIR", "data_dir", "data/"])
def test_unreadable_folder_is_named_not_passed_over_or_downloaded_into(isolated, monkeypatch, no_download,
                                                                       which) -> None:
    folder = {"MNIST_DIR": isolated / "env", "data_dir": isolated / "explicit", "data/": ml.DEFAULT_DIR}[which]
    write_fake_mnist(folder)
    if which == "MNIST_DIR":
        monkeypatch.setenv("MNIST_DIR", str(folder))
        write_fake_mnist(ml.DEFAULT_DIR)  # readable files further down: not silently used instead
    _unreadable(monkeypatch, folder)
    with pytest.raises(ml.MnistError) as error:
        ml.ensure_data(folder if which == "data_dir" else None)
    assert_one_line_naming(error, str(folder))
    assert "cannot read the folder" in str(error.value) and "Permission denied" in str(error.value)
    assert no_download == []


def test_mnist_dir_that_does_not_exist_is_named_when_nothing_is_found(isolated, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_DIR", str(isolated / "typo"))
    with pytest.raises(ml.MnistError) as error:
        ml.ensure_data(download=False)
    assert_one_line_naming(error, f"MNIST_DIR={isolated / 'typo'} does not exist")
    write_fake_mnist(ml.DEFAULT_DIR)
    assert ml.ensure_data(download=False) == ml.DEFAULT_DIR  # data/ is still looked at


# ---------------------------------------------------------------- the test set alone

def write_t10k_only(directory: Path, n_test: int = 4) -> dict[str, np.ndarray]:
    arrays = write_fake_mnist(directory, n_test=n_test)
    for key in ("train_images", "train_labels"):
        (directory / (ml.FILE_NAMES[key] + ".gz")).unlink()
    return arrays


def test_a_folder_with_only_the_t10k_files_serves_the_test_set(isolated, monkeypatch, no_download) -> None:
    arrays = write_t10k_only(isolated / "env", n_test=10_000)
    monkeypatch.setenv("MNIST_DIR", str(isolated / "env"))
    assert ml.find_data_dir(which=("test",)) == isolated / "env"
    assert ml.find_data_dir() is None  # training needs all four: the folder is passed over
    test = ml.load_test_set("simple")
    np.testing.assert_array_equal(test.y, arrays["test_labels"][4000:])
    np.testing.assert_array_equal(test.x, ml.normalize(arrays["test_images"][4000:], "simple"))
    assert no_download == []


def test_which_names_splits(isolated) -> None:
    write_t10k_only(isolated / "d")
    assert ml.find_data_dir(isolated / "d", which="test") == isolated / "d"
    assert ml.find_data_dir(isolated / "d", which=("train",)) is None
    for bad in ((), ("validation",), "t10k"):
        with pytest.raises(ValueError, match="which"):
            ml.find_data_dir(isolated / "d", which=bad)


def test_ensure_data_without_download_names_only_the_missing_files_of_which(isolated) -> None:
    with pytest.raises(ml.MnistError) as error:
        ml.ensure_data(download=False, which=("test",))
    message = str(error.value)
    assert_one_line_naming(error, str(ml.DEFAULT_DIR))
    assert "t10k-images-idx3-ubyte.gz" in message and "train-" not in message


# ---------------------------------------------------------------- normalization

def test_normalization_stats_are_exact() -> None:
    x = np.random.default_rng(3).integers(0, 256, (300, 784), dtype=np.uint8)[::2, 100:]  # not contiguous
    mean, std = ml.normalization_stats(x)
    assert mean == pytest.approx(x.mean(dtype=np.float64), rel=1e-12)
    assert std == pytest.approx(x.std(dtype=np.float64), rel=1e-12)
    assert ml.normalization_stats(np.array([0, 0, 255, 255], np.uint8)) == (127.5, 127.5)


def test_normalize_simple_is_float32_in_unit_range() -> None:
    x = np.arange(256, dtype=np.uint8).reshape(2, 128)
    out = ml.normalize(x, "simple")
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, (x / 255).astype(np.float32))  # correctly rounded x / 255
    assert out.min() == 0 and out.max() == 1
    assert ml.normalize(x, "simple", dtype=np.float64).dtype == np.float64


def test_normalize_normal_round_trip() -> None:
    x = small_images(20)
    mean, std = ml.normalization_stats(x)
    out = ml.normalize(x, "normal", mean, std)
    assert out.dtype == np.float32
    assert abs(out.mean(dtype=np.float64)) < 1e-5 and out.std(dtype=np.float64) == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(out * std + mean, x, atol=1e-3)


# ---------------------------------------------------------------- splits, on rows that encode their index

@pytest.fixture(scope="module")
def indexed_raw() -> tuple[np.ndarray, ...]:
    """Fake raw data: row i of the 70,000 (train then t10k) holds i in its first 3 bytes, label i % 10."""
    ids = np.arange(70_000)
    x = np.zeros((70_000, 784), np.uint8)
    x[:, 0], x[:, 1], x[:, 2] = ids % 256, ids // 256 % 256, ids // 65536
    y = (ids % 10).astype(np.uint8)
    return x[:60_000], y[:60_000], x[60_000:], y[60_000:]


def row_ids(split: ml.Split) -> np.ndarray:
    b = np.rint(split.x[:, :3] * 255).astype(np.int64)
    ids = b[:, 0] + 256 * b[:, 1] + 65536 * b[:, 2]
    np.testing.assert_array_equal(split.y, ids % 10)  # labels travel with their images
    return ids


def test_split_is_the_permutation_of_train_plus_t10k_start(indexed_raw, monkeypatch) -> None:
    monkeypatch.setattr(ml, "load_raw", lambda data_dir=None, download=True: indexed_raw)
    data = ml.load_data("simple", np.random.default_rng(7))
    order = np.random.default_rng(7).permutation(64_000)  # pool index == row id: train 0..59999, t10k 60000..
    np.testing.assert_array_equal(row_ids(data.train), order[:58_000])
    np.testing.assert_array_equal(row_ids(data.val), order[58_000:])
    np.testing.assert_array_equal(row_ids(data.test), np.arange(64_000, 70_000))
    assert data.train.y.dtype == np.int64 and data.mean is None and data.std is None


@pytest.mark.parametrize("limit, n_val", [(100, 100), (10_000, 6000)])
def test_limit_keeps_the_first_examples_and_the_whole_test_set(indexed_raw, monkeypatch, limit, n_val) -> None:
    monkeypatch.setattr(ml, "load_raw", lambda data_dir=None, download=True: indexed_raw)
    data = ml.load_data("simple", np.random.default_rng(7), limit=limit)
    order = np.random.default_rng(7).permutation(64_000)
    np.testing.assert_array_equal(row_ids(data.train), order[:limit])
    np.testing.assert_array_equal(row_ids(data.val), order[58_000:58_000 + n_val])
    np.testing.assert_array_equal(row_ids(data.test), np.arange(64_000, 70_000))


# ---------------------------------------------------------------- damaged data through train.py

def _real_data_dir(tmp_path: Path, mnist_dir: Path) -> Path:
    """A folder with links to the four real files, to spoil one of them."""
    d = tmp_path / "data"
    d.mkdir()
    for name in GZ.values():
        (d / name).symlink_to(mnist_dir / name)
    return d


def _replace(d: Path, key: str, data: bytes | None = None, gz_payload: bytes | None = None) -> None:
    path = d / GZ[key]
    path.unlink()
    if gz_payload is not None:
        path.write_bytes(gzip.compress(gz_payload))
    elif data is not None:
        path.write_bytes(data)


def _spoil_missing(d, m):
    (d / GZ["train_labels"]).unlink()


def _spoil_empty(d, m):
    _replace(d, "train_images", b"")


def _spoil_not_gzip(d, m):
    _replace(d, "train_images", b"<html>404 Not Found</html>\n")


def _spoil_folder(d, m):
    _replace(d, "test_labels")
    (d / GZ["test_labels"]).mkdir()


def _spoil_label_10(d, m):
    raw = bytearray(gzip.decompress((m / GZ["test_labels"]).read_bytes()))
    raw[8 + 1234] = 10
    _replace(d, "test_labels", gz_payload=bytes(raw))


def _spoil_truncated(d, m):
    raw = gzip.decompress((m / GZ["test_images"]).read_bytes())
    _replace(d, "test_images", gz_payload=raw[: len(raw) // 2])


def _spoil_fake_small(d, m):
    for p in d.iterdir():
        p.unlink()
    write_fake_mnist(d)


DATA_CASES = [
    ("train-labels-missing-download-refused", _spoil_missing,
     ["train-labels-idx1-ubyte.gz", "could not download", "set MNIST_DIR"]),
    ("train-images-empty", _spoil_empty, ["train-images-idx3-ubyte.gz", "empty file", "delete it"]),
    ("train-images-gz-not-gzip", _spoil_not_gzip, ["train-images-idx3-ubyte.gz", "not a valid gzip file"]),
    ("t10k-labels-is-a-folder", _spoil_folder, ["t10k-labels-idx1-ubyte.gz", "is a directory"]),
    ("t10k-labels-label-10", _spoil_label_10, ["t10k-labels-idx1-ubyte.gz", "label 10 at position 1234"]),
    ("t10k-images-payload-truncated", _spoil_truncated, ["t10k-images-idx3-ubyte.gz", "truncated"]),
    ("fake-6-train-images", _spoil_fake_small, ["holds 6 images, MNIST has 60000"]),
]


@hostile
@pytest.mark.parametrize("spoil,needles", [c[1:] for c in DATA_CASES], ids=[f"data-{c[0]}" for c in DATA_CASES])
def test_bad_data_dir_through_train_exits_1_one_line_no_run_folder(tmp_path, mnist_dir, spoil, needles):
    d = _real_data_dir(tmp_path, mnist_dir)
    spoil(d, mnist_dir)
    out = tmp_path / "out"
    before = snapshot(d)
    t0 = time.monotonic()
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--data-dir", d])
    elapsed = time.monotonic() - t0
    assert_fails(proc, 1, *needles)
    assert run_folders(out) == []
    assert snapshot(d) == before  # no partial download, nothing rewritten
    assert elapsed < 20, f"took {elapsed:.1f}s"  # a refused download fails fast


@hostile
def test_mnist_dir_pointing_nowhere_falls_back_to_data_and_fails_in_one_line(tmp_path):
    """A copy of the program, so that its data/ fallback is a temporary folder, not the repo's."""
    app = tmp_path / "app"
    app.mkdir()
    for p in ROOT.glob("*.py"):
        shutil.copy(p, app)
    shutil.copytree(ROOT / "kit", app / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "train.py", *flags(), *QUICK, "--output-dir", str(tmp_path / "out")],
                          cwd=app, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env=child_env(MNIST_DIR=str(tmp_path / "nowhere")))
    assert_fails(proc, 1, "could not download", "MNIST_DIR")
    assert list((app / "data").iterdir()) == []  # created for the download, left empty


# ---------------------------------------------------------------- the real files

@pytest.fixture(scope="module")
def raw(mnist_dir: Path) -> tuple[np.ndarray, ...]:
    return ml.load_raw(mnist_dir, download=False)


@pytest.fixture(scope="module")
def simple(mnist_dir: Path) -> ml.MnistData:
    return ml.load_data("simple", np.random.default_rng(1), data_dir=mnist_dir, download=False)


@pytest.fixture(scope="module")
def normal(mnist_dir: Path) -> ml.MnistData:
    return ml.load_data("normal", np.random.default_rng(1), data_dir=mnist_dir, download=False)


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 255).astype(np.uint8)


def moment_stats(x_u8: np.ndarray) -> tuple[float, float]:
    """Mean and std from exact integer sums of x and x**2: an oracle independent of the histogram."""
    s1 = s2 = 0
    for rows in np.array_split(x_u8.reshape(len(x_u8), -1), 16):
        wide = rows.astype(np.int64)
        s1, s2 = s1 + int(wide.sum()), s2 + int((wide * wide).sum())
    mean = s1 / x_u8.size
    return mean, (s2 / x_u8.size - mean**2) ** 0.5


def row_hashes(x_u8: np.ndarray) -> list[bytes]:
    return [hashlib.md5(row).digest() for row in x_u8]


def test_raw_shapes_and_label_counts(raw) -> None:
    train_x, train_y, t10k_x, t10k_y = raw
    assert train_x.shape == (60_000, 784) and t10k_x.shape == (10_000, 784)
    assert train_x.dtype == t10k_x.dtype == train_y.dtype == np.uint8
    assert np.bincount(train_y).tolist() == TRAIN_COUNTS
    assert np.bincount(t10k_y).tolist() == T10K_COUNTS
    assert ml.normalization_stats(train_x)[0] == pytest.approx(README_TRAIN_MEAN, abs=5e-4)


def test_real_split_sizes_types_and_range(simple) -> None:
    for split, n in ((simple.train, 58_000), (simple.val, 6_000), (simple.test, 6_000)):
        assert split.x.shape == (n, 784) and split.x.dtype == np.float32
        assert split.y.shape == (n,) and split.y.dtype == np.int64
        assert split.x.min() == 0 and split.x.max() == 1
    assert simple.normalization == "simple" and simple.mean is None


def test_real_test_set_is_t10k_4000_to_9999(simple, raw) -> None:
    np.testing.assert_array_equal(to_u8(simple.test.x), raw[2][4000:])
    np.testing.assert_array_equal(simple.test.y, raw[3][4000:])


def test_real_splits_are_disjoint_and_cover_all_70000(simple, raw) -> None:
    labels = np.concatenate([simple.train.y, simple.val.y, simple.test.y])
    assert np.bincount(labels).tolist() == [a + b for a, b in zip(TRAIN_COUNTS, T10K_COUNTS)]
    train, val, test = (set(row_hashes(to_u8(s.x))) for s in (simple.train, simple.val, simple.test))
    assert len(train) == 58_000 and len(val) == 6_000 and len(test) == 6_000  # MNIST has no duplicate rows
    assert not (train & val or train & test or val & test)
    assert train | val == set(row_hashes(raw[0])) | set(row_hashes(raw[2][:4000]))


def test_same_seed_same_split_other_seed_other_split(raw, monkeypatch) -> None:
    monkeypatch.setattr(ml, "load_raw", lambda data_dir=None, download=True: raw)
    a, b, c = (ml.load_data("simple", np.random.default_rng(seed), limit=500) for seed in (5, 5, 6))
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.val.y, b.val.y)
    assert not np.array_equal(a.train.x, c.train.x)
    assert not np.array_equal(a.val.x, c.val.x)


def test_normal_stats_come_from_the_training_split_only(normal, simple, raw) -> None:
    mean, std = moment_stats(to_u8(simple.train.x))  # same seed, so the same rows
    assert normal.mean == pytest.approx(mean, rel=1e-12) and normal.std == pytest.approx(std, rel=1e-12)
    assert normal.mean == pytest.approx(README_TRAIN_MEAN, abs=0.3)
    everything = np.concatenate([raw[0], raw[2]])
    assert abs(ml.normalization_stats(everything)[0] - normal.mean) > 1e-3
    assert abs(normal.train.x.mean(dtype=np.float64)) < 1e-4
    assert normal.train.x.std(dtype=np.float64) == pytest.approx(1, abs=1e-4)
    for split, plain in ((normal.val, simple.val), (normal.test, simple.test)):  # the same stats applied
        np.testing.assert_array_equal(split.x, ml.normalize(to_u8(plain.x), "normal", normal.mean, normal.std))
        np.testing.assert_allclose(split.x * normal.std + normal.mean, plain.x * 255, atol=1e-3)


def test_normal_stats_after_limit(raw, monkeypatch) -> None:
    monkeypatch.setattr(ml, "load_raw", lambda data_dir=None, download=True: raw)
    data = ml.load_data("normal", np.random.default_rng(2), limit=300)
    plain = ml.load_data("simple", np.random.default_rng(2), limit=300)
    assert (data.mean, data.std) == pytest.approx(moment_stats(to_u8(plain.train.x)), rel=1e-12)
    assert len(data.train.x) == len(data.val.x) == 300 and len(data.test.x) == 6000


def test_load_test_set_matches_load_data(normal, simple, mnist_dir) -> None:
    test = ml.load_test_set("normal", normal.mean, normal.std, data_dir=mnist_dir, download=False)
    np.testing.assert_array_equal(test.x, normal.test.x)
    np.testing.assert_array_equal(test.y, normal.test.y)
    np.testing.assert_array_equal(ml.load_test_set("simple", data_dir=mnist_dir).x, simple.test.x)


def test_kept_files_are_read_once_and_again_when_a_file_changes(tmp_path, mnist_dir, monkeypatch) -> None:
    """keep_files() (a study's worker): the next load_data reads no file and gives the same
    splits and fingerprints; a changed labels file is read again."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ml.FILE_NAMES.values():
        source = ml._resolve(Path(mnist_dir), name)
        shutil.copyfile(source, folder / source.name)  # not its read-only mode
    monkeypatch.setattr(ml, "_kept", None)
    plain = ml.load_data("normal", np.random.default_rng(3), data_dir=folder)
    ml.keep_files()
    first = ml.load_data("normal", np.random.default_rng(3), data_dir=folder)
    real_load_raw = ml.load_raw

    def no_reading(*args, **kwargs):
        raise AssertionError("the files were read again")

    monkeypatch.setattr(ml, "load_raw", no_reading)
    second = ml.load_data("normal", np.random.default_rng(3), data_dir=folder)
    for data in (first, second):
        assert data.fingerprint == plain.fingerprint and data.mean == plain.mean
        for split in ("train", "val", "test"):
            assert np.array_equal(getattr(data, split).x, getattr(plain, split).x)
            assert np.array_equal(getattr(data, split).y, getattr(plain, split).y)
    monkeypatch.setattr(ml, "load_raw", real_load_raw)
    labels = next(folder.glob("train-labels*"))
    with gzip.open(labels) as f:
        raw = bytearray(f.read())
    raw[8] = (raw[8] + 1) % 10  # the first training label changes
    time.sleep(0.01)
    with gzip.open(labels, "wb") as f:
        f.write(raw)
    changed = ml.load_data("normal", np.random.default_rng(3), data_dir=folder)
    assert changed.fingerprint["train_labels"] != plain.fingerprint["train_labels"]
    assert changed.fingerprint["train_images"] == plain.fingerprint["train_images"]
