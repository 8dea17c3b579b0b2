"""study.py end to end on a few hundred images: run folders per seed, graphs, the mean ± sd
table, resume (including an interrupted run), --ship's guard."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import study  # noqa: E402
from kit.fsutil import write_json
from kit.record import Run

pytestmark = pytest.mark.slow

CATEGORY = ["--category", "original,l1-decay"]


def run_study(*args, mnist_dir, timeout=600):
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "study.py"), *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("study")
    proc = run_study("--epochs", 2, "--limit", 300, "--seeds", 2, *CATEGORY, "--output-dir", out,
                     mnist_dir=mnist_dir)
    return out, proc


def entries(*categories):
    return [e for e in study.ENTRIES if e.category in categories]


def test_every_configuration_and_seed_gets_a_completed_run(quick_study):
    """One run folder per (configuration, seed), completed, with exactly its settings."""
    out, proc = quick_study
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chosen = entries("original", "l1-decay")
    expected = sorted(e.folder(s) for e in chosen for s in (1, 2))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == expected
    for e in chosen:
        for seed in (1, 2):
            run = Run.load(out / e.folder(seed))
            assert run.record.status == "completed"
            assert run.config == e.run_config(2, seed, 300)
            assert [r["epoch"] for r in run.history()] == [1, 2]


def test_seeds_give_different_runs(quick_study):
    """Each seed draws its own split and initialization: the histories differ."""
    out, _ = quick_study
    e = entries("original")[7]
    h1, h2 = (Run.load(out / e.folder(s)).history() for s in (1, 2))
    assert h1[-1]["val_loss"] != h2[-1]["val_loss"]


def test_graphs_and_table_give_mean_and_sd_over_seeds(quick_study):
    """The original's six graphs and ours are written; each table row is mean ± sd over
    the seeds of the final test accuracy and of the test accuracy at the best val. epoch."""
    out, _ = quick_study
    import matplotlib.image as mpimg
    names = [g[0] for g in study.GRAPHS]
    assert names[:6] == ["Test_accuracy_comparision.png", "com_acc.png", "layer1_acc_com.png",
                         "com_acc_3.png", "com_acc_layer2.png", "com_acc_best.png"]
    for name in names[:7]:
        image = mpimg.imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 500
    table = (out / "study_results.md").read_text()
    e = entries("original")[1]
    row = next(line for line in table.splitlines() if line.startswith(f"| {e.label} |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    finals = [100 * Run.load(out / e.folder(s)).record.last["test_accuracy"] for s in (1, 2)]
    bests = [100 * Run.load(out / e.folder(s)).record.best["test_accuracy"] for s in (1, 2)]
    assert cells[1] == f"{statistics.mean(finals):.2f} ± {statistics.stdev(finals):.2f}"
    assert cells[2] == f"{statistics.mean(bests):.2f} ± {statistics.stdev(bests):.2f}"
    assert cells[-1] == "97.3"


def test_second_run_resumes_without_training(quick_study, mnist_dir):
    """Completed runs with the same settings are not trained again."""
    out, _ = quick_study
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/run.json")}
    proc = run_study("--epochs", 2, "--limit", 300, "--seeds", 2, *CATEGORY, "--output-dir", out,
                     mnist_dir=mnist_dir)
    assert proc.returncode == 0, proc.stderr
    n = len(before)
    assert f"{n} runs already completed, 0 to train" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/run.json")} == before


def test_an_interrupted_run_is_resumed_exactly(tmp_path, mnist_dir):
    """A run stopped after epoch 1 of 2 is continued, not restarted, and ends with the same
    weights as an uninterrupted run of the same seed."""
    from kit import lifecycle
    e = entries("original")[6]
    out = tmp_path / "study"
    out.mkdir()
    whole = lifecycle.train_run(e.run_config(2, 1, 300), tmp_path, "whole", data_dir=mnist_dir,
                              progress=False, plots=False)
    part = lifecycle.train_run(e.run_config(2, 1, 300).__class__.create(
        **{**e.run_config(2, 1, 300).__dict__, "epochs": 1}), out, e.folder(1),
        data_dir=mnist_dir, progress=False, plots=False)
    assert part.status == "completed"
    # Make it look interrupted after epoch 1 of a 2-epoch run, as a Ctrl-C would leave it.
    import dataclasses
    run = Run.load(out / e.folder(1))
    record = dataclasses.replace(run.record, config=e.run_config(2, 1, 300), status="interrupted")
    write_json(out / e.folder(1) / "run.json", record.to_json())
    proc = run_study("--epochs", 2, "--limit", 300, "--seeds", 1, "--category", "original",
                     "--output-dir", out, mnist_dir=mnist_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(1 resumed)" in proc.stdout
    resumed = Run.load(out / e.folder(1))
    assert resumed.record.status == "completed" and resumed.record.epochs_completed == 2
    for a, b in zip(resumed.network("last").weights, Run.load(whole.run_dir).network("last").weights):
        assert (a == b).all()


def test_other_settings_are_refused_not_overwritten(quick_study, mnist_dir):
    """A folder trained with other settings is kept and the study says what to do."""
    out, _ = quick_study
    folder = out / entries("original")[0].folder(1)
    before = (folder / "run.json").read_text()
    proc = run_study("--epochs", 3, "--limit", 300, "--seeds", 2, *CATEGORY, "--output-dir", out,
                     mnist_dir=mnist_dir)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "--retrain" in proc.stderr
    assert (folder / "run.json").read_text() == before


def test_ship_never_replaces_a_better_model_without_force(quick_study, tmp_path):
    """--ship refuses to replace a shipped model of higher validation accuracy, says so,
    and replaces it with --force."""
    out, _ = quick_study
    results = study.collect(entries("original", "l1-decay"), [1, 2],
                            type("A", (), {"output_dir": out})())
    shipped = tmp_path / "saved"
    shipped.mkdir()
    better = ROOT / "saved_files" / "best-model"
    shutil.copytree(better, shipped / "best-model")
    args = type("A", (), {"ship_dir": shipped, "force": False})()
    from kit.cli import Output
    assert study.ship(results, args, Output("study.py")) == 1
    assert Run.load(shipped / "best-model").record.best == Run.load(better).record.best
    args.force = True
    assert study.ship(results, args, Output("study.py")) == 0
    best = study.best_entry(results)
    # The study's names leave out --limit (this quick study's runs have one).
    from dataclasses import replace
    assert replace(Run.load(shipped / "best-model").config, limit=None).summary() == best.name


@pytest.mark.parametrize("flags, needle", [
    (["--limit", "0"], "--limit"), (["--seed", "-1"], "--seed"), (["--seeds", "0"], "--seeds"),
    (["--category", "nope"], "categories"), (["--epochs=--"], "--epochs"),
    (["--output-dir", ""], "--output-dir"),
])
def test_bad_flags_one_line_exit_2(flags, needle, mnist_dir, tmp_path):
    """Bad values are refused before anything is trained, in one line, exit 2."""
    proc = run_study(*flags, "--output-dir" if "--output-dir" not in flags else "--jobs",
                     tmp_path / "o" if "--output-dir" not in flags else 1, mnist_dir=mnist_dir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and needle in proc.stderr
    assert not (tmp_path / "o").exists()


def test_images_dir_that_is_a_file_is_one_line(quick_study, mnist_dir, tmp_path):
    """--images-dir naming a file: one line, exit 1, no traceback."""
    out, _ = quick_study
    target = tmp_path / "file.png"
    target.write_text("x")
    proc = run_study("--epochs", 2, "--limit", 300, "--seeds", 2, *CATEGORY, "--output-dir", out,
                     "--images-dir", target, mnist_dir=mnist_dir)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--images-dir" in proc.stderr and target.read_text() == "x"


# ---- a hostile world: =--, a reader that leaves, a full stdout, ASCII locales -----------------

def test_a_reader_that_leaves_is_silent_and_a_full_stdout_is_one_line(quick_study, mnist_dir, tmp_path):
    """The finished quick study again (nothing to train), into `| head -N` for every line
    count: exit 141 or 0 and nothing on stderr; into /dev/full: one line, exit 1."""
    import shlex
    out, _ = quick_study
    args = ["--epochs", 2, "--limit", 300, "--seeds", 2, *CATEGORY, "--output-dir", out]
    whole = run_study(*args, mnist_dir=mnist_dir)
    assert whole.returncode == 0 and whole.stderr == "", whole.stderr
    lines = whole.stdout.splitlines()
    err = tmp_path / "stderr.txt"
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    for n in range(1, len(lines) + 1):
        command = (" ".join(shlex.quote(str(a)) for a in [sys.executable, "study.py", *args]) +
                   f" 2>{shlex.quote(str(err))} | head -{n}; " 'echo "status ${PIPESTATUS[0]}" >&2')
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)
        assert int(done.stderr.split("status ")[-1]) in (141, 0) and err.read_text() == "", (n, err.read_text())
        assert done.stdout.splitlines()[:1] == lines[:1]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, str(ROOT / "study.py"), *map(str, args)], cwd=ROOT, env=env,
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["study.py: cannot write to standard output (No space left on device); "
                                        "stopped, completed runs are kept; run study.py again to resume"]


@pytest.mark.parametrize("world", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}],
                         ids=["PYTHONIOENCODING=ascii", "LC_ALL=C"])
def test_ascii_only_output_with_an_accented_folder_degrades(quick_study, mnist_dir, tmp_path, world):
    """The quick study copied into a folder named with 'é', its graphs written there too,
    and --help: under an ASCII encoding both finish, '?' standing in."""
    out, _ = quick_study
    here = Path(shutil.copytree(out, tmp_path / "étude"))
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg", **world}
    for args in (["--epochs", 2, "--limit", 300, "--seeds", 2, *CATEGORY, "--output-dir", here], ["--help"]):
        done = subprocess.run([sys.executable, str(ROOT / "study.py"), *map(str, args)], cwd=ROOT, env=env,
                              capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
        assert done.stdout.isascii() and done.stderr.isascii()
    assert (here / "study_results.md").is_file()


def test_ship_refuses_runs_whose_weights_are_not_there(quick_study, tmp_path):
    """A clone holds the study's records and histories without weights: --ship says so and
    leaves the shipped model alone instead of replacing it with a folder without weights."""
    out, _ = quick_study
    study_copy = tmp_path / "study"
    shutil.copytree(out, study_copy)
    for weights in study_copy.glob("*/checkpoints/*/weights_*.csv"):
        weights.unlink()
    results = study.collect(entries("original", "l1-decay"), [1, 2],
                            type("A", (), {"output_dir": study_copy})())
    shipped = tmp_path / "saved"
    shipped.mkdir()
    args = type("A", (), {"ship_dir": shipped, "force": True})()
    from kit.cli import Output
    assert study.ship(results, args, Output("study.py")) == 1
    assert not (shipped / "best-model").exists()


def test_one_category_keeps_the_others_in_the_table(quick_study, mnist_dir):
    """Running one category again writes a table that still holds every configuration
    completed here, not only that category's."""
    out, _ = quick_study
    proc = run_study("--epochs", 2, "--limit", 300, "--seeds", 2, "--category", "original",
                     "--output-dir", out, mnist_dir=mnist_dir)
    assert proc.returncode == 0, proc.stderr
    table = (out / "study_results.md").read_text()
    for e in entries("original", "l1-decay"):
        assert f"| {e.label} |" in table


def test_the_whole_studys_time_is_the_time_it_trained(quick_study):
    """results count the seconds study.py spent training, over its sessions, not the
    hours between a stop and the resume (the runs' first start to their last end)."""
    out, _ = quick_study
    seconds, sessions = study.study_time(out)
    assert seconds > 0 and sessions >= 1
    table = (out / "study_results.md").read_text()
    assert f"{seconds / 60:.1f} minutes of training" in table


def test_study_time_adds_up_over_sessions(tmp_path):
    assert study.study_time(tmp_path) is None
    study.add_study_time(tmp_path, 60.0)
    study.add_study_time(tmp_path, 30.5)
    assert study.study_time(tmp_path) == (90.5, 2)
    (tmp_path / study.STUDY_TIME).write_text("{ damaged")
    assert study.study_time(tmp_path) is None
