"""kit/record_writer.py: a run folder written epoch by epoch (checkpoints, the record that
names them, the best and the last epoch), finished, continued, and left loadable when a
commit fails; read back through kit/record.py's Run."""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

import optim
from kit.config import Normalization, RunConfig, RunError
from kit.fsutil import is_locked
from kit.record import RECORD, Run
from kit.record_writer import RunWriter
from training import HISTORY_COLUMNS

CONFIG = RunConfig.create(layers=1, normalization="simple", init="xavier", activation="relu", l1=False,
                          decay=False, optimizer="momentum", epochs=5, seed=3, hidden_size=4)
STARTED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
VAL = [0.5, 0.7, 0.6, 0.65]  # epoch 2 is the best


def row(epoch: int) -> dict:
    values = {k: 0.1 * epoch + i / 100 for i, k in enumerate(HISTORY_COLUMNS)}
    return {**values, "epoch": epoch, "val_accuracy": VAL[epoch - 1], "train_accuracy": 0.5,
            "test_accuracy": 0.5, "seconds": 2.0}


def new_writer(tmp_path, name="r") -> RunWriter:
    return RunWriter.create(tmp_path, name, CONFIG, Normalization("simple"), (100, 50, 60), {"numpy": "2"}, STARTED)


def commit(writer: RunWriter, net, rng, epoch: int) -> dict:
    """Move the weights, commit the epoch; return a copy of what was saved."""
    net.params += 0.01 * epoch
    opt = {"velocity": np.full(3, float(epoch)), "steps": np.array(epoch)}
    writer.commit_epoch(row(epoch), net, opt, rng.bit_generator.state)
    return {"params": net.params.copy(), "rng": rng.bit_generator.state}


@pytest.fixture
def net():
    return CONFIG.build_network(np.random.default_rng(0))


def test_a_new_run_is_running_locked_and_loads_with_no_epochs(tmp_path):
    writer = new_writer(tmp_path)
    try:
        run = Run.load(tmp_path / "r")
        assert run.record.status == "running" and run.live and is_locked(run.path)
        assert run.record.epochs_completed == 0 and run.history() == []
        assert run.status_line() == "running: 0 epochs committed so far"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no .partial left
    finally:
        writer.close()
    assert not Run.load(tmp_path / "r").live
    assert Run.load(tmp_path / "r").status_line() == "ended without a status after 0 committed epochs"


def test_committed_epochs_keep_the_last_and_the_best_checkpoint_and_load_back_exactly(tmp_path, net):
    writer = new_writer(tmp_path)
    rng = np.random.default_rng(9)
    saved = {}
    for epoch in (1, 2, 3):
        rng.random(5)
        saved[epoch] = commit(writer, net, rng, epoch)
    writer.finish("completed")
    writer.close()

    run = Run.load(tmp_path / "r")
    assert (run.record.status, run.record.epochs_completed) == ("completed", 3)
    assert run.record.ended is not None and run.record.train_seconds == 6.0
    assert run.weights_epoch("best") == 2 and run.weights_epoch("last") == 3
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["epoch-0002", "epoch-0003"]
    assert [r["epoch"] for r in run.history()] == [1, 2, 3]
    assert run.history()[1] == {**row(2), "epoch": 2}
    assert np.array_equal(run.network("best").params, saved[2]["params"])  # float32 written exactly
    assert np.array_equal(run.network("last").params, saved[3]["params"])
    optimizer_state, rng_state = run.training_state()
    assert np.array_equal(optimizer_state["velocity"], [3.0, 3.0, 3.0]) and int(optimizer_state["steps"]) == 3
    assert rng_state == saved[3]["rng"]
    assert (run.path / "history.csv").read_text() == (run.path / "checkpoints/epoch-0003/history.csv").read_text()
    assert run.status_line() == "completed after 3 epochs"


def test_the_saved_optimizer_state_resumes_the_optimizer_bit_for_bit(tmp_path, net):
    writer = new_writer(tmp_path)
    opt = optim.Momentum(0.9)
    grads = np.random.default_rng(1).standard_normal((6, net.params.size)).astype(np.float32)
    for g in grads[:3]:
        opt.step(net.params, 0.01 * g, 0.01)
    writer.commit_epoch(row(1), net, opt.state(), {"bit_generator": "PCG64"})
    writer.close()
    for g in grads[3:]:
        opt.step(net.params, 0.01 * g, 0.01)

    run = Run.load(tmp_path / "r")
    again = run.network("last")
    other = optim.Momentum(0.9)
    other.load_state(run.training_state()[0])
    for g in grads[3:]:
        other.step(again.params, 0.01 * g, 0.01)
    assert np.array_equal(again.params, net.params)


def test_a_commit_that_fails_leaves_the_previous_epoch_and_no_partial_folder(tmp_path, net, monkeypatch):
    writer = new_writer(tmp_path)
    rng = np.random.default_rng(9)
    commit(writer, net, rng, 1)

    def full_disk(folder):
        (folder / "weights_1.csv").write_text("1,2")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(net, "save_csv", full_disk)
    with pytest.raises(OSError, match="No space"):
        commit(writer, net, rng, 2)
    writer.close()
    run = Run.load(tmp_path / "r")
    assert run.record.epochs_completed == 1 and [r["epoch"] for r in run.history()] == [1]
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["epoch-0001"]
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith(".") and p.name != ".lock") == []


def test_resume_continues_the_run_and_refuses_a_second_writer(tmp_path, net):
    writer = new_writer(tmp_path)
    rng = np.random.default_rng(9)
    commit(writer, net, rng, 1)
    with pytest.raises(RunError, match="being written by a running train.py"):
        RunWriter.resume(Run.load(tmp_path / "r"), CONFIG)
    writer.finish("interrupted")
    writer.close()

    run = Run.load(tmp_path / "r")
    again = RunWriter.resume(run, dataclasses.replace(CONFIG, epochs=8))
    try:
        assert Run.load(tmp_path / "r").record.status == "running"
        commit(again, net, rng, 2)
        again.finish("completed")
    finally:
        again.close()
    run = Run.load(tmp_path / "r")
    assert run.config.epochs == 8 and run.record.epochs_completed == 2 and run.record.started == STARTED
    assert [r["epoch"] for r in run.history()] == [1, 2]


def test_an_existing_name_is_refused_and_create_unique_takes_the_next(tmp_path):
    new_writer(tmp_path).close()
    before = (tmp_path / "r" / RECORD).read_bytes()
    with pytest.raises(RunError, match="already exists"):
        new_writer(tmp_path)
    assert (tmp_path / "r" / RECORD).read_bytes() == before
    names = []
    for _ in range(2):
        w = RunWriter.create_unique(tmp_path, "r", CONFIG, Normalization("simple"), (100, 50, 60), {}, STARTED)
        names.append(w.path.name)
        w.close()
    assert names == ["r-2", "r-3"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_an_unsafe_name_creates_nothing(tmp_path, name):
    with pytest.raises(RunError, match="--name"):
        new_writer(tmp_path / "out", name)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_finish_refuses_a_status_that_is_not_final(tmp_path):
    writer = new_writer(tmp_path)
    try:
        with pytest.raises(ValueError, match="not a final status"):
            writer.finish("running")
    finally:
        writer.close()
