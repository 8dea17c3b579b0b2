"""Tests of kit/photo.py on digits as people photograph them: real MNIST test digits
rendered large onto paper, then turned by the camera (EXIF orientation), shadowed and
grainy, or made huge; the shipped model must still read them, in bounded memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from kit import photo as di

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RUN = ROOT / "saved_files" / "best-model"
PAPER, INK = 0.88, 0.10          # a sheet of paper in room light, and a felt pen on it


# ---- pictures of real digits --------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits(mnist_dir):
    """(images uint8 (N, 28, 28), labels (N,)): the first 200 test images."""
    import mnist_loader
    test = mnist_loader.load_test_set("simple", data_dir=mnist_dir, download=False)
    return np.round(test.x[:200] * 255).astype(np.uint8).reshape(-1, 28, 28), test.y[:200]


@pytest.fixture(scope="module")
def model():
    """classify(pixels uint8 (N, 28, 28)) -> predicted digits, with the shipped run."""
    from kit.record import Run
    run = Run.load(SHIPPED_RUN)
    net = run.network("best")

    def classify(pixels: np.ndarray) -> np.ndarray:
        x = run.record.normalization.apply(np.asarray(pixels, np.uint8).reshape(len(pixels), -1))
        return net.logits(x).argmax(axis=1)
    return classify


def one_per_digit(digits, model, wanted=range(10)) -> list[int]:
    """Indices of the first test image of each wanted digit that the model gets right as is."""
    images, labels = digits
    right = model(images) == labels
    return [int(np.flatnonzero((labels == d) & right)[0]) for d in wanted]


def on_paper(digit: np.ndarray, height: int, width: int, digit_height: int,
             centre: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """(height, width) float32 in 0..1: the 28x28 digit enlarged (bicubic) so its 28 pixels
    span digit_height, drawn in INK on PAPER with its middle at `centre` (fractions)."""
    big = Image.fromarray(digit).resize((digit_height, digit_height), Image.Resampling.BICUBIC)
    strength = np.asarray(big, np.float32) / 255
    page = np.full((height, width), PAPER, np.float32)
    top = int(centre[0] * height - digit_height / 2)
    left = int(centre[1] * width - digit_height / 2)
    page[top:top + digit_height, left:left + digit_height] -= (PAPER - INK) * strength
    return page


def as_rgb8(page: np.ndarray) -> np.ndarray:
    """A 0..1 page as a slightly warm uint8 RGB photo."""
    rgb = page[:, :, None] * np.array([1.0, 0.97, 0.9], np.float32)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def shadowed(page: np.ndarray, rng: np.random.Generator, depth: float = 0.35,
             noise: float = 0.03) -> np.ndarray:
    """The page with a shadow over its left third (light falling smoothly to `depth` of
    full at the edge) and Gaussian grain of standard deviation `noise`."""
    h, w = page.shape
    x = np.arange(w) / (w / 3)                       # 0 at the left edge, 1 a third across
    t = np.clip(x, 0, 1)
    light = depth + (1 - depth) * t * t * (3 - 2 * t)  # smoothstep: a soft-edged shadow
    photo = page * light[None, :].astype(np.float32)
    photo += rng.normal(0, noise, photo.shape).astype(np.float32)
    return np.clip(photo, 0, 1)


# ---- EXIF orientation ---------------------------------------------------------------------------

# The way a camera stores a picture for each orientation tag: Pillow's exif_transpose,
# an implementation independent of digit_image's, must turn it back upright (asserted).
STORED_AS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_gives_the_upright_digit(digits, model, tmp_path, orientation, fmt):
    images, labels = digits
    for i in one_per_digit(digits, model, wanted=(1, 4, 7)):
        upright = Image.fromarray(as_rgb8(on_paper(images[i], 640, 480, 360, centre=(0.45, 0.55))))
        stored = upright.transpose(STORED_AS[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        suffix = ".jpg" if fmt == "JPEG" else ".png"
        stored.save(tmp_path / f"turned{suffix}", fmt, exif=exif.tobytes())
        upright.save(tmp_path / f"upright{suffix}", fmt)
        with Image.open(tmp_path / f"turned{suffix}") as check:
            shown = np.asarray(ImageOps.exif_transpose(check)).astype(int)
            assert shown.shape == (640, 480, 3) and np.abs(shown - np.asarray(upright)).mean() < 2

        turned = di.load_picture(tmp_path / f"turned{suffix}")
        assert turned.orientation == orientation and turned.size == (480, 640)
        assert turned.pixels.shape == (640, 480, 3)
        a = di.preprocess(turned.pixels).pixels
        b = di.preprocess(di.load_picture(tmp_path / f"upright{suffix}").pixels).pixels
        diff = np.abs(a.astype(int) - b)
        # JPEG codes 8x8 blocks of the turned and the upright picture differently.
        assert diff.max() <= (0 if fmt == "PNG" else 40) and diff.mean() < 1.5
        assert model(a[None])[0] == labels[i]


def test_no_orientation_tag_reads_as_stored(tmp_path):
    picture = np.zeros((30, 20, 3), np.uint8)
    picture[:10] = 255
    Image.fromarray(picture).save(tmp_path / "plain.png")
    read = di.load_picture(tmp_path / "plain.png")
    assert read.orientation == 1 and read.size == (20, 30)
    np.testing.assert_array_equal(read.pixels, picture)


# ---- shadows and grain --------------------------------------------------------------------------

def test_a_shadow_across_the_page_is_not_ink(digits, model, tmp_path):
    images, labels = digits
    rng = np.random.default_rng(7)
    chosen = one_per_digit(digits, model)
    prepared = []
    for k, i in enumerate(chosen):
        # The digit sits partly in the shadow: its left edge is 25-30 % across the page.
        page = on_paper(images[i], 900, 1200, 560, centre=(0.5, 0.5 - 0.01 * (k % 3)))
        Image.fromarray(as_rgb8(shadowed(page, rng))).save(tmp_path / "photo.jpg", quality=90)
        prepared.append(di.preprocess(di.load_picture(tmp_path / "photo.jpg").pixels).pixels)
    predicted = model(np.array(prepared))
    assert (predicted == labels[chosen]).sum() >= 9, predicted
    # The shadow's edge is not in the ink's box: the digit fills 20 pixels of height, as MNIST.
    for x in prepared:
        top, left, bottom, right = di.ink_box(x)
        assert max(bottom - top, right - left) == 20


def test_flattening_divides_out_the_shadow():
    # The background follows a smooth shadow while a stroke on it stays ink.
    rng = np.random.default_rng(1)
    page = np.full((300, 400), PAPER, np.float32)
    page[100:200, 195:205] = INK                         # a short thick stroke
    photo = shadowed(page, rng, depth=0.3, noise=0.0)
    ink, inverted = di.ink_map(photo)
    assert inverted
    assert ink[120:180, 197:203].min() > 0.9             # the stroke, at full strength
    ink[95:205, 190:210] = 0
    assert ink.max() == 0                                # and nothing else, shadow included


def test_grain_alone_is_not_a_digit():
    rng = np.random.default_rng(2)
    page = shadowed(np.full((450, 600), PAPER, np.float32), rng, noise=0.04)
    with pytest.raises(di.DigitImageError, match="no ink"):
        di.preprocess(page)


# ---- reading huge pictures ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "P-alpha", "1", "I;16"])
def test_png_read_in_strips_equals_png_read_whole(tmp_path, monkeypatch, mode):
    # Pillow decoding the whole file is the oracle for the strip reader.
    rng = np.random.default_rng(3)
    base = Image.fromarray((rng.random((301, 187, 4)) * 255).astype(np.uint8), "RGBA")
    picture = {"P": lambda: base.convert("RGB").quantize(16),
               "P-alpha": lambda: base.quantize(16),
               "1": lambda: base.convert("L").convert("1"),
               "I;16": lambda: Image.fromarray((rng.random((301, 187)) * 65535).astype(np.uint16))}
    im = picture.get(mode, lambda: base.convert(mode))()
    im.save(tmp_path / "x.png")
    for factor in (1, 3):
        monkeypatch.setattr(di, "WORK_SIDE", 301 // factor + (factor > 1))
        monkeypatch.setattr(di, "DECODE_BUDGET", 10**9)
        whole = di.load_picture(tmp_path / "x.png").pixels
        monkeypatch.setattr(di, "DECODE_BUDGET", 0)
        monkeypatch.setattr(di, "STRIP_BYTES", 5000)          # strips of a few rows
        strips = di.load_picture(tmp_path / "x.png").pixels
        assert strips.shape[0] == -(-301 // factor) and strips.dtype == whole.dtype
        np.testing.assert_array_equal(strips, whole)


def test_truncated_huge_png_is_refused_in_one_line(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((200, 100), np.uint8)).save(tmp_path / "x.png")
    data = (tmp_path / "x.png").read_bytes()
    (tmp_path / "x.png").write_bytes(data[:len(data) // 2])
    monkeypatch.setattr(di, "DECODE_BUDGET", 0)
    with pytest.raises(di.DigitImageError, match=r"x\.png: cannot read it as an image"):
        _ = di.load_picture(tmp_path / "x.png").pixels


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from PIL import Image
    sys.path.insert(0, sys.argv[2])
    from kit import photo
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pixels = photo.preprocess(photo.load_picture(sys.argv[1]).pixels).pixels
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(sys.stdout.buffer, pixels)
    print((after - before) / 1024, file=sys.stderr)   # ru_maxrss is in KiB on Linux
""")


@pytest.mark.slow
@pytest.mark.parametrize("mode, fmt", [("RGB", "PNG"), ("L", "PNG"), ("RGB", "JPEG")])
def test_a_ten_thousand_pixel_picture_is_prepared_in_300_mb(digits, model, tmp_path, mode, fmt):
    images, labels = digits
    i = one_per_digit(digits, model, wanted=(3,))[0]
    page = Image.fromarray(np.round(on_paper(images[i], 1000, 1000, 700) * 255).astype(np.uint8))
    path = tmp_path / ("huge.png" if fmt == "PNG" else "huge.jpg")
    page.resize((10_000, 10_000), Image.Resampling.BILINEAR).convert(mode).save(
        path, fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 85}))
    del page
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(ROOT)],
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    peak_mb = float(done.stderr.decode().split()[-1])
    assert peak_mb < 300, f"{peak_mb:.0f} MB"
    import io
    pixels = np.load(io.BytesIO(done.stdout))
    assert pixels.shape == (28, 28) and model(pixels[None])[0] == labels[i]
