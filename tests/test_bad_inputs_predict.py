"""Hostile and clumsy use of predict.py: damaged run folders, empty run folders, bad
flags, bad pictures and bad data, each through the real program as a subprocess.

Every case checks the exit code, a single stderr line naming the file, no traceback,
and that the run folder it was given is left exactly as it was.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_bad_inputs import (QUICK, ROOT, assert_fails, assert_no_traceback, child_env, flags,
                             run_script, show, snapshot)


def run_predict(args, mnist_dir: Path | None = None, env: dict | None = None):
    extra = {"MNIST_DIR": str(mnist_dir)} if mnist_dir is not None else {}
    return run_script("predict.py", args, env=env or child_env(**extra))


@pytest.fixture(autouse=True)
def repo_untouched():
    before = snapshot(ROOT / "saved_files", ROOT / "data")
    yield
    assert snapshot(ROOT / "saved_files", ROOT / "data") == before


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, mnist_dir) -> Path:
    """A real run of train.py: 1 hidden layer (two weight files), normal normalization."""
    out = tmp_path_factory.mktemp("predict_runs")
    proc = run_script("train.py", [*flags(normalization="normal"), *QUICK, "--output-dir", out, "--name", "good"],
                      env=child_env(MNIST_DIR=str(mnist_dir)))
    assert proc.returncode == 0, show(proc)
    return out / "good"


@pytest.fixture
def broken(good_run, tmp_path):
    """A copy of the good run to damage."""
    return Path(shutil.copytree(good_run, tmp_path / "run"))


NORM_KEYS = {"norm_mean": "mean", "norm_std": "std"}


def _edit_config(run: Path, **change) -> None:
    """Change keys of run.json's configuration (norm_mean / norm_std: of its normalization)."""
    path = run / "run.json"
    d = json.loads(path.read_text())
    for key, value in change.items():
        section, key = (d["normalization"], NORM_KEYS[key]) if key in NORM_KEYS else (d["config"], key)
        if value is KeyError:
            section.pop(key, None)
        else:
            section[key] = value
    path.write_text(json.dumps(d))


def ck(run: Path) -> Path:
    """The best epoch's checkpoint folder, which holds the weights predict.py loads."""
    return run / json.loads((run / "run.json").read_text())["best"]["checkpoint"]


def _edit_csv(run: Path, name: str, edit) -> None:
    path = ck(run) / name
    path.write_text(edit(path.read_text()))


def _set_cell(text: str, value: str) -> str:
    lines = text.splitlines()
    cells = lines[3].split(",")
    cells[0] = value
    lines[3] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _drop_last_cell(text: str) -> str:
    lines = text.splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]
    return "\n".join(lines) + "\n"


RUN_CASES = [
    ("weights_2-missing", lambda r: (ck(r) / "weights_2.csv").unlink(), ["weights_2.csv", "missing"]),
    ("biases_1-missing", lambda r: (ck(r) / "biases_1.csv").unlink(), ["biases_1.csv", "missing"]),
    ("config-missing", lambda r: (r / "run.json").unlink(), ["run.json", "not a run folder"]),
    ("weights_1-one-row-short", lambda r: _edit_csv(r, "weights_1.csv", lambda t: "".join(t.splitlines(True)[:-1])),
     ["weights_1.csv", "shape 783x64, expected 784x64"]),
    ("weights_2-transposed", lambda r: np.savetxt(ck(r) / "weights_2.csv", np.loadtxt(ck(r) / "weights_2.csv", delimiter=",").T,
                                                  delimiter=","), ["weights_2.csv", "expected 64x10"]),
    ("weights_1-one-value-short-in-a-row", lambda r: _edit_csv(r, "weights_1.csv", _drop_last_cell),
     ["weights_1.csv", "not a CSV of numbers"]),
    ("biases_2-text", lambda r: (ck(r) / "biases_2.csv").write_text("zero\none\n" * 5), ["biases_2.csv", "not a CSV of numbers"]),
    ("weights_1-text-in-a-cell", lambda r: _edit_csv(r, "weights_1.csv", lambda t: _set_cell(t, "0.1abc")),
     ["weights_1.csv", "not a CSV of numbers"]),
    ("weights_2-NaN", lambda r: _edit_csv(r, "weights_2.csv", lambda t: _set_cell(t, "nan")),
     ["weights_2.csv", "NaN or infinite"]),
    ("biases_1-inf", lambda r: _edit_csv(r, "biases_1.csv", lambda t: _set_cell(t, "inf")), ["biases_1.csv", "NaN or infinite"]),
    ("weights_1-empty-file", lambda r: (ck(r) / "weights_1.csv").write_text(""), ["weights_1.csv"]),
    ("weights_1-binary", lambda r: (ck(r) / "weights_1.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 50), ["weights_1.csv"]),
    ("extra-weights_3-from-another-run", lambda r: shutil.copy(ck(r) / "weights_2.csv", ck(r) / "weights_3.csv"),
     ["weights_3.csv", "mixes two runs"]),
    ("config-not-json", lambda r: (r / "run.json").write_text("{layers: 1,"), ["run.json", "not valid JSON"]),
    ("config-empty", lambda r: (r / "run.json").write_text(""), ["run.json", "not valid JSON"]),
    ("config-not-utf8", lambda r: (r / "run.json").write_bytes(b"\xff\xfe{}"), ["run.json"]),
    ("config-a-list", lambda r: (r / "run.json").write_text("[1, 2]"), ["run.json", "not a JSON object"]),
    ("config-activation-tanh", lambda r: _edit_config(r, activation="tanh"), ["run.json", "activation must be one of relu, sigmoid, not 'tanh'"]),
    ("config-normalization-minmax", lambda r: _edit_config(r, normalization="minmax"), ["run.json", "normalization must be one of simple, normal"]),
    ("config-layers-string", lambda r: _edit_config(r, layers="1"), ["run.json", "layers must be one of 0, 1, 2"]),
    ("config-layers-3", lambda r: _edit_config(r, layers=3), ["run.json", "layers must be one of 0, 1, 2"]),
    ("config-seed-missing", lambda r: _edit_config(r, seed=KeyError), ["run.json", "missing key(s) seed"]),
    ("config-layer_sizes-disagree", lambda r: _edit_config(r, layer_sizes=[784, 32, 10]), ["run.json", "layer_sizes"]),
    ("config-hidden_size-32-csv-64", lambda r: _edit_config(r, hidden_size=32, layer_sizes=KeyError),
     ["weights_1.csv", "expected 784x32"]),
    ("config-norm_std-0", lambda r: _edit_config(r, norm_std=0), ["run.json", "normalization std"]),
    ("config-norm_mean-text", lambda r: _edit_config(r, norm_mean="33"), ["run.json", "normalization mean"]),
    ("config-unknown-key", lambda r: _edit_config(r, dropout=0.5), None),  # extra keys are ignored: it loads
    ("config-hidden_size-1e9", lambda r: _edit_config(r, hidden_size=10**9, layer_sizes=KeyError),
     ["run.json"]),
]


@pytest.mark.parametrize("damage,needles", [c[1:] for c in RUN_CASES], ids=[f"run-{c[0]}" for c in RUN_CASES])
def test_damaged_run_folder_exits_1_one_line_and_folder_unchanged(broken, tmp_path, mnist_dir, damage, needles):
    damage(broken)
    before = snapshot(broken)
    proc = run_predict(["--run", broken, "--no-show", "--save", tmp_path / "grid.png"], mnist_dir)
    if needles is None:
        assert proc.returncode == 0, show(proc)
        assert_no_traceback(proc)
    else:
        assert_fails(proc, 1, *needles)
        assert not (tmp_path / "grid.png").exists()
    assert snapshot(broken) == before


def test_empty_runs_dir_says_train_first(tmp_path):
    empty = tmp_path / "saved_files"
    empty.mkdir()
    proc = run_predict(["--runs-dir", empty, "--no-show"])
    assert_fails(proc, 1, f"no saved run in {empty}", "python train.py")
    assert list(empty.iterdir()) == []


def test_runs_dir_that_does_not_exist_says_train_first_and_is_not_created(tmp_path):
    proc = run_predict(["--runs-dir", tmp_path / "nowhere", "--no-show"])
    assert_fails(proc, 1, "no saved run in", "python train.py")
    assert not (tmp_path / "nowhere").exists()


def test_runs_dir_holding_only_damaged_runs_says_no_saved_run(tmp_path, good_run):
    runs_dir = tmp_path / "saved_files"
    bad = Path(shutil.copytree(good_run, runs_dir / "bad"))
    (bad / "run.json").write_text("not json")
    before = snapshot(runs_dir)
    proc = run_predict(["--runs-dir", runs_dir, "--no-show"])
    assert_fails(proc, 1, "no saved run in")
    assert snapshot(runs_dir) == before


def test_run_flag_naming_nothing_or_a_file(tmp_path):
    for target in (tmp_path / "nowhere", tmp_path / "file.txt"):
        if target.suffix:
            target.write_text("hello\n")
        proc = run_predict(["--run", target, "--no-show"])
        assert_fails(proc, 1, str(target), "no such run folder")


def test_run_trained_with_an_accepted_flag_value_loads_in_predict(tmp_path, mnist_dir):
    """train.py accepts the largest finite --decay-factor and completes the run; predict.py must then load it."""
    out = tmp_path / "out"
    trained = run_script("train.py", [*flags(decay="y"), *QUICK, "--output-dir", out, "--name", "huge", "--decay-factor", "1e308"],
                         env=child_env(MNIST_DIR=str(mnist_dir)))
    assert trained.returncode == 0, show(trained)
    proc = run_predict(["--run", out / "huge", "--no-show", "--save", tmp_path / "g.png"], mnist_dir)
    assert proc.returncode == 0, show(proc)


# ---- flags

@pytest.mark.parametrize("args,needle", [
    (["--save", "grid.jpg"], "must end in .png"),
    (["--count", "0"], "out of range"),
    (["--count", "6001"], "out of range"),
    (["--count", "many"], "not a whole number"),
    (["--start", "-1"], "out of range"),
    (["--start", "6000"], "out of range"),
    (["--ru", "x"], "ambiguous option"),
    (["--verbose"], "unrecognized arguments"),
], ids=["save-jpg", "count-0", "count-6001", "count-many", "start--1", "start-6000", "abbrev-ru-ambiguous", "unknown-flag"])
def test_bad_flag_exits_2_one_line(good_run, args, needle):
    before = snapshot(good_run)
    proc = run_predict(["--run", good_run, "--no-show", *args])
    assert_fails(proc, 2, needle, "--help")
    assert snapshot(good_run) == before


@pytest.mark.parametrize("where", ["under-a-file", "is-a-folder"], ids=lambda w: f"save-path-{w}")
def test_unwritable_save_path_exits_1_one_line_and_nothing_left(good_run, tmp_path, mnist_dir, where):
    if where == "under-a-file":
        (tmp_path / "file").write_text("in the way\n")
        target = tmp_path / "file" / "grid.png"
    else:
        target = tmp_path / "grid.png"
        target.mkdir()
        (target / "keep.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    proc = run_predict(["--run", good_run, "--no-show", "--save", target], mnist_dir)
    assert_fails(proc, 1, "cannot write", "choose another --save path")
    assert snapshot(tmp_path) == before


# ---- your own picture

def _png(path: Path, image: np.ndarray) -> Path:
    import matplotlib.image as mpimg
    mpimg.imsave(path, image, cmap="gray", vmin=0, vmax=1)
    return path


@pytest.mark.parametrize("case,needle", [
    ("missing", "no such image file"), ("folder", "is a folder"), ("text-named-png", "cannot read it as an image"),
    ("truncated-png", "cannot read it as an image"), ("blank-white", "no ink found"), ("one-pixel", "no ink found"),
])
def test_bad_picture_exits_1_one_line(good_run, tmp_path, case, needle):
    path = tmp_path / "digit.png"
    if case == "folder":
        path.mkdir()
    elif case == "text-named-png":
        path.write_text("a seven, honestly\n")
    elif case == "truncated-png":
        _png(path, np.eye(40))
        path.write_bytes(path.read_bytes()[:60])
    elif case == "blank-white":
        _png(path, np.ones((60, 40)))
    elif case == "one-pixel":
        _png(path, np.zeros((1, 1)))
    before = snapshot(good_run)
    proc = run_predict(["--run", good_run, "--no-show", "--image", path, "--save", tmp_path / "out.png"])
    assert_fails(proc, 1, "digit.png", needle)
    assert snapshot(good_run) == before and not (tmp_path / "out.png").exists()


# ---- the test images

def test_bad_data_dir_exits_1_one_line(good_run, tmp_path, mnist_dir):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (data / name).symlink_to(mnist_dir / name)
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    before = snapshot(data)
    proc = run_predict(["--run", good_run, "--no-show", "--data-dir", data, "--save", tmp_path / "g.png"])
    assert_fails(proc, 1, "t10k-labels-idx1-ubyte.gz", "empty file")
    assert snapshot(data) == before


def test_missing_data_download_refused_exits_1_one_line(good_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = run_predict(["--run", good_run, "--no-show", "--data-dir", data, "--save", tmp_path / "g.png"])
    assert_fails(proc, 1, "could not download", "from any mirror", str(data))
    assert list(data.iterdir()) == []


# ---- run.json corrupted key by key: one line naming the file and the key ---------------------

def _record_edit(change):
    """A damage that loads run.json, lets change(record) edit it and writes it back
    (json writes NaN and 1e308 as Python reads them)."""
    def damage(run: Path) -> None:
        path = run / "run.json"
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return damage


def _set(*keys_and_value):
    """change(record): set record[k1][k2]... to the value (KeyError: remove the key)."""
    *keys, value = keys_and_value

    def change(record):
        for key in keys[:-1]:
            record = record[key]
        if value is KeyError:
            record.pop(keys[-1])
        else:
            record[keys[-1]] = value
    return change


def _best_after_last(record):
    record["best"] = {**record["best"], "epoch": record["last"]["epoch"] + 1,
                      "checkpoint": f"checkpoints/epoch-{record['last']['epoch'] + 1:04d}"}


RECORD_CASES = [  # (id, damage, the words the line must hold besides run.json)
    ("format-missing", _set("format", KeyError), "format"),
    ("format-text", _set("format", "2"), "format"),
    ("config-a-number", _set("config", 7), "configuration is not a JSON object"),
    ("config-layers-text", _set("config", "layers", "1"), "layers"),
    ("config-layer_sizes-a-number", _set("config", "layer_sizes", 784), "layer_sizes"),
    ("config-epochs-0", _set("config", "epochs", 0), "epochs"),
    ("config-learning_rate-nan", _set("config", "learning_rate", float("nan")), "learning_rate"),
    ("config-optimizer-missing", _set("config", "optimizer", KeyError), "missing key(s) optimizer"),
    ("normalization-missing", _set("normalization", KeyError), "normalization"),
    ("normalization-std-1e-320", _set("normalization", "std", 1e-320), "std"),
    ("normalization-mean-1e300", _set("normalization", "mean", 1e300), "mean"),
    ("normalization-kind-simple", _set("normalization", "kind", "simple"), "normalization"),
    ("status-unknown", _set("status", "paused"), "status"),
    ("status-missing", _set("status", KeyError), "status"),
    ("started-without-utc-offset", _set("started", "2024-03-01T12:00:00"), "started"),
    ("started-a-number", _set("started", 1709294400), "started"),
    ("ended-not-a-time", _set("ended", "yesterday"), "ended"),
    ("sizes-a-list", _set("sizes", [500, 500, 6000]), "sizes"),
    ("sizes-train-0", _set("sizes", "train", 0), "sizes.train"),
    ("versions-a-number", _set("versions", "numpy", 2), "versions"),
    ("epochs_completed-text", _set("epochs_completed", "1"), "epochs_completed"),
    ("epochs_completed-beyond-last", _set("epochs_completed", 5), "epochs_completed"),
    ("train_seconds-negative", _set("train_seconds", -1), "train_seconds"),
    ("last-a-list", _set("last", [1, 2]), "last"),
    ("last-a-string", _set("last", "checkpoints/epoch-0001"), "last"),
    ("last-test_accuracy-nan", _set("last", "test_accuracy", float("nan")), "last.test_accuracy"),
    ("last-val_loss-1e308", _set("last", "val_loss", 1e308), "last.val_loss"),
    ("last-epoch-true", _set("last", "epoch", True), "last.epoch"),
    ("last-checkpoint-another-folder", _set("last", "checkpoint", "../other/checkpoints/epoch-0001"),
     "last.checkpoint"),
    ("best-checkpoint-another-folder", _set("best", "checkpoint", "/tmp/checkpoints/epoch-0001"),
     "best.checkpoint"),
    ("best-missing", _set("best", KeyError), "best"),
    ("best-epoch-after-last", _best_after_last, "best"),
    ("best-val_accuracy-1.5", _set("best", "val_accuracy", 1.5), "best.val_accuracy"),
]


@pytest.mark.parametrize("damage,key", [c[1:] for c in RECORD_CASES], ids=[c[0] for c in RECORD_CASES])
def test_each_corrupted_key_of_run_json_is_named_in_one_line(broken, tmp_path, capsys, damage, key):
    """A copy of a real run's run.json, damaged in one key: predict.py exits 1 with one line
    naming run.json and the key, and writes nothing."""
    import predict
    _record_edit(damage)(broken)
    before = snapshot(broken)
    save = tmp_path / "features.png"
    code = predict.main(["--run", str(broken), "--features", "--save", str(save)])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("predict.py: "), err
    assert str(broken / "run.json") in err and key in err, err
    assert not save.exists() and snapshot(broken) == before


@pytest.mark.parametrize("case", ["nested-brackets", "a-number", "weight-overflows-float32"])
def test_a_record_or_weights_beyond_reason_are_named_in_one_line(broken, tmp_path, capsys, case):
    """100,000 nested brackets (RecursionError in json), a record that is a number, and a
    weight that is finite in float64 but not in float32 (1e39): one line each, exit 1."""
    import predict
    if case == "nested-brackets":
        (broken / "run.json").write_text("[" * 100_000 + "]" * 100_000)
        needles = [str(broken / "run.json"), "nested too deeply"]
    elif case == "a-number":
        (broken / "run.json").write_text("12")
        needles = [str(broken / "run.json"), "not a JSON object"]
    else:
        _edit_csv(broken, "weights_1.csv", lambda t: _set_cell(t, "1e39"))
        needles = [str(ck(broken) / "weights_1.csv")]
    code = predict.main(["--run", str(broken), "--features", "--save", str(tmp_path / "f.png")])
    out, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and all(n in err for n in needles), err
