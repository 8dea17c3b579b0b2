"""Tests of mnist_loader.download_mnist against a local HTTP server and a fake opener, with the hostile
network of every mirror refusing, 404s and faults mid-file; no internet needed."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import conftest
import pytest
from conftest import GZ, REAL_FILE_NAMES, hostile, write_fake_mnist

import mnist_loader as ml


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory; under /short/ it promises more bytes than it sends, then hangs up."""

    def do_GET(self) -> None:
        if not self.path.startswith("/short/"):
            return super().do_GET()
        body = Path(self.directory, "ok", self.path.rsplit("/", 1)[1]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + 1000))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A server on 127.0.0.1 with mirrors ok/ (small valid files), bad/ (other content), empty/ (404)."""
    root = tmp_path_factory.mktemp("mirrors")
    write_fake_mnist(root / "ok", seed=1)
    write_fake_mnist(root / "bad", seed=2)
    (root / "empty").mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    md5 = {key: md5_of(root / "ok" / name) for key, name in GZ.items()}
    yield SimpleNamespace(root=root, base=base, md5=md5)
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")  # urllib must reach 127.0.0.1 directly even where a proxy is set


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "data"


def refused_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def recording(calls: list[str], opener=urllib.request.urlopen):
    def open_(url: str, timeout: float):
        calls.append(url)
        return opener(url, timeout=timeout)
    return open_


def assert_downloaded(dest: Path, source: Path) -> None:
    assert sorted(p.name for p in dest.iterdir()) == sorted(GZ.values())  # and no temporary files
    for name in GZ.values():
        assert (dest / name).read_bytes() == (source / name).read_bytes()
    assert ml.read_idx_images(dest / GZ["train_images"]).shape == (6, 784)


def assert_nothing_left(dest: Path) -> None:
    assert list(dest.iterdir()) == []


# ---------------------------------------------------------------- against the local server

def test_download_from_local_server(served, dest) -> None:
    ml.download_mnist(dest, mirrors=[served.base + "ok/"], md5=served.md5, progress=False)
    assert_downloaded(dest, served.root / "ok")
    assert ml.find_data_dir(dest) == dest


def test_first_mirror_404_second_ok(served, dest) -> None:
    calls: list[str] = []
    ml.download_mnist(dest, [served.base + "empty/", served.base + "ok/"], recording(calls), md5=served.md5)
    assert_downloaded(dest, served.root / "ok")
    assert calls == [served.base + mirror + name for name in GZ.values() for mirror in ("empty/", "ok/")]


def test_every_mirror_failing_says_what_to_do_and_leaves_nothing(served, dest) -> None:
    with pytest.raises(ml.MnistError) as error:
        ml.download_mnist(dest, [served.base + "empty/", refused_url()], md5=served.md5, progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert "404" in message and str(dest) in message and "MNIST_DIR" in message
    assert all(name in message for name in GZ.values())
    assert_nothing_left(dest)


def test_checksum_mismatch_leaves_nothing_and_next_mirror_is_tried(served, dest) -> None:
    with pytest.raises(ml.MnistError, match="md5"):
        ml.download_mnist(dest, [served.base + "bad/"], md5=served.md5, progress=False)
    assert_nothing_left(dest)
    ml.download_mnist(dest, [served.base + "bad/", served.base + "ok/"], md5=served.md5, progress=False)
    assert_downloaded(dest, served.root / "ok")


def test_connection_dropped_mid_file_leaves_nothing(served, dest) -> None:
    with pytest.raises(ml.MnistError, match="connection closed after"):
        ml.download_mnist(dest, [served.base + "short/"], md5=served.md5, progress=False)
    assert_nothing_left(dest)


def test_load_raw_downloads_into_data_beside_the_module(served, mnist_dir, tmp_path, monkeypatch) -> None:
    (served.root / "real").mkdir(exist_ok=True)
    for name in REAL_FILE_NAMES:  # the real files, served; the recompressed one has its own md5
        if not (served.root / "real" / name).exists():
            (served.root / "real" / name).symlink_to(mnist_dir / name)
    monkeypatch.setattr(ml, "MIRRORS", [refused_url(), served.base + "real/"])
    monkeypatch.setattr(ml, "MD5", {key: md5_of(mnist_dir / name) for key, name in GZ.items()})
    monkeypatch.setattr(ml, "MODULE_DIR", tmp_path / "module")
    monkeypatch.setattr(ml, "DEFAULT_DIR", tmp_path / "module" / "data")
    monkeypatch.delenv("MNIST_DIR", raising=False)
    train_x, train_y, t10k_x, t10k_y = ml.load_raw()
    assert train_x.shape == (60_000, 784) and t10k_y.shape == (10_000,)
    assert sorted(p.name for p in ml.DEFAULT_DIR.iterdir()) == sorted(REAL_FILE_NAMES)


# ---------------------------------------------------------------- through a fake opener

class FakeResponse(io.BytesIO):
    """Hands out data `step` bytes per read; raises `error` once `fail_at` bytes have gone out."""

    def __init__(self, data: bytes, length: int | None = None, fail_at: int | None = None,
                 error: BaseException | None = None, step: int = 100) -> None:
        super().__init__(data)
        self.headers = {} if length is None else {"Content-Length": str(length)}
        self.fail_at, self.error, self.step = fail_at, error, step

    def read(self, n: int = -1) -> bytes:
        if self.fail_at is not None and self.tell() >= self.fail_at:
            raise self.error
        return super().read(min(n, self.step))


def fake_opener(source: Path, calls: list[str] | None = None, **response):
    def open_(url: str, timeout: float) -> FakeResponse:
        assert timeout > 0
        if calls is not None:
            calls.append(url)
        return FakeResponse((source / url.rsplit("/", 1)[1]).read_bytes(), **response)
    return open_


def test_fake_opener_success_without_headers(served, dest) -> None:
    ml.download_mnist(dest, ["fake://a/"], fake_opener(served.root / "ok"), md5=served.md5)
    assert_downloaded(dest, served.root / "ok")


def test_present_files_are_not_fetched_again(served, dest, monkeypatch) -> None:
    monkeypatch.setattr(ml, "MD5", served.md5)  # the default md5 table is used when none is passed
    dest.mkdir()
    for key in ("train_images", "test_labels"):
        (dest / GZ[key]).write_bytes((served.root / "ok" / GZ[key]).read_bytes())
    calls: list[str] = []
    ml.download_mnist(dest, ["fake://a/"], fake_opener(served.root / "ok", calls))
    assert calls == ["fake://a/" + GZ["train_labels"], "fake://a/" + GZ["test_images"]]
    assert_downloaded(dest, served.root / "ok")


def test_opener_raising_mid_read_leaves_nothing_then_next_mirror(served, dest) -> None:
    broken = fake_opener(served.root / "ok", fail_at=100, error=ConnectionResetError("reset by peer"))
    with pytest.raises(ml.MnistError, match="reset by peer"):
        ml.download_mnist(dest, ["fake://a/"], broken, md5=served.md5)
    assert_nothing_left(dest)

    def first_broken(url: str, timeout: float):
        return (broken if url.startswith("fake://a/") else fake_opener(served.root / "ok"))(url, timeout)
    ml.download_mnist(dest, ["fake://a/", "fake://b/"], first_broken, md5=served.md5)
    assert_downloaded(dest, served.root / "ok")


def test_short_read_against_content_length_leaves_nothing(served, dest) -> None:
    size = (served.root / "ok" / GZ["train_images"]).stat().st_size
    with pytest.raises(ml.MnistError, match=f"connection closed after {size} of {size + 10} bytes"):
        ml.download_mnist(dest, ["fake://a/"], fake_opener(served.root / "ok", length=size + 10),
                          md5=served.md5)
    assert_nothing_left(dest)


def test_keyboard_interrupt_mid_read_leaves_no_partial_file(served, dest) -> None:
    interrupted = fake_opener(served.root / "ok", fail_at=200, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ml.download_mnist(dest, ["fake://a/", "fake://b/"], interrupted, md5=served.md5)
    assert_nothing_left(dest)


# ---------------------------------------------------------------- refusing mirrors, faults mid-file

@pytest.fixture
def fake_files(tmp_path):
    """Small valid .gz files (bytes) and their md5, as a mirror would serve them."""
    src = tmp_path / "src"
    write_fake_mnist(src, seed=3)
    blobs = {key: (src / name).read_bytes() for key, name in GZ.items()}
    md5 = {key: hashlib.md5(b).hexdigest() for key, b in blobs.items()}
    return SimpleNamespace(blobs=blobs, md5=md5)


MIRRORS = ["http://mirror-a.invalid/mnist/", "http://mirror-b.invalid/mnist/"]


def _key_of(url: str) -> str:
    return next(k for k, name in GZ.items() if url.endswith(name))


def _assert_dest_clean(dest: Path, allowed=()) -> None:
    left = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
    assert left == sorted(allowed), f"left behind: {left}"


@hostile
def test_download_every_mirror_refusing_names_file_and_mirrors(tmp_path, fake_files):
    dest, calls = tmp_path / "data", []

    def opener(url, timeout):
        calls.append(url)
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(ml.MnistError) as excinfo:
        ml.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    message = str(excinfo.value)
    assert "\n" not in message and "could not download train-images-idx3-ubyte.gz from any mirror" in message
    assert all(m in message for m in MIRRORS) and "Connection refused" in message
    assert len(calls) == 2  # one try per mirror, then it stops: the other files would fail alike
    _assert_dest_clean(dest)


@hostile
def test_download_http_404_on_every_mirror(tmp_path, fake_files):
    dest = tmp_path / "data"

    def opener(url, timeout):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, io.BytesIO(b"nope"))
    with pytest.raises(ml.MnistError, match="HTTP Error 404"):
        ml.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    _assert_dest_clean(dest)


@hostile
@pytest.mark.parametrize("fault", ["checksum-mismatch", "dropped-mid-file", "reset-mid-file", "html-error-page"])
def test_download_fault_leaves_nothing_behind(tmp_path, fake_files, fault):
    dest = tmp_path / "data"

    def opener(url, timeout):
        blob = fake_files.blobs[_key_of(url)]
        if fault == "checksum-mismatch":
            return FakeResponse(blob[:-1] + bytes([blob[-1] ^ 1]), length=len(blob))
        if fault == "dropped-mid-file":
            return FakeResponse(blob[:len(blob) // 2], length=len(blob))
        if fault == "reset-mid-file":
            return FakeResponse(blob, length=len(blob), fail_at=len(blob) // 2,
                                error=ConnectionResetError(104, "Connection reset by peer"))
        return FakeResponse(b"<html>Service Unavailable</html>")
    with pytest.raises(ml.MnistError) as excinfo:
        ml.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    assert "\n" not in str(excinfo.value)
    _assert_dest_clean(dest)


@hostile
def test_download_ctrl_c_mid_file_leaves_nothing_behind(tmp_path, fake_files):
    dest = tmp_path / "data"

    def opener(url, timeout):
        blob = fake_files.blobs[_key_of(url)]
        return FakeResponse(blob, length=len(blob), fail_at=len(blob) // 2, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ml.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    _assert_dest_clean(dest)


@hostile
def test_download_uses_a_file_only_after_its_checksum_matches(tmp_path, fake_files):
    """Mirror a serves altered bytes, mirror b the right ones: only b's bytes are kept, and they load."""
    dest, served = tmp_path / "data", []

    def opener(url, timeout):
        blob = fake_files.blobs[_key_of(url)]
        served.append(url)
        return FakeResponse(b"X" + blob[1:] if "mirror-a" in url else blob)
    ml.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    _assert_dest_clean(dest, GZ.values())
    for key, name in GZ.items():
        assert (dest / name).read_bytes() == fake_files.blobs[key]
    assert len(served) == 8


class _DroppingHandler(http.server.BaseHTTPRequestHandler):
    """Promises the whole file, sends half, hangs up."""
    blob = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.blob)))
        self.end_headers()
        self.wfile.write(self.blob[: len(self.blob) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@hostile
def test_download_from_local_server_dropping_mid_file_leaves_nothing(tmp_path, fake_files):
    handler = type("H", (_DroppingHandler,), {"blob": fake_files.blobs["train_images"]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "data"
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        t0 = time.monotonic()
        with pytest.raises(ml.MnistError) as excinfo:
            ml.download_mnist(dest, [base], None, progress=False, md5=fake_files.md5)
        assert time.monotonic() - t0 < 10
        assert "\n" not in str(excinfo.value) and base in str(excinfo.value)
        _assert_dest_clean(dest)
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- ensure_data: only what is needed

@pytest.fixture
def app(served, tmp_path, monkeypatch) -> Path:
    """No MNIST anywhere: an empty program folder and MNIST_DIR unset; the local server as the mirror."""
    monkeypatch.setattr(ml, "MIRRORS", [served.base + "ok/"])
    monkeypatch.setattr(ml, "MD5", served.md5)
    monkeypatch.setattr(ml, "MODULE_DIR", tmp_path / "module")
    monkeypatch.setattr(ml, "DEFAULT_DIR", tmp_path / "module" / "data")
    monkeypatch.delenv("MNIST_DIR", raising=False)
    return tmp_path / "module"


def test_the_test_set_downloads_only_the_t10k_files(app, served, monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(urllib.request, "urlopen", recording(calls))
    assert ml.ensure_data(which=("test",), progress=False) == ml.DEFAULT_DIR
    assert calls == [served.base + "ok/" + GZ[key] for key in ("test_images", "test_labels")]
    assert sorted(p.name for p in ml.DEFAULT_DIR.iterdir()) == [GZ["test_images"], GZ["test_labels"]]
    # then training needs the other two, and only they are fetched
    assert ml.ensure_data(progress=False) == ml.DEFAULT_DIR
    assert calls[2:] == [served.base + "ok/" + GZ[key] for key in ("train_images", "train_labels")]
    assert_downloaded(ml.DEFAULT_DIR, served.root / "ok")


def test_ensure_data_downloads_into_an_explicit_folder_and_then_finds_it(app, served, tmp_path, monkeypatch) -> None:
    assert ml.ensure_data(tmp_path / "mine", progress=False) == tmp_path / "mine"
    assert_downloaded(tmp_path / "mine", served.root / "ok")
    monkeypatch.setattr(ml, "MIRRORS", [refused_url()])  # found now: no network needed
    assert ml.ensure_data(tmp_path / "mine") == tmp_path / "mine"


def test_ensure_data_offline_is_one_line_naming_what_to_do(app, monkeypatch) -> None:
    monkeypatch.setattr(ml, "MIRRORS", [refused_url()])
    with pytest.raises(ml.MnistError) as error:
        ml.ensure_data(progress=False)
    message = str(error.value)
    assert "\n" not in message and "could not download" in message
    assert str(ml.DEFAULT_DIR) in message and "MNIST_DIR" in message


# ---------------------------------------------------------------- the suite's own search for the real data

def test_tests_find_the_data_where_train_finds_it(app, served, monkeypatch) -> None:
    """A newcomer who trained has MNIST in data/: the tests use it, download nothing, say nothing."""
    write_fake_mnist(ml.DEFAULT_DIR)
    said: list[str] = []
    monkeypatch.setattr(ml, "MIRRORS", [refused_url()])
    assert conftest.locate_real_mnist(None, ci=False, say=said.append) == ml.DEFAULT_DIR.resolve()
    assert conftest.locate_real_mnist(None, ci=True, say=said.append) == ml.DEFAULT_DIR.resolve()
    assert said == []


def test_tests_download_the_data_once_when_online(app, served, monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(urllib.request, "urlopen", recording(calls))
    said: list[str] = []
    assert conftest.locate_real_mnist(None, ci=False, say=said.append) == ml.DEFAULT_DIR.resolve()
    assert_downloaded(ml.DEFAULT_DIR, served.root / "ok")
    assert len(said) == 1 and str(ml.DEFAULT_DIR) in said[0]
    assert len(calls) == 4
    conftest.locate_real_mnist(None, ci=False, say=said.append)
    assert len(calls) == 4 and len(said) == 1


def test_tests_skip_offline_and_fail_fast_under_ci(app, served, monkeypatch, tmp_path) -> None:
    calls: list[str] = []
    monkeypatch.setattr(ml, "MIRRORS", [refused_url()])
    monkeypatch.setattr(urllib.request, "urlopen", recording(calls))
    said: list[str] = []
    with pytest.raises(conftest.DataUnavailable) as error:
        conftest.locate_real_mnist(None, ci=False, say=said.append)
    assert str(error.value).startswith(conftest.NO_DATA) and "download failed" in str(error.value)
    assert len(said) == 2 and "could not download" in said[1]  # the full reason, said once
    assert len(calls) == 1  # tried, once
    with pytest.raises(conftest.DataUnavailable, match="CI must provide it"):
        conftest.locate_real_mnist(None, ci=True, say=lambda _: None)
    assert len(calls) == 1  # CI does not try
    with pytest.raises(conftest.DataUnavailable, match=re.escape(str(tmp_path / "given"))):
        conftest.locate_real_mnist(str(tmp_path / "given"), ci=True)


def _report(reason: str) -> SimpleNamespace:
    return SimpleNamespace(longrepr=("tests/conftest.py", 80, f"Skipped: {reason}"))


def test_summary_counts_only_the_skips_for_lack_of_data() -> None:
    reports = [_report(f"{conftest.NO_DATA}: offline"), _report("PyTorch not installed"),
               _report(f"{conftest.NO_DATA}: offline"), SimpleNamespace(longrepr=None)]
    assert conftest.skipped_for_data(reports) == (2, f"{conftest.NO_DATA}: offline")
    assert conftest.skipped_for_data(reports[1:2]) == (0, None)


# ---------------------------------------------------------------- the slow marker

def _starts_a_child() -> None:
    subprocess.run(["true"], check=False)


def _through_a_helper() -> None:
    _starts_a_child()


def _through_a_lambda() -> None:
    (lambda: _through_a_helper())()


def _in_process() -> int:
    return len(GZ)


# held in a tuple, so that naming them does not make the test below slow itself
CHILD_STARTERS = (_starts_a_child, _through_a_helper, _through_a_lambda)


def test_slow_means_a_subprocess_directly_or_through_helpers() -> None:
    for func in CHILD_STARTERS:
        assert conftest._calls_subprocess(func, set()), func.__name__
    assert not conftest._calls_subprocess(_in_process, set())
    assert not conftest._calls_subprocess(test_summary_counts_only_the_skips_for_lack_of_data, set())
