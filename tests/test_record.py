"""kit/record.py: reading a run folder (the record, the history, the best epoch)."""
from __future__ import annotations

from kit.record import best_row


def test_best_row_ties_go_to_the_earlier_epoch():
    rows = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7},
            {"epoch": 3, "val_accuracy": 0.7}, {"epoch": 4, "val_accuracy": 0.6}]
    assert best_row(rows)["epoch"] == 2
    assert best_row([]) is None

