"""Oracle tests for augment.py: exact pixel moves, identity parameters, np.rot90,
repeatability, the fill value, and the training loop's use of it."""
from __future__ import annotations

import numpy as np
import pytest

import optim
import training
from kit import augment
from kit.augment import Augmenter, affine_images, shift_images
from network import Network

FILL = -0.4242  # the normalized value of a black pixel, as "normal" normalization gives


def lit_pixel_images(n: int, row: int = 14, col: int = 13) -> np.ndarray:
    """n images of fill with one pixel of 1 at (row, col)."""
    block = np.full((n, 784), FILL, np.float32)
    block[:, row * 28 + col] = 1
    return block


def lit_position(image: np.ndarray) -> tuple[int, int]:
    row, col = divmod(int(np.argmax(image)), 28)
    return row, col


def test_shift_moves_a_lit_pixel_exactly():
    """shift_images moves right by dx and down by dy; every other pixel is fill."""
    dx = np.array([1, -2, 0, 2, 0])
    dy = np.array([0, 2, -1, -2, 0])
    block = lit_pixel_images(5)
    shift_images(block, dx, dy, FILL)
    for image, x, y in zip(block, dx, dy):
        assert lit_position(image) == (14 + y, 13 + x)
        assert np.count_nonzero(image == 1) == 1 and np.count_nonzero(image == FILL) == 783


def test_shift_uncovers_fill_and_drops_what_leaves():
    """A pixel shifted off the edge is gone; the uncovered column holds fill."""
    block = np.arange(2 * 784, dtype=np.float32).reshape(2, 784)
    original = block.copy()
    shift_images(block, np.array([2, 0]), np.array([0, -1]), FILL)
    a, b = block.reshape(2, 28, 28), original.reshape(2, 28, 28)
    assert np.all(a[0, :, :2] == FILL) and np.array_equal(a[0, :, 2:], b[0, :, :-2])
    assert np.all(a[1, -1, :] == FILL) and np.array_equal(a[1, :-1, :], b[1, 1:, :])


def test_augmenter_shift_stays_within_two_pixels_and_uses_every_shift():
    """Random shifts are whole pixels within +-2 each way, all 25 of them occur, and each
    image keeps its lit pixel and otherwise fill."""
    block = lit_pixel_images(2000)
    Augmenter("shift", FILL, np.random.default_rng(0)).apply(block)
    moves = {(r - 14, c - 13) for r, c in map(lit_position, block)}
    assert moves == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    assert np.all(np.count_nonzero(block == 1, axis=1) == 1)
    assert np.all(np.count_nonzero(block == FILL, axis=1) == 783)


@pytest.mark.parametrize("kind", augment.KINDS)
def test_same_seed_same_images(kind):
    """The same seed gives the same augmented block; another seed another."""
    images = np.random.default_rng(3).random((64, 784)).astype(np.float32)
    runs = []
    for seed in (1, 1, 2):
        block = images.copy()
        Augmenter(kind, FILL, np.random.default_rng(seed)).apply(block)
        runs.append(block)
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert not np.array_equal(runs[0], images)


def test_affine_identity_parameters_are_the_identity():
    """Angle 0, scale 1, shift 0 gives back every image bit for bit."""
    images = np.random.default_rng(0).standard_normal((10, 784)).astype(np.float32)
    block = images.copy()
    affine_images(block, np.zeros(10), np.ones(10), np.zeros(10), np.zeros(10), FILL)
    assert np.array_equal(block, images)


def test_affine_quarter_turn_is_rot90_and_whole_shift_is_shift():
    """A rotation of +90 degrees is np.rot90 (counterclockwise as displayed); a whole-pixel
    translation equals shift_images, fill included."""
    images = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    block = images.copy()
    affine_images(block, np.full(3, np.pi / 2), np.ones(3), np.zeros(3), np.zeros(3), FILL)
    for got, image in zip(block, images):
        np.testing.assert_allclose(got.reshape(28, 28), np.rot90(image.reshape(28, 28)), atol=1e-5)
    dx, dy = np.array([1, -2, 2]), np.array([2, 0, -1])
    moved, shifted = images.copy(), images.copy()
    affine_images(moved, np.zeros(3), np.ones(3), dx.astype(float), dy.astype(float), FILL)
    shift_images(shifted, dx, dy, FILL)
    np.testing.assert_allclose(moved, shifted, atol=1e-6)


def test_affine_half_pixel_shift_averages_neighbours():
    """Bilinear sampling: a shift of half a pixel right makes each pixel the mean of
    itself and its left neighbour (fill beyond the left edge)."""
    image = np.random.default_rng(0).random((1, 784)).astype(np.float32)
    block = image.copy()
    affine_images(block, np.zeros(1), np.ones(1), np.full(1, 0.5), np.zeros(1), FILL)
    src = image.reshape(28, 28)
    left = np.concatenate([np.full((28, 1), FILL, np.float32), src[:, :-1]], axis=1)
    np.testing.assert_allclose(block.reshape(28, 28), (src + left) / 2, atol=1e-6)


def test_affine_scale_enlarges_about_the_centre():
    """Scale 3 maps the pixel at offset (d_row, d_col) from the centre (13.5, 13.5) to three
    times that offset."""
    block = lit_pixel_images(1, row=16, col=11)  # offset (+2.5, -2.5)
    affine_images(block, np.zeros(1), np.full(1, 3.0), np.zeros(1), np.zeros(1), FILL)
    image = block[0].reshape(28, 28)
    assert image[21, 6] == pytest.approx(1.0)  # offset (+7.5, -7.5): samples exactly the lit pixel
    assert image[16, 11] == pytest.approx(FILL)  # the original place now samples near the centre: fill
    assert np.all(image >= FILL - 1e-6)


def test_augmenter_affine_keeps_values_in_range_and_fills_the_corners():
    """Random affine moves blend pixel values (never beyond their range) and bring fill in."""
    block = np.ones((500, 784), np.float32)
    Augmenter("affine", FILL, np.random.default_rng(0)).apply(block)
    assert block.min() >= FILL - 1e-6 and block.max() <= 1 + 1e-6
    assert np.mean(block < 1 - 1e-6) > 0.01  # fill came in at the edges of most images


def reference_affine(images: np.ndarray, angle, scale, dx, dy, fill: float) -> np.ndarray:
    """affine_images written plainly, in float64, one image at a time: the inverse map of
    every output pixel, its four neighbours (fill outside the image), bilinear weights."""
    side, centre = 28, 13.5
    rows, cols = np.mgrid[0:side, 0:side]
    out = np.empty((len(images), side, side))
    for k, image in enumerate(images):
        src = image.reshape(side, side).astype(np.float64)
        u, v = cols - centre - dx[k], rows - centre - dy[k]
        cos, sin = np.cos(angle[k]), np.sin(angle[k])
        x = centre + (cos * u - sin * v) / scale[k]
        y = centre + (sin * u + cos * v) / scale[k]
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0

        def tap(r, c, src=src):
            inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)
            return np.where(inside, src[np.clip(r, 0, side - 1), np.clip(c, 0, side - 1)], fill)

        out[k] = ((1 - fy) * ((1 - fx) * tap(y0, x0) + fx * tap(y0, x0 + 1))
                  + fy * ((1 - fx) * tap(y0 + 1, x0) + fx * tap(y0 + 1, x0 + 1)))
    return out.reshape(len(images), -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_matches_the_plain_float64_reference(dtype):
    """Wide random moves (any angle, scale 0.4 to 2.5, shifts up to 8 pixels: taps far
    outside) agree with the plain implementation, over blocks longer than a chunk, a
    partial last chunk, and the same work buffers reused for a block of another size."""
    rng = np.random.default_rng(5)
    work = None
    for n in (2 * augment.AffineWork.CHUNK + 44, 70):
        images = rng.random((n, 784)).astype(dtype)
        angle, scale = rng.uniform(-np.pi, np.pi, n), rng.uniform(0.4, 2.5, n)
        dx, dy = rng.uniform(-8, 8, n), rng.uniform(-8, 8, n)
        block = images.copy()
        work = affine_images(block, angle, scale, dx, dy, FILL, work)
        assert block.dtype == dtype
        np.testing.assert_allclose(block, reference_affine(images, angle, scale, dx, dy, FILL), atol=1e-4)


def test_affine_lands_a_lit_pixel_where_the_map_says():
    """A rotation by a non-right angle, a scale and a shift chosen so that the lit pixel's
    offset from the centre, p, maps exactly onto the offset q (+ the shift) of another pixel:
    that pixel samples the lit one exactly, and every other pixel is dimmer."""
    row, col = 12, 18                            # offset p = (u, v) = (4.5, -1.5)
    p, q = complex(4.5, 1.5), complex(-1.5, 6.5)  # u - i v: up is +imaginary, counterclockwise +
    turn = q / p                                 # scale * e^(i angle) takes p to q
    dx, dy = 2.0, -1.0
    block = lit_pixel_images(1, row, col)
    affine_images(block, np.array([np.angle(turn)]), np.array([abs(turn)]),
                  np.array([dx]), np.array([dy]), FILL)
    target = (round(13.5 - q.imag + dy), round(13.5 + q.real + dx))  # (row, column)
    image = block[0].reshape(28, 28)
    assert image[target] == pytest.approx(1.0, abs=1e-5)
    assert lit_position(block[0]) == target
    assert np.sort(image, axis=None)[-2] < 0.9


def test_affine_brings_in_exactly_fill_and_stays_within_the_values():
    """Shrunk to half, the corners sample far outside: exactly fill; the centre samples the
    image: exactly its value. Random moves never leave [min(fill, x), max(fill, x)]."""
    block = np.ones((1, 784), np.float32)
    affine_images(block, np.zeros(1), np.full(1, 0.5), np.zeros(1), np.zeros(1), FILL)
    image = block[0].reshape(28, 28)
    assert np.all(image[[0, 0, -1, -1], [0, -1, 0, -1]] == np.float32(FILL))
    assert np.all(image[10:18, 10:18] == 1)
    images = np.random.default_rng(1).uniform(-3, 5, (300, 784)).astype(np.float32)
    block = images.copy()
    Augmenter("affine", FILL, np.random.default_rng(2)).apply(block)
    assert block.min() >= min(FILL, images.min()) - 1e-5 and block.max() <= images.max() + 1e-5


@pytest.mark.parametrize("kwargs, message", [(dict(kind="flip"), "augment must be one of"),
                                             (dict(fill=float("nan")), "finite")])
def test_bad_augmenter_arguments(kwargs, message):
    args = dict(kind="shift", fill=0.0, rng=np.random.default_rng(0)) | kwargs
    with pytest.raises(ValueError, match=message):
        Augmenter(**args)


def test_non_square_rows_are_refused():
    with pytest.raises(ValueError, match="not square"):
        shift_images(np.zeros((2, 780), np.float32), np.zeros(2, int), np.zeros(2, int), 0.0)


class RecordingNetwork(Network):
    """A Network that remembers the rows and labels of every backprop call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen, self.labels = [], []

    def backprop(self, x, y_onehot, *args, **kwargs):
        self.seen.append(x.copy())
        self.labels.append(y_onehot.argmax(axis=1))
        super().backprop(x, y_onehot, *args, **kwargs)


def test_train_epoch_augments_training_rows_only_and_keeps_labels():
    """With augment, every step sees a shifted copy of its example (one lit pixel moved by at
    most 2, under its own label); x itself is never changed."""
    n = 64
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(4, 24, n), rng.integers(4, 24, n)
    x = np.full((n, 784), FILL, np.float32)
    x[np.arange(n), rows * 28 + cols] = 1 + np.arange(n)  # pixel value identifies the example
    y = rng.integers(0, 10, n)
    original = x.copy()
    net = RecordingNetwork([784, 10], "relu", "xavier", rng)
    training.train_epoch(net, x, y, optim.SGD(), 0.0, rng, batch_size=4,
                         augment=Augmenter("shift", FILL, np.random.default_rng(1)))
    assert np.array_equal(x, original)
    seen, labels = np.concatenate(net.seen), np.concatenate(net.labels)
    moved = 0
    for image, label in zip(seen, labels):
        k = int(image.max()) - 1
        r, c = lit_position(image)
        assert label == y[k]
        assert abs(r - rows[k]) <= 2 and abs(c - cols[k]) <= 2
        moved += (r, c) != (rows[k], cols[k])
    assert moved > n // 2
