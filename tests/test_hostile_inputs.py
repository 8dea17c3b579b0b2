"""Inputs a hostile or unlucky user gives, to real processes: records a newer version
extended, files that are not files (a FIFO must never hang), a dangling --output-dir,
Windows device names, globs of run.json, linked runs, and 500 runs in one graph."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK, ROOT, assert_fails, child_env, flags, hostile, run_script, run_train, show, snapshot

import mnist_loader
from kit.record import RECORD, Run


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, mnist_dir) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = run_train([*flags(epochs="2"), *QUICK, "--output-dir", out, "--name", "base"],
                     env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    return out / "base"


def _edited(base: Path, target: Path, edit) -> Path:
    shutil.copytree(base, target)
    record = json.loads((target / RECORD).read_text())
    edit(record)
    (target / RECORD).write_text(json.dumps(record, indent=2))
    return target


# ---- 5. records a newer version extended -------------------------------------------------

def _extend(record: dict) -> None:
    """What a newer version might add: keys at the top, in every object, all 'off'."""
    record["comment"] = {"by": "a newer version"}
    record["config"]["label_smoothing"] = 0.0
    record["config"]["schedule"] = None
    record["normalization"]["clip"] = False
    record["sizes"]["unlabelled"] = 0
    record["versions"]["pillow"] = "11.0"
    record["last"]["grad_norm"] = 1.5


@hostile
def test_unknown_keys_are_kept_through_a_resume(base_run, mnist_dir, tmp_path):
    run_dir = _edited(base_run, tmp_path / "run", _extend)
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    after = json.loads((run_dir / RECORD).read_text())
    assert after["epochs_completed"] == 3
    assert after["comment"] == {"by": "a newer version"}
    assert after["config"]["label_smoothing"] == 0.0 and after["config"]["schedule"] is None
    assert after["normalization"]["clip"] is False
    assert after["sizes"]["unlabelled"] == 0 and after["versions"]["pillow"] == "11.0"
    assert "grad_norm" not in after["last"]  # it described epoch 2; 'last' is epoch 3 now


@hostile
@pytest.mark.parametrize("part, key, value", [("config", "label_smoothing", 0.1),
                                              ("normalization", "clip", True)])
def test_an_unknown_setting_that_is_on_refuses_resume_but_the_run_reads(part, key, value, base_run,
                                                                         mnist_dir, tmp_path):
    run_dir = _edited(base_run, tmp_path / "runs" / "newer", lambda r: r[part].__setitem__(key, value))
    before = snapshot(run_dir)
    env = child_env(mnist_dir)
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=env)
    assert_fails(proc, 2, "made by a newer version", f"{key}={value!r}")
    assert snapshot(run_dir) == before
    scored = run_script("predict.py", ["--run", run_dir, "--no-show", "--save", tmp_path / "grid.png"], env=env)
    assert scored.returncode == 0 and "Test accuracy" in scored.stdout, show(scored)
    table = run_script("compare.py", ["--runs-dir", tmp_path / "runs", "--csv"], env=env)
    assert table.returncode == 0 and "newer," in table.stdout and "completed" in table.stdout, show(table)


# ---- 6. files that are not files -----------------------------------------------------------

@hostile
@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_image_that_is_not_a_file_is_refused_at_once(kind, base_run, mnist_dir, tmp_path):
    path = {"fifo": tmp_path / "digit.png", "folder": tmp_path, "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    proc = run_script("predict.py", ["--run", base_run, "--image", path, "--no-show"],
                      env=child_env(mnist_dir), timeout=30)
    assert_fails(proc, 1, str(path), {"fifo": "FIFO", "folder": "folder", "device": "device"}[kind])


@hostile
@pytest.mark.parametrize("which", ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"])
def test_an_mnist_file_that_is_a_fifo_is_refused_at_once(which, base_run, mnist_dir, tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    for name in mnist_loader.FILE_NAMES.values():
        source = mnist_loader._find_file(Path(mnist_dir), name)
        if name == which:
            os.mkfifo(data / name)
        else:
            os.symlink(source, data / source.name)
    env = child_env(mnist_dir)
    train = run_train([*flags(), *QUICK, "--data-dir", data, "--output-dir", tmp_path / "out"],
                      env=env, timeout=30)
    assert_fails(train, 1, str(data / which), "FIFO")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    if which.startswith("t10k"):
        scored = run_script("predict.py", ["--run", base_run, "--data-dir", data, "--no-show"], env=env,
                            timeout=30)
        assert_fails(scored, 1, str(data / which), "FIFO")


def test_a_run_record_that_is_a_fifo_is_refused_at_once(tmp_path):
    from kit.config import RunError
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / RECORD)
    with pytest.raises(RunError, match="FIFO"):
        Run.load(tmp_path / "run")


# ---- 8. the smaller ones ------------------------------------------------------------------

@hostile
def test_a_dangling_symlink_as_output_dir_is_said_as_such(mnist_dir, tmp_path):
    link = tmp_path / "runs"
    link.symlink_to(tmp_path / "gone")
    proc = run_train([*flags(), *QUICK, "--output-dir", link], env=child_env(mnist_dir))
    assert_fails(proc, 1, str(link), "symbolic link", "does not exist")
    assert "File exists" not in proc.stderr


@hostile
@pytest.mark.parametrize("name", ["CON", "NUL.txt", "aux", "com1.run", "lpt9", "run."])
def test_windows_device_names_are_refused_as_name(name, mnist_dir, tmp_path):
    proc = run_train([*flags(), *QUICK, "--output-dir", tmp_path, "--name", name], env=child_env(mnist_dir))
    assert_fails(proc, 2, repr(name), "Windows")
    assert list(tmp_path.iterdir()) == []


def test_ordinary_names_that_start_like_device_names_are_allowed():
    from kit.record import check_run_name
    assert all(check_run_name(n) is None for n in ("console", "nullable", "com10", "aux-run", "CONFIG.1"))


@hostile
def test_compare_takes_globs_of_run_json(base_run, mnist_dir, tmp_path):
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        shutil.copytree(base_run, runs / name)
    env = child_env(mnist_dir)
    for pattern in ("*/run.json", "a/run.json"):
        proc = run_script(str(ROOT / "compare.py"), [pattern, "--save", tmp_path / "g.png"], env=env,
                          cwd=runs)
        assert proc.returncode == 0 and "Saved the graph" in proc.stdout, show(proc)


@hostile
def test_a_linked_run_is_named_alike_by_compare_and_predict(base_run, mnist_dir, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(base_run, runs / "real")
    (runs / "alias").symlink_to(runs / "real")      # the same run, sorted first
    shutil.copytree(base_run, tmp_path / "elsewhere")
    (runs / "linked").symlink_to(tmp_path / "elsewhere")  # a run that lives outside
    env = child_env(mnist_dir)
    table = run_script("compare.py", ["--runs-dir", runs, "--csv"], env=env)
    names = [line.split(",")[0] for line in table.stdout.splitlines()[1:]]
    assert sorted(names) == ["linked", "real"], show(table)
    scored = run_script("predict.py", ["--runs-dir", runs, "--no-show", "--save", tmp_path / "p.png"], env=env)
    assert scored.returncode == 0, show(scored)
    chosen = scored.stdout.split("Run: ")[1].split(" (")[0]
    assert Path(chosen).name in names, show(scored)


def test_five_hundred_runs_make_one_readable_graph():
    from kit.comparison import MAX_LEGEND, Group, plot_groups
    rows = [{"epoch": e, "test_accuracy": 0.5 + 0.01 * e} for e in (1, 2, 3)]
    groups = [Group(f"run-{i:03d}", [[{**r, "test_accuracy": r["test_accuracy"] + i / 1e4} for r in rows]])
              for i in range(500)]
    fig = plot_groups(groups, "test_accuracy", "500 runs")
    width, height = fig.get_size_inches() * fig.dpi
    assert height <= 1300, height  # was 13,000 pixels
    ax = fig.axes[0]
    colours = {tuple(np.round(line.get_color() if not isinstance(line.get_color(), str)
                              else (0, 0, 0, 0), 6)) for line in ax.lines[:500]}
    assert len(colours) == 500  # every run its own colour
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == MAX_LEGEND and texts[-1].startswith("… and 471 more lines")
