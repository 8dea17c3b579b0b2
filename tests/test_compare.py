"""Tests of compare.py: the table of every run (order, --sort, --csv, damaged and legacy
folders), the graph of chosen runs (glob patterns, seed groups drawn as mean and min-max
band, the legend outside the axes, --save), the settings that differ, and one-line errors."""

from __future__ import annotations

import csv
import io
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import compare
from kit import comparison, lifecycle
from kit.cli import readable
from kit.config import RunConfig
from kit.fsutil import write_json
from kit.record import RECORD, Run, read_history

ROOT = Path(__file__).resolve().parents[1]
LEGACY_SOURCE = ROOT / "tests" / "fixtures" / "legacy-best-model"  # a run saved in the first format
BASE = dict(layers=1, normalization="normal", init="xavier", activation="relu", l1=False,
            decay=False, optimizer="momentum", epochs=2, limit=500)
SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, mnist_dir) -> Path:
    """A runs folder: three seeds of one configuration, one other configuration, a run
    folder whose run.json is not JSON, a copy of a run with its checkpoint deleted, a
    legacy (config.json) run in study/, and an empty folder with no runs."""
    root = tmp_path_factory.mktemp("compare-runs")
    for seed in SEEDS:
        config = RunConfig.create(**BASE, seed=seed)
        lifecycle.train_run(config, root, f"seed-{seed}", data_dir=mnist_dir, progress=False, plots=False)
    other = RunConfig.create(**{**BASE, "layers": 0, "optimizer": "sgd", "epochs": 1}, seed=11)
    lifecycle.train_run(other, root, "zero-hidden", data_dir=mnist_dir, progress=False, plots=False)
    bad = root / "bad-json"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    shutil.copytree(root / "seed-11", root / "no-checkpoint")
    shutil.rmtree(root / "no-checkpoint" / "checkpoints")
    (root / "study").mkdir()
    shutil.copytree(LEGACY_SOURCE, root / "study" / "legacy")
    (root / "empty" / "deeper").mkdir(parents=True)
    return root


def rows_of(root: Path, sort: str = "val") -> list[dict]:
    return comparison.sort_rows([comparison.table_row(f, root) for f in comparison.find_runs(root)], sort)


def good_runs(root: Path) -> dict[str, Run]:
    names = [f"seed-{s}" for s in SEEDS] + ["zero-hidden"]
    return {n: Run.load(root / n) for n in names}


# ---- the table ---------------------------------------------------------------------------

def test_table_lists_every_run_with_its_values_best_validation_first(runs_root):
    rows = rows_of(runs_root)
    names = [r["run"] for r in rows]
    assert sorted(names) == sorted(["seed-11", "seed-12", "seed-13", "zero-hidden", "bad-json",
                                    "no-checkpoint", "study/legacy"])
    readable = [r for r in rows if r["status"] != "damaged"]
    vals = [r["val"] for r in readable]
    assert vals == sorted(vals, reverse=True)
    assert [r["status"] for r in rows[-2:]] == ["damaged", "damaged"]  # damaged rows last
    for name, run in good_runs(runs_root).items():
        row = next(r for r in rows if r["run"] == name)
        history = run.history()
        best = max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))
        assert row["status"] == "completed"
        assert row["epochs"] == run.config.epochs == len(history)
        assert row["best"] == best["epoch"]
        assert row["val"] == pytest.approx(100 * best["val_accuracy"], abs=0.005)
        assert row["test"] == pytest.approx(100 * best["test_accuracy"], abs=0.005)
        assert row["last"] == pytest.approx(100 * history[-1]["test_accuracy"], abs=0.005)
        assert row["time"] == pytest.approx(sum(h["seconds"] for h in history), abs=0.06)
        assert row["configuration"].startswith(run.config.summary())
        assert "limit500" in row["configuration"]


def test_legacy_run_is_listed_with_its_best_validation_epoch_from_the_history(runs_root):
    row = next(r for r in rows_of(runs_root) if r["run"] == "study/legacy")
    history = read_history(LEGACY_SOURCE / "history.csv")
    best = max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))
    assert best["epoch"] != len(history)  # the record names the last epoch: the test means something
    assert (row["best"], row["epochs"]) == (best["epoch"], len(history))
    assert row["test"] == pytest.approx(100 * best["test_accuracy"], abs=0.005)


def test_damaged_folders_are_listed_with_the_reason(runs_root):
    rows = {r["run"]: r for r in rows_of(runs_root)}
    assert rows["bad-json"]["status"] == "damaged"
    assert rows["bad-json"]["configuration"].startswith("run.json: not valid JSON")
    assert rows["no-checkpoint"]["status"] == "damaged"
    assert "history.csv: missing" in rows["no-checkpoint"]["configuration"]
    assert rows["bad-json"]["val"] is None and rows["bad-json"]["epochs"] is None


def test_a_run_whose_process_died_reads_no_status(runs_root, tmp_path):
    shutil.copytree(runs_root / "seed-11", tmp_path / "killed")
    run = Run.load(tmp_path / "killed")
    write_json(tmp_path / "killed" / RECORD, replace(run.record, status="running").to_json())
    (row,) = rows_of(tmp_path)
    assert row["status"] == "no-status"


@pytest.mark.parametrize("key", ["run", "time", "epochs", "status"])
def test_sort_by_a_column(runs_root, key):
    rows = [r for r in rows_of(runs_root, key) if r["status"] != "damaged"]
    values = [r[key] for r in rows]
    if key in ("run", "status"):
        assert values == sorted(values)
    else:
        assert values == sorted(values, reverse=True)
    assert compare._sort_key(key.upper()) == key


def test_csv_holds_the_table_values(runs_root, capsys):
    assert compare.main(["--runs-dir", str(runs_root), "--csv", "--sort", "run"]) == 0
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed[0] == [c.header for c in comparison.COLUMNS]
    rows = rows_of(runs_root, "run")
    assert [p[0] for p in parsed[1:]] == [r["run"] for r in rows]
    for line, row in zip(parsed[1:], rows):
        got = dict(zip([c.key for c in comparison.COLUMNS], line))
        for key in ("val", "test", "last", "time"):
            assert (float(got[key]) if got[key] else None) == (
                pytest.approx(row[key], abs=0.005) if row[key] is not None else None)
        assert got["status"] == row["status"]
        assert got["configuration"] == row["configuration"]  # whole, not wrapped
        assert int(got["epochs"] or 0) == (row["epochs"] or 0)


def test_the_text_table_fits_80_columns_and_keeps_every_name_whole(runs_root):
    rows = rows_of(runs_root)
    text = comparison.format_table(rows, 80)
    assert max(len(line) for line in text.splitlines()) <= 79
    lines = text.splitlines()
    for row in rows:
        assert row["run"] in lines
    whole = comparison.format_table(rows, None).splitlines()
    assert len(whole) == len(rows) + 1  # not a terminal: one line per run, cells whole
    assert all(row["configuration"] in line for row, line in zip(rows, whole[1:]))


def test_wrap_cell_breaks_after_dashes_and_never_loses_text():
    text = "2h-relu-momentum-normal-xavier-l1 limit=2000"
    lines = comparison.wrap_cell(text, 12)
    assert all(len(line) <= 12 for line in lines)
    assert lines[0] == "2h-relu-"
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert comparison.wrap_cell("x" * 30, 12) == ["x" * 12, "x" * 12, "x" * 6]


def test_no_runs_and_a_missing_runs_dir(tmp_path, capsys):
    assert compare.main(["--runs-dir", str(tmp_path)]) == 0
    assert "No runs in" in capsys.readouterr().out
    assert compare.main(["--runs-dir", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err


# ---- groups and settings -----------------------------------------------------------------

def test_group_runs_puts_the_three_seeds_in_one_group(runs_root):
    found = good_runs(runs_root)
    groups = comparison.group_runs(list(found.values()))
    assert len(groups) == 2
    seeds, single = groups
    assert [r.config.seed for r in seeds.runs] == list(SEEDS)
    assert len(seeds.histories) == 3 and "3 runs" in seeds.label
    assert single.label == "zero-hidden" and len(single.histories) == 1


def test_differing_settings(runs_root):
    found = good_runs(runs_root)
    three = [found[f"seed-{s}"] for s in SEEDS]
    assert comparison.differing_settings(three) == {"seed": list(SEEDS)}
    assert comparison.differing_settings(three, include_seed=False) == {}
    every = list(found.values())
    differing = comparison.differing_settings(every)
    assert differing == {"layers": [1, 1, 1, 0], "activation": ["relu", "relu", "relu", None],
                         "optimizer": ["momentum"] * 3 + ["sgd"], "epochs": [2, 2, 2, 1],
                         "seed": [11, 12, 13, 11]}
    assert comparison.format_value(True) == "y" and comparison.format_value(None) == "-"


def test_plot_groups_draws_the_mean_and_the_min_max_band(runs_root):
    found = good_runs(runs_root)
    histories = [found[f"seed-{s}"].history() for s in SEEDS]
    group = comparison.Group("three seeds", histories)
    fig = comparison.plot_groups([group, comparison.Group("alone", [found["zero-hidden"].history()])],
                              "test_accuracy", "Test accuracy per epoch")
    ax = fig.axes[0]
    per_epoch = np.array([[100 * h[e]["test_accuracy"] for e in range(2)] for h in histories])
    mean_line, alone = ax.lines
    np.testing.assert_allclose(mean_line.get_xdata(), [1, 2])
    np.testing.assert_allclose(mean_line.get_ydata(), per_epoch.mean(axis=0))
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices
    for i, epoch in enumerate((1, 2)):
        ys = vertices[np.isclose(vertices[:, 0], epoch), 1]
        assert ys.min() == pytest.approx(per_epoch[:, i].min())
        assert ys.max() == pytest.approx(per_epoch[:, i].max())
    np.testing.assert_allclose(alone.get_ydata(), [100 * found["zero-hidden"].history()[0]["test_accuracy"]])
    assert ax.get_ylabel() == "Test accuracy (%)"
    assert all(float(t).is_integer() for t in ax.get_xticks())
    # The legend sits outside the axes: their boxes on the canvas do not overlap.
    fig.draw_without_rendering()
    (legend,) = fig.legends
    box, axes_box = legend.get_window_extent(), ax.get_window_extent()
    assert box.y1 <= axes_box.y0 or box.x0 >= axes_box.x1
    assert [t.get_text() for t in legend.get_texts()] == ["three seeds", "alone"]


def test_group_band_counts_the_runs_that_reached_each_epoch():
    short = [{"epoch": 1, "val_loss": 1.0}]
    long = [{"epoch": 1, "val_loss": 3.0}, {"epoch": 2, "val_loss": 5.0}]
    epochs, mean, low, high = comparison.group_band([short, long], "val_loss")
    np.testing.assert_allclose(epochs, [1, 2])
    np.testing.assert_allclose(mean, [2.0, 5.0])
    np.testing.assert_allclose(low, [1.0, 5.0])
    np.testing.assert_allclose(high, [3.0, 5.0])


def test_plot_groups_refuses_an_unknown_metric():
    with pytest.raises(ValueError, match="test_accuracy"):
        comparison.plot_groups([], "accuracy", "")


# ---- the graph from the command line --------------------------------------------------------

def test_glob_patterns_and_folders_of_runs(runs_root):
    folders, problem = compare.expand([str(runs_root / "seed-*")], runs_root)
    assert problem is None and [f.name for f in folders] == ["seed-11", "seed-12", "seed-13"]
    # relative to --runs-dir when nothing matches here; a folder of runs gives its runs; once each
    folders, problem = compare.expand(["study", "seed-1[12]", "seed-11"], runs_root)
    assert problem is None and [f.name for f in folders] == ["legacy", "seed-11", "seed-12"]
    folders, problem = compare.expand(["seed-*", "no-such-run-*"], runs_root)
    assert folders == [] and problem.startswith("no-such-run-*: nothing matches")
    _, problem = compare.expand(["empty"], runs_root)
    assert problem.startswith("empty: no run folder matches")


def test_save_writes_a_png_and_prints_the_differing_settings(runs_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    target = tmp_path / "graph.png"
    code = compare.main(["--runs-dir", str(runs_root), "seed-*", "zero-hidden", "bad-json",
                         "--save", str(target)])
    assert code == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "leaving out" in captured.err and "bad-json" in captured.err
    out = captured.out.splitlines()
    assert out[0] == "Settings that differ between the 4 runs:"
    header = out[1].split()
    assert header == ["run", "layers", "activation", "optimizer", "epochs", "seed"]
    assert out[2].split() == ["seed-11", "1", "relu", "momentum", "2", "11"]
    assert out[5].split() == ["zero-hidden", "0", "-", "sgd", "1", "11"]
    assert out[-1].startswith("Saved the graph to ")


def test_headless_without_save_writes_comparison_png_here(runs_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    assert compare.main(["--runs-dir", str(runs_root), "seed-11", "--metric", "val_loss"]) == 0
    assert (tmp_path / "comparison.png").stat().st_size > 0
    assert "Saved the graph to comparison.png" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["accuracy.png", "features.png", "predictions.png",
                                  "prediction_my_digit.png"])
def test_save_never_replaces_a_run_file(runs_root, capsys, monkeypatch, name):
    """Neither a training graph nor one of predict.py's pictures in a run folder."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    target = runs_root / "seed-11" / name
    assert compare.main(["--runs-dir", str(runs_root), "seed-11", "--save", str(target)]) == 1
    assert "belongs to the run folder" in capsys.readouterr().err
    assert not target.exists()


def test_save_may_write_another_png_into_a_run_folder(runs_root, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    target = runs_root / "seed-11" / "my-comparison.png"
    assert compare.main(["--runs-dir", str(runs_root), "seed-11", "--save", str(target)]) == 0
    assert target.stat().st_size > 0


def test_a_metric_the_legacy_run_lacks_leaves_it_out(runs_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    code = compare.main(["--runs-dir", str(runs_root), "study/legacy", "seed-11", "--metric",
                         "l1_penalty", "--save", str(tmp_path / "p.png")])
    assert code == 0
    assert "saved before l1_penalty was recorded" in capsys.readouterr().err
    assert compare.main(["--runs-dir", str(runs_root), "study/legacy", "--metric", "seconds",
                         "--save", str(tmp_path / "p.png")]) == 1


def test_bad_metric_names_the_columns_on_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["anything", "--metric", "accuracy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert all(column in err for column in comparison.METRICS)


# ---- the script, end to end -------------------------------------------------------------------

def run_script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "compare.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_script_saves_a_figure_and_reports_no_match_in_one_line(runs_root, tmp_path):
    done = run_script("--runs-dir", str(runs_root), "seed-*", "--save", str(tmp_path / "f.png"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    done = run_script("--runs-dir", str(runs_root), "nothing-like-this")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = run_script("--metric", "nope")
    assert done.returncode == 2 and done.stderr.count("\n") == 1


@pytest.mark.slow
def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    for i in range(3000):  # enough rows to fill the pipe after the reader has gone
        (tmp_path / f"broken-{i:04d}").mkdir()
        (tmp_path / f"broken-{i:04d}" / "run.json").write_text("[")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "compare.py"), "--runs-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.startswith(b"run")
    assert err == ""
    assert proc.returncode in (0, 141)


# ---- a hostile world: =--, pipes that close, a full stdout, closed stderr, ASCII locales -------

def compare_py(*args, env_extra: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", **(env_extra or {})}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, str(ROOT / "compare.py"), *map(str, args)], cwd=ROOT,
                          env=env, timeout=120, **kwargs)


def test_the_table_to_a_reader_that_leaves_and_to_a_full_device(runs_root, tmp_path):
    """`| head -N` for every line count: exit 141 or 0, silent; /dev/full: one line, exit 1;
    stderr closed: the table still prints, exit 0."""
    whole = compare_py("--runs-dir", runs_root, capture_output=True, text=True)
    assert whole.returncode == 0 and whole.stderr == ""
    lines = whole.stdout.splitlines()
    err = tmp_path / "stderr.txt"
    for n in range(1, len(lines) + 1):
        # bash exports COLUMNS (checkwinsize), which the table follows: not this test's subject.
        command = ("unset COLUMNS; " f"{shlex.quote(sys.executable)} compare.py --runs-dir {shlex.quote(str(runs_root))} "
                   f"2>{shlex.quote(str(err))} | head -{n}; " 'echo "status ${PIPESTATUS[0]}" >&2')
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert int(done.stderr.split("status ")[-1]) in (141, 0) and err.read_text() == "", (n, err.read_text())
        assert done.stdout.splitlines() == lines[:n]
    with open("/dev/full", "w") as full:
        done = compare_py("--runs-dir", runs_root, stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["compare.py: cannot write to standard output (No space left on device); stopped"]
    done = subprocess.run(["bash", "-c", 'unset COLUMNS; "$@" 2>&-', "bash", sys.executable, "compare.py", "--runs-dir", str(runs_root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == whole.stdout


@pytest.mark.parametrize("world", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}],
                         ids=["PYTHONIOENCODING=ascii", "LC_ALL=C"])
def test_ascii_only_output_with_accented_run_names_degrades(runs_root, tmp_path, world):
    """Run folders named with 'é', under an ASCII encoding: the table, a graph (the names in
    its legend) and --help finish, with '?' where a character cannot be written."""
    here = tmp_path / "études"
    here.mkdir()
    for name in ("seed-11", "zero-hidden"):
        shutil.copytree(runs_root / name, here / f"{name}-é")
    for args in (["--runs-dir", here], [here / "seed-11-é", here / "zero-hidden-é", "--save", here / "g.png"],
                 ["--help"]):
        done = compare_py(*args, env_extra=world, capture_output=True)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b"Traceback" not in done.stderr and done.stdout.isascii() and done.stderr.isascii()
    assert (here / "g.png").is_file()
    assert b"seed-11-?" in compare_py("--runs-dir", here, env_extra=world, capture_output=True).stdout


def test_legend_labels_are_drawable_text_for_surrogate_escaped_names():
    assert readable("run\udcc3\udca9") == "runé"
    assert readable("bad\udcff") == "bad\ufffd"
    assert readable("plain-é") == "plain-é"
