"""The first line of every script: until main() starts, Ctrl-C exits quietly with 130,
not with a KeyboardInterrupt traceback from whichever module was importing.

os and _signal are built in and already loaded, so the handler is in place at once
(importing `signal` takes milliseconds: it imports enum). kit/__init__.py imports
nothing, so reaching this module costs no more. A SIGINT ignored by whoever started
the script stays ignored; kit.signals takes over once main() runs.
"""
import _signal
import os


def quiet_ctrl_c(module_name: str) -> None:
    """In the script being run (module_name == "__main__"), make Ctrl-C exit with 130."""
    if module_name == "__main__" and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, lambda signum, frame: os._exit(130))
