"""Turn a picture of one handwritten digit into a 28x28 image prepared the way MNIST's were.

MNIST's digits were scaled to fit a 20x20 box keeping their aspect ratio (with
anti-aliasing, hence grey levels) and then placed in a 28x28 field so that their
centre of mass sits at the centre. A network trained on them expects exactly
that: light ink on a black background, about 20 pixels tall, centred by mass.
`preprocess` does the same to any picture a person takes or draws:

    grayscale (alpha composited) -> light ink on dark (inverted when the border is light)
    -> background removed, contrast stretched -> cropped to the ink's bounding box
    -> area-averaged (or bilinear when enlarging) to fit 20x20 -> centred by mass in 28x28

Everything is NumPy; the file is read with matplotlib.image.imread (which uses
Pillow, already installed with matplotlib).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

FIELD = 28          # MNIST images are 28x28 ...
BOX = 20            # ... with the digit scaled to fit 20x20 inside them
# MNIST's centre of mass, in 0-based pixel indices, is (14.0, 14.0) on average
# (measured on the test set), not the geometric centre 13.5.
CENTRE = 14.0
BORDER_FRACTION = 0.02  # the border band judged for the background: 2 % of the short side (>= 1 px)
MIN_CONTRAST = 0.15     # ink must differ from the background by this much (of 0..1) to count
NOISE_FLOOR = 0.2       # of the ink's contrast: fainter specks (paper grain, shadows) are background


class DigitImageError(Exception):
    """An image file that cannot be read, or that holds no digit; the message says which."""


@dataclass(frozen=True)
class Prepared:
    """A preprocessed digit: pixels is uint8 (28, 28), light ink (255) on black (0) as in MNIST."""
    pixels: np.ndarray
    inverted: bool               # the picture had dark ink on a light background
    box: tuple[int, int, int, int]  # the ink's bounding box in the picture: top, left, bottom, right (exclusive)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The picture as matplotlib reads it: (H, W) grayscale or (H, W, 2/3/4) with colour and
    alpha; uint8 (JPEG), uint16 or float in 0..1 (PNG)."""
    import matplotlib.image as mpimg
    if os.path.isdir(path):
        raise DigitImageError(f"{path}: is a folder, not an image file")
    try:
        image = mpimg.imread(path)
    except FileNotFoundError:
        raise DigitImageError(f"{path}: no such image file") from None
    except Exception as err:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, ...)
        # for damaged or unknown files; each means the same thing here, and we stop.
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DigitImageError(f"{path}: cannot read it as an image ({reason})") from None
    return check_layout(image, str(path))


def check_layout(image: np.ndarray, where: str = "image") -> np.ndarray:
    """The image with a trailing channel of 1 dropped, checked to be (H, W) or (H, W, 2/3/4)
    of numbers; raises DigitImageError otherwise."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise DigitImageError(f"{where}: unsupported image layout {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise DigitImageError(f"{where}: the image is empty")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise DigitImageError(f"{where}: pixels of type {image.dtype} are not numbers")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise DigitImageError(f"{where}: holds NaN or infinite pixel values")
    return image


def channel(image: np.ndarray, i: int | None = None) -> np.ndarray:
    """One channel (or the whole of a 2-D image) as float32 in 0..1, whatever the dtype.

    Converted a channel at a time: a 12-megapixel photo as one float array
    would take 144 MB on top of the decoded file."""
    c = image if i is None else image[:, :, i]
    if np.issubdtype(c.dtype, np.integer):
        return c.astype(np.float32) * np.float32(1 / np.iinfo(c.dtype).max)
    c = c.astype(np.float32)
    return np.clip(c, 0, 1, out=c)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 brightness in 0..1 of any image `check_layout` accepts.

    Colour uses the ITU-R 601 luma weights (as Pillow's "L" mode). Transparent
    pixels are composited over a backdrop that contrasts with the opaque ones:
    white under dark strokes, black under light ones, so ink drawn on a
    transparent canvas stays visible whatever its colour.
    """
    if image.ndim == 2:
        return channel(image)
    channels = image.shape[2]
    if channels in (3, 4):
        gray = channel(image, 0) * np.float32(0.299)
        gray += channel(image, 1) * np.float32(0.587)
        gray += channel(image, 2) * np.float32(0.114)
    else:
        gray = channel(image, 0)
    if channels in (2, 4):
        alpha = channel(image, channels - 1)
        if alpha.min() < 1:
            weight = float(alpha.sum(dtype=np.float64))
            dark_strokes = weight == 0 or float((gray * alpha).sum(dtype=np.float64)) / weight < 0.5
            gray *= alpha
            if dark_strokes:
                gray += 1 - alpha
    return np.clip(gray, 0, 1, out=gray)


def thumbnail(image: np.ndarray, longest: int = 800) -> np.ndarray:
    """A float copy of an image, subsampled so its longer side is at most about `longest`
    pixels, for drawing (imshow would resample a full photo through float64 copies)."""
    step = max(1, -(-max(image.shape[:2]) // longest))
    small = image[::step, ::step]
    if small.ndim == 2:
        return channel(small)
    return np.stack([channel(small, i) for i in range(small.shape[2])], axis=2)


def ink_map(gray: np.ndarray, where: str = "image") -> tuple[np.ndarray, bool]:
    """(ink, inverted): ink is (H, W) float32, 0 for background and up to 1 for the strongest ink.

    The background is the median of a border band; when it is light, the picture
    is dark ink on paper and is inverted. The background level is subtracted and
    the contrast stretched so the strongest ink is 1; anything fainter than
    NOISE_FLOOR of that contrast becomes background.
    """
    h, w = gray.shape
    band = max(1, int(round(BORDER_FRACTION * min(h, w))))
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(),
                             gray[:, :band].ravel(), gray[:, -band:].ravel()])
    background = float(np.median(border))
    inverted = background > 0.5
    ink = 1 - gray if inverted else gray
    background = 1 - background if inverted else background
    peak = float(ink.max())
    if peak - background < MIN_CONTRAST:
        raise DigitImageError(f"{where}: no ink found; the image is blank (or its ink is too faint "
                              "to tell from the background)")
    low = background + NOISE_FLOOR * (peak - background)
    ink = np.clip((ink - low) / np.float32(peak - low), 0, 1).astype(np.float32, copy=False)
    return ink, inverted


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights resizing one axis: area averaging when shrinking, bilinear when enlarging.

    Area averaging gives each output pixel the mean of the input it covers
    (partial pixels by their overlap): the anti-aliasing MNIST's grey edges
    come from. Enlarging by area would just repeat pixels, so it interpolates.
    Applied to both axes, `Wy @ image @ Wx.T` resizes in two matrix products.
    """
    if n_out <= n_in:
        scale = n_in / n_out
        starts = np.arange(n_out) * scale
        ends = starts + scale
        j = np.arange(n_in)
        overlap = np.minimum(ends[:, None], j + 1) - np.maximum(starts[:, None], j)
        return np.clip(overlap, 0, None) / scale
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    left = np.floor(src).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = src - left
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, left), 1 - frac)
    np.add.at(weights, (rows, right), frac)
    return weights


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (H, W) array resized to (height, width) with `resample_matrix` on each axis (float64)."""
    wy = resample_matrix(image.shape[0], height)
    wx = resample_matrix(image.shape[1], width)
    return wy @ image.astype(np.float64) @ wx.T


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the nonzero pixels, bottom/right exclusive."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted centre of a (H, W) array, in pixel indices."""
    total = float(image.sum())
    rows = np.arange(image.shape[0])
    cols = np.arange(image.shape[1])
    return (float(image.sum(axis=1) @ rows) / total, float(image.sum(axis=0) @ cols) / total)


def fit_and_centre(ink: np.ndarray) -> np.ndarray:
    """The cropped ink (H, W), scaled to fit BOX x BOX keeping its aspect ratio and placed in a
    FIELD x FIELD image with its centre of mass at (CENTRE, CENTRE); uint8, strongest ink 255."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    out_h, out_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    patch = resize(ink, out_h, out_w)
    # Shrinking a thin pen stroke averages it with the paper around it, leaving it
    # faint; MNIST's strokes are saturated (the median digit's brightest pixel is 255).
    patch *= 1.0 / patch.max()
    patch = np.round(np.clip(patch, 0, 1) * 255).astype(np.uint8)
    cy, cx = centre_of_mass(patch.astype(np.float64))
    # A whole-pixel shift (as MNIST's own centring) kept inside the field, so a
    # lopsided digit is never cut off; its centre of mass may then be off by a little.
    top = min(max(int(round(CENTRE - cy)), 0), FIELD - out_h)
    left = min(max(int(round(CENTRE - cx)), 0), FIELD - out_w)
    field = np.zeros((FIELD, FIELD), np.uint8)
    field[top:top + out_h, left:left + out_w] = patch
    return field


def preprocess(image: np.ndarray, where: str = "image") -> Prepared:
    """A picture (any imread result: grayscale, RGB or RGBA, any size, either polarity)
    prepared as MNIST's digits were. Raises DigitImageError when it holds no ink."""
    gray = to_grayscale(check_layout(image, where))
    ink, inverted = ink_map(gray, where)
    box = ink_box(ink)
    top, left, bottom, right = box
    return Prepared(fit_and_centre(ink[top:bottom, left:right]), inverted, box)
