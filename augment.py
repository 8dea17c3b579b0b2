"""Data augmentation for training images: random whole-pixel shifts, or small
random affine moves (rotation, scaling and shift) with bilinear sampling.

Images are rows of a (B, side * side) block, already normalized; a pixel moved in
from outside the image gets `fill`, the normalized value of a black pixel. Only
the training loop uses this, on each block of images it gathers; validation and
test images are never augmented.
"""
from __future__ import annotations

import math

import numpy as np

KINDS = ("shift", "affine")
MAX_SHIFT = 2            # pixels each way, both kinds
MAX_DEGREES = 10.0       # affine: rotation drawn from [-10, 10] degrees
SCALES = (0.9, 1.1)      # affine: scale drawn from this range


class Augmenter:
    """Moves every image of a block by its own random draw, in place.

    kind: "shift" (a whole-pixel shift of up to MAX_SHIFT pixels each way) or
        "affine" (rotation up to MAX_DEGREES, scale in SCALES, and a shift of up
        to MAX_SHIFT pixels each way, not whole, sampled bilinearly).
    fill: the value of the background (a black pixel after normalization).
    rng: the Generator that draws the moves: the same seed gives the same images.
    """

    def __init__(self, kind: str, fill: float, rng: np.random.Generator):
        if kind not in KINDS:
            raise ValueError(f"augment must be one of {KINDS}, got {kind!r}")
        if not math.isfinite(fill):
            raise ValueError(f"the fill value must be a finite number, got {fill}")
        self.kind = kind
        self.fill = float(fill)
        self.rng = rng
        self._pad: np.ndarray | None = None  # reused padded copy of a block

    def apply(self, block: np.ndarray) -> None:
        """Move each row of block (B, side * side), a C-contiguous array, in place."""
        n = len(block)
        if self.kind == "shift":
            dx = self.rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, n)
            dy = self.rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, n)
            self._pad = shift_images(block, dx, dy, self.fill, self._pad)
        else:
            angle = np.radians(self.rng.uniform(-MAX_DEGREES, MAX_DEGREES, n))
            scale = self.rng.uniform(*SCALES, n)
            dx = self.rng.uniform(-MAX_SHIFT, MAX_SHIFT, n)
            dy = self.rng.uniform(-MAX_SHIFT, MAX_SHIFT, n)
            self._pad = affine_images(block, angle, scale, dx, dy, self.fill, self._pad)


def image_side(block: np.ndarray) -> int:
    """The side of the square images whose pixels are the rows of block (B, side * side)."""
    side = math.isqrt(block.shape[1])
    if side * side != block.shape[1]:
        raise ValueError(f"rows of {block.shape[1]} pixels are not square images")
    return side


def shift_images(block: np.ndarray, dx: np.ndarray, dy: np.ndarray, fill: float,
                 pad: np.ndarray | None = None) -> np.ndarray:
    """Shift image k of block (B, side * side) right by dx[k] and down by dy[k] whole
    pixels (negative: left, up), in place; uncovered pixels get fill.

    The images are copied once into a buffer with a border of fill as wide as
    the largest shift; then each of the (at most 25) distinct shifts moves all
    its images with one gather from that buffer, a window per shift, so the cost
    is a few passes over the block, not a Python loop over images.
    pad: an earlier return value to reuse (its border must hold the same fill).
    Returns the padded buffer.
    """
    n, side = len(block), image_side(block)
    dx, dy = np.asarray(dx, np.int64), np.asarray(dy, np.int64)
    margin = int(max(np.abs(dx).max(initial=0), np.abs(dy).max(initial=0)))
    if margin >= side:
        raise ValueError(f"a shift of {margin} pixels moves a {side}-pixel image out of sight")
    pad = _padded(pad, n, side, margin, fill, block.dtype)
    images = block.reshape(n, side, side)
    pad[:n, margin:margin + side, margin:margin + side] = images
    code = (dy + margin) * (2 * margin + 1) + (dx + margin)
    order = np.argsort(code, kind="stable")
    starts = np.flatnonzero(np.diff(code[order], prepend=-1))
    for group in np.split(order, starts[1:]):
        sx, sy = int(dx[group[0]]), int(dy[group[0]])
        if sx == 0 and sy == 0:
            continue
        r, c = margin - sy, margin - sx  # out[i, j] = in[i - dy, j - dx]
        images[group] = pad[group, r:r + side, c:c + side]
    return pad


def affine_images(block: np.ndarray, angle: np.ndarray, scale: np.ndarray, dx: np.ndarray,
                  dy: np.ndarray, fill: float, pad: np.ndarray | None = None) -> np.ndarray:
    """Rotate image k of block (B, side * side) by angle[k] radians (counterclockwise
    as displayed, np.rot90's sense) and scale it by scale[k] about its centre,
    then shift it right by dx[k] and down by dy[k] pixels; in place, bilinear.

    Each output pixel samples the source at the inverse map of its position; a
    sample outside the image blends in fill. All four neighbours of every pixel
    of the block come from one gather (np.take) into a padded copy.
    pad: an earlier return value to reuse (its border must hold the same fill).
    Returns the padded buffer.
    """
    n, side = len(block), image_side(block)
    dtype = block.dtype
    pad = _padded(pad, n, side, 1, fill, dtype, extra=1)  # 1 before, 2 after: x0 + 1 stays inside
    width = side + 3
    pad[:n, 1:1 + side, 1:1 + side] = block.reshape(n, side, side)
    centre = (side - 1) / 2
    grid = np.arange(side, dtype=dtype) - dtype.type(centre)
    u = np.tile(grid, side)[None, :]      # column of each pixel, from the centre
    v = np.repeat(grid, side)[None, :]    # row of each pixel, from the centre
    # Source position (the inverse map): rotate (u - dx, v - dy) by -angle, divide by
    # scale, back to pixel indices; the shift and the centre fold into one constant per image.
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    dx, dy = np.asarray(dx, np.float64), np.asarray(dy, np.float64)
    x_const = (centre - cos * dx + sin * dy).astype(dtype)[:, None]
    y_const = (centre - sin * dx - cos * dy).astype(dtype)[:, None]
    cos, sin = cos.astype(dtype)[:, None], sin.astype(dtype)[:, None]
    sx = cos * u
    sx -= sin * v
    sx += x_const
    sy = sin * u
    sy += cos * v
    sy += y_const
    # Beyond one pixel outside, every neighbour is fill: clamp there.
    np.clip(sx, -1, side, out=sx)
    np.clip(sy, -1, side, out=sy)
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    # int32: a block of 1,024 padded 31 x 31 images has under a million pixels.
    index = (y0 + 1).astype(np.int32)
    index *= width
    index += (x0 + 1).astype(np.int32)
    index += (np.arange(n, dtype=np.int32) * (width * width))[:, None]
    corners = np.take(pad.reshape(-1), index[None] + np.array([0, 1, width, width + 1], np.int32)[:, None, None])
    top = corners[0] * (1 - fx)
    top += corners[1] * fx
    bottom = corners[2] * (1 - fx)
    bottom += corners[3] * fx
    top *= 1 - fy
    bottom *= fy
    np.add(top, bottom, out=block)
    return pad


def _padded(pad: np.ndarray | None, n: int, side: int, margin: int, fill: float,
            dtype: np.dtype, extra: int = 0) -> np.ndarray:
    """A (>= n, side + 2 margin + extra, same) buffer whose border holds fill; pad if it fits."""
    size = side + 2 * margin + extra
    if pad is None or len(pad) < n or pad.shape[1:] != (size, size) or pad.dtype != dtype:
        pad = np.full((n, size, size), fill, dtype)
    return pad
