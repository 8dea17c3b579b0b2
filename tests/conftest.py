"""Shared test helpers: where the real MNIST files are, and writers for small IDX files."""

from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

# The project modules live one level up; make them importable however pytest is started.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnist_loader  # noqa: E402

REAL_FILE_NAMES = [name + ".gz" for name in mnist_loader.FILE_NAMES.values()]


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """$MNIST_DIR when it holds the four files; otherwise skip the test (fail it under CI)."""
    env = os.environ.get("MNIST_DIR")
    if env and mnist_loader.find_data_dir(env) is not None:
        return Path(env).resolve()
    message = f"real MNIST files not found: set MNIST_DIR (now {env!r}) to a directory holding them"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def idx_bytes(array: np.ndarray, magic: int | None = None, count: int | None = None,
              dims: tuple[int, ...] | None = None) -> bytes:
    """IDX encoding of uint8 images (N, 28, 28) / (N, 784) or labels (N,); the keywords forge the header."""
    array = np.asarray(array, dtype=np.uint8)
    is_images = array.ndim > 1
    if is_images:
        array = array.reshape(len(array), 28, 28)
    magic = (2051 if is_images else 2049) if magic is None else magic
    count = len(array) if count is None else count
    dims = array.shape[1:] if dims is None else dims
    return struct.pack(f">{2 + len(dims)}I", magic, count, *dims) + array.tobytes()


def write_bytes(path: str | os.PathLike, data: bytes, gz: bool = False) -> Path:
    """Write data to path, gzip-compressed when gz (the name is used as given)."""
    path = Path(path)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_images(path: str | os.PathLike, images: np.ndarray, gz: bool = False, **header) -> Path:
    """Write uint8 images (N, 28, 28) or (N, 784) as an IDX file; header= magic, count, dims overrides."""
    return write_bytes(path, idx_bytes(np.asarray(images).reshape(len(images), 28, 28), **header), gz)


def write_idx_labels(path: str | os.PathLike, labels: np.ndarray, gz: bool = False, **header) -> Path:
    """Write uint8 labels (N,) as an IDX file; header= magic, count overrides."""
    return write_bytes(path, idx_bytes(np.asarray(labels).reshape(-1), **header), gz)


def write_fake_mnist(directory: str | os.PathLike, n_train: int = 6, n_test: int = 4, gz: bool = True,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Write all four files (small, random) into directory; return the arrays keyed like FILE_NAMES."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 784), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 784), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        name = mnist_loader.FILE_NAMES[key] + (".gz" if gz else "")
        writer = write_idx_images if key.endswith("images") else write_idx_labels
        writer(directory / name, array, gz=gz)
    return arrays
