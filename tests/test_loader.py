"""Tests of mnist_loader: IDX reading and validation on small files, the search order, and the real splits."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

import mnist_loader as ml
from conftest import idx_bytes, write_bytes, write_fake_mnist, write_idx_images, write_idx_labels

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
