"""kit/record.py: reading a run folder: run.json's record and its refusals, history.csv, the
best epoch, run names and the latest run. (Writing one: tests/test_record_writer.py.)"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from kit.config import Normalization, RunConfig, RunError
from kit.fsutil import write_json
from kit.record import (
    RECORD,
    RunRecord,
    best_row,
    check_run_name,
    checkpoint_name,
    find_latest_run,
    history_text,
    kit_figure,
    read_history,
    read_json,
)
from training import HISTORY_COLUMNS


def test_best_row_ties_go_to_the_earlier_epoch():
    rows = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7},
            {"epoch": 3, "val_accuracy": 0.7}, {"epoch": 4, "val_accuracy": 0.6}]
    assert best_row(rows)["epoch"] == 2
    assert best_row([]) is None



# ---- history.csv ------------------------------------------------------------------------------

def history_rows(n: int) -> list[dict]:
    return [{**{k: (e * 0.1 + i) / 3 for i, k in enumerate(HISTORY_COLUMNS)}, "epoch": e} for e in range(1, n + 1)]


def test_history_round_trips_every_float_exactly(tmp_path):
    rows = history_rows(4)
    path = tmp_path / "history.csv"
    path.write_text(history_text(rows))
    assert read_history(path) == rows
    assert path.read_text().splitlines()[0] == ",".join(HISTORY_COLUMNS)


def set_cell(text: str, epoch: int, column: str, value: str) -> str:
    lines = text.splitlines()
    cells = lines[epoch].split(",")
    cells[HISTORY_COLUMNS.index(column)] = value
    lines[epoch] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("damage, needle", [
    (lambda t: t.replace("epoch,", "epoque,", 1), "unexpected header"),
    (lambda t: t.rstrip("\n") + ",1\n", "row 3 has 12 values"),
    (lambda t: t.replace("\n2,", "\n5,", 1), "row 2 is epoch 5"),
    (lambda t: set_cell(t, 3, "val_loss", "nan"), "epoch 3 holds NaN"),
    (lambda t: t.replace("\n2,", "\n2,x", 1), "unreadable"),
])
def test_a_damaged_history_is_refused_naming_the_file(tmp_path, damage, needle):
    path = tmp_path / "history.csv"
    path.write_text(damage(history_text(history_rows(3))))
    with pytest.raises(RunError) as info:
        read_history(path)
    assert str(info.value).startswith(str(path)) and needle in str(info.value)


def test_a_missing_history_is_named(tmp_path):
    with pytest.raises(RunError, match="history.csv: missing"):
        read_history(tmp_path / "history.csv")


# ---- run.json ----------------------------------------------------------------------------------

CONFIG = RunConfig.create(layers=0, normalization="normal", init="gauss", activation=None, l1=True,
                          decay=True, optimizer="sgd", epochs=3, seed=1)
NORM = Normalization("normal", 33.3, 78.6)
STARTED = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def record(**changes) -> RunRecord:
    entry = {**history_rows(2)[1], "train_accuracy": 0.9, "val_accuracy": 0.8, "test_accuracy": 0.85,
             "checkpoint": checkpoint_name(2)}
    values = dict(config=CONFIG, normalization=NORM, status="completed", started=STARTED,
                  ended=STARTED + dt.timedelta(minutes=3), train_size=58_000, val_size=6000, test_size=6000,
                  versions={"numpy": "2.4"}, epochs_completed=2, last=entry, best=dict(entry),
                  train_seconds=12.5)
    return RunRecord(**{**values, **changes})


def test_the_record_round_trips_through_json():
    rec = record()
    d = json.loads(json.dumps(rec.to_json()))
    assert RunRecord.from_json(d, "run.json") == rec
    assert d["started"] == "2026-03-29T01:30:00.000+01:00"


@pytest.mark.parametrize("damage, needle", [
    (lambda d: d.update(format=1), "format 1 is not one this version reads"),
    (lambda d: d.update(status="paused"), "status must be one of"),
    (lambda d: d.update(started="2026-03-29 01:30"), "started must carry its UTC offset"),
    (lambda d: d.update(sizes={"train": 0, "val": 1, "test": 1}), "sizes.train must be a whole number >= 1"),
    (lambda d: d.update(epochs_completed=3), "last does not match epochs_completed 3"),
    (lambda d: d["best"].update(val_accuracy=1.5), "best.val_accuracy must be a fraction"),
    (lambda d: d["last"].update(checkpoint="../../etc"), "last.checkpoint must be 'checkpoints/epoch-0002'"),
    (lambda d: d["normalization"].update(kind="simple", mean=None, std=None), "differs from the configuration's"),
    (lambda d: d["config"].update(epochs=0), "config: epochs must be >= 1"),
])
def test_a_damaged_record_names_the_key(damage, needle):
    d = record().to_json()
    damage(d)
    with pytest.raises(RunError) as info:
        RunRecord.from_json(d, "x/run.json")
    assert str(info.value).startswith("x/run.json: ") and needle in str(info.value)


@pytest.mark.parametrize("content, needle", [(None, "missing"), ("", "not valid JSON"), ("{", "not valid JSON"),
                                             ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                                             ("folder", "is a folder")])
def test_read_json_names_the_file_and_the_trouble(tmp_path, content, needle):
    path = tmp_path / "run.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(RunError) as info:
        read_json(path)
    assert str(info.value).startswith(str(path)) and needle in str(info.value)


# ---- names, the latest run -----------------------------------------------------------------------

@pytest.mark.parametrize("name, ok", [("my-run", True), ("r.2+a_b", True), ("", False), ("..", False),
                                      ("a/b", False), ("/abs", False), (".hidden", False), ("a..b", False),
                                      ("x" * 201, False), ("é", False)])
def test_check_run_name(name, ok):
    assert (check_run_name(name) is None) == ok


def write_run(folder, status: str, started: dt.datetime, epochs: int = 2) -> None:
    rec = record(status=status, started=started, ended=None) if epochs else \
        record(status=status, started=started, ended=None, epochs_completed=0, last=None, best=None)
    folder.mkdir()
    write_json(folder / RECORD, rec.to_json())


def test_find_latest_run_prefers_completed_runs_then_the_latest_real_instant(tmp_path):
    utc = dt.timezone.utc
    write_run(tmp_path / "early", "completed", dt.datetime(2026, 1, 1, 12, tzinfo=utc))
    # Later in local time, earlier in real time (UTC+5 at 14:00 is 09:00 UTC).
    write_run(tmp_path / "offset", "completed", dt.datetime(2026, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=5))))
    write_run(tmp_path / "newest-interrupted", "interrupted", dt.datetime(2026, 6, 1, tzinfo=utc))
    write_run(tmp_path / "no-epochs", "completed", dt.datetime(2026, 7, 1, tzinfo=utc), epochs=0)
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / RECORD).write_text("{")
    assert find_latest_run(tmp_path) == tmp_path / "early"
    for name in ("early", "offset"):
        (tmp_path / name / RECORD).unlink()
    assert find_latest_run(tmp_path) == tmp_path / "newest-interrupted"


def test_find_latest_run_in_an_empty_folder_says_train_first(tmp_path):
    with pytest.raises(RunError, match="python train.py"):
        find_latest_run(tmp_path)


def test_kit_figures_are_the_graphs_and_predict_pys_pictures():
    assert all(kit_figure(n) for n in ("accuracy.png", "features.png", "predictions.png", "prediction_7.png"))
    assert not any(kit_figure(n) for n in ("comparison.png", "run.json", "prediction.txt"))
