"""cli.py, shared by every script: a flag given `=--` is one usage line, for every flag of
every script (argparse would otherwise store [] where one value belongs)."""
from __future__ import annotations

import importlib

import pytest

# Each script's flags that take a value, at least these (a new flag is tested without listing it).
SCRIPTS = {
    "train": {"--name", "--seed", "--epochs", "--output-dir", "--resume", "--augment"},
    "predict": {"--run", "--start", "--weights", "--save", "--runs-dir"},
    "compare": {"--metric", "--sort", "--runs-dir", "--save"},
    "study": {"--seeds", "--epochs", "--seed", "--output-dir", "--category"},
}


def value_flags(parser) -> list[str]:
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.nargs is None and a.dest != "help" and not a.const]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_flag_given_dashdash_is_one_usage_line_exit_2(name, capsys):
    script = importlib.import_module(name)
    flags = value_flags(script.build_parser())
    assert SCRIPTS[name] <= set(flags)
    for flag in flags:
        with pytest.raises(SystemExit) as stop:
            script.main([f"{flag}=--"])
        assert stop.value.code == 2, flag
        err = capsys.readouterr().err.splitlines()
        assert err == [f"{name}.py: error: {flag} needs a value (see python {name}.py --help)"], err
