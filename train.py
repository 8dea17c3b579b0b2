"""Train a fully connected network on MNIST: eight questions (or flags), a
progress bar per epoch, and a run folder with the weights, history and plots.

    python train.py                      # asks the eight questions
    python train.py --layers 2 --normalization normal --init xavier \\
        --activation relu --l1 n --decay n --optimizer momentum --epochs 10
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import platform
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import runs
from cli import HelpFormatter, OneLineParser

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "saved_files"
MAX_EPOCHS = 10_000
PLOT_EVERY = 10.0  # seconds between redraws of the graphs during training


# ---- the eight questions ------------------------------------------------------------

def _choice(table: dict[str, object], shown: str) -> Callable[[str], object]:
    """A parser accepting the keys of table, case-insensitively."""
    def parse(text: str):
        key = text.strip().lower()
        if key in table:
            return table[key]
        raise ValueError(f"{text.strip()!r} is not one of {shown}" if text.strip()
                         else f"an answer is needed: {shown}")
    return parse


def parse_epochs(text: str) -> int:
    t = text.strip()
    if not t:
        raise ValueError("an answer is needed: a whole number of epochs from 1 to 10000")
    try:
        value = int(t)
    except ValueError:
        raise ValueError(f"{t!r} is not a whole number of epochs (for example 10)") from None
    if value < 1:
        raise ValueError(f"{value} epochs: the number of epochs must be at least 1")
    if value > MAX_EPOCHS:
        raise ValueError(f"{value} epochs is too many: at most {MAX_EPOCHS}")
    return value


YES_NO = {"y": True, "yes": True, "n": False, "no": False}


@dataclass(frozen=True)
class Question:
    key: str          # the RunConfig field it answers
    flag: str
    prompt: str
    parse: Callable[[str], object]


QUESTIONS = [
    Question("layers", "--layers", "Number of hidden layers in the model [0 or 1 or 2]",
             _choice({"0": 0, "zero": 0, "1": 1, "one": 1, "2": 2, "two": 2}, "0, 1 or 2")),
    Question("normalization", "--normalization", "Normalization for the data [Simple or Normal]",
             _choice({"simple": "simple", "normal": "normal"}, "Simple or Normal")),
    Question("init", "--init", "Weights initialization [Gauss or Xavier]",
             _choice({"gauss": "gauss", "gaussian": "gauss", "xavier": "xavier"}, "Gauss or Xavier")),
    Question("activation", "--activation", "Activation for the hidden layers [Relu or Sigmoid]",
             _choice({"relu": "relu", "sigmoid": "sigmoid"}, "Relu or Sigmoid")),
    Question("l1", "--l1", "L1 regularization [y / n]", _choice(YES_NO, "y or n")),
    Question("decay", "--decay", "Decaying learning rate [y / n]", _choice(YES_NO, "y or n")),
    Question("optimizer", "--optimizer", "Optimizer [SGD or Momentum]",
             _choice({"sgd": "sgd", "momentum": "momentum"}, "SGD or Momentum")),
    Question("epochs", "--epochs", "Number of epochs", parse_epochs),
]


class InputEnded(Exception):
    """Standard input ended before a question was answered."""

    def __init__(self, question: Question, number: int):
        super().__init__(f"input ended before question {number} ({question.prompt.split(' [')[0]}) "
                         f"was answered; answer it, or pass {question.flag}")


def ask_questions(answers: dict, read: Callable[[str], str] = input, echo: bool = False) -> dict:
    """Ask each question not already answered (by a flag), re-asking after an invalid answer."""
    for number, q in enumerate(QUESTIONS, start=1):
        if answers.get(q.key) is not None:
            continue
        if q.key == "activation" and answers["layers"] == 0:
            print("(Activation skipped: a network with 0 hidden layers has no hidden activation.)")
            continue
        while True:
            try:
                text = read(f"{number}. {q.prompt}: ")
            except EOFError:
                raise InputEnded(q, number) from None
            if echo:  # answers from a pipe: show them, so a log reads like a session
                print(text.strip())
            try:
                answers[q.key] = q.parse(text)
                break
            except ValueError as err:
                print(f"   Invalid answer: {err}. Please try again.")
    return answers


# ---- flags ------------------------------------------------------------------------------

def _flag_type(q: Question):
    def convert(text: str):
        try:
            return q.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = q.key
    return convert


def _number(kind, low: float, low_ok: bool = False, high: float | None = None, high_ok: bool = False):
    """An argparse type: a finite int or float in (low or [low, high) or high])."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        too_low = value < low if low_ok else value <= low
        too_high = high is not None and (value > high if high_ok else value >= high)
        if not math.isfinite(value) or too_low or too_high:
            bound = (">= " if low_ok else "> ") + f"{low:g}"
            if high is not None:
                bound += (" and <= " if high_ok else " and < ") + f"{high:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range (must be {bound})")
        return value
    convert.__name__ = kind.__name__
    return convert


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="train.py",
        description="Train a fully connected network on MNIST. Questions not answered by a "
                    "flag are asked interactively (or read line by line from a pipe).",
        formatter_class=HelpFormatter)
    q = p.add_argument_group("the eight questions")
    helps = {
        "layers": "hidden layers: 0/zero, 1/one, 2/two",
        "normalization": "simple (pixels/255) or normal ((pixels-mean)/std, statistics of the training split)",
        "init": "weight initialization: gauss (0.01*N(0,1)) or xavier (N(0,1)*sqrt(1/fan_in))",
        "activation": "hidden-layer activation: relu or sigmoid (ignored with 0 hidden layers)",
        "l1": "L1 regularization of the weights: y/yes or n/no",
        "decay": "decay the learning rate each epoch: y/yes or n/no",
        "optimizer": "sgd or momentum",
        "epochs": f"number of epochs, 1 to {MAX_EPOCHS}",
    }
    metavars = {"layers": "{0,1,2}", "normalization": "{simple,normal}", "init": "{gauss,xavier}",
                "activation": "{relu,sigmoid}", "l1": "{y,n}", "decay": "{y,n}",
                "optimizer": "{sgd,momentum}", "epochs": "N"}
    for question in QUESTIONS:
        q.add_argument(question.flag, type=_flag_type(question), default=None,
                       metavar=metavars[question.key], help=helps[question.key])
    h = p.add_argument_group("hyperparameters (defaults are the original project's)")
    h.add_argument("--batch-size", type=_number(int, 1, low_ok=True), default=4, help="examples per step")
    h.add_argument("--learning-rate", type=_number(float, 0), default=0.001, help="learning rate of epoch 1")
    h.add_argument("--decay-factor", type=_number(float, 0), default=0.98,
                   help="with --decay y, the learning rate is multiplied by this after each epoch")
    h.add_argument("--momentum", type=_number(float, 0, low_ok=True, high=1), default=0.9,
                   help="momentum coefficient of the momentum optimizer")
    h.add_argument("--l1-lambda", type=_number(float, 0, low_ok=True), default=1e-5,
                   help="with --l1 y, the loss gains lambda * sum|W|")
    h.add_argument("--hidden-size", type=_number(int, 1, low_ok=True, high=runs.MAX_HIDDEN, high_ok=True), default=64,
                   help="units in each hidden layer")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=_number(int, 0, low_ok=True), default=None,
                   help="random seed of the split, the initialization and the shuffles "
                        "(default: drawn at random and recorded in config.json)")
    r.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="folder with the four MNIST files, downloaded into it when missing "
                        "(default: $MNIST_DIR, then data/ beside train.py, where missing files "
                        "are downloaded)")
    r.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                   help="where run folders are created (default: saved_files/ beside train.py)")
    r.add_argument("--name", default=None,
                   help="run folder name (default: date-time and a configuration summary); "
                        "an existing name is refused")
    r.add_argument("--no-show", action="store_true",
                   help="never open a window; the graphs are saved as PNG files either way")
    d = p.add_argument_group("developer options")
    d.add_argument("--limit", type=_number(int, 1, low_ok=True), default=None, metavar="N",
                   help="train on the first N shuffled training images (and at most N validation "
                        "images) for quick tests; the 6,000 test images are always all used")
    return p


# ---- the run -------------------------------------------------------------------------

def fail(message: str, code: int = 1) -> int:
    print(f"train.py: {message}", file=sys.stderr)
    return code


def epoch_line(rec, epochs: int) -> str:
    width = len(str(epochs))
    return (f"Epoch {rec.epoch:>{width}}/{epochs}  lr {rec.learning_rate:.6f}  "
            f"train {100 * rec.train_accuracy:6.2f}% ({rec.train_loss:.4f})  "
            f"val {100 * rec.val_accuracy:6.2f}% ({rec.val_loss:.4f})  "
            f"test {100 * rec.test_accuracy:6.2f}% ({rec.test_loss:.4f})  {rec.seconds:.1f}s")


def package_versions() -> dict:
    import matplotlib
    import numpy
    import tqdm
    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "matplotlib": matplotlib.__version__, "tqdm": tqdm.__version__}


@contextlib.contextmanager
def deferred_interrupt():
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:  # between the steps that handle it themselves
        print("\nCancelled.", file=sys.stderr)
        return 130


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    answers = {q.key: getattr(args, q.key) for q in QUESTIONS}
    if answers["layers"] == 0 and answers["activation"] is not None:
        print(f"Note: --activation {answers['activation']} has no effect with 0 hidden layers; "
              "it is ignored and recorded as null.")
        answers["activation"] = None
    if args.limit is not None and args.limit < args.batch_size:
        return fail(f"--limit {args.limit} is smaller than one batch (--batch-size {args.batch_size})", 2)
    if args.name is not None:
        problem = runs.check_run_name(args.name)
        if problem:
            return fail(problem, 2)
        # Refuse an existing name before asking anything.
        if (args.output_dir / args.name).exists():
            return fail(f"a run named {args.name!r} already exists in {args.output_dir}; choose "
                        "another --name (earlier runs are never overwritten)", 2)

    interactive = sys.stdin is not None and sys.stdin.isatty()
    if sys.stdin is not None and hasattr(sys.stdin, "reconfigure"):
        # Bytes that are not text become an invalid answer, not a crash.
        sys.stdin.reconfigure(errors="replace")
    if interactive and any(v is None for v in answers.values()):
        print("Configure the network (Ctrl-C quits; python train.py --help lists the flags).")
    try:
        ask_questions(answers, echo=not interactive)
    except InputEnded as err:
        return fail(str(err), 2)
    except KeyboardInterrupt:
        print("\nCancelled; nothing was saved.", file=sys.stderr)
        return 130
    if answers["layers"] == 0:
        answers["activation"] = None

    # matplotlib, the slow import, waits until the questions are answered, so they appear at once.
    import numpy as np
    import mnist_loader
    from optim import make_optimizer
    from plots import plot_history, show_images, display_available
    from training import train, TrainingDiverged

    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    config = runs.RunConfig(**answers, seed=seed, batch_size=args.batch_size,
                            learning_rate=args.learning_rate, decay_factor=args.decay_factor,
                            momentum=args.momentum, l1_lambda=args.l1_lambda,
                            hidden_size=args.hidden_size, limit=args.limit)
    started = dt.datetime.now().astimezone()
    name = args.name or f"{started:%Y-%m-%d_%H-%M-%S}_{config.summary()}"
    output_dir = args.output_dir
    try:
        runs.prepare_output_dir(output_dir)
    except runs.RunError as err:
        return fail(str(err))

    print(f"\nConfiguration: {config.summary()}  seed {seed}")
    rng = np.random.default_rng(seed)
    try:
        t0 = time.perf_counter()
        data = mnist_loader.load_data(config.normalization, rng, data_dir=args.data_dir,
                                      limit=config.limit)
        print(f"Data: {len(data.train.y):,} train / {len(data.val.y):,} validation / "
              f"{len(data.test.y):,} test images ({time.perf_counter() - t0:.1f}s)")
    except mnist_loader.MnistError as err:
        return fail(str(err))
    except KeyboardInterrupt:
        print("\nCancelled; nothing was saved.", file=sys.stderr)
        return 130
    if config.batch_size > len(data.train.y):
        return fail(f"--batch-size {config.batch_size} is larger than the "
                    f"{len(data.train.y):,} training images", 2)

    net = config.build_network(rng)
    try:
        run_dir = runs.create_run_dir(output_dir, name)
    except runs.RunError as err:
        return fail(str(err))
    record = {**config.to_json(), "norm_mean": data.mean, "norm_std": data.std,
              "status": "running", "started": started.isoformat(timespec="seconds"),
              "ended": None, "epochs_completed": 0, "final": None,
              "train_size": len(data.train.y), "val_size": len(data.val.y),
              "test_size": len(data.test.y), "versions": package_versions()}
    rows: list[dict] = []
    train_seconds = 0.0
    last_plot = -math.inf
    status, code = "completed", 0
    title = config.summary()
    try:
        runs.write_json(run_dir / "config.json", record)
        print(f"Run folder: {run_dir}\n")
        epochs = train(net, data, epochs=config.epochs, optimizer=make_optimizer(config.optimizer, config.momentum),
                       rng=rng, lr=config.learning_rate,
                       decay=config.decay_factor if config.decay else 1.0,
                       batch_size=config.batch_size, l1=config.l1_lambda if config.l1 else 0.0)
        try:
            for rec in epochs:
                # Ctrl-C waits until the epoch's files are all written, so the
                # weights and the history on disk always agree.
                with deferred_interrupt():
                    rows.append(rec.as_row())
                    net.save_csv(run_dir)
                    runs.write_history(run_dir / "history.csv", rows)
                    train_seconds += rec.seconds
                    record.update(epochs_completed=rec.epoch, final=rows[-1],
                                  train_seconds=round(train_seconds, 2))
                    runs.write_json(run_dir / "config.json", record)
                    # Drawing the three graphs takes 0.3 s, a third of an epoch:
                    # redraw at most every PLOT_EVERY seconds; the end redraws anyway.
                    if time.monotonic() - last_plot >= PLOT_EVERY:
                        plot_history(rows, run_dir, title)
                        last_plot = time.monotonic()
                    print(epoch_line(rec, config.epochs), flush=True)
        except KeyboardInterrupt:
            status, code = "interrupted", 130
            print(f"\nInterrupted: keeping the {len(rows)} completed epoch(s).")
        except TrainingDiverged as err:
            status, code = "diverged", 1
            print(f"\nStopped: {err}; keeping the {len(rows)} epoch(s) before it. "
                  "Try a smaller --learning-rate (or --decay-factor).", file=sys.stderr)
        record.update(status=status, ended=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
        runs.write_json(run_dir / "config.json", record)
        if rows:
            plot_history(rows, run_dir, title)
    except OSError as err:
        where = err.filename or run_dir
        with contextlib.suppress(OSError):  # record the failure if the folder still takes it
            record.update(status="failed", ended=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
            runs.write_json(run_dir / "config.json", record)
        return fail(f"cannot write {where} ({err.strerror or err}); the run stopped, "
                    f"check the disk and the permissions of {run_dir}")

    if not rows:
        print(f"No epoch was completed; {run_dir} holds only config.json.")
        return code
    final = rows[-1]
    print(f"\nRun folder: {run_dir}")
    print(f"Final test accuracy: {100 * final['test_accuracy']:.2f} % after {len(rows)} epoch(s) "
          f"({status})")
    pngs = [run_dir / n for n in ("accuracy.png", "loss.png", "learning_rate.png")]
    if code == 0 and not args.no_show:
        if display_available():
            print("Showing the graphs; close their windows to finish.")
            show_images(pngs)
        else:
            print(f"No display: the graphs are in the run folder ({', '.join(p.name for p in pngs)}).")
    return code


if __name__ == "__main__":
    sys.exit(main())
