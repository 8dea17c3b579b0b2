"""kit/signals.py: the stop signals (Ctrl-C, SIGTERM, SIGHUP) as Interrupted, raised at once or
held back while an epoch is committed; a signal ignored by whoever started the process kept
ignored; standard output lost; the Ctrl-C that run_script remembers."""
from __future__ import annotations

import signal

import pytest

from kit import signals
from kit.signals import Interrupted, OutputLost, StopSignals, signal_name


def test_stop_signals_keep_an_ignored_sigint_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    # And the normal case, as from a terminal (this process may itself have started with
    # SIGINT ignored, as a background job): SIGINT handled, then given back.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.default_int_handler)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)



# ---- a stop signal becomes Interrupted: at once, or after a held block -------------------------

def send(signum: int) -> None:
    """Deliver signum to this process; Python runs the handler before the next statement."""
    signal.raise_signal(signum)


@pytest.mark.parametrize("signum, name, code", [(signal.SIGINT, "Ctrl-C", 130), (signal.SIGTERM, "SIGTERM", 143),
                                                (signal.SIGHUP, "SIGHUP", 129)])
def test_a_stop_signal_raises_interrupted_at_once(signum, name, code):
    previous = signal.getsignal(signum)
    if previous is signal.SIG_IGN:
        pytest.skip(f"{name} is ignored by whoever started the tests")
    after = []
    with pytest.raises(Interrupted) as info:
        with StopSignals():
            send(signum)
            after.append("ran on")  # never: the handler raised first
    assert after == []
    assert (info.value.signum, str(info.value), info.value.exit_code) == (signum, name, code)
    assert signal.getsignal(signum) is previous  # the handler before the block is back


def test_inside_held_a_signal_waits_for_the_end_of_the_block():
    steps = []
    with StopSignals() as stop:
        with pytest.raises(Interrupted) as info:
            with stop.held():
                send(signal.SIGTERM)
                steps.append("committed")  # the commit the block protects completes
                assert stop.pending == signal.SIGTERM
        assert stop.pending is None  # raised once, then forgotten
    assert steps == ["committed"] and info.value.signum == signal.SIGTERM


def test_nested_held_blocks_raise_only_after_the_outermost_and_only_the_first_signal():
    with StopSignals() as stop:
        with pytest.raises(Interrupted) as info:
            with stop.held():
                with stop.held():
                    send(signal.SIGTERM)
                send(signal.SIGINT)  # still held: the inner block's end did not raise
                assert stop.pending == signal.SIGTERM
        assert info.value.signum == signal.SIGTERM


def test_held_without_raise_after_keeps_the_signal_pending():
    with StopSignals() as stop:
        with stop.held(raise_after=False):
            send(signal.SIGTERM)
        assert stop.pending == signal.SIGTERM  # for the caller to act on (train_run does)


def test_interrupted_is_not_an_exception_so_except_exception_lets_it_through():
    with pytest.raises(Interrupted):
        with StopSignals():
            try:
                send(signal.SIGTERM)
            except Exception:  # what a careless library might do
                pytest.fail("Interrupted was caught as an Exception")


def test_signal_names():
    assert signal_name(signal.SIGINT) == "Ctrl-C"
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(999) == "signal 999"


def test_output_lost_exit_codes():
    gone = OutputLost(BrokenPipeError(32, "Broken pipe"))
    assert gone.reader_gone and gone.exit_code == 141 and "Broken pipe" in str(gone)
    full = OutputLost(OSError(28, "No space left on device"))
    assert not full.reader_gone and full.exit_code == 1
    assert str(full) == "standard output closed (No space left on device)"
    assert isinstance(full, Interrupted)


def test_keyboard_interrupt_remembers_the_first_signal(monkeypatch):
    monkeypatch.setattr(signals, "_received", [])
    assert signals.received() is None
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            signals.keyboard_interrupt(signal.SIGINT, None)
    assert signals.received() == signal.SIGINT and signals._received == [signal.SIGINT]
