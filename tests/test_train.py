"""train.py as a user runs it: flags, piped answers, and the run folder it writes; then used
clumsily and in a hostile world: wrong answers, bad flags and names, Ctrl-C, streams that close,
a loss that diverges, a run folder that goes away, a full disk."""
from __future__ import annotations

import ast
import csv
import json
import os
import pty
import random
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import (
    ANSWERS,
    QUICK,
    ROOT,
    assert_fails,
    assert_no_traceback,
    child_env,
    flags,
    hostile,
    interrupt_while_starting,
    popen_default_sigint,
    run_folders,
    run_train,
    show,
    site_packages_path,
    snapshot,
)

import mnist_loader
import train as train_py
from kit import terminal
from kit.record import Run
from training import HISTORY_COLUMNS


def train(args, mnist_dir, stdin=None):
    """train.py on the real data; stdin None means /dev/null."""
    return run_train(args, stdin, child_env(mnist_dir), timeout=300)


def only_run(out: Path) -> Path:
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def history(run: Run) -> list[dict]:
    """The run's committed history, checked against the file people read beside run.json."""
    rows = run.history()
    with open(run.path / "history.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == HISTORY_COLUMNS
        assert [int(r["epoch"]) for r in reader] == [r["epoch"] for r in rows]
    return rows


def test_all_flags_full_split_one_epoch(tmp_path, mnist_dir):
    """All eight flags, no input, the real 58,000-image split: a complete run folder."""
    proc = train(["--layers", 2, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
                  "--l1", "n", "--decay", "n", "--optimizer", "momentum", "--epochs", 1, "--seed", 7,
                  "--output-dir", tmp_path, "--no-show"], mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    run = Run.load(only_run(tmp_path))
    assert run.path.name.endswith("_2h-relu-momentum-normal-xavier")
    record = run.record
    assert record.status == "completed" and record.config.seed == 7 and not run.legacy
    assert record.config.layer_sizes == [784, 64, 64, 10]
    assert (record.train_size, record.val_size, record.test_size) == (58_000, 6_000, 6_000)
    assert abs(record.normalization.mean - 33.3) < 0.5 and abs(record.normalization.std - 78.6) < 1
    assert record.ended >= record.started and record.versions["numpy"] == np.__version__
    for which in ("last", "best"):
        net = run.network(which)
        assert [w.shape for w in net.weights] == [(784, 64), (64, 64), (64, 10)]
        assert [b.size for b in net.biases] == [64, 64, 10]
    assert (run.path / "checkpoints" / "epoch-0001" / "weights_1.csv").is_file()
    rows = history(run)
    assert len(rows) == 1 and rows[0]["epoch"] == 1 and rows[0]["learning_rate"] == 0.001
    assert rows[0]["val_accuracy"] > 0.94
    assert record.last["test_accuracy"] == rows[0]["test_accuracy"] == record.best["test_accuracy"]
    for png in ("accuracy.png", "loss.png", "learning_rate.png"):
        assert (run.path / png).stat().st_size > 10_000
    assert f"Last epoch (1): test accuracy {100 * rows[0]['test_accuracy']:.2f} %" in proc.stdout
    assert "Completed 1 epoch." in proc.stdout


def test_piped_answers_in_the_original_spellings(tmp_path, mnist_dir):
    """Answers read line by line from a pipe, in the original project's words and cases."""
    answers = "one\nSimple\nGauss\nSigmoid\ny\nY\nSGD\n2\n"
    proc = train(["--output-dir", tmp_path, "--limit", 1000, "--no-show"], mnist_dir, stdin=answers)
    assert proc.returncode == 0, proc.stderr
    run = Run.load(only_run(tmp_path))
    config = run.config
    assert {k: getattr(config, k) for k in ("layers", "normalization", "init", "activation", "l1",
                                            "decay", "optimizer", "epochs")} == \
        {"layers": 1, "normalization": "simple", "init": "gauss", "activation": "sigmoid", "l1": True,
         "decay": True, "optimizer": "sgd", "epochs": 2}
    assert run.record.normalization.mean is None
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["learning_rate"] for r in rows] == [0.001, 0.001 * 0.98]
    assert rows[0]["l1_penalty"] > 0  # L1 on: its penalty is logged apart from the loss
    assert [w.shape for w in run.network("last").weights] == [(784, 64), (64, 10)]


def test_invalid_then_valid_answers(tmp_path, mnist_dir):
    """Each invalid answer is explained and the question asked again; then the run goes on."""
    answers = "3\n0\nfancy\nnormal\nxavier\nmaybe\nn\nn\nrmsprop\nmomentum\n0\n1\n"
    proc = train(["--output-dir", tmp_path, "--limit", 500, "--no-show"], mnist_dir, stdin=answers)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Invalid answer") == 5
    assert "Activation skipped" in proc.stdout
    run = Run.load(only_run(tmp_path))
    assert run.config.layers == 0 and run.config.activation is None and run.config.optimizer == "momentum"
    assert [w.shape for w in run.network("last").weights] == [(784, 10)]


def test_input_ending_early_creates_nothing(tmp_path, mnist_dir):
    """Input that stops after three answers: exit 2, the fourth question and its flag named."""
    out = tmp_path / "out"
    proc = train(["--output-dir", out], mnist_dir, stdin="2\nnormal\nxavier\n")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train.py: input ended before question 4 (Activation for the hidden layers) was answered; "
        "answer it, or pass --activation"]
    assert not out.exists()


def test_same_seed_repeats_a_run(tmp_path, mnist_dir):
    """Two runs with the same --seed write identical histories (all but the timing) and weights."""
    flags = ["--layers", 1, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
             "--l1", "y", "--decay", "y", "--optimizer", "momentum", "--epochs", 2, "--seed", 11,
             "--limit", 2000, "--output-dir", tmp_path, "--no-show"]
    for name in ("a", "b"):
        assert train([*flags, "--name", name], mnist_dir).returncode == 0
    a, b = Run.load(tmp_path / "a"), Run.load(tmp_path / "b")
    untimed = [k for k in HISTORY_COLUMNS if k != "seconds"]
    assert [[r[k] for k in untimed] for r in a.history()] == [[r[k] for k in untimed] for r in b.history()]
    for which in ("last", "best"):
        for wa, wb in zip(a.network(which).weights,
                          b.network(which).weights):
            assert np.array_equal(wa, wb)
    last = a.record.last["checkpoint"]
    assert (a.path / last / "weights_1.csv").read_bytes() == (b.path / last / "weights_1.csv").read_bytes()


# =============================================================================== a hostile world
# Each class of trouble with its normal case beside it: wrong answers, bad flags and names,
# streams that close or cannot encode, a terminal of some width, signals at odd moments, flags
# without values, faults while training, windows that cannot open.
#
# A case about what a user sees runs the real program as a subprocess and checks the exit code
# (2 usage or input ended, 1 data or IO, 130 Ctrl-C), a single line on stderr naming the
# problem, no traceback, and that nothing already on disk changed. Children get a proxy pointing
# at a closed local port (conftest.child_env), so a download attempt never reaches the internet;
# the cases marked @hostile also check that the project's folders are left as they were.

# The answers to the first seven questions as flags (the epochs left out), for short runs (a few
# seconds each).
QUICK_RUN = [*flags(epochs=None), "--limit", 500, "--seed", 3, "--no-show"]


def shell(command: str, mnist_dir, cwd=ROOT, **env) -> subprocess.CompletedProcess:
    """A real shell pipeline or redirection; `TRAIN` in command stands for python train.py.
    stdout and stderr are bytes."""
    command = command.replace("TRAIN", f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'train.py'))}")
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=child_env(mnist_dir, **env),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=300)


def args_text(args) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)


def run_dirs(out: Path) -> list[Path]:
    """The run folders in out, as paths."""
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []


# ---- stdout whose reader goes away: `| head -N`

@pytest.mark.parametrize("lines", range(1, 13))
def test_a_reader_that_goes_away_stops_the_run_as_an_interruption(tmp_path, mnist_dir, lines):
    """`train.py | head -N` for N = 1..12: no traceback, nothing blames the disk, exit 141 (or 0
    when head took every line), and every epoch head showed is committed in the run folder."""
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 4, '--output-dir', out])} | head -{lines}; "
                 "exit ${PIPESTATUS[0]}", mnist_dir)
    seen = proc.stdout.decode()
    assert proc.stderr.decode() == "", proc.stderr.decode()  # no traceback, no disk advice
    assert len(seen.splitlines()) <= lines
    folders = run_dirs(out)
    assert proc.returncode in (0, 141), seen
    if proc.returncode == 0:  # the whole output fitted in N lines
        assert "Completed 4 epochs." in seen
    assert len(folders) <= 1
    shown = [int(m) for m in re.findall(r"^Epoch\s+(\d+)/4", seen, re.M)]
    if folders:
        run = Run.load(folders[0])
        assert run.record.status in ("interrupted", "completed"), run.record.status
        # completed when every epoch was committed before the closing lines met the closed pipe
        assert proc.returncode == 141 or run.record.status == "completed"
        committed = [r["epoch"] for r in run.history()]
        assert committed == list(range(1, len(committed) + 1)) and committed[:len(shown)] == shown
    else:
        assert not shown


def test_stdout_to_a_full_device_says_so_in_one_line(tmp_path, mnist_dir):
    """stdout to /dev/full: exit 1, one line on stderr naming the cause, nothing saved."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 2, '--output-dir', out])} > /dev/full", mnist_dir)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert "cannot write to standard output (No space left on device)" in lines[0]
    assert run_dirs(out) == []


def test_stdout_device_failing_mid_run_stops_keeping_the_committed_epochs(tmp_path, mnist_dir):
    """stdout a terminal that goes away after epoch 1 (the pty's other side closed: writes fail
    with EIO): the run stops as interrupted with its epochs kept, one line on stderr, exit 1."""
    import pty
    import select
    out = tmp_path / "out"
    master, slave = pty.openpty()
    proc = popen_default_sigint([sys.executable, str(ROOT / "train.py"), *map(str, QUICK_RUN),
                                 "--epochs", "40", "--limit", "5000", "--output-dir", str(out)],
                                cwd=ROOT, env=child_env(mnist_dir), stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    try:
        got = b""
        while not re.search(rb"^Epoch\s+1/", got, re.M):
            assert select.select([master], [], [], 60)[0], got
            got += os.read(master, 65536)
        os.close(master)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = err.decode().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert "standard output closed (Input/output error); stopped, keeping the" in lines[0]
    run = Run.load(only_run(out))
    assert run.record.status == "interrupted" and 1 <= run.record.epochs_completed < 40
    assert f"keeping the {run.record.epochs_completed} committed epoch(s) in {run.path}" in lines[0]


def test_stderr_closed_the_run_completes_without_progress_bars(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 2, '--output-dir', out])} 2>&-", mnist_dir)
    assert proc.returncode == 0, proc.stdout.decode()
    assert "Completed 2 epochs." in proc.stdout.decode()
    assert Run.load(only_run(out)).record.status == "completed"


def test_stderr_closed_an_error_still_reaches_stdout(tmp_path, mnist_dir):
    proc = shell("TRAIN --layers 7 2>&-", mnist_dir)
    assert proc.returncode == 2
    assert "--layers" in proc.stdout.decode() and "Traceback" not in proc.stdout.decode()


# ---- output encodings that are not UTF-8

ENCODINGS = {"pythonioencoding-ascii": {"PYTHONIOENCODING": "ascii"},
             "c-locale-utf8-mode-off": {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": None}}


@pytest.mark.parametrize("env", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_output_in_an_ascii_encoding_degrades_never_crashes(tmp_path, mnist_dir, env):
    out = tmp_path / "runs-é"
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 1, '--output-dir', out])}", mnist_dir, **env)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode("ascii")  # every byte ASCII: what cannot be encoded became '?'
    assert "runs-?" in text and "Completed 1 epoch." in text
    assert Run.load(only_run(out)).record.status == "completed"
    helped = shell("TRAIN --help", mnist_dir, **env)
    assert helped.returncode == 0 and helped.stderr == b""
    assert helped.stdout.decode("ascii").startswith("usage: train.py")


# ---- standard input: closed, a byte-order mark, Unicode digits

def test_stdin_closed_is_input_ended_at_question_1(tmp_path, mnist_dir):
    proc = shell(f"TRAIN --output-dir {shlex.quote(str(tmp_path / 'out'))} <&-", mnist_dir)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "train.py: input ended before question 1 (Number of hidden layers in the model) was "
        "answered; answer it, or pass --layers"]
    assert not (tmp_path / "out").exists()


def test_a_byte_order_mark_before_the_first_answer_is_ignored(tmp_path, mnist_dir):
    answers = "\ufeff1\nsimple\nxavier\nrelu\nn\nn\nsgd\n"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--output-dir", str(tmp_path / "out")],
                          cwd=ROOT, env=child_env(mnist_dir), input=answers.encode("utf-8"),
                          capture_output=True, timeout=120)
    assert "Invalid answer" not in proc.stdout.decode(), proc.stdout.decode()
    assert "input ended before question 8 (" in proc.stderr.decode()  # seven answers taken


FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789abcdefghijklmnopqrstuvwxyz"}


@pytest.mark.parametrize("question", train_py.QUESTIONS, ids=lambda q: q.key)
def test_every_question_judges_unicode_digits_and_letters_alike(question):
    """Full-width and superscript forms fold to their ASCII answer (NFKC) in every question;
    digits of other scripts ('٢') are refused by every question alike."""
    valid = {"layers": "2", "epochs": "2", "l1": "y", "decay": "n"}.get(question.key)
    valid = valid or {"normalization": "normal", "init": "xavier", "activation": "relu",
                      "optimizer": "sgd"}[question.key]
    wide = "".join(FULL_WIDTH.get(c, c) for c in valid)
    assert wide != valid and question.parse(wide) == question.parse(valid)
    assert question.parse("\ufeff" + valid) == question.parse(valid)
    if valid == "2":
        assert question.parse("²") == question.parse("２") == 2
        with pytest.raises(ValueError):
            question.parse("٢")


# ---- the eight questions: wrong answers, input that ends or is not UTF-8, Ctrl-C

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


@hostile
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


@hostile
def test_q8_epochs_reasks_on_blank_fraction_negative_zero_exponent_and_too_many_then_runs(tmp_path):
    out = tmp_path / "out"
    wrong = ["", "  ", "1.5", "-1", "0", "1e9", "10001", "ten", "3 epochs"]
    proc = run_train([*_earlier_flags(8), *QUICK, "--output-dir", out, "--name", "q8"],
                     stdin="".join(w + "\n" for w in wrong) + " 1 \n")
    assert proc.returncode == 0, show(proc)
    assert_no_traceback(proc)
    assert proc.stdout.count("Invalid answer") == len(wrong), show(proc)
    assert "too many: at most 10000" in proc.stdout and "must be at least 1" in proc.stdout
    record = Run.load(out / "q8").record
    assert (record.config.epochs, record.status, record.epochs_completed) == (1, "completed", 1)


@hostile
@pytest.mark.parametrize("number", range(1, 9), ids=[f"input-ends-at-q{n}-{k}" for n, k in enumerate(KEYS, 1)])
def test_input_ending_at_each_question_exits_2_naming_question_and_flag(tmp_path, number):
    out = tmp_path / "out"
    valid = {"layers": "1", "normalization": "simple", "init": "gauss", "activation": "sigmoid",
             "l1": "n", "decay": "n", "optimizer": "sgd"}
    stdin = "".join(valid[k] + "\n" for k in KEYS[:number - 1])
    proc = run_train(["--output-dir", out], stdin=stdin)
    assert_fails(proc, 2, f"input ended before question {number} (", f"pass --{KEYS[number - 1]}")
    assert not out.exists()


@hostile
@pytest.mark.parametrize("encoding", [None, "utf-8"],
                         ids=["input-not-utf8-C.UTF-8-locale", "input-not-utf8-strict-utf8-stdin-as-en_US.UTF-8"])
def test_input_not_utf8_is_an_invalid_answer_then_input_ended(tmp_path, encoding):
    # Python reads stdin with errors="surrogateescape" only under the C/POSIX/C.UTF-8 locales;
    # under en_US.UTF-8 and the like it is strict, which PYTHONIOENCODING=utf-8 reproduces here.
    proc = run_train(["--output-dir", tmp_path / "out"], stdin=b"\xff\xfe\x00\n",
                     env=child_env(PYTHONIOENCODING=encoding))
    assert_fails(proc, 2, "question 1 (", "--layers")
    assert "Invalid answer" in proc.stdout


@hostile
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


@hostile
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


@hostile
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


# ---- Ctrl-C while Python starts and the modules import

# STARTUP_LAUNCHER (conftest.py) runs train.py as `python train.py` would, once the interpreter has
# started and the script is compiled, and says so on the pipe numbered argv[1]: the delays count from
# train.py's first line. Before it, a Ctrl-C is the interpreter's to report (no line of the program
# can run yet).
def test_ctrl_c_while_starting_exits_130_quietly(tmp_path, mnist_dir):
    """SIGINT 0-0.6 s after train.py's first line (the modules import then), 30 times: never a
    traceback or a KeyboardInterrupt, always exit 130, nothing saved.

    The child runs with -S (its packages through PYTHONPATH): this machine's site-packages
    holds a .pth file, not the project's, that imports certifi in every interpreter start."""
    env = child_env(mnist_dir, PYTHONPATH=site_packages_path())
    rng = random.Random(1)
    results = interrupt_while_starting(ROOT / "train.py", ["--output-dir", tmp_path / "out"], env,
                                       [rng.uniform(0, 0.6) for _ in range(30)], stdin=subprocess.PIPE)
    bad = [r for r in results if r[1] != 130 or "Traceback" in r[2] or "KeyboardInterrupt" in r[2]]
    assert not bad, bad
    assert not (tmp_path / "out").exists()


# ---- the terminal: width, the progress bar after Ctrl-C

ROW = {"epoch": 7, "learning_rate": 0.00098, "train_loss": 0.18754, "train_accuracy": 0.9436,
       "val_loss": 0.2291, "val_accuracy": 0.9285, "test_loss": 0.1782, "test_accuracy": 0.9448,
       "l1_penalty": 0.0, "l2_penalty": 0.0, "seconds": 12.34}


@pytest.mark.parametrize("width", [200, 120, 80, 60, 45])
def test_epoch_line_fits_the_terminal(width):
    line = terminal.epoch_line(ROW, 100, width, best=7)
    assert len(line) <= width - 1, (len(line), line)
    assert line.startswith("Epoch   7/100") and line.endswith(" *")
    assert "92.85%" in line and "94.48%" in line  # validation and test accuracy always
    if width >= 80:
        assert "94.36%" in line and "12.3s" in line  # train accuracy and time from 80 columns
    if width >= 120:
        for text in ("0.000980", "(0.1875)", "(0.2291)", "(0.1782)"):  # every value
            assert text in line


def test_epoch_line_in_a_narrow_terminal_still_names_the_essentials():
    line = terminal.epoch_line(ROW, 100, 20)
    assert "Epoch   7/100" in line and "92.85%" in line and "94.48%" in line


def test_epoch_lines_in_an_80_column_pty_do_not_wrap_and_ctrl_c_clears_the_bar(tmp_path, mnist_dir):
    """In a real 80-column terminal: no printed line reaches the last column, and after Ctrl-C
    mid-epoch no progress bar or echoed ^C is left on the screen."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 80, 0, 0))

    def own_terminal():  # as a shell starts a job: the pty is its terminal, it the foreground
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, QUICK_RUN), "--epochs", "60",
                             "--limit", "20000", "--output-dir", str(tmp_path / "out")],
                            cwd=ROOT, env=child_env(mnist_dir), stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=own_terminal)
    os.close(slave)
    got = b""
    try:
        while len(re.findall(rb"Epoch\s+\d+/60  ", got)) < 2:  # two epochs' summary lines
            assert select.select([master], [], [], 60)[0], got
            got += os.read(master, 65536)
        time.sleep(0.3)  # within an epoch: its bar is on the screen
        os.write(master, b"\x03")  # Ctrl-C typed: the terminal sends SIGINT (and may echo ^C)
        proc.wait(timeout=60)
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    screen = _screen(got.decode("utf-8", "replace"), 80)
    assert not [line for line in screen if "step/s" in line or "^C" in line or "%|" in line], screen
    text = "\n".join(screen)
    assert "Interrupted (Ctrl-C)" in text and "Traceback" not in text
    epoch_lines = [line for line in screen if line.startswith("Epoch")]
    assert epoch_lines and all(len(line) < 80 for line in epoch_lines), epoch_lines


def _screen(output: str, width: int) -> list[str]:
    """What a terminal shows for output: carriage returns, erase-to-end-of-line and wrapping at
    width applied (enough of a terminal for progress bars)."""
    lines, line, col = [], [], 0
    i = 0
    while i < len(output):
        c = output[i]
        if output.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        if c == "\x1b":  # other escape sequences: skip to their final letter
            m = re.match(r"\x1b\[[0-9;?]*[A-Za-z]", output[i:])
            i += len(m.group()) if m else 1
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col >= width:  # the terminal wraps
                lines.append("".join(line))
                line, col = [], 0
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
        i += 1
    lines.append("".join(line))
    return [text.rstrip() for text in lines]


# ---- flags without values, names, folders, help

def test_seed_dashdash_through_the_program_saves_nothing(tmp_path, mnist_dir):
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 1, '--output-dir', tmp_path / 'out'])} --seed=--",
                 mnist_dir)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "train.py: error: --seed needs a value (see python train.py --help)"]
    assert not (tmp_path / "out").exists()


def test_two_runs_started_together_without_a_name_get_a_folder_each(tmp_path, mnist_dir):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "train.py"), *map(str, QUICK_RUN), "--epochs", "1", "--output-dir", str(out)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=child_env(mnist_dir), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    folders = run_dirs(out)
    assert len(folders) == 2, folders
    for folder in folders:
        assert Run.load(folder).record.status == "completed"
    printed = {re.search(r"^Run folder: (.*)$", o.decode(), re.M).group(1) for o, _ in results}
    assert len(printed) == 2


def test_name_length_limit_is_counted_and_reported_in_bytes(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--output-dir', out, '--name', 'é' * 101])}", mnist_dir)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == ["train.py: --name is 202 bytes long; use at most 200"]
    assert not out.exists()
    ok = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 1, '--output-dir', out, '--name', 'a' * 200])}",
               mnist_dir)
    assert ok.returncode == 0, ok.stderr.decode()
    assert (out / ("a" * 200)).is_dir()


@pytest.mark.parametrize("flag", ["--output-dir", "--data-dir", "--resume"])
def test_an_empty_folder_flag_is_refused_not_taken_as_the_current_folder(tmp_path, mnist_dir, flag):
    before = sorted(tmp_path.iterdir())
    proc = shell(f"TRAIN {args_text(QUICK_RUN)} {flag} ''", mnist_dir, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and f"argument {flag}: is empty; give " in lines[0], lines
    assert sorted(tmp_path.iterdir()) == before


def test_help_shows_short_readable_metavars():
    text = train_py.build_parser().format_help()
    metavars = set(re.findall(r"--[a-z0-9-]+ ([A-Z][A-Z_0-9]*)", text))
    assert metavars, text
    assert all(len(m) <= 6 and "_" not in m for m in metavars), sorted(metavars)
    assert "BATCH_SIZE" not in text and "LEARNING_RATE" not in text


# ---- bad flag values

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


@hostile
@pytest.mark.parametrize("args,needle", [c[1:] for c in BAD_FLAGS], ids=[f"flag-{c[0]}" for c in BAD_FLAGS])
def test_bad_flag_value_exits_2_one_line(tmp_path, args, needle):
    out = tmp_path / "out"
    # later flags win in argparse, so the bad value goes last
    proc = run_train([*flags(), *QUICK, "--output-dir", out, *args])
    line = assert_fails(proc, 2, needle)
    assert "--help" in line or "--batch-size" in line  # argparse's errors point to --help
    assert not out.exists()


# Values that pass the flag check but that RunConfig.problem() calls invalid, so that
# predict.py (Run.network) refuses the run train.py then saves: they must be refused up front.
INFINITE_FLAGS = [["--learning-rate", "inf"], ["--decay-factor", "inf"], ["--l1-lambda", "inf"]]


@hostile
@pytest.mark.parametrize("args", INFINITE_FLAGS, ids=lambda a: f"flag{a[0][1:]}-inf")
def test_infinite_hyperparameter_is_refused_like_nan(tmp_path, args):
    out = tmp_path / "out"
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--name", "inf", *args])
    assert_fails(proc, 2, args[0])
    assert run_folders(out) == []


@hostile
def test_hidden_size_too_big_to_allocate_is_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--hidden-size", "1000000000"])
    assert_fails(proc, (1, 2), "--hidden-size")
    assert run_folders(out) == []


@hostile
def test_batch_size_larger_than_the_training_split_is_refused_in_one_line(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(), "--seed", "1", "--no-show", "--output-dir", out, "--batch-size", "58001"],
                     env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, (1, 2), "--batch-size")
    assert run_folders(out) == []


@hostile
def test_layers_0_with_activation_flag_runs_with_note_and_records_null(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(layers="0", activation="sigmoid"), *QUICK, "--output-dir", out, "--name", "zero"],
                     env=child_env(MNIST_DIR=str(mnist_dir)))
    assert proc.returncode == 0, show(proc)
    assert_no_traceback(proc)
    notes = [line for line in proc.stdout.splitlines() if "--activation sigmoid has no effect" in line]
    assert len(notes) == 1, show(proc)
    run = Run.load(out / "zero")  # the run it saved loads
    net = run.network()
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


@hostile
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


@hostile
@pytest.mark.parametrize("name,needle", [c[1:] for c in BAD_NAMES], ids=[f"name-{c[0]}" for c in BAD_NAMES])
def test_unsafe_name_is_refused_and_nothing_created_outside(tmp_path, name, needle):
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    before = snapshot(tmp_path)
    proc = run_train([*flags(), *QUICK, "--output-dir", out, f"--name={name}"])
    assert_fails(proc, 2, "--name", needle)
    assert snapshot(tmp_path) == before  # not even the output folder
    assert not Path(ABS_NAME).exists()


@hostile
def test_name_too_long_for_the_file_system_is_refused_in_one_line(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(), *QUICK, "--output-dir", out, "--name", "a" * 300],
                     env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, (1, 2), "--name")
    assert run_folders(out) == []


@hostile
def test_output_dir_that_is_a_file_is_refused_and_file_unchanged(tmp_path):
    target = tmp_path / "runs.txt"
    target.write_text("not a folder\n")
    before = snapshot(tmp_path)
    proc = run_train([*flags(), *QUICK, "--output-dir", target])
    assert_fails(proc, 1, "is a file, not a folder", "choose another")
    assert snapshot(tmp_path) == before


@hostile
def test_output_dir_under_a_file_cannot_be_created_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("in the way\n")
    before = snapshot(tmp_path)
    proc = run_train([*flags(), *QUICK, "--output-dir", target / "sub"])
    assert_fails(proc, 1, "cannot create the output folder", "choose another --output-dir")
    assert snapshot(tmp_path) == before


@hostile
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


# ---- paths printed to the user

def test_run_folder_is_printed_relative_to_the_current_folder(tmp_path, mnist_dir):
    proc = shell(f"TRAIN {args_text([*QUICK_RUN, '--epochs', 1, '--output-dir', tmp_path / 'runs', '--name', 'r'])}",
                 mnist_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert f"Run folder: {os.path.join('runs', 'r')}\n" in text and str(tmp_path) not in text


# ---- SIGINT ignored by whoever started train.py

def test_started_with_sigint_ignored_a_run_ignores_it_throughout(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, QUICK_RUN), "--epochs", "8",
                             "--limit", "5000", "--output-dir", str(out)], cwd=ROOT, env=child_env(mnist_dir),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    sent = 0
    while proc.poll() is None and sent < 40:  # all through the run: imports, epochs, saves
        time.sleep(0.1)
        try:
            proc.send_signal(signal.SIGINT)
            sent += 1
        except ProcessLookupError:
            break
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    assert sent >= 5 and "Completed 8 epochs." in stdout.decode()
    assert Run.load(only_run(out)).record.status == "completed"


# ---- faults while training: Ctrl-C mid-epoch, a diverging loss, the run folder gone, a full disk

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
    return Run.load(run_dir).history()


def _recount_test_accuracy(run_dir: Path, mnist_dir: Path) -> tuple[int, int]:
    """(right answers of the last epoch's saved weights on the test set, right answers the
    history records for that epoch)."""
    run = Run.load(run_dir)
    net = run.network("last")
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


@hostile
def test_ctrl_c_mid_epoch_exits_130_without_traceback(interrupted):
    proc = interrupted.proc
    assert proc.returncode == 130, show(proc)
    assert_no_traceback(proc)
    printed = re.findall(r"^Epoch\s+\d+/30", proc.stdout, re.M)
    assert f"Interrupted (Ctrl-C): kept the {len(printed)} epochs committed" in proc.stdout, show(proc)
    assert f"Continue with:\n  python train.py --resume {interrupted.run_dir}\n" in proc.stdout
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) <= 1, show(proc)


@hostile
def test_ctrl_c_mid_epoch_records_interrupted_and_exactly_the_completed_epochs(interrupted):
    run = Run.load(interrupted.run_dir)
    printed = [int(m.group(1)) for m in re.finditer(r"^Epoch\s+(\d+)/30", interrupted.proc.stdout, re.M)]
    history = run.history()
    assert run.record.status == "interrupted"
    assert 2 <= len(printed) < 30
    assert [r["epoch"] for r in history] == printed == list(range(1, run.record.epochs_completed + 1))
    assert run.record.last["test_accuracy"] == history[-1]["test_accuracy"]
    assert run.weights_epoch("last") == printed[-1]
    assert not _leftovers(interrupted.run_dir)


@hostile
def test_ctrl_c_mid_epoch_saved_weights_give_recorded_test_accuracy_to_the_image(interrupted, mnist_dir):
    got, recorded = _recount_test_accuracy(interrupted.run_dir, mnist_dir)
    assert got == recorded


@hostile
def test_loss_diverging_in_epoch_1_stops_exit_1_keeps_nothing_and_says_so(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = run_train([*flags(layers="2", epochs="3"), *QUICK, "--learning-rate", "1e4", "--output-dir", out,
                      "--name", "div1"], env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, 1, "NaN or infinite in epoch 1", "smaller --learning-rate")
    assert "No epoch was completed" in proc.stdout
    record = Run.load(out / "div1").record
    assert (record.status, record.epochs_completed, record.last, record.best) == ("diverged", 0, None, None)
    # the record only (and the writer's lock file): no checkpoint, no weights, no history
    assert [n for n in run_folders(out / "div1") if n != ".lock"] == ["run.json"]


@hostile
def test_loss_diverging_in_epoch_2_stops_exit_1_keeps_epoch_1(tmp_path, mnist_dir):
    # The learning rate of epoch 2 is 0.001 * 1e7 = 1e4: epoch 1 trains normally, epoch 2 blows up.
    out = tmp_path / "out"
    proc = run_train([*flags(layers="2", epochs="3", decay="y"), *QUICK, "--decay-factor", "1e7",
                      "--output-dir", out, "--name", "div2"], env=child_env(MNIST_DIR=str(mnist_dir)))
    assert_fails(proc, 1, "NaN or infinite in epoch 2", "keeping the 1 epoch(s)")
    record = Run.load(out / "div2").record
    assert (record.status, record.epochs_completed) == ("diverged", 1)
    assert [r["epoch"] for r in _history(out / "div2")] == [1]
    got, recorded = _recount_test_accuracy(out / "div2", mnist_dir)
    assert got == recorded


def _remove_folder(run_dir: Path) -> None:
    shutil.rmtree(run_dir)


def _file_in_place(run_dir: Path) -> None:
    shutil.rmtree(run_dir)
    run_dir.write_text("in the way\n")


@hostile
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


@hostile
def test_disk_full_while_saving_weights_one_line_exit_1(disk_full):
    assert_fails(disk_full.proc, 1, "cannot write", "File too large", "check the disk")
    assert "Epoch 2/" not in disk_full.proc.stdout, show(disk_full.proc)


@hostile
def test_disk_full_while_saving_weights_leaves_weights_matching_history(disk_full, mnist_dir):
    after = snapshot(disk_full.run_dir / "checkpoints", disk_full.run_dir / "history.csv")
    assert after == disk_full.before  # epoch 1's checkpoint untouched, no part of epoch 2's
    assert not _leftovers(disk_full.run_dir)
    run = Run.load(disk_full.run_dir)
    assert (run.record.status, run.record.epochs_completed) == ("failed", 1)
    assert [r["epoch"] for r in run.history()] == [1]
    got, recorded = _recount_test_accuracy(disk_full.run_dir, mnist_dir)
    assert got == recorded


# ---- graph windows that cannot open

def _hidden_tkinter(tmp_path: Path) -> str:
    folder = tmp_path / "no-tk"
    folder.mkdir()
    (folder / "tkinter.py").write_text('raise ImportError("No module named \'tkinter\' (hidden by a test)")\n')
    return str(folder)


WINDOW_CASES = {
    "unreachable-display-tkagg": ({"DISPLAY": ":1234", "MPLBACKEND": "TkAgg"}, False,
                                  "the display :1234 cannot be reached"),
    "unreachable-display-auto": ({"DISPLAY": ":1234", "MPLBACKEND": None}, False,
                                 "the display :1234 cannot be reached"),
    "no-toolkit-auto": ({"DISPLAY": ":1234", "MPLBACKEND": None}, True, "no GUI toolkit"),
    "no-toolkit-tkagg": ({"DISPLAY": ":1234", "MPLBACKEND": "TkAgg"}, True, "no GUI toolkit"),
    "no-display": ({"MPLBACKEND": None}, False, "no display"),
}


@pytest.mark.parametrize("env,hide_tk,cause", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_no_window_says_why_and_where_the_graphs_are(tmp_path, mnist_dir, env, hide_tk, cause):
    if not hide_tk:
        pytest.importorskip("tkinter")
    if hide_tk:
        env = {**env, "PYTHONPATH": _hidden_tkinter(tmp_path)}
    args = [a for a in QUICK_RUN if a != "--no-show"]
    proc = shell(f"TRAIN {args_text([*args, '--epochs', 1, '--output-dir', tmp_path / 'runs', '--name', 'r'])}",
                 mnist_dir, cwd=tmp_path, **env)
    text = proc.stdout.decode()
    assert proc.returncode == 0 and "Traceback" not in text + proc.stderr.decode(), text
    assert "Showing the graphs" not in text
    assert f"No window: {cause}" in text, text
    if hide_tk:
        assert "install one (python3-tk, for example)" in text
    where = f"The graphs are in {os.path.join('runs', 'r')} (accuracy.png, loss.png"
    assert where in text, text


# ---- saved runs are data, never code: no pickle, exec or eval in any product module

PRODUCT_FILES = sorted([*ROOT.glob("*.py"), *ROOT.glob("kit/*.py")])


def _trees():
    for path in PRODUCT_FILES:
        yield path, ast.parse(path.read_text(), str(path))


@hostile
def test_security_no_pickle_import_in_product_code():
    unsafe = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal", "dask", "distributed"}
    # kit/engine.py alone hands study runs to joblib or Dask (which pickle a run's folder
    # name and configuration to send it to a worker, and never load a file); it must not
    # call joblib.load, which unpickles files.
    engine = ROOT / "kit" / "engine.py"
    assert "joblib.load" not in engine.read_text() and "import load" not in engine.read_text()
    found = []
    for path, tree in _trees():
        if path == engine:
            continue
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in unsafe]
    assert not found and PRODUCT_FILES


@hostile
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


@hostile
def test_security_no_exec_or_eval_in_product_code():
    bad = [f"{path.name}:{node.lineno}" for path, tree in _trees() for node in ast.walk(tree)
           if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval")]
    assert not bad


def test_two_copies_racing_for_one_name_one_trains_the_other_exits_2(tmp_path, mnist_dir):
    """Two train.py with the same --name started at once, or the second a little later (it
    then finds the name taken before or after loading the data): one trains, the other is
    refused in one line with exit 2 either way, and the run is whole."""
    from types import SimpleNamespace
    for k, delay in enumerate((0.0, 0.0, 0.3, 0.6, 1.0)):
        out = tmp_path / f"race{k}"
        args = [sys.executable, str(ROOT / "train.py"), *flags(), *QUICK, "--epochs", "1",
                "--output-dir", str(out), "--name", "same"]
        first = subprocess.Popen(args, cwd=ROOT, env=child_env(mnist_dir), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        second = subprocess.Popen(args, cwd=ROOT, env=child_env(mnist_dir), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ended = [SimpleNamespace(returncode=p.wait(timeout=300), stdout=p.stdout.read(),
                                 stderr=p.stderr.read(), args=args) for p in (first, second)]
        codes = sorted(p.returncode for p in ended)
        assert codes == [0, 2], [p.stderr for p in ended]
        refused = next(p for p in ended if p.returncode == 2)
        assert_fails(refused, 2, "'same' already exists", "choose another --name")
        assert Run.load(out / "same").record.status == "completed"
