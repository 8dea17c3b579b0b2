"""Stop signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP end a run the same way, and all of
them wait while an epoch is being committed.

`timeout`, docker and systemd send SIGTERM; a closed terminal sends SIGHUP. Each
becomes an `Interrupted` exception in the main thread, raised at once while training
steps run (the epoch in progress is dropped) and held back inside `held()` until the
commit it protects is complete. A signal that was ignored when the process started
(nohup ignores SIGHUP; a script's background job ignores SIGINT) stays ignored: that
is the caller's wish, kept throughout the run.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                if s is not None)


class Interrupted(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
        return 128 + self.signum


def signal_name(signum: int) -> str:
    if signum == signal.SIGINT:
        return "Ctrl-C"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """Within `with StopSignals() as stop:`, the stop signals raise Interrupted, except
    inside `with stop.held():`, where they are noted and raised when the block ends."""

    def __init__(self):
        self._previous: dict[int, object] = {}
        self._holding = 0
        self._pending: list[int] = []

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue  # ignored by whoever started us: keep it ignored
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self._holding:
            self._pending.append(signum)
        else:
            raise Interrupted(signum)

    @property
    def pending(self) -> int | None:
        """The first signal held back and not yet raised, or None."""
        return self._pending[0] if self._pending else None

    @contextlib.contextmanager
    def held(self, raise_after: bool = True) -> Iterator[None]:
        """Hold stop signals back for the block; then raise the first one (raise_after)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if raise_after and not self._holding and self._pending:
            signum = self._pending[0]
            self._pending.clear()
            raise Interrupted(signum)


class OutputLost(Interrupted):
    """Standard output cannot be written: its reader went away (a closed pipe, as with
    `| head`) or its device failed (a full disk). Ends a run like a signal would: the
    committed epochs are kept, and nothing blames the run folder."""

    def __init__(self, error: OSError):
        super().__init__(getattr(signal, "SIGPIPE", 13))
        self.error = error
        self.args = (f"standard output closed ({error.strerror or error})",)

    @property
    def reader_gone(self) -> bool:
        return isinstance(self.error, BrokenPipeError)

    @property
    def exit_code(self) -> int:
        """141 (128 + SIGPIPE) when the reader went away, as a shell reports it; else 1."""
        return 128 + self.signum if self.reader_gone else 1


# ---- a Ctrl-C that lands inside a library ----------------------------------------------
# Python raises KeyboardInterrupt wherever the main thread happens to be, and two kinds of
# place do not let it through: a weakref callback or __del__ (the interpreter prints
# "Exception ignored in ...", a traceback, and carries on as if no key was pressed), and
# matplotlib's compiled functions, whose pybind11 wrappers turn an error raised while they
# convert their arguments into "TypeError: incompatible function arguments". The scripts
# (cli.run_script) therefore remember the interrupt when it arrives, deliver it again when
# it was swallowed, and end with 130 when a library error follows it; the few places that
# turn any error into a message ("cannot open a window") let it through once received().

_received: list[int] = []


def keyboard_interrupt(signum: int, frame) -> None:
    """A SIGINT handler: Python's own (raise KeyboardInterrupt), remembering that it ran."""
    if not _received:
        _received.append(signum)
    raise KeyboardInterrupt


def received() -> int | None:
    """The stop signal that keyboard_interrupt saw, or None."""
    return _received[0] if _received else None


def deliver_again(unraisable) -> None:
    """A sys.unraisablehook: a KeyboardInterrupt or Interrupted raised inside a callback,
    where Python cannot raise it, is sent again, to land in the main code a moment later;
    anything else is reported as Python does."""
    err = unraisable.exc_value
    if not isinstance(err, (KeyboardInterrupt, Interrupted)) or isinstance(err, OutputLost):
        sys.__unraisablehook__(unraisable)
        return
    signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
    if callable(signal.getsignal(signum)):  # still handled in Python: raise it again
        # From another thread, a moment later: sent from here (signal.raise_signal), the
        # handler would run at once, inside this hook, and be swallowed again.
        # On a loaded machine the timer can fire before start() returns, and the handler
        # then runs here after all: catch that and send it again, until one lands outside.
        for _ in range(100):
            try:
                threading.Timer(0.05, signal.pthread_kill,
                                (threading.main_thread().ident, signum)).start()
                return
            except (KeyboardInterrupt, Interrupted):
                continue
