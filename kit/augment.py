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
        self._pad: np.ndarray | None = None  # shift: reused padded copy of a block
        self._work: AffineWork | None = None  # affine: reused buffers

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
            self._work = affine_images(block, angle, scale, dx, dy, self.fill, self._work)


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
                  dy: np.ndarray, fill: float, work: AffineWork | None = None) -> AffineWork:
    """Rotate image k of block (B, side * side) by angle[k] radians (counterclockwise
    as displayed, np.rot90's sense) and scale it by scale[k] about its centre,
    then shift it right by dx[k] and down by dy[k] pixels; in place, bilinear.

    Each output pixel samples the source at the inverse map of its position; a
    sample outside the image blends in fill. block must be C-contiguous.
    work: an earlier return value to reuse (its buffers and fill border), or None.
    Returns the work buffers, for the next call.
    """
    n, side = len(block), image_side(block)
    work = AffineWork.fit(work, n, side, fill, block.dtype)
    # The inverse map is affine, so a source coordinate is a term of the output
    # column plus a term of the output row: (2, B, side) tables for x and y, small
    # enough for float64; one add per pixel then builds the coordinates.
    grid = np.arange(side) - (side - 1) / 2   # output column or row, from the centre
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    dx, dy = np.asarray(dx, np.float64), np.asarray(dy, np.float64)
    # Source (x, y) = centre + R(-angle) (u - dx, v - dy) / scale, plus the pad's 1;
    # the shift and the centre fold into one constant per image.
    origin = 1 + (side - 1) / 2
    of_col = np.stack([cos[:, None] * grid, sin[:, None] * grid]).astype(block.dtype)
    of_row = np.stack([(origin - cos * dx + sin * dy)[:, None] - sin[:, None] * grid,
                       (origin - sin * dx - cos * dy)[:, None] + cos[:, None] * grid]).astype(block.dtype)
    for lo in range(0, n, work.chunk):
        hi = min(lo + work.chunk, n)
        work.sample(block[lo:hi], of_col[:, lo:hi], of_row[:, lo:hi])
    return work


class AffineWork:
    """The buffers affine_images reuses from call to call, for up to `chunk` images
    at a time.

    pad holds each image of a chunk with a border of fill, 1 pixel before and 2
    after, so that all four taps of a source position clipped to [-1, side] (image
    coordinates) are inside it and a tap outside the image reads fill: no masks.
    Sampling a chunk is a fixed list of whole-array operations with out=, in the
    block's dtype (float32 in training: no float64 temporaries), and four np.take
    gathers with int64 (intp) indices, np.take's own index type.
    """

    # Images per pass. Measured on a 1,024-image block, step by step: all at once,
    # the buffers (~30 MB) fall out of the CPU cache and the four np.take cost 5.3 ms;
    # in chunks of 128 (~3.7 MB) 1.3 ms, and the whole sampling about half the time.
    # Chunks of 32 or 64 gained nothing (more calls, each smaller).
    CHUNK = 128

    def __init__(self, chunk: int, side: int, fill: float, dtype: np.dtype):
        self.chunk, self.side, self.fill, self.dtype = chunk, side, fill, np.dtype(dtype)
        self.width = width = side + 3
        self.pad = np.full((chunk, width, width), fill, dtype)
        self.xy = np.empty((2, chunk, side, side), dtype)      # source x, y; then weights
        self.corner = np.empty((2, chunk, side, side), dtype)  # top-left tap's x, y; then taps
        self.taps = np.empty((2, chunk, side, side), dtype)
        self.index = np.empty((chunk, side, side), np.int64)
        self.first = (np.arange(chunk, dtype=np.int64) * width * width)[:, None, None]

    @classmethod
    def fit(cls, work: AffineWork | None, n: int, side: int, fill: float, dtype: np.dtype) -> AffineWork:
        """work if it suits n images of this side, fill and dtype, else new buffers."""
        chunk = min(n, cls.CHUNK)
        if (work is None or work.chunk < chunk or work.side != side or work.fill != fill
                or work.dtype != dtype):
            work = cls(chunk, side, fill, dtype)
        return work

    def sample(self, block: np.ndarray, of_col: np.ndarray, of_row: np.ndarray) -> None:
        """Resample the m <= chunk images of block (m, side * side) in place, bilinearly,
        at source (x, y) = of_col[:, :, None, :] + of_row[:, :, :, None] in padded
        coordinates; of_col and of_row are (2, m, side) in the block's dtype."""
        m, side, width = len(block), self.side, self.width
        images = block.reshape(m, side, side)
        self.pad[:m, 1:1 + side, 1:1 + side] = images
        xy, corner = self.xy[:, :m], self.corner[:, :m]
        np.add(of_col[:, :, None, :], of_row[:, :, :, None], out=xy)
        # Beyond one pixel outside the image every tap is fill: clip there, inside the pad.
        np.clip(xy, 0, side + 1, out=xy)
        np.floor(xy, out=corner)
        xy -= corner  # the weights of the right-hand and of the lower taps
        # The top-left tap's flat index in the pad: exact in float (under width ** 2).
        corner[1] *= width
        index = self.index[:m]
        np.add(corner[0], corner[1], out=index, casting="unsafe")
        index += self.first[:m]
        flat = self.pad.reshape(-1)
        top_left, top_right = corner[0], corner[1]
        bottom_left, bottom_right = self.taps[0, :m], self.taps[1, :m]
        # mode="wrap": the indices are all in range; unlike "raise" it writes into
        # out without a buffered copy, and it measured the fastest of the three.
        np.take(flat, index, out=top_left, mode="wrap")
        index += 1
        np.take(flat, index, out=top_right, mode="wrap")
        index += width
        np.take(flat, index, out=bottom_right, mode="wrap")
        index -= 1
        np.take(flat, index, out=bottom_left, mode="wrap")
        # Blend as a + w (b - a): a weight of 0 gives a exactly (identity moves are exact).
        wx, wy = xy[0], xy[1]
        top_right -= top_left
        top_right *= wx
        top_left += top_right          # the upper row, blended across
        bottom_right -= bottom_left
        bottom_right *= wx
        bottom_left += bottom_right    # the lower row, blended across
        bottom_left -= top_left
        bottom_left *= wy
        np.add(top_left, bottom_left, out=images)


def _padded(pad: np.ndarray | None, n: int, side: int, margin: int, fill: float,
            dtype: np.dtype) -> np.ndarray:
    """A (>= n, side + 2 margin, same) buffer whose border holds fill; pad if it fits."""
    size = side + 2 * margin
    if pad is None or len(pad) < n or pad.shape[1:] != (size, size) or pad.dtype != dtype:
        pad = np.full((n, size, size), fill, dtype)
    return pad
