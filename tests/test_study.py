"""study.py wired end to end on a few hundred images: run folders, graphs, table, resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import study  # noqa: E402


def run_study(*args, mnist_dir):
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "study.py"), *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("study")
    proc = run_study("--epochs", 1, "--limit", 300, "--output-dir", out, mnist_dir=mnist_dir)
    return out, proc


def test_every_configuration_gets_a_complete_run_folder(quick_study):
    """One run folder per configuration, completed, with the configuration's settings."""
    out, proc = quick_study
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(c.name for c in study.CONFIGS)
    for cfg in study.CONFIGS:
        folder = out / cfg.name
        saved = json.loads((folder / "config.json").read_text())
        assert saved["status"] == "completed"
        assert (saved["layers"], saved["optimizer"], saved["l1"], saved["decay"]) == \
            (cfg.layers, cfg.optimizer, cfg.l1, cfg.decay)
        assert saved["seed"] == 1 + cfg.repeat
        assert len((folder / "history.csv").read_text().splitlines()) == 2  # header + 1 epoch
        assert (folder / f"weights_{cfg.layers + 1}.csv").is_file()


def test_graphs_and_table_are_written(quick_study):
    """The six original graphs, the fourth category's, and a table row per configuration."""
    out, _ = quick_study
    import matplotlib.image as mpimg
    names = [g[0] for g in study.GRAPHS]
    assert names[:6] == ["Test_accuracy_comparision.png", "com_acc.png", "layer1_acc_com.png",
                         "com_acc_3.png", "com_acc_layer2.png", "com_acc_best.png"]
    for name in names:
        image = mpimg.imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 500
    table = (out / "study_results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == len(study.CONFIGS)
    assert "| 1 hidden, ReLU, SGD |" in table and "97.3 %" in table


def test_second_run_resumes_without_training(quick_study, mnist_dir):
    """Completed configurations with the same settings are not trained again."""
    out, _ = quick_study
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/weights_1.csv")}
    proc = run_study("--epochs", 1, "--limit", 300, "--output-dir", out, mnist_dir=mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(study.CONFIGS)} already completed, 0 to train" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/weights_1.csv")} == before


def test_other_settings_are_refused_not_overwritten(quick_study, mnist_dir):
    """A folder trained with other settings is kept and the study says what to do."""
    out, _ = quick_study
    before = (out / study.CONFIGS[0].name / "history.csv").read_text()
    proc = run_study("--epochs", 2, "--limit", 300, "--output-dir", out, mnist_dir=mnist_dir)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "--retrain" in proc.stderr
    assert (out / study.CONFIGS[0].name / "history.csv").read_text() == before
