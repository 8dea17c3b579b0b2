"""A newcomer's first hour (issue 21): every line the scripts print fits 80 columns or
wraps between words, an input that ends leaves the prompt's line first, and the small
things (--help's groups, the study's description, singular epochs, --resume's hint)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import QUICK, ROOT, child_env, flags, run_script, run_train

COLUMNS = 80


def _all_lines_fit(proc) -> None:
    for stream in (proc.stdout, proc.stderr):
        for line in stream.splitlines():
            assert len(line) <= COLUMNS, f"{len(line)} columns: {line!r}\n{proc.stdout}{proc.stderr}"


def _env(mnist_dir=None):
    return child_env(mnist_dir, COLUMNS=str(COLUMNS))


def test_re_asks_and_the_input_ended_error_fit_80_columns(mnist_dir, tmp_path):
    answers = "3\nsimple\n3 layers, or more\n"
    proc = run_train(["--output-dir", tmp_path, *QUICK], stdin=answers, env=_env(mnist_dir))
    assert proc.returncode == 2 and "input ended before question" in proc.stderr, proc.stderr
    _all_lines_fit(proc)
    # The error is not glued to the unanswered prompt: the prompt's line ends first.
    assert proc.stdout.rstrip(" \n").splitlines()[-1].startswith("1. "), proc.stdout
    assert proc.stdout.endswith("\n")


@pytest.mark.parametrize("script, args", [
    ("train.py", ["--help"]), ("predict.py", ["--help"]), ("compare.py", ["--help"]),
    ("study.py", ["--help"]), ("compare.py", []),
    ("predict.py", ["--run", "saved_files/best-model-wide", "--no-show", "--save", "{tmp}/p.png"]),
    ("train.py", ["--resume", "best-model"]), ("train.py", ["--epochs", "0"]),
])
def test_scripts_lines_fit_80_columns(mnist_dir, tmp_path, script, args):
    proc = run_script(script, [a.replace("{tmp}", str(tmp_path)) for a in args], env=_env(mnist_dir))
    assert "Traceback" not in proc.stderr, proc.stderr
    _all_lines_fit(proc)


def test_a_run_s_lines_fit_80_columns(mnist_dir, tmp_path):
    # From its own folder, so that the run folder's path is short enough to fit.
    proc = run_script(str(ROOT / "train.py"), [*flags(epochs="2"), "--output-dir", "runs", *QUICK,
                                               "--patience", "1"], env=_env(mnist_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _all_lines_fit(proc)


def test_lines_stay_whole_in_a_pipe_without_columns():
    from kit.cli import Output
    long = "word " * 40
    assert Output.fit(long, None) == long
    wrapped = Output.fit("   " + long, 40)
    assert all(len(line) < 40 for line in wrapped.splitlines())
    assert wrapped.splitlines()[1].startswith("     word")   # its indent, and two more


def test_resume_of_a_bare_name_suggests_the_folder_in_saved_files(tmp_path):
    proc = run_script(str(ROOT / "train.py"), ["--resume", "best-model"], cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean --resume" in proc.stderr, proc.stderr
    assert "saved_files/best-model" in proc.stderr


def test_help_lists_seed_in_the_run_group_and_study_help_is_whole():
    import study
    import train
    text = train.build_parser().format_help()
    run_group = text[text.index("\nrun:"):]
    assert "--seed N" in run_group and "--seed N" not in text[text.index("how long to train"):text.index("\nrun:")]
    description = study.build_parser().description
    assert description.endswith(".") and "several seeds" in description


def test_one_epoch_is_singular():
    from types import SimpleNamespace

    from kit import record
    run = SimpleNamespace(live=False, record=SimpleNamespace(
        epochs_completed=1, status="stopped-early", failure=None, config=SimpleNamespace(patience=1)))
    assert record.Run.status_line(run) == \
        "stopped early after 1 epoch (no validation improvement for 1 epoch)"


def test_no_configure_line_when_no_question_is_left(mnist_dir, tmp_path):
    """On a terminal, with every question answered by a flag (the activation is not asked
    of a network with 0 hidden layers), "Configure the network" is not printed."""
    import pty
    controller, terminal = pty.openpty()
    proc = subprocess.run([sys.executable, "train.py", *flags(layers="0", activation=None),
                           "--output-dir", str(tmp_path), *QUICK], cwd=ROOT, stdin=terminal,
                          capture_output=True, text=True, env=child_env(mnist_dir), timeout=120)
    os.close(terminal)
    os.close(controller)
    assert proc.returncode == 0, proc.stderr
    assert "Configure the network" not in proc.stdout, proc.stdout


def test_the_first_summary_says_where_the_test_images_come_from(mnist_dir, tmp_path):
    """Test accuracy above validation looks like a leak: the run says once why it is not."""
    import mnist_loader
    proc = run_train([*flags(), "--output-dir", tmp_path, *QUICK], env=_env(mnist_dir))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert f"t10k's {mnist_loader.TEST_START}-9999" in text and text.count("t10k's") == 1, proc.stdout


# ---- what a run is: every setting away from its default in its line and its folder name ----

BASE = dict(layers=2, normalization="normal", init="xavier", activation="relu", l1=True, decay=True,
            optimizer="momentum", epochs=3, seed=1)


def _other_value(option, default):
    """A valid value of option other than default."""
    if option.choices:
        return next(c for c in option.choices if c != default)
    if option.kind is int:
        return (default or 1) + 1 if option.high is None or (default or 1) + 1 <= option.high else 1
    candidate = (default or 0.1) / 2
    assert option.problem("x", candidate) is None
    return candidate


def test_every_setting_away_from_its_default_shows_in_the_summary():
    """Derived from RunConfig's own fields: a setting added later is covered too."""
    import re

    from kit.config import RunConfig
    from kit.record import check_run_name
    plain = RunConfig.create(**BASE).summary()
    for name, option, default in RunConfig.options():
        if name in RunConfig.QUESTIONS or name == "seed":
            continue
        value = _other_value(option, default)
        summary = RunConfig.create(**BASE, **{name: value}).summary()
        assert summary != plain, name
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", summary) and check_run_name("2026_" + summary) is None
    issue = RunConfig.create(**BASE, learning_rate=0.01, limit=5000, patience=1).summary()
    assert issue == plain + "-lr0.01-patience1-limit5000"


def test_a_run_s_line_and_folder_name_show_its_settings(mnist_dir, tmp_path):
    proc = run_train([*flags(), "--output-dir", tmp_path, *QUICK, "--learning-rate", "0.01",
                      "--patience", "1"], env=_env(mnist_dir))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("Configuration:"))
    assert "lr0.01" in line and "limit500" in line and "patience1" in line, line
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert folder.name.endswith("-lr0.01-patience1-limit500"), folder.name


def test_the_shipped_runs_still_load_under_their_old_names():
    from kit.record import Run
    for name in ("best-model", "best-model-wide"):
        run = Run.load(ROOT / "saved_files" / name)
        assert run.history()


# ---- compare.py: lines told apart, one's own runs apart from the study's ----------------------

def test_no_two_lines_of_a_17_line_figure_share_colour_and_style():
    from matplotlib.colors import to_rgba

    from kit import comparison
    history = [{"epoch": e, "test_accuracy": 0.9 + 0.001 * e} for e in range(1, 41)]
    groups = [comparison.Group(f"g{i}", [history]) for i in range(17)]
    fig = comparison.plot_groups(groups, "test_accuracy", "t")
    looks = [(to_rgba(line.get_color()), line.get_linestyle(), line.get_marker())
             for line in fig.axes[0].get_lines()]
    assert len(looks) == 17 and len(set(looks)) == 17, looks
    legend = fig.legends[0]
    shown = [(to_rgba(h.get_color()), h.get_linestyle()) for h in legend.legend_handles]
    assert len(set(shown)) == 17   # the legend tells them apart too
    assert len({comparison.line_style(i)["color"] for i in range(17)}) == 10


def test_study_runs_are_told_from_one_s_own():
    from pathlib import Path

    from kit.comparison import is_study_run
    for study in ("study/2h-x-seed1", "study-5-epochs/a", "studies/mine/a", "best-model", "best-model-wide"):
        assert is_study_run(Path(study)), study
    for mine in ("2026-12-04_10-00-00_1h-relu-sgd-simple-xavier", "my-study-run", "runs/study"):
        assert not is_study_run(Path(mine)), mine


def test_compare_mine_lists_only_one_s_own_runs_and_says_how_many_it_hid(mnist_dir, tmp_path):
    import shutil
    root = tmp_path / "saved_files"
    shutil.copytree(ROOT / "saved_files" / "best-model", root / "study" / "a-seed1")
    shutil.copytree(ROOT / "saved_files" / "best-model", root / "best-model")
    shutil.copytree(ROOT / "saved_files" / "best-model", root / "my-run")
    everything = run_script("compare.py", ["--runs-dir", root], env=_env())
    assert "study/a-seed1" in everything.stdout and "my-run" in everything.stdout
    assert "2 of these are study runs; python compare.py --mine" in everything.stdout, everything.stdout
    mine = run_script("compare.py", ["--runs-dir", root, "--mine"], env=_env())
    assert mine.returncode == 0 and "my-run" in mine.stdout, mine.stderr
    assert "study/" not in mine.stdout.split("Hid")[0] and "best-model" not in mine.stdout
    assert "Hid 2 study runs" in mine.stdout
    _all_lines_fit(mine)
