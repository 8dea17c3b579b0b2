"""kit/signals.py: the stop signals (Ctrl-C, SIGTERM, SIGHUP) as Interrupted, held back
while an epoch is committed, and a signal ignored by whoever started the process kept ignored."""
from __future__ import annotations

import signal

from kit.signals import StopSignals


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

