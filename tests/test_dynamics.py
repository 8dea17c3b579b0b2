"""kit/dynamics.py and dynamics.csv: each measurement against an independent computation
(reference_backprop's gradient, a hand count of dead and saturated units, the network's
own loss on the probe), the measured hints on real runs, exact resume after a SIGKILL,
old and damaged runs, and dynamics.png."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mnist_loader
import optim
import training
from kit import dynamics, lifecycle
from kit.comparison import find_runs, table_row
from kit.config import RunConfig, RunError
from kit.record import RECORD, Run
from network import Network, reference_backprop

ROOT = Path(__file__).resolve().parents[1]


# ---- the measurements, against independent computations ------------------------------------

class Spy:
    """An optimizer that keeps the parameters before and after each of its steps."""

    def __init__(self, inner):
        self.inner = inner
        self.lr_in_grad = inner.lr_in_grad
        self.params: list[tuple[np.ndarray, np.ndarray]] = []

    def step(self, params, grad, lr):
        before = params.copy()
        self.inner.step(params, grad, lr)
        self.params.append((before, params.copy()))


def toy_data(n: int, rng: np.random.Generator, features: int = 12, classes: int = 4):
    x = rng.standard_normal((n, features))
    y = rng.integers(0, classes, n)
    return x, y


def network_with(net: Network, flat: np.ndarray, dtype=None) -> Network:
    """A network of net's shape holding the parameters flat (a deep copy would not do:
    it makes the weight views arrays of their own)."""
    other = Network(net.sizes, net.activation, dtype=dtype or net.dtype)
    other.params[...] = flat
    return other


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_grad_norm_and_update_ratio_match_reference_backprop(optimizer):
    """Each row's grad_norm_i is the norm of reference_backprop's dW_i on the batch of the
    row's last step, at the weights before it; update_ratio_i is ||dW_i|| / ||W_i|| of it."""
    rng = np.random.default_rng(5)
    x, y = toy_data(2 * training.BLOCK_STEPS * 4 + 12, rng)   # 2 full blocks and 3 steps
    net = Network([12, 7, 5, 4], "relu", "xavier", rng, dtype=np.float64)
    spy = Spy(optim.make_optimizer(optimizer))
    recorder = dynamics.Recorder(net, (x, y), x, batch_size=4)
    lr = 0.01
    perm = np.random.default_rng(9).permutation(len(x))
    training.train_epoch(net, x, y, spy, lr, np.random.default_rng(9), batch_size=4, epoch=1,
                         watch=recorder, l1=1e-4)
    steps = len(x) // 4
    assert [r["step"] for r in recorder.rows] == [256, 512, steps]
    for row in recorder.rows:
        k = row["step"] - 1                       # the row's last step (from 0)
        batch = perm[4 * k:4 * k + 4]
        before, after = spy.params[k]
        _, grads = reference_backprop(network_with(net, before), x[batch], y[batch], l1=1e-4)
        ref = network_with(net, before)
        moved = network_with(net, after)
        for i, (gw, _) in enumerate(grads, start=1):
            assert row[f"grad_norm_{i}"] == pytest.approx(np.linalg.norm(gw), rel=1e-10)
            w0, w1 = ref.weights[i - 1], moved.weights[i - 1]
            assert row[f"update_ratio_{i}"] == pytest.approx(
                np.linalg.norm(w1 - w0) / np.linalg.norm(w0), rel=1e-10)
            assert row[f"weight_norm_{i}"] == pytest.approx(np.linalg.norm(w1), rel=1e-12)
        assert row["examples_seen"] == 4 * row["step"]


def test_watching_changes_nothing_in_the_training():
    """The same epoch with and without the recorder: the same parameters, bit for bit."""
    rng = np.random.default_rng(1)
    x, y = toy_data(1100, rng)
    nets = [Network([12, 8, 4], "sigmoid", "gauss", np.random.default_rng(2)) for _ in range(2)]
    for net, watch in zip(nets, (None, dynamics.Recorder(nets[1], (x, y), x, batch_size=4))):
        opt = optim.make_optimizer("momentum")
        training.train_epoch(net, x.astype(np.float32), y, opt, 0.05, np.random.default_rng(3),
                             dropout=0.2, watch=watch, epoch=1)
    assert np.array_equal(nets[0].params, nets[1].params)


def test_train_loss_and_accuracy_are_the_steps_running_means():
    """A row's train_loss is the mean loss of its block's steps: over one epoch the rows,
    weighted by their steps, give train_epoch's own mean."""
    rng = np.random.default_rng(4)
    x, y = toy_data(1500, rng)
    net = Network([12, 6, 4], "relu", "xavier", rng, dtype=np.float64)
    recorder = dynamics.Recorder(net, (x, y), x, batch_size=4)
    mean = training.train_epoch(net, x, y, optim.make_optimizer("sgd"), 0.05,
                                np.random.default_rng(1), watch=recorder, epoch=1)
    steps = np.diff([0] + [r["step"] for r in recorder.rows])
    assert np.dot(steps, [r["train_loss"] for r in recorder.rows]) / steps.sum() == pytest.approx(mean)
    assert all(0 <= r["train_accuracy"] <= 1 for r in recorder.rows)


def test_dead_units_equal_a_hand_count():
    """A ReLU network built with dead units: 4 of 10 in layer 1 (a bias of -1000), and in
    layer 2 the 2 of 6 units whose weights and bias are zero or negative."""
    rng = np.random.default_rng(0)
    net = Network([784, 10, 6, 10], "relu", "xavier", rng)
    net.biases[0][...] = 10                 # alive: the inputs are 0 to 1, the weights small
    net.biases[0][[1, 3, 5, 7]] = -1000
    net.biases[1][...] = 10
    net.weights[1][:, [0, 4]] = 0
    net.biases[1][[0, 4]] = -0.5
    x = rng.random((300, 784)).astype(np.float32)
    stats = dynamics.unit_stats(net.weights[:-1], net.biases[:-1], True, x)
    # the hand count: a unit is dead when no probe image makes it positive
    a1 = np.maximum(x @ net.weights[0] + net.biases[0], 0)
    a2 = np.maximum(a1 @ net.weights[1] + net.biases[1], 0)
    assert [int(np.sum(a.max(axis=0) == 0)) for a in (a1, a2)] == [4, 2]
    assert stats[0][2] == pytest.approx(4 / 10) and stats[1][2] == pytest.approx(2 / 6)
    assert stats[0][0] == pytest.approx(a1.mean(), rel=1e-5)
    assert stats[1][1] == pytest.approx(a2.std(), rel=1e-4)
    # ... and in row 0 of a recorder on that probe
    recorder = dynamics.Recorder(net, (x, rng.integers(0, 10, 300)), x, batch_size=4)
    recorder.start(0.001)
    row = recorder.rows[0]
    assert row["dead_1"] == pytest.approx(0.4) and row["dead_2"] == pytest.approx(1 / 3)
    assert "saturated_1" not in row


def test_saturated_units_equal_a_hand_count():
    """Sigmoid units pushed to 0 or 1 (biases of -30 and +30) are saturated; one that is
    extreme on 90 % of the images only is not (the definition asks 95 %)."""
    rng = np.random.default_rng(0)
    net = Network([20, 8, 3], "sigmoid", "xavier", rng)
    x = rng.standard_normal((200, 20)).astype(np.float32)
    net.biases[0][[0, 2, 6]] = [-30, 30, 30]
    net.weights[0][:, 7] = 0
    net.weights[0][0, 7] = 100          # unit 7: saturated where |x0| is large enough
    x[:, 0] = np.where(np.arange(200) < 180, 1.0, 0.0)   # 90 % of the images
    stats = dynamics.unit_stats(net.weights[:-1], net.biases[:-1], False, x)
    a = 1 / (1 + np.exp(-(x @ net.weights[0] + net.biases[0])))
    hand = np.mean(((a < 0.02) | (a > 0.98)).mean(axis=0) >= 0.95)
    assert hand == pytest.approx(3 / 8) and stats[0][2] == pytest.approx(3 / 8)


def test_row_0_is_the_network_before_any_update(mnist_dir):
    """Row 0 (step 0): the network's own loss and accuracy on the training probe, its
    weights' norms, and the gradient norms of reference_backprop on that probe."""
    rng = np.random.default_rng(3)
    data = mnist_loader.load_data("normal", rng, data_dir=mnist_dir, limit=1200)
    net = Network([784, 32, 10], "relu", "xavier", rng)
    start = network_with(net, net.params)
    recorder = dynamics.Recorder(net, (data.train.x, data.train.y), data.val.x, batch_size=4)
    next(training.train(net, data, epochs=1, optimizer=optim.make_optimizer("momentum"), rng=rng,
                        progress=False, dynamics=recorder))
    row = recorder.rows[0]
    probe_x, probe_y = data.train.x[:dynamics.TRAIN_PROBE], data.train.y[:dynamics.TRAIN_PROBE]
    assert (row["epoch"], row["step"], row["examples_seen"]) == (0, 0, 0)
    assert row["train_loss"] == start.loss(probe_x, probe_y)
    assert row["train_accuracy"] == start.evaluate(probe_x, probe_y)[1]
    assert abs(row["train_loss"] - math.log(10)) < 0.5
    _, grads = reference_backprop(network_with(start, start.params, np.float64), probe_x.astype(np.float64), probe_y)
    for i, (gw, _) in enumerate(grads, start=1):
        assert row[f"grad_norm_{i}"] == pytest.approx(np.linalg.norm(gw), rel=1e-4)
        assert math.isnan(row[f"update_ratio_{i}"])
    assert row["dead_1"] == dynamics.unit_stats(start.weights[:1], start.biases[:1], True,
                                                data.val.x[:dynamics.VAL_PROBE])[0][2]
    # every row: every column, the epoch's rows at 256-step blocks and at its end
    assert all(set(r) == set(recorder.columns) for r in recorder.rows)
    assert [r["step"] for r in recorder.rows] == [0, 256, 300]


# ---- the run folder -------------------------------------------------------------------------

def config(**changes) -> RunConfig:
    values = dict(layers=2, normalization="normal", init="xavier", activation="relu", l1=False,
                  decay=False, optimizer="momentum", epochs=2, seed=7, limit=2000)
    return RunConfig.create(**{**values, **changes})


def test_every_run_folder_has_dynamics_csv_committed_with_each_epoch(mnist_dir, tmp_path):
    outcome = lifecycle.train_run(config(), tmp_path, "r", data_dir=mnist_dir, progress=False)
    assert outcome.status == "completed"
    run = Run.load(tmp_path / "r")
    rows = run.dynamics()
    assert [r["epoch"] for r in rows] == [0] + [1] * 2 + [2] * 2   # 500 steps: 256 and the end
    assert [r["step"] for r in rows] == [0, 256, 500, 756, 1000]
    top = (tmp_path / "r" / "dynamics.csv").read_text()
    assert top == (tmp_path / "r" / run.record.last["checkpoint"] / "dynamics.csv").read_text()
    assert top.splitlines()[0].split(",") == list(dynamics.columns([784, 64, 64, 10], "relu"))
    assert (tmp_path / "r" / "dynamics.png").stat().st_size > 10_000
    assert top.splitlines()[1].split(",")[8] == ""     # update_ratio_1 of row 0: no step yet


def without_wall_time(rows):
    return [{k: v for k, v in r.items() if k not in dynamics.WALL_TIME} for r in rows]


def same_rows(a, b) -> bool:
    """Equal rows, NaN equal to NaN (row 0's update ratios)."""
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(x[k] == y[k] or (x[k] != x[k] and y[k] != y[k]) for k in x)
        for x, y in zip(a, b))


@pytest.mark.slow
def test_exact_resume_after_sigkill_gives_the_same_dynamics(mnist_dir, tmp_path):
    """train.py killed with SIGKILL after its third epoch, then train.py --resume: its
    dynamics.csv equals an uninterrupted run's, the wall-time column aside."""
    args = ["--layers", "2", "--hidden-size", "16", "--normalization", "normal", "--init",
            "xavier", "--activation", "relu", "--l1", "n", "--decay", "y", "--optimizer",
            "momentum", "--seed", "5", "--limit", "2000", "--epochs", "6", "--no-show",
            "--output-dir", str(tmp_path)]
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    whole = subprocess.run([sys.executable, str(ROOT / "train.py"), *args, "--name", "whole"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, "--name", "killed"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = tmp_path / "killed" / RECORD
    end = time.monotonic() + 300
    while True:
        try:
            if json.loads(record.read_text())["epochs_completed"] >= 3:
                break
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None and time.monotonic() < end
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    killed = Run.load(tmp_path / "killed")
    assert 3 <= killed.record.epochs_completed < 6
    resumed = subprocess.run([sys.executable, str(ROOT / "train.py"), "--resume",
                              str(tmp_path / "killed"), "--no-show"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = Run.load(tmp_path / "whole").dynamics(), Run.load(tmp_path / "killed").dynamics()
    assert len(a) == 1 + 6 * 2
    assert same_rows(without_wall_time(a), without_wall_time(b))
    assert [r["seconds"] for r in a] != [r["seconds"] for r in b]   # the wall times differ
    assert Run.load(tmp_path / "killed").history()[-1]["val_accuracy"] == \
        Run.load(tmp_path / "whole").history()[-1]["val_accuracy"]


def strip_dynamics(run_dir: Path) -> None:
    """Make a run look saved before dynamics.csv existed."""
    for path in run_dir.rglob("dynamics.*"):
        path.unlink()


def test_runs_without_dynamics_still_load_and_resume(mnist_dir, tmp_path):
    lifecycle.train_run(config(epochs=1), tmp_path, "old", data_dir=mnist_dir, progress=False,
                        plots=False)
    strip_dynamics(tmp_path / "old")
    run = Run.load(tmp_path / "old")
    assert run.dynamics() is None and len(run.history()) == 1
    row = table_row(next(find_runs(tmp_path)), tmp_path)
    assert row["status"] == "completed" and row["init"] is None
    outcome = lifecycle.resume_run(tmp_path / "old", 2, data_dir=mnist_dir, progress=False,
                                   plots=False)
    assert outcome.status == "completed"
    rows = Run.load(tmp_path / "old").dynamics()
    assert [r["epoch"] for r in rows] == [2, 2]    # from the resumed epoch on: no row 0


class Notes(lifecycle.Reporter):
    def __init__(self):
        self.notes, self.rows, self.hints = [], [], []

    def note(self, text):
        self.notes.append(text)

    def dynamics_row(self, row):
        self.rows.append(row)

    def epoch_done(self, row, record, hints):
        self.hints += hints


@pytest.mark.parametrize("damage", ["garbage", "short row", "wrong layers", "not utf-8"])
def test_a_damaged_dynamics_csv_leaves_the_other_views_working(damage, mnist_dir, tmp_path):
    lifecycle.train_run(config(epochs=1), tmp_path, "d", data_dir=mnist_dir, progress=False,
                        plots=False)
    run = Run.load(tmp_path / "d")
    path = tmp_path / "d" / run.record.last["checkpoint"] / "dynamics.csv"
    text = path.read_text()
    path.write_bytes({"garbage": b"hello\n1,2\n", "short row": (text + "1,2,3\n").encode(),
                      "wrong layers": text.replace("_3,", "_9,").encode(),
                      "not utf-8": b"\xff\xfe" + text.encode()}[damage])
    with pytest.raises(RunError) as err:
        run.dynamics()
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert run.history() and run.network("best") is not None     # the other views
    row = table_row(next(find_runs(tmp_path)), tmp_path)
    assert row["status"] == "completed"
    if damage == "short row":     # the table reads row 0 only, which is sound
        assert row["init"] == pytest.approx(2.3, abs=0.3) and row["notes"] == []
    else:
        assert row["init"] is None and row["notes"] == [message]
    reporter = Notes()
    outcome = lifecycle.resume_run(tmp_path / "d", 2, data_dir=mnist_dir, progress=False,
                                   plots=False, reporter=reporter)
    assert outcome.status == "completed"
    assert len(reporter.notes) == 1 and "dynamics.csv restarts with epoch 2" in reporter.notes[0]
    assert [r["epoch"] for r in Run.load(tmp_path / "d").dynamics()] == [2, 2]


# ---- the hints from measurements --------------------------------------------------------------

def hints_of(cfg: RunConfig, mnist_dir, tmp_path) -> list[str]:
    reporter = Notes()
    lifecycle.train_run(cfg, tmp_path, cfg.summary(), data_dir=mnist_dir, progress=False,
                        plots=False, reporter=reporter)
    assert len(reporter.rows) == 1 + 2 * cfg.epochs     # told of every row as it came
    return reporter.hints


def test_vanishing_gradient_hint_fires_for_sigmoid_gauss_sgd(mnist_dir, tmp_path):
    out = hints_of(config(activation="sigmoid", init="gauss", optimizer="sgd"), mnist_dir, tmp_path)
    vanishing = [h for h in out if h.startswith("Hint: vanishing gradients")]
    assert len(vanishing) == 1, out         # once a run, though both epochs show it
    assert "times smaller than the last layer's" in vanishing[0]
    chance = [h for h in out if "chance level" in h]
    assert len(chance) == 1 and "(measured: " in chance[0] and "at the last layer)" in chance[0]


def test_a_healthy_run_gets_no_hint(mnist_dir, tmp_path):
    assert hints_of(config(), mnist_dir, tmp_path) == []


def measured_rows(**columns) -> list[dict]:
    """Row 0 and three rows of epoch 1 of a 2-hidden ReLU network, with columns changed."""
    base = {"epoch": 1, "step": 256, "examples_seen": 1024, "learning_rate": 0.001,
            "train_loss": 0.5, "train_accuracy": 0.8}
    for i in (1, 2, 3):
        base |= {f"weight_norm_{i}": 5.0, f"grad_norm_{i}": 1.0, f"update_ratio_{i}": 1e-3}
    for i in (1, 2):
        base |= {f"act_mean_{i}": 1.0, f"act_std_{i}": 1.0, f"dead_{i}": 0.0}
    rows = [dict(base, epoch=0, step=0, examples_seen=0, train_loss=math.log(10))]
    rows += [dict(base, step=256 * k, **columns) for k in (1, 2, 3)]
    if "init_loss" in columns:
        rows[0]["train_loss"] = columns["init_loss"]
        for r in rows[1:]:
            del r["init_loss"]
    return rows


@pytest.mark.parametrize("columns, needle", [
    ({}, None),
    ({"grad_norm_1": 1e-3}, "vanishing gradients: in epoch 1 the first layer's gradient norm "
                            "(median 0.001) was 1,000 times smaller"),
    ({"dead_2": 0.7}, "70 % of hidden layer 2's ReLU units are dead"),
    ({"update_ratio_2": 0.5}, "changes layer 2's weights by 50 % (median update ratio"),
    ({"update_ratio_1": 1e-6, "update_ratio_2": 1e-6, "update_ratio_3": 2e-6},
     "at most 2e-06 of their size"),
    ({"init_loss": 7.5}, "loss at initialization was 7.5, far from ln 10 = 2.3"),
])
def test_each_measured_hint_quotes_its_numbers_once(columns, needle):
    cfg = config()
    history = [{"epoch": 1, "val_accuracy": 0.9, "train_loss": 0.3, "val_loss": 0.3}]
    shown: set[str] = set()
    out = lifecycle.hints(history, cfg, shown, measured_rows(**columns))
    if needle is None:
        assert out == []
        return
    assert len(out) == 1 and needle in out[0], out
    assert lifecycle.hints(history, cfg, shown, measured_rows(**columns)) == []


def test_saturated_hint_for_sigmoid_layers():
    rows = measured_rows()
    for r in rows:
        for i in (1, 2):
            r[f"saturated_{i}"] = r.pop(f"dead_{i}")
        r["saturated_1"] = 0.8
    history = [{"epoch": 1, "val_accuracy": 0.9, "train_loss": 0.3, "val_loss": 0.3}]
    out = lifecycle.hints(history, config(activation="sigmoid"), set(), rows)
    assert len(out) == 1 and "80 % of hidden layer 1's sigmoid units are saturated" in out[0]


# ---- dynamics.csv's text ------------------------------------------------------------------

def test_text_round_trip_is_exact():
    header = dynamics.columns([784, 10], None)
    assert header == ("epoch", "step", "examples_seen", "learning_rate", "train_loss",
                      "train_accuracy", "weight_norm_1", "grad_norm_1", "update_ratio_1", "seconds")
    rows = [dict(zip(header, [0, 0, 0, 0.001, 2.3025, 0.1, 1.5, 0.25, math.nan, 0.0])),
            dict(zip(header, [1, 256, 1024, 0.001, 1 / 3, 0.5, 1.6, 0.1, 1e-3 / 7, 0.25]))]
    back_header, back = dynamics.parse_dynamics(dynamics.dynamics_text(rows, header))
    assert back_header == header and same_rows(back, rows)
    assert isinstance(back[1]["step"], int)


@pytest.mark.parametrize("text, needle", [
    ("", "unexpected header"),
    ("epoch,step\n", "unexpected header"),
    ("HEADER\n0,0,0,0.001,2.3,0.1,1.5,0.2,,0\n1,256,1024,0.001,2.3,0.1,1.5,0.2,x,0\n",
     "row 2 holds a value that is not a number"),
    ("HEADER\n0,0,0,0.001,2.3,0.1,1.5,0.2,,0\n1,256,1024,0.001,inf,0.1,1.5,0.2,0.1,0\n",
     "row 2 holds an infinite value"),
    ("HEADER\n1,256,1024,0.001,2.3,0.1,1.5,0.2,0.1,0\n1,0,0,0.001,2.3,0.1,1.5,0.2,,0\n",
     "row 2 goes back to step 0"),
])
def test_damaged_text_is_refused_saying_where(text, needle):
    text = text.replace("HEADER", ",".join(dynamics.columns([784, 10], None)))
    with pytest.raises(dynamics.DynamicsError, match=needle):
        dynamics.parse_dynamics(text)


def test_dynamics_png_for_every_depth(tmp_path):
    for layers, activation in ((0, None), (1, "sigmoid"), (2, "relu")):
        header = dynamics.columns([784] + [8] * layers + [10], activation)
        rows = []
        for k in range(40):
            row = {c: 0.5 + 0.01 * k for c in header}
            row |= {"epoch": k // 20 + (k > 0), "step": 256 * k, "examples_seen": 1024 * k}
            rows.append(row)
        for c in header:
            if c.startswith("update_ratio"):
                rows[0][c] = math.nan
        from kit.plots import plot_dynamics
        path = plot_dynamics(rows, tmp_path, f"{layers}h")
        assert path == tmp_path / "dynamics.png" and path.stat().st_size > 10_000
        path.unlink()


def test_recorder_flushes_early_when_copies_would_grow_too_large(monkeypatch):
    monkeypatch.setattr(dynamics, "PENDING_BYTES", 1)
    rng = np.random.default_rng(0)
    x, y = toy_data(1100, rng)
    net = Network([12, 5, 4], "relu", "xavier", rng, dtype=np.float64)
    recorder = dynamics.Recorder(net, (x, y), x, batch_size=4)
    training.train_epoch(net, x, y, optim.make_optimizer("sgd"), 0.01, rng, watch=recorder, epoch=1)
    assert all("dead_1" in r for r in recorder.rows)   # without waiting for flush()
    assert recorder._pending == []




# ---- compare.py -----------------------------------------------------------------------------

def test_compare_overlays_dynamics_columns_and_tables_the_initial_loss(mnist_dir, tmp_path, capsys):
    import compare
    from kit import comparison
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, changes in (("relu", {}), ("sigmoid", {"activation": "sigmoid"})):
        lifecycle.train_run(config(epochs=1, **changes), runs, name, data_dir=mnist_dir,
                            progress=False, plots=False)
    lifecycle.train_run(config(epochs=1, seed=8), runs, "old", data_dir=mnist_dir,
                        progress=False, plots=False)
    strip_dynamics(runs / "old")
    out = tmp_path / "grad.png"
    assert compare.main([str(runs / "relu"), str(runs / "sigmoid"), str(runs / "old"),
                         "--metric", "grad_norm_1", "--save", str(out)]) == 0
    err = capsys.readouterr().err
    assert "leaving out" in err and "old" in err and "before dynamics.csv" in err
    assert out.stat().st_size > 10_000
    # the lines: each run's grad_norm_1 against its examples seen
    groups = comparison.group_runs([Run.load(runs / "relu")], dynamics=True)
    x, y = comparison.metric_values(groups[0].histories[0], "grad_norm_1")
    rows = Run.load(runs / "relu").dynamics()
    assert list(x) == [r["examples_seen"] for r in rows] and list(y) == [r["grad_norm_1"] for r in rows]
    assert compare.main([str(runs / "sigmoid"), "--metric", "dead_1", "--save", str(out)]) == 1
    assert "has no dead_1" in capsys.readouterr().err
    assert compare.main([str(runs / "relu"), "--metric", "dynamics.train_loss",
                         "--save", str(out)]) == 0
    capsys.readouterr()
    assert compare.main(["--runs-dir", str(runs), "--csv"]) == 0
    table = {line.split(",")[0]: line.split(",") for line in capsys.readouterr().out.splitlines()}
    init = [c.key for c in comparison.COLUMNS].index("init")
    loss = Run.load(runs / "relu").dynamics()[0]["train_loss"]
    assert float(table["relu"][init]) == pytest.approx(loss, abs=0.005)
    assert table["old"][init] == ""
    with pytest.raises(SystemExit):
        compare.build_parser().parse_args(["x", "--metric", "grad_norm"])
