"""Hostile and clumsy use of train.py and mnist_loader, as a test matrix.

Every case that is about what a user sees runs the real program as a subprocess and
checks the exit code (2 usage or input ended, 1 data or IO, 130 Ctrl-C), a single line
on stderr naming the problem, no traceback, and that nothing already on disk changed.
Subprocesses get a proxy pointing at a closed local port, so a download attempt never
reaches the internet. The saved-run cases of predict.py are in test_bad_inputs_predict.py.
"""
from __future__ import annotations

import ast
import gzip
import hashlib
import http.server
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import mnist_loader
import runs
from conftest import idx_bytes, popen_default_sigint, write_fake_mnist, write_idx_labels

ROOT = Path(__file__).resolve().parents[1]
GZ = {key: name + ".gz" for key, name in mnist_loader.FILE_NAMES.items()}

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


def child_env(**extra: str | None) -> dict[str, str]:
    """The environment of a subprocess: headless, every download through the dead proxy."""
    drop = {"no_proxy", "http_proxy", "https_proxy", "all_proxy", "display", "wayland_display"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in drop}
    env.update(MPLBACKEND="Agg", http_proxy=DEAD_URL, https_proxy=DEAD_URL,
               HTTP_PROXY=DEAD_URL, HTTPS_PROXY=DEAD_URL)
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
    return sorted(p.name for p in output_dir.iterdir()) if output_dir.is_dir() else []


SHARED_MNIST = Path(os.environ.get("MNIST_DIR") or ROOT / "../shared/mnist")


@pytest.fixture(autouse=True)
def repo_untouched():
    """No case may change the project's own run folder, data folder or the shared MNIST files."""
    before = snapshot(ROOT / "saved_files", ROOT / "data", SHARED_MNIST)
    yield
    assert snapshot(ROOT / "saved_files", ROOT / "data", SHARED_MNIST) == before


@pytest.fixture(autouse=True)
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


# =============================================================================== questions

# (number, key, flags answering the earlier questions, wrong answers, a valid answer in an odd case)
QUESTION_CASES = [
    (1, "layers", ["", "   ", "3", "-1", "1.5", "three", "rellu"], "TWO"),
    (2, "normalization", ["", " ", "norm", "standard", "1"], "NORMAL"),
    (3, "init", ["", " ", "he", "xavierr", "0"], "Xavier"),
    (4, "activation", ["", "\t", "rellu", "tanh", "1"], "ReLU"),
    (5, "l1", ["", " ", "maybe", "yess", "1", "true"], "YES"),
    (6, "decay", ["", " ", "nope", "0", "-1"], "No"),
    (7, "optimizer", ["", " ", "adam", "sgdd", "moment"], "MOMENTUM"),
]
KEYS = ["layers", "normalization", "init", "activation", "l1", "decay", "optimizer", "epochs"]
FLAG_OF = {k: "--" + k for k in KEYS}


def _earlier_flags(number: int) -> list[str]:
    """Flags answering questions 1..number-1 (layers 1, so the activation question is asked)."""
    return [x for k in KEYS[:number - 1] for x in (FLAG_OF[k], ANSWERS[FLAG_OF[k]])]


@pytest.mark.parametrize("number,key,wrong,valid", QUESTION_CASES,
                         ids=[f"q{n}-{k}-blank-space-nearmiss-then-{v}" for n, k, _, v in QUESTION_CASES])
def test_question_reasks_after_each_wrong_answer_then_accepts_odd_case(tmp_path, number, key, wrong, valid):
    out = tmp_path / "out"
    stdin = "".join(w + "\n" for w in wrong) + valid + "\n"  # then the input ends at the next question
    proc = run_train([*_earlier_flags(number), "--output-dir", out], stdin=stdin)
    # The valid answer was taken: the program moved on and stopped at the next question.
    nxt = number + 1
    message = assert_fails(proc, 2, f"question {nxt} (", f"pass --{KEYS[nxt - 1]}")
    assert proc.stdout.count("Invalid answer") == len(wrong), show(proc)
    assert proc.stdout.count(f"{number}. ") == len(wrong) + 1, show(proc)
    assert proc.stdout.count("an answer is needed") == sum(1 for w in wrong if not w.strip()), show(proc)
    for w in wrong:
        if w.strip():
            assert repr(w.strip()) in proc.stdout, f"{w!r} not quoted back\n{show(proc)}"
    assert not out.exists(), message


def test_q8_epochs_reasks_on_blank_fraction_negative_zero_exponent_and_too_many_then_runs(tmp_path):
    out = tmp_path / "out"
    wrong = ["", "  ", "1.5", "-1", "0", "1e9", "10001", "ten", "3 epochs"]
    proc = run_train([*_earlier_flags(8), *QUICK, "--output-dir", out, "--name", "q8"],
                     stdin="".join(w + "\n" for w in wrong) + " 1 \n")
    assert proc.returncode == 0, show(proc)
    assert_no_traceback(proc)
    assert proc.stdout.count("Invalid answer") == len(wrong), show(proc)
    assert "too many: at most 10000" in proc.stdout and "must be at least 1" in proc.stdout
    record = runs.Run.load(out / "q8").record
    assert (record.config.epochs, record.status, record.epochs_completed) == (1, "completed", 1)


@pytest.mark.parametrize("number", range(1, 9), ids=[f"input-ends-at-q{n}-{k}" for n, k in enumerate(KEYS, 1)])
def test_input_ending_at_each_question_exits_2_naming_question_and_flag(tmp_path, number):
    out = tmp_path / "out"
    valid = {"layers": "1", "normalization": "simple", "init": "gauss", "activation": "sigmoid",
             "l1": "n", "decay": "n", "optimizer": "sgd"}
    stdin = "".join(valid[k] + "\n" for k in KEYS[:number - 1])
    proc = run_train(["--output-dir", out], stdin=stdin)
    assert_fails(proc, 2, f"input ended before question {number} (", f"pass --{KEYS[number - 1]}")
    assert not out.exists()


@pytest.mark.parametrize("encoding", [None, "utf-8"],
                         ids=["input-not-utf8-C.UTF-8-locale", "input-not-utf8-strict-utf8-stdin-as-en_US.UTF-8"])
def test_input_not_utf8_is_an_invalid_answer_then_input_ended(tmp_path, encoding):
    # Python reads stdin with errors="surrogateescape" only under the C/POSIX/C.UTF-8 locales;
    # under en_US.UTF-8 and the like it is strict, which PYTHONIOENCODING=utf-8 reproduces here.
    proc = run_train(["--output-dir", tmp_path / "out"], stdin=b"\xff\xfe\x00\n",
                     env=child_env(PYTHONIOENCODING=encoding))
    assert_fails(proc, 2, "question 1 (", "--layers")
    assert "Invalid answer" in proc.stdout


def test_layers_0_answer_skips_activation_question_with_one_line_note(tmp_path):
    stdin = "0\nsimple\ngauss\nn\nn\nsgd\n"  # five more answers: the activation is not asked
    proc = run_train(["--output-dir", tmp_path / "out"], stdin=stdin)
    assert_fails(proc, 2, "question 8 (", "--epochs")
    notes = [line for line in proc.stdout.splitlines() if "Activation skipped" in line]
    assert len(notes) == 1, show(proc)
    assert "4. Activation" not in proc.stdout


def _read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    got, deadline = b"", time.monotonic() + timeout
    while needle not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came; got {got!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # a pty whose other side closed
                chunk = b""
            assert chunk, f"output ended before {needle!r}; got {got!r}"
            got += chunk
    return got


def _drain(fd: int) -> bytes:
    got = b""
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.parametrize("number", [1, 4, 8], ids=lambda n: f"ctrl-c-at-q{n}-{KEYS[n - 1]}-piped")
def test_ctrl_c_at_a_question_from_a_pipe_exits_130_no_run_folder(tmp_path, number):
    out = tmp_path / "out"
    proc = popen_default_sigint([sys.executable, "train.py", "--output-dir", str(out)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env())
    try:
        answers = ["1", "simple", "gauss", "relu", "n", "n", "sgd"][:number - 1]
        proc.stdin.write("".join(a + "\n" for a in answers).encode())
        proc.stdin.flush()  # kept open: the program waits at question `number`
        seen = _read_until(proc.stdout.fileno(), f"{number}. ".encode())
        time.sleep(0.3)  # let it block in the read, as when a person presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, (seen + stdout).decode(), stderr.decode())
    assert result.returncode == 130, show(result)
    assert_no_traceback(result)
    assert "train.py: cancelled; nothing was saved" in result.stderr, show(result)
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 1, show(result)
    assert not out.exists()


def test_ctrl_c_at_a_question_on_a_terminal_exits_130_no_run_folder(tmp_path):
    out = tmp_path / "out"
    master, slave = pty.openpty()
    # All three streams on the terminal, as in a shell (input() writes its prompt to stderr there).
    proc = popen_default_sigint([sys.executable, "train.py", "--output-dir", str(out)], cwd=ROOT,
                            stdin=slave, stdout=slave, stderr=slave, env=child_env())
    os.close(slave)
    try:
        seen = _read_until(master, b"1. Number of hidden layers")
        # CPython writes the prompt, then blocks in fgets(): a SIGINT in between is only acted on
        # after the next line is typed. A person cannot press Ctrl-C that fast; give it a moment.
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        seen += _drain(master)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    result = subprocess.CompletedProcess(proc.args, code, seen.decode("utf-8", "replace"), "")
    assert code == 130, show(result)
    assert_no_traceback(result)
    assert "train.py: cancelled; nothing was saved" in result.stdout, show(result)
    assert not out.exists()


# =============================================================================== flags

BAD_FLAGS = [
    ("layers-three", ["--layers", "three"], "'three' is not one of 0, 1 or 2"),
    ("layers-3", ["--layers", "3"], "--layers"),
    ("normalization-standard", ["--normalization", "standard"], "--normalization"),
    ("init-he", ["--init", "he"], "--init"),
    ("activation-tanh", ["--activation", "tanh"], "--activation"),
    ("l1-maybe", ["--l1", "maybe"], "--l1"),
    ("optimizer-rmsprop", ["--optimizer", "rmsprop"], "'rmsprop' is not one of sgd, momentum or adam"),
    ("epochs-0", ["--epochs", "0"], "at least 1"),
    ("epochs-1.5", ["--epochs", "1.5"], "not a whole number"),
    ("epochs-10001", ["--epochs", "10001"], "at most 10000"),
    ("epochs-missing-value", ["--epochs"], "expected one argument"),
    ("learning-rate--1", ["--learning-rate", "-1"], "out of range"),
    ("learning-rate-0", ["--learning-rate", "0"], "out of range"),
    ("learning-rate-nan", ["--learning-rate", "nan"], "--learning-rate"),
    ("learning-rate-abc", ["--learning-rate", "abc"], "is not a number"),
    ("momentum-1", ["--momentum", "1"], "out of range"),
    ("momentum--0.1", ["--momentum", "-0.1"], "out of range"),
    ("batch-size-0", ["--batch-size", "0"], "--batch-size"),
    ("hidden-size-0", ["--hidden-size", "0"], "--hidden-size"),
    ("seed--1", ["--seed", "-1"], "--seed"),
    ("limit-0", ["--limit", "0"], "--limit"),
    ("limit-smaller-than-a-batch", ["--limit", "3", "--batch-size", "4"], "--limit 3 is smaller than one batch"),
    ("unknown-flag-lr", ["--lr", "0.1"], "unrecognized arguments"),
    ("stray-positional", ["now"], "unrecognized arguments"),
]


@pytest.mark.parametrize("args,needle", [c[1:] for c in BAD_FLAGS], ids=[f"flag-{c[0]}" for c in BAD_FLAGS])
def test_bad_flag_value_exits_2_one_line(tmp_path, args, needle):
    out = tmp_path / "out"
    # later flags win in argparse, so the bad value goes last
    proc = run_train([*flags(), *QUICK, "--output-dir", out, *args])
    line = assert_fails(proc, 2, needle)
    assert "--help" in line or "--batch-size" in line  # argparse's errors point to --help
    assert not out.exists()


# Values that pass the flag check but that runs.RunConfig.problem() calls invalid, so that
# predict.py (runs.load_run) refuses the run train.py then saves: they must be refused up front.
INFINITE_FLAGS = [["--learning-rate", "inf"], ["--decay-factor", "inf"], ["--l1-lambda", "inf"]]


@pytest.mark.parametrize("args", INFINITE_FLAGS, ids=lambda a: f"flag{a[0][1:]}-inf")
def test_infinite_hyperparameter_is_refused_like_nan(tmp_path, args):
    out = tmp_path / "out"
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--name", "inf", *args])
    assert_fails(proc, 2, args[0])
    assert run_folders(out) == []


def test_hidden_size_too_big_to_allocate_is_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--hidden-size", "1000000000"])
    assert_fails(proc, (1, 2), "--hidden-size")
    assert run_folders(out) == []


def test_batch_size_larger_than_the_training_split_is_refused_in_one_line(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(), "--seed", "1", "--no-show", "--output-dir", out, "--batch-size", "58001"],
                     env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, (1, 2), "--batch-size")
    assert run_folders(out) == []


def test_layers_0_with_activation_flag_runs_with_note_and_records_null(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(layers="0", activation="sigmoid"), *QUICK, "--output-dir", out, "--name", "zero"],
                     env=child_env(MNIST_DIR=str(mnist_dir)))
    assert proc.returncode == 0, show(proc)
    assert_no_traceback(proc)
    notes = [line for line in proc.stdout.splitlines() if "--activation sigmoid has no effect" in line]
    assert len(notes) == 1, show(proc)
    run, net = runs.load_run(out / "zero")  # the run it saved loads
    assert run.config.activation is None and run.config.layer_sizes == [784, 10]
    assert [w.shape for w in net.weights] == [(784, 10)]
    assert json.loads((out / "zero" / "run.json").read_text())["config"]["activation"] is None
    assert "sigmoid" not in proc.stdout.split("Configuration:")[1].splitlines()[0]


# ---- --name and --output-dir

def _existing_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"status": "completed"}\n')
    (folder / "weights_1.csv").write_text("1,2\n")
    os.utime(folder / "config.json", (1e9, 1e9))
    return folder


def test_name_of_existing_run_is_refused_and_its_files_unchanged(tmp_path):
    out = tmp_path / "out"
    existing = _existing_run(out / "taken")
    before = snapshot(tmp_path)
    # Refused before any question is asked or any data is read: no stdin, no MNIST_DIR needed.
    proc = run_train(["--output-dir", out, "--name", "taken"], env=child_env())
    assert_fails(proc, 2, "'taken' already exists", "choose another --name")
    assert snapshot(tmp_path) == before
    assert existing.is_dir()


ABS_NAME = f"/tmp/bad-inputs-{uuid.uuid4().hex}"
PLAIN = "plain folder name"
BAD_NAMES = [("dotdot-slash-x", "../x", PLAIN), ("absolute", ABS_NAME, PLAIN), ("a-slash-b", "a/b", PLAIN),
             ("dotdot", "..", PLAIN), ("dot", ".", PLAIN), ("empty", "", "is empty"),
             ("hidden", ".hidden", PLAIN), ("dash-start", "-rf", PLAIN),
             ("trailing-newline", "nl\n", PLAIN), ("nul", "a\x01b", PLAIN)]


@pytest.mark.parametrize("name,needle", [c[1:] for c in BAD_NAMES], ids=[f"name-{c[0]}" for c in BAD_NAMES])
def test_unsafe_name_is_refused_and_nothing_created_outside(tmp_path, name, needle):
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    before = snapshot(tmp_path)
    proc = run_train([*flags(), *QUICK, "--output-dir", out, f"--name={name}"])
    assert_fails(proc, 2, "--name", needle)
    assert snapshot(tmp_path) == before  # not even the output folder
    assert not Path(ABS_NAME).exists()


def test_name_too_long_for_the_file_system_is_refused_in_one_line(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--name", "a" * 300],
                     env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, (1, 2), "--name")
    assert run_folders(out) == []


def test_output_dir_that_is_a_file_is_refused_and_file_unchanged(tmp_path):
    target = tmp_path / "runs.txt"
    target.write_text("not a folder\n")
    before = snapshot(tmp_path)
    proc = run_train([*flags(), *QUICK, "--output-dir", target])
    assert_fails(proc, 1, "is a file, not a folder", "choose another")
    assert snapshot(tmp_path) == before


def test_output_dir_under_a_file_cannot_be_created_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("in the way\n")
    before = snapshot(tmp_path)
    proc = run_train([*flags(), *QUICK, "--output-dir", target / "sub"])
    assert_fails(proc, 1, "cannot create the output folder", "choose another --output-dir")
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_output_dir_not_writable_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        proc = run_train([*flags(), *QUICK, "--output-dir", locked])
        assert_fails(proc, 1, "not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


# =============================================================================== data files

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


def test_mnist_dir_pointing_nowhere_falls_back_to_data_and_fails_in_one_line(tmp_path):
    """A copy of the program, so that its data/ fallback is a temporary folder, not the repo's."""
    app = tmp_path / "app"
    app.mkdir()
    for p in ROOT.glob("*.py"):
        shutil.copy(p, app)
    proc = subprocess.run([sys.executable, "train.py", *flags(), *QUICK, "--output-dir", str(tmp_path / "out")],
                          cwd=app, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env=child_env(MNIST_DIR=str(tmp_path / "nowhere")))
    assert_fails(proc, 1, "could not download", "MNIST_DIR")
    assert list((app / "data").iterdir()) == []  # created for the download, left empty


# ---- the loader's checks, in-process (fast), one per kind of damage

def _images(n=3):
    return np.arange(n * 784, dtype=np.uint32).astype(np.uint8).reshape(n, 784)


def _labels(n=3):
    return np.arange(n, dtype=np.uint8) % 10


def _write(path: Path, data: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


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
    return (mnist_loader.read_idx_images if kind == "images" else mnist_loader.read_idx_labels)(path)


def _assert_mnist_error(excinfo, path: Path, needle: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message and needle in message, message
    assert any(fix in message for fix in ("delete it", "replace", "remove it", "add .gz", "check")), message


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", ["images", "labels"])
@pytest.mark.parametrize("case", list(LOADER_CASES))
def test_loader_refuses_damaged_idx_file(tmp_path, case, kind, gz):
    path = _write(tmp_path / (f"{kind}-idx-ubyte" + (".gz" if gz else "")), LOADER_CASES[case](kind), gz)
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        _read(kind, path)
    _assert_mnist_error(excinfo, path, LOADER_NEEDLES[case])


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
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        _read(kind, path)
    _assert_mnist_error(excinfo, path, needle)


def test_loader_refuses_image_and_label_counts_that_differ(tmp_path):
    write_fake_mnist(tmp_path, n_train=6, n_test=4)
    write_idx_labels(tmp_path / GZ["train_labels"], _labels(5), gz=True)
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        mnist_loader.load_raw(tmp_path, download=False)
    message = str(excinfo.value)
    assert "holds 6 images but train-labels-idx1-ubyte.gz holds 5 labels" in message and "\n" not in message


@pytest.mark.parametrize("key", list(GZ), ids=[f"missing-{n}" for n in GZ.values()])
def test_loader_each_file_missing_download_refused_names_it_and_leaves_nothing(tmp_path, key):
    """The mirrors are a closed local port here (see no_internet): the attempt fails at once."""
    write_fake_mnist(tmp_path)
    (tmp_path / GZ[key]).unlink()
    before = snapshot(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        mnist_loader.load_raw(tmp_path)
    assert time.monotonic() - t0 < 5
    message = str(excinfo.value)
    assert f"could not download {GZ[key]} from any mirror" in message and "\n" not in message
    assert f"put {GZ[key]} in {tmp_path}" in message
    assert snapshot(tmp_path) == before


def test_loader_with_download_off_names_every_missing_file(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / GZ["test_images"]).unlink()
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        mnist_loader.load_raw(tmp_path, download=False)
    message = str(excinfo.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "train-images" not in message.split("put")[1]


# =============================================================================== downloads

class FakeResponse:
    """What urlopen returns: read(n) in pieces; optionally a Content-Length, a drop or an error mid-file."""

    def __init__(self, data: bytes, length: int | None = None, stop_at: int | None = None,
                 error: BaseException | None = None):
        self.data, self.pos = data, 0
        self.headers = {"Content-Length": str(length)} if length is not None else {}
        self.stop_at = len(data) if stop_at is None else stop_at
        self.error = error
        self.closed = False

    def read(self, n: int) -> bytes:
        if self.pos >= self.stop_at:
            if self.error is not None:
                raise self.error
            return b""
        chunk = self.data[self.pos:min(self.pos + n, self.stop_at)]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


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


def test_download_every_mirror_refusing_names_file_and_mirrors(tmp_path, fake_files):
    dest, calls = tmp_path / "data", []

    def opener(url, timeout):
        calls.append(url)
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        mnist_loader.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    message = str(excinfo.value)
    assert "\n" not in message and "could not download train-images-idx3-ubyte.gz from any mirror" in message
    assert all(m in message for m in MIRRORS) and "Connection refused" in message
    assert len(calls) == 2  # one try per mirror, then it stops: the other files would fail alike
    _assert_dest_clean(dest)


def test_download_http_404_on_every_mirror(tmp_path, fake_files):
    dest = tmp_path / "data"

    def opener(url, timeout):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, io.BytesIO(b"nope"))
    with pytest.raises(mnist_loader.MnistError, match="HTTP Error 404"):
        mnist_loader.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    _assert_dest_clean(dest)


@pytest.mark.parametrize("fault", ["checksum-mismatch", "dropped-mid-file", "reset-mid-file", "html-error-page"])
def test_download_fault_leaves_nothing_behind(tmp_path, fake_files, fault):
    dest = tmp_path / "data"

    def opener(url, timeout):
        blob = fake_files.blobs[_key_of(url)]
        if fault == "checksum-mismatch":
            return FakeResponse(blob[:-1] + bytes([blob[-1] ^ 1]), length=len(blob))
        if fault == "dropped-mid-file":
            return FakeResponse(blob, length=len(blob), stop_at=len(blob) // 2)
        if fault == "reset-mid-file":
            return FakeResponse(blob, length=len(blob), stop_at=len(blob) // 2,
                                error=ConnectionResetError(104, "Connection reset by peer"))
        return FakeResponse(b"<html>Service Unavailable</html>")
    with pytest.raises(mnist_loader.MnistError) as excinfo:
        mnist_loader.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    assert "\n" not in str(excinfo.value)
    _assert_dest_clean(dest)


def test_download_ctrl_c_mid_file_leaves_nothing_behind(tmp_path, fake_files):
    dest = tmp_path / "data"

    def opener(url, timeout):
        blob = fake_files.blobs[_key_of(url)]
        return FakeResponse(blob, length=len(blob), stop_at=len(blob) // 2, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        mnist_loader.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
    _assert_dest_clean(dest)


def test_download_uses_a_file_only_after_its_checksum_matches(tmp_path, fake_files):
    """Mirror a serves altered bytes, mirror b the right ones: only b's bytes are kept, and they load."""
    dest, served = tmp_path / "data", []

    def opener(url, timeout):
        blob = fake_files.blobs[_key_of(url)]
        served.append(url)
        return FakeResponse(b"X" + blob[1:] if "mirror-a" in url else blob)
    mnist_loader.download_mnist(dest, MIRRORS, opener, progress=False, md5=fake_files.md5)
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


def test_download_from_local_server_dropping_mid_file_leaves_nothing(tmp_path, fake_files):
    handler = type("H", (_DroppingHandler,), {"blob": fake_files.blobs["train_images"]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "data"
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        t0 = time.monotonic()
        with pytest.raises(mnist_loader.MnistError) as excinfo:
            mnist_loader.download_mnist(dest, [base], None, progress=False, md5=fake_files.md5)
        assert time.monotonic() - t0 < 10
        assert "\n" not in str(excinfo.value) and base in str(excinfo.value)
        _assert_dest_clean(dest)
    finally:
        server.shutdown()
        server.server_close()


# =============================================================================== training faults

TRAIN_LONG = ["--layers", "1", "--activation", "relu", "--normalization", "normal", "--init", "xavier",
              "--l1", "n", "--decay", "y", "--optimizer", "momentum", "--epochs", "30", "--limit", "20000",
              "--seed", "11", "--no-show"]


def _start(args, mnist_dir: Path) -> subprocess.Popen:
    return popen_default_sigint([sys.executable, "train.py", *map(str, args)], cwd=ROOT, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env(MNIST_DIR=str(mnist_dir)))


def _run_and_act(args, mnist_dir: Path, epoch: int, act) -> subprocess.CompletedProcess:
    """Start a run; when the line of `epoch` is printed, call act(proc); return the finished process."""
    proc = _start(args, mnist_dir)
    lines = []
    try:
        pattern = re.compile(rf"^Epoch\s+{epoch}/")
        for line in proc.stdout:
            lines.append(line)
            if pattern.match(line):
                act(proc)
                break
        rest, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + rest, err)


def _history(run_dir: Path) -> list[dict]:
    return runs.Run.load(run_dir).history()


def _recount_test_accuracy(run_dir: Path, mnist_dir: Path) -> tuple[int, int]:
    """(right answers of the last epoch's saved weights on the test set, right answers the
    history records for that epoch)."""
    run, net = runs.load_run(run_dir, "last")
    norm = run.record.normalization
    test = mnist_loader.load_test_set(run.config.normalization, norm.mean, norm.std,
                                      data_dir=mnist_dir, download=False)
    _, accuracy = net.evaluate(test.x, test.y)
    return round(accuracy * len(test.y)), round(run.history()[-1]["test_accuracy"] * len(test.y))


def _leftovers(run_dir: Path) -> list[Path]:
    """Temporary files and partial checkpoints anywhere in a run folder."""
    return [p for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".partial"))]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("ctrlc") / "out"
    proc = _run_and_act([*TRAIN_LONG, "--output-dir", out, "--name", "ctrlc"], mnist_dir, 2,
                        lambda p: p.send_signal(signal.SIGINT))
    return SimpleNamespace(proc=proc, run_dir=out / "ctrlc")


def test_ctrl_c_mid_epoch_exits_130_without_traceback(interrupted):
    proc = interrupted.proc
    assert proc.returncode == 130, show(proc)
    assert_no_traceback(proc)
    printed = re.findall(r"^Epoch\s+\d+/30", proc.stdout, re.M)
    assert f"Interrupted (Ctrl-C): kept the {len(printed)} epochs committed" in proc.stdout, show(proc)
    assert f"Continue with:\n  python train.py --resume {interrupted.run_dir}\n" in proc.stdout
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) <= 1, show(proc)


def test_ctrl_c_mid_epoch_records_interrupted_and_exactly_the_completed_epochs(interrupted):
    run = runs.Run.load(interrupted.run_dir)
    printed = [int(m.group(1)) for m in re.finditer(r"^Epoch\s+(\d+)/30", interrupted.proc.stdout, re.M)]
    history = run.history()
    assert run.record.status == "interrupted"
    assert 2 <= len(printed) < 30
    assert [r["epoch"] for r in history] == printed == list(range(1, run.record.epochs_completed + 1))
    assert run.record.last["test_accuracy"] == history[-1]["test_accuracy"]
    assert run.weights_epoch("last") == printed[-1]
    assert not _leftovers(interrupted.run_dir)


def test_ctrl_c_mid_epoch_saved_weights_give_recorded_test_accuracy_to_the_image(interrupted, mnist_dir):
    got, recorded = _recount_test_accuracy(interrupted.run_dir, mnist_dir)
    assert got == recorded


def test_loss_diverging_in_epoch_1_stops_exit_1_keeps_nothing_and_says_so(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(layers="2", epochs="3"), *QUICK, "--learning-rate", "1e4", "--output-dir", out,
                      "--name", "div1"], env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, 1, "NaN or infinite in epoch 1", "smaller --learning-rate")
    assert "No epoch was completed" in proc.stdout
    record = runs.Run.load(out / "div1").record
    assert (record.status, record.epochs_completed, record.last, record.best) == ("diverged", 0, None, None)
    # the record only (and the writer's lock file): no checkpoint, no weights, no history
    assert [n for n in run_folders(out / "div1") if n != ".lock"] == ["run.json"]


def test_loss_diverging_in_epoch_2_stops_exit_1_keeps_epoch_1(tmp_path, mnist_dir):
    # The learning rate of epoch 2 is 0.001 * 1e7 = 1e4: epoch 1 trains normally, epoch 2 blows up.
    out = tmp_path / "out"
    proc = run_train([*flags(layers="2", epochs="3", decay="y"), *QUICK, "--decay-factor", "1e7",
                      "--output-dir", out, "--name", "div2"], env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, 1, "NaN or infinite in epoch 2", "keeping the 1 epoch(s)")
    record = runs.Run.load(out / "div2").record
    assert (record.status, record.epochs_completed) == ("diverged", 1)
    assert [r["epoch"] for r in _history(out / "div2")] == [1]
    got, recorded = _recount_test_accuracy(out / "div2", mnist_dir)
    assert got == recorded


def _remove_folder(run_dir: Path) -> None:
    shutil.rmtree(run_dir)


def _file_in_place(run_dir: Path) -> None:
    shutil.rmtree(run_dir)
    run_dir.write_text("in the way\n")


@pytest.mark.parametrize("mutate", [_remove_folder, _file_in_place],
                         ids=["run-folder-deleted-mid-run", "run-folder-replaced-by-file-mid-run"])
def test_run_folder_gone_after_training_started_one_line_nonzero(tmp_path, mnist_dir, mutate):
    out = tmp_path / "out"
    run_dir = out / "gone"
    proc = _run_and_act([*TRAIN_LONG, "--output-dir", out, "--name", "gone"], mnist_dir, 1,
                        lambda p: mutate(run_dir))
    assert_fails(proc, 1, "cannot write", str(run_dir))
    if run_dir.is_file():
        assert run_dir.read_text() == "in the way\n"


# Past this many bytes the running process can no longer write a file: like a disk that fills
# up, the big checkpoint files fail first while the small run.json still fits.
FILE_SIZE_LIMIT = 200_000


@pytest.fixture(scope="module")
def disk_full(tmp_path_factory, mnist_dir):
    """After epoch 1 is printed, the running train.py can no longer write a file larger than
    FILE_SIZE_LIMIT (RLIMIT_FSIZE set on it from outside; Python ignores SIGXFSZ, so the write
    fails with EFBIG): committing epoch 2's weights (about 700 kB) fails half-way."""
    resource = pytest.importorskip("resource")
    if not hasattr(resource, "prlimit"):
        pytest.skip("no prlimit on this system")
    out = tmp_path_factory.mktemp("full") / "out"
    run_dir = out / "full"
    state = {}

    def act(proc):
        state["before"] = snapshot(run_dir / "checkpoints", run_dir / "history.csv")
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    proc = _run_and_act([*TRAIN_LONG, "--output-dir", out, "--name", "full"], mnist_dir, 1, act)
    return SimpleNamespace(proc=proc, run_dir=run_dir, **state)


def test_disk_full_while_saving_weights_one_line_exit_1(disk_full):
    assert_fails(disk_full.proc, 1, "cannot write", "File too large", "check the disk")
    assert "Epoch 2/" not in disk_full.proc.stdout, show(disk_full.proc)


def test_disk_full_while_saving_weights_leaves_weights_matching_history(disk_full, mnist_dir):
    after = snapshot(disk_full.run_dir / "checkpoints", disk_full.run_dir / "history.csv")
    assert after == disk_full.before  # epoch 1's checkpoint untouched, no part of epoch 2's
    assert not _leftovers(disk_full.run_dir)
    run = runs.Run.load(disk_full.run_dir)
    assert (run.record.status, run.record.epochs_completed) == ("failed", 1)
    assert [r["epoch"] for r in run.history()] == [1]
    got, recorded = _recount_test_accuracy(disk_full.run_dir, mnist_dir)
    assert got == recorded


# =============================================================================== security

PRODUCT_FILES = sorted(ROOT.glob("*.py"))


def _trees():
    for path in PRODUCT_FILES:
        yield path, ast.parse(path.read_text(), str(path))


def test_security_no_pickle_import_in_product_code():
    unsafe = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal"}
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in unsafe]
    assert not found and PRODUCT_FILES


def test_security_np_load_only_with_allow_pickle_false():
    bad = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy"):
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False):
                    bad.append(f"{path.name}:{node.lineno}")
    assert not bad


def test_security_no_exec_or_eval_in_product_code():
    bad = [f"{path.name}:{node.lineno}" for path, tree in _trees() for node in ast.walk(tree)
           if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval")]
    assert not bad
