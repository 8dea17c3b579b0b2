"""Command-line pieces shared by train.py and predict.py: argparse that reports
a bad flag on one line, and help that shows each default once."""
from __future__ import annotations

import argparse


class OneLineParser(argparse.ArgumentParser):
    """argparse, with errors on one line (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see python {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Shows '(default: X)' where there is a default and the help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text
