"""train.py as a user runs it: flags, piped answers, and the run folder it writes."""
from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

import runs
import train as train_py
from cli import Output
from conftest import popen_default_sigint
from interrupts import StopSignals

ROOT = Path(__file__).resolve().parents[1]


def train(args, mnist_dir, stdin=None):
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=ROOT, env=env,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)


def only_run(out: Path) -> Path:
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def history(run: runs.Run) -> list[dict]:
    """The run's committed history, checked against the file people read beside run.json."""
    rows = run.history()
    with open(run.path / "history.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == runs.HISTORY_COLUMNS
        assert [int(r["epoch"]) for r in reader] == [r["epoch"] for r in rows]
    return rows


def test_all_flags_full_split_one_epoch(tmp_path, mnist_dir):
    """All eight flags, no input, the real 58,000-image split: a complete run folder."""
    proc = train(["--layers", 2, "--normalization", "normal", "--init", "xavier", "--activation", "relu",
                  "--l1", "n", "--decay", "n", "--optimizer", "momentum", "--epochs", 1, "--seed", 7,
                  "--output-dir", tmp_path, "--no-show"], mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    run = runs.Run.load(only_run(tmp_path))
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
    run = runs.Run.load(only_run(tmp_path))
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
    run = runs.Run.load(only_run(tmp_path))
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
    a, b = runs.Run.load(tmp_path / "a"), runs.Run.load(tmp_path / "b")
    untimed = [k for k in runs.HISTORY_COLUMNS if k != "seconds"]
    assert [[r[k] for k in untimed] for r in a.history()] == [[r[k] for k in untimed] for r in b.history()]
    for which in ("last", "best"):
        for wa, wb in zip(a.network(which).weights,
                          b.network(which).weights):
            assert np.array_equal(wa, wb)
    last = a.record.last["checkpoint"]
    assert (a.path / last / "weights_1.csv").read_bytes() == (b.path / last / "weights_1.csv").read_bytes()


# =============================================================================== a hostile world
# Each class of trouble with its normal case beside it: streams that close or cannot encode,
# a terminal of some width, signals at odd moments, flags without values, windows that
# cannot open.

# The eight answers as flags, for short runs (a few seconds each).
QUICK = ["--layers", 1, "--normalization", "simple", "--init", "xavier", "--activation", "relu",
         "--l1", "n", "--decay", "n", "--optimizer", "sgd", "--limit", 500, "--seed", 3, "--no-show"]


def child_env(mnist_dir, **extra) -> dict[str, str]:
    """The environment of a train.py child: headless unless a test says otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "COLUMNS")}
    env.update(MNIST_DIR=str(mnist_dir), MPLBACKEND="Agg")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def shell(command: str, mnist_dir, cwd=ROOT, **env) -> subprocess.CompletedProcess:
    """A real shell pipeline or redirection; `TRAIN` in command stands for python train.py.
    stdout and stderr are bytes."""
    command = command.replace("TRAIN", f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'train.py'))}")
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=child_env(mnist_dir, **env),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=300)


def args_text(args) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)


def run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []


# ---- stdout whose reader goes away: `| head -N`

@pytest.mark.parametrize("lines", range(1, 13))
def test_a_reader_that_goes_away_stops_the_run_as_an_interruption(tmp_path, mnist_dir, lines):
    """`train.py | head -N` for N = 1..12: no traceback, nothing blames the disk, exit 141 (or 0
    when head took every line), and every epoch head showed is committed in the run folder."""
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK, '--epochs', 4, '--output-dir', out])} | head -{lines}; "
                 "exit ${PIPESTATUS[0]}", mnist_dir)
    seen = proc.stdout.decode()
    assert proc.stderr.decode() == "", proc.stderr.decode()  # no traceback, no disk advice
    assert len(seen.splitlines()) <= lines
    folders = run_folders(out)
    assert proc.returncode in (0, 141), seen
    if proc.returncode == 0:  # the whole output fitted in N lines
        assert "Completed 4 epochs." in seen
    assert len(folders) <= 1
    shown = [int(m) for m in re.findall(r"^Epoch\s+(\d+)/4", seen, re.M)]
    if folders:
        run = runs.Run.load(folders[0])
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
    proc = shell(f"TRAIN {args_text([*QUICK, '--epochs', 2, '--output-dir', out])} > /dev/full", mnist_dir)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert "cannot write to standard output (No space left on device)" in lines[0]
    assert run_folders(out) == []


def test_stdout_device_failing_mid_run_stops_keeping_the_committed_epochs(tmp_path, mnist_dir):
    """stdout a terminal that goes away after epoch 1 (the pty's other side closed: writes fail
    with EIO): the run stops as interrupted with its epochs kept, one line on stderr, exit 1."""
    import pty
    import select
    out = tmp_path / "out"
    master, slave = pty.openpty()
    proc = popen_default_sigint([sys.executable, str(ROOT / "train.py"), *map(str, QUICK),
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
    run = runs.Run.load(only_run(out))
    assert run.record.status == "interrupted" and 1 <= run.record.epochs_completed < 40
    assert f"keeping the {run.record.epochs_completed} committed epoch(s) in {run.path}" in lines[0]


def test_stderr_closed_the_run_completes_without_progress_bars(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK, '--epochs', 2, '--output-dir', out])} 2>&-", mnist_dir)
    assert proc.returncode == 0, proc.stdout.decode()
    assert "Completed 2 epochs." in proc.stdout.decode()
    assert runs.Run.load(only_run(out)).record.status == "completed"


def test_stderr_closed_an_error_still_reaches_stdout(tmp_path, mnist_dir):
    proc = shell(f"TRAIN --layers 7 2>&-", mnist_dir)
    assert proc.returncode == 2
    assert "--layers" in proc.stdout.decode() and "Traceback" not in proc.stdout.decode()


# ---- output encodings that are not UTF-8

ENCODINGS = {"pythonioencoding-ascii": {"PYTHONIOENCODING": "ascii"},
             "c-locale-utf8-mode-off": {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": None}}


@pytest.mark.parametrize("env", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_output_in_an_ascii_encoding_degrades_never_crashes(tmp_path, mnist_dir, env):
    out = tmp_path / "runs-é"
    proc = shell(f"TRAIN {args_text([*QUICK, '--epochs', 1, '--output-dir', out])}", mnist_dir, **env)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode("ascii")  # every byte ASCII: what cannot be encoded became '?'
    assert "runs-?" in text and "Completed 1 epoch." in text
    assert runs.Run.load(only_run(out)).record.status == "completed"
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


# ---- Ctrl-C while Python starts and the modules import

# Runs train.py as `python train.py` would, once the interpreter has started and the script
# is compiled, and says so on the pipe numbered argv[1]: the delays count from train.py's first line. Before it,
# a Ctrl-C is the interpreter's to report (no line of the program can run yet).
LAUNCHER = """
import os, sys
ready, path = int(sys.argv[1]), sys.argv[2]
sys.argv = sys.argv[2:]
sys.path.insert(0, os.path.dirname(path))
with open(path, encoding="utf-8") as f:
    code = compile(f.read(), path, "exec")
os.write(ready, b"ready")
os.close(ready)
exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
"""


def test_ctrl_c_while_starting_exits_130_quietly(tmp_path, mnist_dir):
    """SIGINT 0-0.6 s after train.py's first line (the modules import then), 30 times: never a
    traceback or a KeyboardInterrupt, always exit 130, nothing saved.

    The child runs with -S (its packages through PYTHONPATH): this machine's site-packages
    holds a .pth file, not the project's, that imports certifi in every interpreter start."""
    paths = os.pathsep.join(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    env = child_env(mnist_dir, PYTHONPATH=paths)
    rng = random.Random(1)
    results = []
    for _ in range(30):
        delay = rng.uniform(0, 0.6)
        ready_r, ready_w = os.pipe()
        proc = popen_default_sigint([sys.executable, "-S", "-c", LAUNCHER, str(ready_w), str(ROOT / "train.py"),
                                     "--output-dir", str(tmp_path / "out")], cwd=ROOT, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(ready_w,))
        os.close(ready_w)
        assert os.read(ready_r, 5) == b"ready"
        os.close(ready_r)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        results.append((round(delay, 3), proc.returncode, (stdout + stderr).decode(errors="replace")))
    bad = [r for r in results if r[1] != 130 or "Traceback" in r[2] or "KeyboardInterrupt" in r[2]]
    assert not bad, bad
    assert not (tmp_path / "out").exists()


# ---- the terminal: width, the progress bar after Ctrl-C

ROW = {"epoch": 7, "learning_rate": 0.00098, "train_loss": 0.18754, "train_accuracy": 0.9436,
       "val_loss": 0.2291, "val_accuracy": 0.9285, "test_loss": 0.1782, "test_accuracy": 0.9448,
       "l1_penalty": 0.0, "l2_penalty": 0.0, "seconds": 12.34}


@pytest.mark.parametrize("width", [200, 120, 80, 60, 45])
def test_epoch_line_fits_the_terminal(width):
    line = train_py.epoch_line(ROW, 100, width, best=7)
    assert len(line) <= width - 1, (len(line), line)
    assert line.startswith("Epoch   7/100") and line.endswith(" *")
    assert "92.85%" in line and "94.48%" in line  # validation and test accuracy always
    if width >= 80:
        assert "94.36%" in line and "12.3s" in line  # train accuracy and time from 80 columns
    if width >= 120:
        for text in ("0.000980", "(0.1875)", "(0.2291)", "(0.1782)"):  # every value
            assert text in line


def test_epoch_line_in_a_narrow_terminal_still_names_the_essentials():
    line = train_py.epoch_line(ROW, 100, 20)
    assert "Epoch   7/100" in line and "92.85%" in line and "94.48%" in line


def test_epoch_lines_in_an_80_column_pty_do_not_wrap_and_ctrl_c_clears_the_bar(tmp_path, mnist_dir):
    """In a real 80-column terminal: no printed line reaches the last column, and after Ctrl-C
    mid-epoch no progress bar or echoed ^C is left on the screen."""
    import pty
    import select
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 80, 0, 0))

    def own_terminal():  # as a shell starts a job: the pty is its terminal, it the foreground
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, QUICK), "--epochs", "60",
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
    return [l.rstrip() for l in lines]


# ---- flags without values, names, folders, help

def _value_flags() -> list[str]:
    parser = train_py.build_parser()
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.nargs is None and not isinstance(a, (argparse._HelpAction,
                                                                            argparse._StoreTrueAction))]


def test_every_flag_given_dashdash_is_one_line_exit_2(capsys):
    """`--flag=--` makes argparse store [] for most flags: each is refused on one line."""
    flags = _value_flags()
    assert {"--name", "--seed", "--epochs", "--output-dir", "--resume"} <= set(flags)
    for flag in flags:
        with pytest.raises(SystemExit) as stop:
            train_py.main([f"{flag}=--"])
        assert stop.value.code == 2, flag
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and flag in err[0] and "Traceback" not in err[0], (flag, err)


def test_seed_dashdash_through_the_program_saves_nothing(tmp_path, mnist_dir):
    proc = shell(f"TRAIN {args_text([*QUICK, '--epochs', 1, '--output-dir', tmp_path / 'out'])} --seed=--",
                 mnist_dir)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "train.py: error: --seed needs a value (see python train.py --help)"]
    assert not (tmp_path / "out").exists()


def test_two_runs_started_together_without_a_name_get_a_folder_each(tmp_path, mnist_dir):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "train.py"), *map(str, QUICK), "--epochs", "1", "--output-dir", str(out)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=child_env(mnist_dir), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    folders = run_folders(out)
    assert len(folders) == 2, folders
    for folder in folders:
        assert runs.Run.load(folder).record.status == "completed"
    printed = {re.search(r"^Run folder: (.*)$", o.decode(), re.M).group(1) for o, _ in results}
    assert len(printed) == 2


def test_name_length_limit_is_counted_and_reported_in_bytes(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = shell(f"TRAIN {args_text([*QUICK, '--output-dir', out, '--name', 'é' * 101])}", mnist_dir)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == ["train.py: --name is 202 bytes long; use at most 200"]
    assert not out.exists()
    ok = shell(f"TRAIN {args_text([*QUICK, '--epochs', 1, '--output-dir', out, '--name', 'a' * 200])}",
               mnist_dir)
    assert ok.returncode == 0, ok.stderr.decode()
    assert (out / ("a" * 200)).is_dir()


@pytest.mark.parametrize("flag", ["--output-dir", "--data-dir", "--resume"])
def test_an_empty_folder_flag_is_refused_not_taken_as_the_current_folder(tmp_path, mnist_dir, flag):
    before = sorted(tmp_path.iterdir())
    proc = shell(f"TRAIN {args_text(QUICK)} {flag} ''", mnist_dir, cwd=tmp_path)
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


# ---- paths printed to the user

def test_output_path_is_relative_inside_the_current_folder_else_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Output.path(tmp_path / "runs" / "a") == os.path.join("runs", "a")
    assert Output.path(Path("runs") / "a") == os.path.join("runs", "a")
    elsewhere = tmp_path.parent / "elsewhere"
    assert Output.path(elsewhere) == str(elsewhere)


def test_run_folder_is_printed_relative_to_the_current_folder(tmp_path, mnist_dir):
    proc = shell(f"TRAIN {args_text([*QUICK, '--epochs', 1, '--output-dir', tmp_path / 'runs', '--name', 'r'])}",
                 mnist_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert f"Run folder: {os.path.join('runs', 'r')}\n" in text and str(tmp_path) not in text


# ---- SIGINT ignored by whoever started train.py

def test_stop_signals_keep_an_ignored_sigint_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    with StopSignals():  # and the normal case: SIGINT handled, then given back
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.default_int_handler)
    assert signal.getsignal(signal.SIGINT) is previous


def test_started_with_sigint_ignored_a_run_ignores_it_throughout(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, QUICK), "--epochs", "8",
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
    assert runs.Run.load(only_run(out)).record.status == "completed"


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
    args = [a for a in QUICK if a != "--no-show"]
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


# ---- graphs: whole epochs on the axis

@pytest.mark.parametrize("n", [1, 2, 30])
def test_graph_epoch_ticks_are_whole_numbers(tmp_path, monkeypatch, n):
    import plots
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figures.append(fig), real_save(fig, path))[1])
    rows = [{**ROW, "epoch": e} for e in range(1, n + 1)]
    plots.plot_history(rows, tmp_path, "test", best_epoch=1)
    assert len(figures) == 3
    for fig in figures:
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert 1 in ticks or n > 12
