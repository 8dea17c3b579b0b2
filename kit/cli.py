"""Command-line pieces shared by the scripts: argparse that reports a bad flag on one line,
help that shows each default once, and terminal output that survives a hostile world
(a reader that goes away, a full device, a closed stream, an ASCII-only locale)."""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from kit import signals
from kit.signals import Interrupted, OutputLost


class OneLineParser(argparse.ArgumentParser):
    """argparse, with errors on one line (no usage dump) and exit code 2, and a flag given
    `=--` refused: argparse drops the '--' and stores an empty list where one value
    belongs, which would fail later with a traceback. Flags are never abbreviated: `--lr`
    is not a shorter --learning-rate (nor ambiguous between --lr-min and --lr-max), and a
    flag added later cannot change what an older command means."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        text = f"{self.prog}: error: {message} (see python {self.prog} --help)"
        self.exit(2, Output.fit(text, Output.columns(sys.stderr), "  ") + "\n")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            if action.option_strings and action.nargs is None and isinstance(value, list) \
                    and value is not action.default:
                self.error(f"{'/'.join(action.option_strings)} needs a value")
        return parsed

    def _print_message(self, message, file=None):
        # Help and errors to a stream that is closed or cannot encode them: degrade, never crash.
        file = file or sys.stdout
        if message and file is not None:
            try:
                file.write(message)
            except (OSError, UnicodeError):
                pass


class HelpFormatter(argparse.HelpFormatter):
    """Shows '(default: X)' where there is a default and the help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Output:
    """A script's messages: results on stdout, errors on stderr, progress bars only where
    stderr exists. A stdout that cannot be written raises OutputLost, once."""

    def __init__(self, prog: str):
        self.prog = prog
        self.lost = False

    def say(self, text: str = "", whole: bool = False) -> None:
        """Print text on stdout; on a terminal (or with COLUMNS set) a line too long for
        it is wrapped between words, unless whole (a command to copy, a table laid out)."""
        if self.lost or sys.stdout is None:
            return
        if not whole:
            text = self.fit(text, self.columns(sys.stdout))
        try:
            print(text, flush=True)
        except OSError as err:
            self.lost = True
            raise OutputLost(err) from None

    def error(self, message: str) -> None:
        """One line on stderr (or stdout when stderr is closed), never raising."""
        for stream in (sys.stderr, None if self.lost else sys.stdout):
            if stream is None:
                continue
            try:
                print(self.fit(f"{self.prog}: {message}", self.columns(stream), "  "),
                      file=stream, flush=True)
                return
            except (OSError, ValueError):
                continue

    def output_lost(self, err: OutputLost, consequence: str = "") -> int:
        """Standard output failed: silent when its reader went away (`| head` wanted no
        more), else one line on stderr, for a device that failed is worth knowing.
        Returns the exit code."""
        if not err.reader_gone:
            self.error(f"cannot write to standard output ({err.error.strerror or err.error}); "
                       "stopped" + (f", {consequence}" if consequence else ""))
        return err.exit_code

    def fail(self, message: str, code: int = 1) -> int:
        self.error(message)
        return code

    def width(self) -> int:
        """The terminal's width (120 when the output is not a terminal)."""
        return shutil.get_terminal_size((120, 24)).columns

    @staticmethod
    def columns(stream) -> int | None:
        """The width lines on stream must fit: COLUMNS when set, else the terminal's when
        stream is one; None for a pipe or a file (lines stay whole, for grep and logs)."""
        if os.environ.get("COLUMNS", "").strip().isdigit():
            return shutil.get_terminal_size().columns
        try:
            if stream is not None and stream.isatty():
                # A terminal that reports no size (a fresh pty: 0 columns) is not measured.
                return os.get_terminal_size(stream.fileno()).columns or None
        except (OSError, ValueError, AttributeError):
            pass
        return None

    @staticmethod
    def fit(text: str, columns: int | None, indent: str | None = None) -> str:
        """Each line of text longer than columns - 1 wrapped between words (never inside
        a path or a flag), its continuation indented as the line is, plus indent (default
        two spaces)."""
        if columns is None or all(len(line) < columns for line in text.split("\n")):
            return text
        lines = []
        for line in text.split("\n"):
            if len(line) < columns:
                lines.append(line)
                continue
            lead = line[:len(line) - len(line.lstrip())]
            lines.append(textwrap.fill(line, width=max(20, columns - 1), initial_indent="",
                                       subsequent_indent=lead + ("  " if indent is None else indent),
                                       break_on_hyphens=False, break_long_words=False))
        return "\n".join(lines)

    def wrap(self, text: str, indent: str = "") -> str:
        # Paths and flags hold hyphens: break between words only, never inside a path.
        return textwrap.fill(text, width=max(40, self.width() - 1), subsequent_indent=indent,
                             break_on_hyphens=False, break_long_words=False)

    def progress_ok(self) -> bool:
        """Whether a progress bar can be drawn (stderr exists and is open)."""
        try:
            return sys.stderr is not None and not sys.stderr.closed
        except (AttributeError, ValueError):
            return False

    def clear_line(self) -> None:
        """Clear a progress bar left on the terminal's current line."""
        try:
            if sys.stderr is not None and sys.stderr.isatty():
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
        except (OSError, ValueError):
            pass

    @contextlib.contextmanager
    def no_control_echo(self) -> Iterator[None]:
        """Within the block, a terminal does not echo control keys (^C) where the cursor is.

        A Ctrl-C during an epoch echoes ^C after the progress bar, which fills the line, so
        the C wraps to a line of its own; clearing the bar's line then leaves '^' frozen on
        it. Nothing changes when no stream is a terminal, or when this process is not in
        the terminal's foreground (changing it from the background would stop us)."""
        try:
            import termios
        except ImportError:  # Windows: no such echo
            yield
            return
        fd, saved = None, None
        for stream in (sys.stdin, sys.stderr, sys.stdout):
            try:
                if stream is not None and stream.isatty() and \
                        os.tcgetpgrp(stream.fileno()) == os.getpgrp():
                    fd = stream.fileno()
                    saved = termios.tcgetattr(fd)
                    quiet = list(saved)
                    quiet[3] &= ~termios.ECHOCTL
                    termios.tcsetattr(fd, termios.TCSANOW, quiet)
                    break
            except (OSError, ValueError, AttributeError, termios.error):
                fd, saved = None, None
        try:
            yield
        finally:
            if saved is not None:
                with contextlib.suppress(OSError, ValueError, termios.error):
                    termios.tcsetattr(fd, termios.TCSANOW, saved)

    @staticmethod
    def path(p: Path) -> str:
        """A path as the user should read it: relative to the current folder when inside it."""
        p = Path(p)
        try:
            absolute = p.resolve()
            return str(absolute.relative_to(Path.cwd().resolve()))
        except (ValueError, OSError):
            return str(p)


def run_script(main: Callable[[], int]) -> NoReturn:
    """Run a script's main and exit with its code, whatever happens to the streams."""
    for stream in (sys.stdout, sys.stderr):
        try:  # text the locale cannot encode becomes '?', never a crash
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass
    code = 130
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # nohup, a background job
    sys.unraisablehook = signals.deliver_again  # a Ctrl-C inside a callback is not lost
    try:
        try:
            if not ignored:  # Ctrl-C now raises KeyboardInterrupt, which main handles
                signal.signal(signal.SIGINT, signals.keyboard_interrupt)
            code = main()
        finally:
            # The work is done and its status written: a late Ctrl-C must not turn the
            # exit into a death by signal or a traceback.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:
        code = 130
    except OutputLost as err:
        code = err.exit_code
    except Interrupted as err:
        code = err.exit_code
    except BrokenPipeError:
        code = 141
    except Exception:
        if signals.received() is None:
            raise
        code = 128 + signals.received()  # a library turned the Ctrl-C into its own error
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        code = code or 1
        _silence_stdout()
    else:
        if code == 141:
            _silence_stdout()
    sys.exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


def readable(text: str) -> str:
    """A file name as text a figure can draw. Under an ASCII locale (LC_ALL=C) the name's
    UTF-8 bytes arrive as lone surrogates, which matplotlib refuses with a TypeError: they
    are decoded back ('é'), and bytes that are not UTF-8 become the replacement character."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def whole_number(low: int, high: int | None = None):
    """An argparse type: a whole number from low (to high)."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"{low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {bound})")
        return value
    convert.__name__ = "int"
    return convert


def png_path(text: str) -> Path:
    """An argparse type: a file name ending in .png (figures are saved as PNG)."""
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"{text!r} must end in .png (the figure is saved as PNG)")
    return Path(text)
