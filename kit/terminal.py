"""train.py's terminal: the epoch line in the fullest form that fits the terminal, the
reporter that prints a run as it trains (lifecycle.Reporter's methods: the configuration,
each epoch, the hints, the live window), and the closing lines of a run."""
from __future__ import annotations

from pathlib import Path

from kit.cli import Output

HERE = Path(__file__).resolve().parent.parent  # the project folder, where train.py is


def epoch_line(row: dict, epochs: int, width: int, best: int | None = None) -> str:
    """One epoch's summary, in the fullest form that fits in width columns (a line that
    wraps breaks the terminal's columns): every value; then less of the losses and the
    learning rate; at least the validation and test accuracies."""
    w = len(str(epochs))
    epoch = f"Epoch {row['epoch']:>{w}}/{epochs}"
    star = " *" if best == row["epoch"] else ""

    def pct(key: str) -> str:
        return f"{100 * row[key]:6.2f}%"
    seconds = f"{row['seconds']:.1f}s"
    forms = [
        [epoch, f"lr {row['learning_rate']:.6f}", f"train {pct('train_accuracy')} ({row['train_loss']:.4f})",
         f"val {pct('val_accuracy')} ({row['val_loss']:.4f})",
         f"test {pct('test_accuracy')} ({row['test_loss']:.4f})", seconds],
        [epoch, f"lr {row['learning_rate']:.2e}", f"train {pct('train_accuracy')} ({row['train_loss']:.4f})",
         f"val {pct('val_accuracy')} ({row['val_loss']:.4f})", f"test {pct('test_accuracy')}", seconds],
        [epoch, f"train {pct('train_accuracy')}", f"val {pct('val_accuracy')} ({row['val_loss']:.4f})",
         f"test {pct('test_accuracy')}", seconds],
        [epoch, f"val {pct('val_accuracy')} ({row['val_loss']:.4f})", f"test {pct('test_accuracy')}"],
        [epoch, f"val {100 * row['val_accuracy']:.2f}%", f"test {100 * row['test_accuracy']:.2f}%"],
    ]
    for fields in forms:
        line = "  ".join(fields) + star
        if len(line) <= width - 1:  # the last column stays free: some terminals wrap there
            return line
    return line


class TerminalReporter:
    """train.py's terminal output of a run (lifecycle.Reporter's methods)."""

    def __init__(self, out: Output, config_line: str, show: bool = False):
        self.out = out
        self.config_line = config_line
        self.show = show      # graphs in a window that grows each epoch (when one can open)
        self.live = None
        self.rows: list[dict] = []
        self.steps: list[tuple[float, float]] = []   # (examples seen, training loss)
        self.train_size = 0

    def data_loaded(self, data, seconds: float) -> None:
        self.train_size = len(data.train.y)
        self.out.say(f"Data: {len(data.train.y):,} train / {len(data.val.y):,} validation / "
                     f"{len(data.test.y):,} test images ({seconds:.1f}s)")
        from mnist_loader import MNIST_COUNTS, TEST_START
        self.out.say(f"(The test images are t10k's {TEST_START}-{MNIST_COUNTS['test'] - 1}, an easier part of "
                     "t10k than its first images: test accuracy can top validation accuracy.)")

    def run_started(self, run_dir: Path, config, resumed_from: int) -> None:
        if resumed_from:
            self.out.say(f"Resuming {self.out.path(run_dir)} after epoch {resumed_from}, "
                         f"up to epoch {config.epochs}\n")
        else:
            self.out.say(f"Run folder: {self.out.path(run_dir)}\n")
        if self.show:
            from kit.live_plots import LiveGraphs  # matplotlib's GUI: only when a window may open
            per_epoch = self.train_size // config.batch_size * config.batch_size
            self.live = LiveGraphs.open(config.summary(), epochs=config.epochs,
                                        examples=config.epochs * per_epoch or None)
            if self.live is not None and resumed_from:
                from kit.config import RunError
                from kit.record import Run
                run = Run.load(run_dir)
                self.rows = run.history()  # the epochs before this session
                try:
                    earlier = run.dynamics() or []
                except RunError:   # said by note()
                    earlier = []
                self.steps = [(r["examples_seen"], r["train_loss"]) for r in earlier]

    def epoch_done(self, row: dict, record, hints: list[str]) -> None:
        best = record.best["epoch"] if record.best else None
        self.out.say(epoch_line(row, record.config.epochs, self.out.width(), best), whole=True)
        for hint in hints:
            self.out.say(self.out.wrap(hint, indent="  "))
        self.rows.append(row)
        if self.live is not None:
            self.live.update(self.rows, best)

    def dynamics_row(self, row: dict) -> None:
        self.steps.append((row["examples_seen"], row["train_loss"]))
        if self.live is not None:
            self.live.update_steps(self.steps)

    def status_written(self, status: str) -> None:
        pass

    def note(self, text: str) -> None:
        self.out.say(self.out.wrap(text, indent="  "))


def closing_lines(outcome, out: Output) -> None:
    """What a run ended as: its folder, its last and best epochs, why it stopped."""
    record = outcome.record
    if not outcome.rows:
        out.say(out.wrap(f"No epoch was completed; {out.path(outcome.run_dir)} holds no weights."))
        return
    last, best = record.last, record.best
    out.say(f"\nRun folder: {out.path(outcome.run_dir)}")
    out.say(f"Last epoch ({last['epoch']}): test accuracy {100 * last['test_accuracy']:.2f} %")
    out.say(out.wrap(f"Best validation epoch ({best['epoch']}): validation "
                     f"{100 * best['val_accuracy']:.2f} %, test {100 * best['test_accuracy']:.2f} % "
                     "(predict.py uses these weights)", indent="  "))
    n = record.epochs_completed
    done = f"{n} epoch{'s' if n != 1 else ''}"
    if outcome.status == "completed":
        out.say(f"Completed {done}.")
    elif outcome.status == "stopped-early":
        out.say(out.wrap(f"Stopped early after {done}: {outcome.reason}.", indent="  "))
    elif outcome.status == "interrupted":
        # The command on a line of its own, whole, so that it can be copied.
        out.say(f"Interrupted ({outcome.reason}): kept the {done} committed. Continue with:")
        out.say(f"  python {out.path(HERE / 'train.py')} --resume {out.path(outcome.run_dir)}", whole=True)
