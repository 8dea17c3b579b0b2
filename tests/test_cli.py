"""kit/cli.py, shared by every script: a flag given `=--` is one usage line, for every flag of
every script (argparse would otherwise store [] where one value belongs); and run_script
ends a Ctrl-C that lands inside a library with 130 and nothing printed."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kit.cli import Output

ROOT = Path(__file__).resolve().parent.parent

# Each script's flags that take a value, at least these (a new flag is tested without listing it).
SCRIPTS = {
    "train": {"--name", "--seed", "--epochs", "--output-dir", "--resume", "--augment"},
    "predict": {"--run", "--start", "--weights", "--save", "--runs-dir"},
    "compare": {"--metric", "--sort", "--runs-dir", "--save"},
    "study": {"--seeds", "--epochs", "--seed", "--output-dir", "--category"},
}


def value_flags(parser) -> list[str]:
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.nargs is None and a.dest != "help" and not a.const]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_flag_given_dashdash_is_one_usage_line_exit_2(name, capsys):
    script = importlib.import_module(name)
    flags = value_flags(script.build_parser())
    assert SCRIPTS[name] <= set(flags)
    for flag in flags:
        with pytest.raises(SystemExit) as stop:
            script.main([f"{flag}=--"])
        assert stop.value.code == 2, flag
        err = capsys.readouterr().err.splitlines()
        assert err == [f"{name}.py: error: {flag} needs a value (see python {name}.py --help)"], err


# A script run by run_script whose Ctrl-C arrives where Python cannot raise it plainly:
# signal.raise_signal inside the callback, then a few bytecodes, and the handler runs there.
CHILD = textwrap.dedent("""
    import signal, sys, time, weakref
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from kit import cli

    def ctrl_c_here():
        signal.raise_signal(signal.SIGINT)
        for _ in range(100):  # the handler runs at the next bytecode check
            pass

    class Points:  # an argument that matplotlib's compiled code converts to an array
        def __array__(self, dtype=None, copy=None):
            if sys.argv[1] == "library":
                ctrl_c_here()
            return np.zeros((1, 2))

    class Thing:
        pass

    def callback_then_work():
        thing = Thing()
        keep = weakref.ref(thing, lambda ref: ctrl_c_here())
        del thing  # the callback runs here: Python reports, and drops, what it raises
        for _ in range(500):  # five seconds of work that the Ctrl-C must still stop
            time.sleep(0.01)

    def main():
        if sys.argv[1] == "callback":
            callback_then_work()
        elif sys.argv[1] == "training":  # train.py's handler: Interrupted instead
            from kit.signals import StopSignals
            with StopSignals():
                callback_then_work()
        else:
            from matplotlib import _path
            _path.affine_transform(Points(), np.eye(3) if sys.argv[1] != "bad" else np.eye(2))
        print("carried on after the Ctrl-C")
        return 0

    cli.run_script(main)
""")


def run_child(case: str) -> subprocess.CompletedProcess:
    """CHILD with SIGINT at its default, as from a terminal (even when the suite runs as a
    background job, whose children start with SIGINT ignored)."""
    from conftest import popen_default_sigint
    proc = popen_default_sigint([sys.executable, "-c", CHILD, case, str(ROOT)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("case", ["library", "callback", "training"])
def test_ctrl_c_inside_a_library_or_callback_ends_130_and_prints_nothing(case):
    """matplotlib's pybind11 wrappers turn a KeyboardInterrupt raised while they convert an
    argument into a TypeError; a weakref callback's KeyboardInterrupt (or, while a run
    trains, Interrupted) is printed as 'Exception ignored' and dropped. Either way the
    script stops within moments with 130, silently."""
    done = run_child(case)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")


def test_a_library_error_without_a_ctrl_c_is_still_reported():
    """Only an interrupt makes a library's error quiet: the same call's own error is a bug,
    shown with its traceback."""
    done = run_child("bad")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "Invalid affine transformation matrix" in done.stderr


# ---- paths printed to the user

def test_output_path_is_relative_inside_the_current_folder_else_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Output.path(tmp_path / "runs" / "a") == os.path.join("runs", "a")
    assert Output.path(Path("runs") / "a") == os.path.join("runs", "a")
    elsewhere = tmp_path.parent / "elsewhere"
    assert Output.path(elsewhere) == str(elsewhere)

