"""The plumbing behind the scripts: the run folder and its configuration, file safety,
signals, the command line, the trainer's lifecycle, plots and windows, the photo reader
and the comparison library. The learning itself lives at the top (network.py,
mnist_loader.py, optim.py, training.py).

For notebooks and scripts: `from kit import load_run` (see docs/api.md). The package
imports nothing until a name is asked for, so a script that imports kit.startup first
stays quick to start.
"""


def __getattr__(name: str):
    if name in ("load_run", "LoadedRun", "RunError"):
        from kit import api
        return getattr(api, name)
    raise AttributeError(f"module 'kit' has no attribute {name!r}")
