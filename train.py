"""Train a fully connected network on MNIST: eight questions (or flags), a
progress bar per epoch, and a run folder with the weights, history and plots.

    python train.py                      # asks the eight questions
    python train.py --layers 2 --normalization normal --init xavier \\
        --activation relu --l1 n --decay n --optimizer momentum --epochs 10
    python train.py --resume saved_files/RUN --epochs 20   # continue a run
"""
from __future__ import annotations

from kit.startup import quiet_ctrl_c

quiet_ctrl_c(__name__)  # first: a Ctrl-C while NumPy imports exits quietly with 130

import argparse
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.cli import HelpFormatter, OneLineParser, Output, run_script
from kit.terminal import TerminalReporter, closing_lines

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "saved_files"
PROG = "train.py"


# ---- the eight questions ------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """An answer as the questions judge it: without a byte-order mark or surrounding
    spaces, compatibility characters folded (so a full-width '２' is '2' everywhere)."""
    return unicodedata.normalize("NFKC", text.replace("\ufeff", "")).strip()


def _choice(table: dict[str, object], shown: str) -> Callable[[str], object]:
    """A parser accepting the keys of table, case-insensitively."""
    def parse(text: str):
        key = normalize_answer(text).lower()
        if key in table:
            return table[key]
        raise ValueError(f"{normalize_answer(text)!r} is not one of {shown}" if key
                         else f"an answer is needed: {shown}")
    return parse


def parse_epochs(text: str) -> int:
    from kit.config import MAX_EPOCHS
    t = normalize_answer(text)
    if not t:
        raise ValueError(f"an answer is needed: a whole number of epochs from 1 to {MAX_EPOCHS}")
    if not t.isascii() or not t.lstrip("+-").isdigit():
        raise ValueError(f"{t!r} is not a whole number of epochs (for example 10)")
    value = int(t)
    if value < 1:
        raise ValueError(f"{value} epochs: the number of epochs must be at least 1")
    if value > MAX_EPOCHS:
        raise ValueError(f"{value} epochs is too many: at most {MAX_EPOCHS}")
    return value


YES_NO = {"y": True, "yes": True, "n": False, "no": False}


@dataclass(frozen=True)
class Question:
    key: str          # the RunConfig field it answers
    prompt: str
    parse: Callable[[str], object]

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


QUESTIONS = [
    Question("layers", "Number of hidden layers in the model [0 or 1 or 2]",
             _choice({"0": 0, "zero": 0, "1": 1, "one": 1, "2": 2, "two": 2}, "0, 1 or 2")),
    Question("normalization", "Normalization for the data [Simple or Normal]",
             _choice({"simple": "simple", "normal": "normal"}, "Simple or Normal")),
    Question("init", "Weights initialization [Gauss or Xavier]",
             _choice({"gauss": "gauss", "gaussian": "gauss", "xavier": "xavier"}, "Gauss or Xavier")),
    Question("activation", "Activation for the hidden layers [Relu or Sigmoid]",
             _choice({"relu": "relu", "sigmoid": "sigmoid"}, "Relu or Sigmoid")),
    Question("l1", "L1 regularization [y / n]", _choice(YES_NO, "y or n")),
    Question("decay", "Decaying learning rate [y / n]", _choice(YES_NO, "y or n")),
    Question("optimizer", "Optimizer [SGD or Momentum]",
             _choice({"sgd": "sgd", "momentum": "momentum"}, "SGD or Momentum")),
    Question("epochs", "Number of epochs", parse_epochs),
]


def parse_optimizer_flag(text: str) -> str:
    """--optimizer takes every optimizer RunConfig allows (Adam too), not only the question's two."""
    from kit.config import RunConfig  # imported here: train.py's start stays light
    names = RunConfig.option("optimizer").choices
    return _choice({n: n for n in names}, ", ".join(names[:-1]) + " or " + names[-1])(text)


# Flags accept what the questions accept, and every optimizer.
FLAG_PARSERS = {q.key: q.parse for q in QUESTIONS}
FLAG_PARSERS["optimizer"] = parse_optimizer_flag


class InputEnded(Exception):
    """Standard input ended (or is closed) before a question was answered."""

    def __init__(self, question: Question, number: int):
        super().__init__(f"input ended before question {number} ({question.prompt.split(' [')[0]}) "
                         f"was answered; answer it, or pass {question.flag}")


def _read_line(prompt: str) -> str:
    if sys.stdin is None:  # started with standard input closed
        raise EOFError
    try:
        return input(prompt)
    except RuntimeError:  # input(): lost sys.stdin
        raise EOFError from None
    except (OSError, ValueError):  # a closed or unreadable stdin
        raise EOFError from None


def ask_questions(answers: dict, out: Output, read: Callable[[str], str] = _read_line,
                  echo: bool = False) -> dict:
    """Ask each question not already answered (by a flag), re-asking after an invalid answer."""
    for number, q in enumerate(QUESTIONS, start=1):
        if answers.get(q.key) is not None:
            continue
        if q.key == "activation" and answers["layers"] == 0:
            out.say("(Activation skipped: a network with 0 hidden layers has no hidden activation.)")
            continue
        while True:
            try:
                text = read(f"{number}. {q.prompt}: ")
            except EOFError:
                out.say("")   # the prompt's line ends: the error goes on a line of its own
                raise InputEnded(q, number) from None
            if echo:  # answers from a pipe: show them, so a log reads like a session
                out.say(normalize_answer(text))
            try:
                answers[q.key] = q.parse(text)
                break
            except ValueError as err:
                out.say(f"   Invalid answer: {err}. Please try again.")
    return answers


# ---- flags ------------------------------------------------------------------------------

def _flag_type(key: str, option):
    """An argparse type for a RunConfig field: the question's parser for the eight answers,
    else the option's own range check."""
    def convert(text: str):
        if key in FLAG_PARSERS:
            try:
                return FLAG_PARSERS[key](text)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None
        t = normalize_answer(text)
        if option.choices:
            if t.lower() in option.choices:
                return t.lower()
            raise argparse.ArgumentTypeError(f"{t!r} is not one of {', '.join(option.choices)}")
        try:
            value = option.kind(t)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{t!r} is not a {'whole ' if option.kind is int else ''}number") from None
        problem = option.problem(key, value)
        if problem:
            raise argparse.ArgumentTypeError(f"{t} is out of range (must be {option.range_text()})")
        return value
    convert.__name__ = key
    return convert


def _folder(what: str):
    """An argparse type for a folder path that refuses an empty one: Path("") is ".",
    so `--output-dir ""` would otherwise mean the current folder, silently."""
    def convert(text: str) -> Path:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"is empty; give {what}")
        return Path(text)
    convert.__name__ = "folder"
    return convert


def build_parser() -> argparse.ArgumentParser:
    from kit.config import RunConfig
    p = OneLineParser(
        prog=PROG,
        description="Train a fully connected network on MNIST. Questions not answered by a "
                    "flag are asked interactively (or read line by line from a pipe).",
        formatter_class=HelpFormatter)
    groups = {
        "question": p.add_argument_group("the eight questions"),
        "hyper": p.add_argument_group("hyperparameters (defaults are the original project's)"),
        "beyond": p.add_argument_group("beyond the original's choices"),
        "stop": p.add_argument_group("how long to train"),
        "dev": p.add_argument_group("developer options"),
        "run": p.add_argument_group("run"),
    }
    where = {"l2": "beyond", "dropout": "beyond", "augment": "beyond", "patience": "stop",
             "limit": "dev", "seed": "run"}
    for name, option, default in RunConfig.options():
        group = groups["question" if name in RunConfig.QUESTIONS else where.get(name, "hyper")]
        text = option.help
        if default is not None and name not in RunConfig.QUESTIONS:
            text += f" (default: {default:g})" if isinstance(default, float) else f" (default: {default})"
        # default None everywhere: a flag given by the user is told apart from a default
        # (--resume refuses configuration flags).
        group.add_argument(option.flag, type=_flag_type(name, option), default=None,
                           metavar=option.metavar, help=text, dest=name)
    r = groups["run"]
    r.add_argument("--resume", type=_folder("a run folder, for example saved_files/RUN"), default=None, metavar="RUN",
                   help="continue the run in folder RUN up to --epochs TOTAL (default: its own "
                        "epochs), in its own folder; its configuration comes from the folder")
    r.add_argument("--data-dir", type=_folder("the folder that holds the MNIST files"), default=None, metavar="DIR",
                   help="folder with the four MNIST files, downloaded into it when missing "
                        "(default: $MNIST_DIR, then data/ beside train.py)")
    r.add_argument("--output-dir", type=_folder("a folder, for example saved_files"), default=None, metavar="DIR",
                   help="where run folders are created (default: saved_files/ beside train.py)")
    r.add_argument("--name", default=None, metavar="NAME",
                   help="run folder name (default: date-time and a configuration summary); "
                        "an existing name is refused")
    r.add_argument("--no-show", action="store_true",
                   help="never open a window; the graphs are saved as PNG files either way")
    add_before_run_flags(p)
    return p


# ---- before a run: --sanity and --find-lr (the work is in kit/checks.py, kit/lr_finder.py) --

def add_before_run_flags(p: argparse.ArgumentParser) -> None:
    from kit.config import RunConfig
    from kit.lr_finder import LR_MAX, LR_MIN
    g = p.add_argument_group("before a run (no run folder is written)")
    g.add_argument("--sanity", action="store_true",
                   help="check the configuration in seconds: the loss at initialization against "
                        "ln 10, the gradient against a numerical one, overfitting 20 images; "
                        "exit 0 when all pass, else 1")
    g.add_argument("--find-lr", action="store_true",
                   help="learning-rate range test: train one epoch at most while the learning "
                        "rate grows from --lr-min to --lr-max, write lr_finder.png into "
                        "--output-dir and suggest a --learning-rate")
    positive = _flag_type("learning_rate", RunConfig.option("learning_rate"))
    g.add_argument("--lr-min", type=positive, default=None, metavar="LR",
                   help=f"with --find-lr, the first learning rate (default: {LR_MIN:g})")
    g.add_argument("--lr-max", type=positive, default=None, metavar="LR",
                   help=f"with --find-lr, the last learning rate (default: {LR_MAX:g})")


def before_run_problem(args) -> str | None:
    """What is wrong with how --sanity, --find-lr and their flags were combined, or None."""
    mode = "--sanity" if args.sanity else "--find-lr"
    if args.sanity and args.find_lr:
        return "--sanity and --find-lr are separate: give one of them"
    if args.resume is not None and (args.sanity or args.find_lr):
        return f"{mode} is for a new configuration; it does not go with --resume"
    for flag, value in (("--lr-min", args.lr_min), ("--lr-max", args.lr_max)):
        if value is not None and not args.find_lr:
            return f"{flag} goes with --find-lr"
    if args.name is not None and (args.sanity or args.find_lr):
        return f"--name names a run folder; {mode} writes none"
    from kit.lr_finder import LR_MAX, LR_MIN
    low, high = args.lr_min or LR_MIN, args.lr_max or LR_MAX
    if args.find_lr and not low < high:
        return f"--lr-min {low:g} must be smaller than --lr-max {high:g}"
    return None


def before_run(args, config, data_dir: Path, output_dir: Path, out: Output) -> int:
    """--sanity or --find-lr on the configuration as answered."""
    import mnist_loader
    from kit.config import RunError
    try:
        if args.sanity:
            from kit.checks import sanity_command
            return sanity_command(config, data_dir, out)
        from kit.lr_finder import LR_MAX, LR_MIN, find_lr_command
        extra = ["--seed", str(config.seed)] if args.seed is not None else []
        extra += [x for flag, value in (("--data-dir", args.data_dir), ("--output-dir", args.output_dir))
                  if value is not None for x in (flag, str(value))]
        return find_lr_command(config, data_dir, output_dir, out, lr_min=args.lr_min or LR_MIN,
                               lr_max=args.lr_max or LR_MAX, extra=extra, show=not args.no_show)
    except (mnist_loader.MnistError, RunError) as err:
        return out.fail(str(err))


# ---- the run -------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    from kit.signals import OutputLost
    out = Output(PROG)
    try:
        return run(argv, out)
    except KeyboardInterrupt:  # while modules import, or between the steps that handle it
        out.clear_line()
        out.error("cancelled; nothing was saved")
        return 130
    except OutputLost as err:  # before any run folder existed
        return out.output_lost(err, "nothing was saved")


def run(argv: list[str] | None, out: Output) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import mnist_loader
    from kit import lifecycle
    from kit.config import RunConfig, RunError, RunExists
    from kit.record import check_run_name, prepare_output_dir
    from kit.signals import Interrupted, OutputLost

    output_dir = args.output_dir or DEFAULT_OUTPUT
    problem = before_run_problem(args)
    if problem:
        parser.error(problem)
    if args.resume is not None:
        return resume(args, out)

    answers = {q.key: getattr(args, q.key) for q in QUESTIONS}
    if answers["layers"] == 0 and answers["activation"] is not None:
        out.say(out.wrap(f"Note: --activation {answers['activation']} has no effect with 0 hidden "
                         "layers; it is ignored and recorded as null."))
        answers["activation"] = None
    batch = args.batch_size or RunConfig.default("batch_size")
    if args.limit is not None and args.limit < batch:
        return out.fail(f"--limit {args.limit} is smaller than one batch "
                        f"(--batch-size {batch})", 2)
    if batch > mnist_loader.TRAIN_SIZE:
        return out.fail(f"--batch-size {batch} is larger than the "
                        f"{mnist_loader.TRAIN_SIZE:,} training images", 2)
    if args.name is not None:
        problem = check_run_name(args.name)
        if problem:
            return out.fail(problem, 2)
        # Refuse an existing name before asking anything.
        if (output_dir / args.name).exists():
            return out.fail(f"a run named {args.name!r} already exists in {out.path(output_dir)}; "
                            "choose another --name (earlier runs are never overwritten)", 2)
    if output_dir.exists() and not output_dir.is_dir():
        return out.fail(f"--output-dir {out.path(output_dir)} is a file, not a folder; choose another path")
    # The data comes before the questions: offline, say so before anything is asked.
    try:
        data_dir = mnist_loader.ensure_data(args.data_dir)
    except mnist_loader.MnistError as err:
        return out.fail(str(err))

    interactive = sys.stdin is not None and sys.stdin.isatty()
    if sys.stdin is not None and hasattr(sys.stdin, "reconfigure"):
        # Bytes that are not text become an invalid answer, not a crash.
        sys.stdin.reconfigure(errors="replace")
    # A question left to ask (the activation is not asked of a network with 0 hidden layers).
    asking = any(v is None and not (k == "activation" and answers["layers"] == 0)
                 for k, v in answers.items())
    if interactive and asking:
        out.say("Configure the network (Ctrl-C quits; python train.py --help lists the flags).")
    try:
        ask_questions(answers, out, echo=not interactive)
    except InputEnded as err:
        return out.fail(str(err), 2)
    except KeyboardInterrupt:
        out.say("")
        out.error("cancelled; nothing was saved")
        return 130

    import secrets
    hyper = {name: getattr(args, name) for name, _, _ in RunConfig.options()
             if name not in RunConfig.QUESTIONS and getattr(args, name) is not None}
    hyper.setdefault("seed", secrets.randbelow(2**31))
    try:
        config = RunConfig.create(**answers, **hyper)
    except ValueError as err:
        return out.fail(str(err), 2)
    if args.sanity or args.find_lr:
        if asking:
            out.say("")
        return before_run(args, config, data_dir, output_dir, out)
    try:
        prepare_output_dir(output_dir)
    except RunError as err:
        return out.fail(str(err))
    # A blank line after the questions; with every answer a flag, the output starts here.
    out.say(("\n" if asking else "") + f"Configuration: {config.summary()}  seed {config.seed}")
    reporter = TerminalReporter(out, config.summary(), show=not args.no_show)
    try:
        with out.no_control_echo():
            outcome = lifecycle.train_run(config, output_dir, args.name, data_dir=data_dir,
                                        reporter=reporter, progress=out.progress_ok())
    except mnist_loader.MnistError as err:
        return out.fail(str(err))
    except RunExists as err:  # another copy took the name while this one loaded the data
        return out.fail(str(err), 2)
    except RunError as err:
        return out.fail(str(err))
    except OutputLost as err:  # before the run folder existed (while the data loaded)
        return out.output_lost(err, "nothing was saved")
    except Interrupted as err:  # before the run folder existed (while the data loaded)
        out.clear_line()
        out.error(f"cancelled ({err}); nothing was saved")
        return err.exit_code
    return finish(outcome, args, out, reporter.live)


def resume(args, out: Output) -> int:
    import mnist_loader
    from kit import lifecycle
    from kit.config import RunConfig, RunError
    from kit.record import Run
    from kit.signals import Interrupted, OutputLost
    given = [RunConfig.option(name).flag for name, _, _ in RunConfig.options()
             if getattr(args, name) is not None and name not in RunConfig.RESUME_OVERRIDES]
    given += [flag for flag, value in (("--name", args.name), ("--output-dir", args.output_dir))
              if value is not None]
    if given:
        return out.fail(f"--resume takes the configuration from the run folder; drop "
                        f"{', '.join(given)} (only --epochs, --patience, --data-dir and --no-show "
                        "go with --resume)", 2)
    if not args.resume.exists() and not args.resume.is_absolute() \
            and (DEFAULT_OUTPUT / args.resume).is_dir():
        # `--resume first` for the run saved_files/first: say where it is, guess nothing.
        return out.fail(f"{args.resume}: no such run folder here; did you mean "
                        f"--resume {out.path(DEFAULT_OUTPUT / args.resume)}?", 2)
    try:
        run = Run.load(args.resume)
        lifecycle.check_resumable(run, args.epochs)
    except RunError as err:
        return out.fail(str(err), 2)
    out.say(out.wrap(f"Configuration: {run.config.summary()}  seed {run.config.seed}; "
                     f"{run.status_line()}", indent="  "))
    try:
        with out.no_control_echo():
            outcome = lifecycle.resume_run(args.resume, args.epochs, args.patience,
                                         data_dir=args.data_dir,
                                         reporter=(reporter := TerminalReporter(
                                             out, run.config.summary(), show=not args.no_show)),
                                         progress=out.progress_ok())
    except mnist_loader.MnistError as err:
        return out.fail(str(err))
    except RunError as err:
        return out.fail(str(err), 2)
    except OutputLost as err:
        return out.output_lost(err, "the run is unchanged")
    except Interrupted as err:
        out.clear_line()
        out.error(f"cancelled ({err}); the run is unchanged")
        return err.exit_code
    return finish(outcome, args, out, reporter.live)


def finish(outcome, args, out: Output, live=None) -> int:
    """The closing lines, and the graph windows of a run that ended well (live: the
    window that grew during training, kept open at the end)."""
    from kit.signals import OutputLost
    try:
        if outcome.status == "diverged":
            out.error(f"stopped: {outcome.reason}; keeping the {len(outcome.rows)} epoch(s) before "
                      "it. Try a smaller --learning-rate (or --decay-factor).")
        elif outcome.status == "failed":
            n = len(outcome.rows)
            out.error(f"{outcome.reason}; the {n} committed epoch{'s are' if n != 1 else ' is'} "
                      f"kept, and once that is fixed: python train.py --resume {out.path(outcome.run_dir)}")
            return outcome.exit_code
        if outcome.status == "interrupted" and out.lost:
            # Standard output failed mid-run: trainer stopped the run as if interrupted.
            if "Broken pipe" not in outcome.reason:
                out.error(f"{outcome.reason}; stopped, keeping "
                          f"the {len(outcome.rows)} committed epoch(s) in "
                          f"{out.path(outcome.run_dir)}")
            return outcome.exit_code
        out.clear_line()
        closing_lines(outcome, out)
        if outcome.exit_code == 0 and outcome.rows and not args.no_show:
            if live is not None and not live.closed:
                keep_live_open(live, outcome.run_dir, out)
            else:
                show_graphs(outcome.run_dir, out)
    except OutputLost as err:
        return err.exit_code
    finally:
        if live is not None:
            live.close()
    return outcome.exit_code


def keep_live_open(live, run_dir: Path, out: Output) -> None:
    """Leave the graphs that grew during training open, with features.png beside them,
    until their windows are closed (Ctrl-C closes them quietly)."""
    features = [run_dir / "features.png"] if (run_dir / "features.png").exists() else []
    if not live.keep_open(features, opened=lambda: out.say(
            "Showing the graphs; close their windows (or press Ctrl-C) to finish.")):
        out.clear_line()
        out.say("Closed the graph windows.")


def show_graphs(run_dir: Path, out: Output) -> None:
    """Open the run's graphs in windows when one can open; else say where they are and why."""
    from kit.plots import show_images
    from kit.record import GRAPHS
    names = [n for n in GRAPHS if (run_dir / n).exists()]
    where = f"The graphs are in {out.path(run_dir)} ({', '.join(names)})."
    try:
        problem = show_images([run_dir / n for n in names], opened=lambda: out.say(
            "Showing the graphs; close their windows (or press Ctrl-C) to finish."))
    except KeyboardInterrupt:  # the run is complete and saved: just close the windows
        out.clear_line()
        out.say("Closed the graph windows.")
        return
    if problem:
        out.say(out.wrap(f"No window: {problem}."))
        out.say(out.wrap(where))


if __name__ == "__main__":
    run_script(main)
