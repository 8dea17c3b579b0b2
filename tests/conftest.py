"""Shared test helpers: where the real MNIST files are, writers for small IDX files, the `slow`
marker, children that can be interrupted, the project's scripts run as a user runs them (offline,
headless) with the checks of a refusal, the guards of the hostile cases, and a summary line for
skipped real-data tests."""

from __future__ import annotations

import contextlib
import gzip
import inspect
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

# The project modules live one level up; make them importable however pytest is started.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnist_loader  # noqa: E402

GZ = {key: name + ".gz" for key, name in mnist_loader.FILE_NAMES.items()}
REAL_FILE_NAMES = list(GZ.values())
TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
# The start of every skip reason for lack of real data: the summary line counts them by it.
NO_DATA = "real MNIST not available"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--data-dir", default=None,
                     help="folder with the four MNIST files for the tests that need the real data "
                          "(default: $MNIST_DIR, then data/ beside train.py, as train.py looks)")


# ---------------------------------------------------------------- the real data

class DataUnavailable(Exception):
    """The real MNIST files are nowhere and cannot be downloaded; the message says why."""


def locate_real_mnist(data_dir: str | None, ci: bool, say: Callable[[str], None] = print) -> Path:
    """The folder holding the four real files, found where train.py finds them.

    When they are nowhere: under CI, DataUnavailable at once (CI must bring its data);
    otherwise downloaded once, as train.py would (into data_dir or data/ beside train.py),
    and DataUnavailable only when that fails. say() announces the download.
    """
    try:
        return mnist_loader.ensure_data(data_dir, download=False).resolve()
    except mnist_loader.MnistError as err:
        if ci:
            raise DataUnavailable(f"{NO_DATA} (CI must provide it): {err}") from None
    target = data_dir or mnist_loader.DEFAULT_DIR
    say(f"real MNIST not found; downloading it into {target}, as train.py would")
    try:
        return mnist_loader.ensure_data(data_dir, download=True).resolve()
    except mnist_loader.MnistError as err:
        say(f"download failed: {err}")
        where = data_dir or "$MNIST_DIR or data/"
        raise DataUnavailable(f"{NO_DATA}: not in {where}, and the download failed (offline?)") from None


@pytest.fixture(scope="session")
def mnist_dir(request: pytest.FixtureRequest) -> Path:
    """The real MNIST folder (see locate_real_mnist); skip when there is none, fail under CI."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    ci = bool(os.environ.get("CI"))
    try:
        # output not captured: a download announces itself and shows its progress bar
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            return locate_real_mnist(request.config.getoption("--data-dir"), ci,
                                     lambda message: print(f"\n{message}", file=sys.stderr))
    except DataUnavailable as err:
        if ci:
            pytest.fail(str(err))
        pytest.skip(str(err))


def skipped_for_data(reports: Iterable[pytest.TestReport]) -> tuple[int, str | None]:
    """How many of these skip reports are for lack of real data, and the first such reason."""
    count, reason = 0, None
    for report in reports:
        longrepr = report.longrepr
        text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        text = text.removeprefix("Skipped: ")
        if text.startswith(NO_DATA):
            count += 1
            reason = reason or text
    return count, reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Report every skip for lack of data at the fixture, so that -ra folds them into one line."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and skipped_for_data([report])[0]:
        report.longrepr = (__file__, inspect.getsourcelines(mnist_dir)[1], report.longrepr[2])


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config):
    """After everything else (the outermost wrapper): one line on the tests skipped for lack of data."""
    yield
    count, reason = skipped_for_data(terminalreporter.stats.get("skipped", []))
    if count:
        terminalreporter.write_line(
            f"{count} test{'s' if count != 1 else ''} skipped, {reason}. To run them, set MNIST_DIR "
            f"(or pass --data-dir) to a folder holding the four MNIST files, or run once with a network.",
            yellow=True, bold=True)


# ---------------------------------------------------------------- the slow marker

def _calls_subprocess(func: Callable, seen: set[int]) -> bool:
    """Whether func, or a test-suite function it names (transitively), uses subprocess or pty."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None or id(code) in seen:
        return False
    seen.add(id(code))
    namespace = inspect.unwrap(func).__globals__
    codes = [code]
    while codes:  # the function's own code, then the lambdas and inner functions it holds
        current = codes.pop()
        codes.extend(c for c in current.co_consts if inspect.iscode(c))
        for name in current.co_names:
            target = namespace.get(name)
            if target is subprocess or getattr(target, "__name__", None) == "pty":
                return True
            if inspect.isfunction(target) and Path(target.__code__.co_filename).parent == TESTS_DIR:
                if _calls_subprocess(target, seen):
                    return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow every test that starts a subprocess itself, through a helper or through a fixture.

    Found from the code rather than kept in a list, so that a new subprocess test is marked
    without anyone remembering to: `python -m pytest -m "not slow"` is then the fast core.
    """
    verdicts: dict[object, bool] = {}
    for item in items:
        funcs = [getattr(item, "function", None)]
        info = getattr(item, "_fixtureinfo", None)
        for defs in (info.name2fixturedefs.values() if info is not None else ()):
            funcs.extend(d.func for d in defs)
        for func in funcs:
            if func is None:
                continue
            if func not in verdicts:
                verdicts[func] = _calls_subprocess(func, set())
            if verdicts[func]:
                item.add_marker(pytest.mark.slow)
                break


# ---------------------------------------------------------------- children that a test interrupts

def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen_default_sigint(cmd: list[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen, with SIGINT at its default disposition in the child.

    A shell starts a background job (`python -m pytest &` in a script) with SIGINT ignored,
    every child inherits that, and Python then leaves it ignored: a test's Ctrl-C would never
    arrive. Resetting it in the child (before exec) lets Python install its KeyboardInterrupt
    handler however the suite was launched.
    """
    return subprocess.Popen(cmd, preexec_fn=_default_sigint, **kwargs)


# Runs the script argv[2] (its own arguments after it) as `python script.py` would, once the
# interpreter has started and the script is compiled, and says so on the pipe numbered argv[1]:
# a test's delays before its Ctrl-C count from the script's first line. Before it, a Ctrl-C is
# the interpreter's to report (no line of the program can run yet). Used by the Ctrl-C-at-startup
# tests of train.py and predict.py.
STARTUP_LAUNCHER = """
import os, signal, sys
ready, path = int(sys.argv[1]), sys.argv[2]
sys.argv = sys.argv[2:]
sys.path.insert(0, os.path.dirname(path))
with open(path, encoding="utf-8") as f:
    code = compile(f.read(), path, "exec")
# The launcher's own lines are not the script's: a Ctrl-C on them exits as the script would,
# and the script's first line meets Python's default handler, as when started directly.
signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
os.write(ready, b"ready")
os.close(ready)
signal.signal(signal.SIGINT, signal.default_int_handler); exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
"""


def interrupt_while_starting(script: Path, args: list, env: dict, delays: list[float],
                             **popen) -> list[tuple[float, int, str]]:
    """Start script through STARTUP_LAUNCHER (with -S: its packages come through env's
    PYTHONPATH) once per delay, send SIGINT that long after its first line, and return
    (delay, exit code, stdout + stderr) for each."""
    results = []
    for delay in delays:
        ready_r, ready_w = os.pipe()
        proc = popen_default_sigint([sys.executable, "-S", "-c", STARTUP_LAUNCHER, str(ready_w),
                                     str(script), *map(str, args)], cwd=script.parent, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(ready_w,), **popen)
        os.close(ready_w)
        assert os.read(ready_r, 5) == b"ready"
        os.close(ready_r)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        results.append((round(delay, 3), proc.returncode, (stdout + stderr).decode(errors="replace")))
    return results


def site_packages_path() -> str:
    """PYTHONPATH that gives a `python -S` child this interpreter's installed packages."""
    import sysconfig
    return os.pathsep.join(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))



# ---------------------------------------------------------------- the project's scripts, as a user runs them

# A bound socket that never listens: connecting to it is refused at once, and holding it
# keeps the port from being reused. Every subprocess uses it as its HTTP(S) proxy.
_BLOCKER = socket.socket()
_BLOCKER.bind(("127.0.0.1", 0))
DEAD_URL = f"http://127.0.0.1:{_BLOCKER.getsockname()[1]}"

# The eight questions answered by flags, for runs that should not ask anything.
ANSWERS = {"--layers": "1", "--normalization": "simple", "--init": "xavier", "--activation": "relu",
           "--l1": "n", "--decay": "n", "--optimizer": "sgd", "--epochs": "1"}
QUICK = ["--limit", "500", "--seed", "7", "--no-show"]


def flags(**change: str | None) -> list[str]:
    """The eight answers as flags; change={'layers': '0'} replaces one, None leaves it out."""
    d = dict(ANSWERS)
    for key, value in change.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            d.pop(flag, None)
        else:
            d[flag] = value
    return [x for kv in d.items() for x in kv]


def child_env(mnist_dir: str | os.PathLike | None = None, **extra: str | None) -> dict[str, str]:
    """The environment of a subprocess: headless, no terminal width, every download through the
    dead proxy; MNIST_DIR set when mnist_dir is given; extra sets (None: removes) variables."""
    drop = {"no_proxy", "http_proxy", "https_proxy", "all_proxy", "display", "wayland_display", "columns"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in drop}
    env.update(MPLBACKEND="Agg", http_proxy=DEAD_URL, https_proxy=DEAD_URL,
               HTTP_PROXY=DEAD_URL, HTTPS_PROXY=DEAD_URL)
    if mnist_dir is not None:
        env["MNIST_DIR"] = str(mnist_dir)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_script(script: str, args, stdin: str | bytes | None = None, env: dict | None = None,
               timeout: float = 120, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run a script of the project; stdin None means /dev/null."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run([sys.executable, script, *map(str, args)], cwd=cwd,
                          input=data, stdin=subprocess.DEVNULL if data is None else None,
                          capture_output=True, env=env or child_env(), timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


def run_train(args, stdin: str | bytes | None = None, env: dict | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    return run_script("train.py", args, stdin, env, timeout)


def show(proc) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def assert_no_traceback(proc) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, show(proc)


def assert_fails(proc, code: int | tuple[int, ...], *needles: str) -> str:
    """Exit code as expected, no traceback, exactly one non-blank stderr line holding each needle."""
    assert_no_traceback(proc)
    codes = code if isinstance(code, tuple) else (code,)
    assert proc.returncode in codes, show(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, show(proc)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in the message\n{show(proc)}"
    return lines[0]


def snapshot(*roots: Path) -> dict[str, object]:
    """File names with their bytes (size and mtime for big files) under each root; dirs as 'dir'."""
    out: dict[str, object] = {}
    for root in map(Path, roots):
        if not root.exists() and not root.is_symlink():
            out[str(root)] = None
            continue
        for p in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            st = p.lstat()
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_dir():
                out[str(p)] = "dir"
            elif st.st_size < 1 << 20:
                out[str(p)] = (st.st_mtime_ns, p.read_bytes())
            else:
                out[str(p)] = (st.st_mtime_ns, st.st_size)
    return out


def run_folders(output_dir: Path) -> list[str]:
    """The names of everything in output_dir (files too), sorted; [] when it does not exist."""
    return sorted(p.name for p in output_dir.iterdir()) if output_dir.is_dir() else []


# ---------------------------------------------------------------- the guards of the hostile cases

SHARED_MNIST = Path(os.environ.get("MNIST_DIR") or ROOT / "../shared/mnist")


@pytest.fixture
def repo_untouched():
    """No case may change the project's own run folder, data folder or the shared MNIST files."""
    before = snapshot(ROOT / "saved_files", ROOT / "data", SHARED_MNIST)
    yield
    assert snapshot(ROOT / "saved_files", ROOT / "data", SHARED_MNIST) == before


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch):
    """In-process, every download goes to the dead local port unless a test passes its own mirrors."""
    monkeypatch.setattr(mnist_loader, "MIRRORS", [DEAD_URL + "/"])
    real = urllib.request.urlopen

    def local_only(url, *a, **k):
        host = urllib.request.urlparse(url if isinstance(url, str) else url.full_url).hostname
        assert host == "127.0.0.1", f"a test tried to reach {url}"
        return real(url, *a, **k)
    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


# A hostile case (a wrong answer, a bad flag, damaged data, a dropped download, Ctrl-C at an odd
# moment): the project's folders and the shared data must be left as they were, and no download
# may leave the machine.
hostile = pytest.mark.usefixtures("repo_untouched", "no_internet")


# ---------------------------------------------------------------- small IDX files

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
