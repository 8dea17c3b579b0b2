"""A study of one's own: study.py --grid or --random over train.py's settings, times
--seeds, into saved_files/studies/NAME/ (docs/your-own-study.md). The points come from
kit/search.py, the runs train through kit/study_runs.py, and the results (results.md,
results.csv, the graphs, a verdict per setting) are written here."""
from __future__ import annotations

import json
from pathlib import Path

from kit.cli import Output
from kit.config import RunConfig
from kit.study_runs import StudyError, plan_run, study_lock, train_jobs

STUDY_RECORD = "study.json"
# The built-in study's baseline (study.py's BASELINE entry), every other setting RunConfig's
# default: what a --grid or --random starts from where train.py's flags say nothing.
BASELINE = dict(layers=2, normalization="normal", init="xavier", activation="relu",
                l1=False, decay=False, optimizer="momentum")


def base_config(args) -> RunConfig:
    """The configuration every point of a study of one's own starts from: the built-in
    study's baseline (2 hidden layers of ReLU, Momentum, Normal, Xavier), with RunConfig's
    defaults for the hyperparameters, changed by train.py's flags given here."""
    from kit.search import SETTINGS
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    base = RunConfig.create(**BASELINE, epochs=args.epochs, seed=0, limit=args.limit)
    values = {**{name: getattr(base, name) for name, _, _ in RunConfig.options()}, **given}
    if values["layers"] and values["activation"] is None:  # layers given, activation not
        values["activation"] = BASELINE["activation"]
    try:
        return RunConfig.create(**values)
    except ValueError as err:
        raise SearchFlagError(f"the base configuration is not valid: {err}") from None


class SearchFlagError(Exception):
    """A --grid/--random command that cannot be run as given (exit 2, nothing trained)."""


def own_points(args):
    """(kind, settings, points, base) of --grid or --random; SearchFlagError when invalid."""
    from kit.search import SpecError, check_size, grid_points, parse_spec, random_points
    base = base_config(args)
    try:
        if args.grid is not None:
            kind, settings = "grid", parse_spec(args.grid, "--grid")
            points = grid_points(base, settings)
        else:
            count, spec = args.random
            try:
                n = int(count)
            except ValueError:
                raise SpecError(f"--random N SPEC: {count!r} is not a whole number of configurations") from None
            if n < 1:
                raise SpecError(f"--random N SPEC: N is {n}; give 1 or more configurations")
            kind, settings = "random", parse_spec(spec, "--random")
            points = random_points(base, settings, n, args.seed)
        check_size(len(points), args.seeds, args.yes)
    except SpecError as err:
        raise SearchFlagError(str(err)) from None
    return kind, settings, points, base


def default_name(kind: str, settings) -> str:
    return f"{kind}-" + "-".join(s.name for s in settings)


def check_study_record(folder: Path, base: RunConfig, out: Output) -> None:
    """Refuse a folder that holds another study (other base configuration or epochs) or
    things that are not a study; write the record of a new one."""

    from kit.fsutil import write_json
    from kit.search import base_values, format_value
    record = folder / STUDY_RECORD
    mine = {"format": 1, "base": {k: v for k, v in base_values(base).items()}}
    if record.exists():
        try:
            theirs = json.loads(record.read_text(encoding="utf-8"))
            old = theirs["base"]
            if not isinstance(old, dict):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise StudyError(f"{Output.path(record)} is not a study record study.py can read; "
                             "use another --name") from None
        if old.get("epochs") != base.epochs:
            raise StudyError(f"{Output.path(folder)} holds a study of {old.get('epochs')} epochs per run, "
                             f"not {base.epochs}; give --epochs {old.get('epochs')} to continue it, or "
                             "another --name")
        differ = [k for k, v in mine["base"].items() if old.get(k, v) != v or k not in old]
        if differ:
            k = differ[0]
            there = format_value(old[k]) if k in old else "unset"
            raise StudyError(f"{Output.path(folder)} holds a study with another base configuration "
                             f"({k} {there} there, {format_value(mine['base'][k])} here); give the "
                             "same flags as before to continue it, or another --name")
        return
    if any(p.name != ".lock" for p in folder.iterdir()):
        raise StudyError(f"{Output.path(folder)} is not empty and holds no {STUDY_RECORD}; it is not a "
                         "study folder: use another --name (nothing there was changed)")
    write_json(record, mine)


def run_own_study(args, out: Output) -> int:
    from kit.record import Run, prepare_output_dir
    kind, settings, points, base = own_points(args)
    folder = args.output_dir
    prepare_output_dir(folder)
    with study_lock(folder):
        check_study_record(folder, base, out)
        seeds = [args.seed + k for k in range(args.seeds)]
        advice = "use another --name (nothing there was changed)"
        jobs = [plan_run(folder / p.folder(s), p.run_config(s), other_advice=advice)
                for p in points for s in seeds]
        todo = [j for j in jobs if j.action != "done"]
        resumed = sum(j.action == "resume" for j in todo)
        out.say(f"Study {Output.path(folder)}: {len(points)} configurations x {len(seeds)} "
                f"seeds, {base.epochs} epochs each; {len(jobs) - len(todo)} runs already "
                f"finished, {len(todo)} to train" + (f" ({resumed} resumed)" if resumed else "")
                + f", {args.engine.where}.")
        failed = train_jobs(todo, folder, args, out) if todo else []
        from kit.engine import needs
        from kit.search import Summary
        summaries, missing = [], []
        for p in points:
            names = [p.folder(s) for s in seeds]
            if all(needs(folder / n, p.run_config(s)) == "done" for n, s in zip(names, seeds)):
                runs = [Run.load(folder / n) for n in names]
                if all(r.record.best for r in runs):
                    summaries.append(Summary(p, runs))
                    continue
            missing.append(p.label)
        if summaries:
            write_own_results(summaries, settings, kind, base, folder, out, args.engine.draw)
        if failed or missing:
            return out.fail(f"{len(failed)} run(s) did not complete ({', '.join(failed[:5])}"
                            f"{', ...' if len(failed) > 5 else ''}); {len(missing)} configuration(s) "
                            "are left out of the results; run the same command again to train them")
        return 0


def write_own_results(summaries, settings, kind: str, base: RunConfig, folder: Path, out: Output,
                      draw=None) -> None:
    from kit.fsutil import atomic_write_text
    from kit.search import format_value as fmt
    from kit.search import ranked, results_csv, results_md, verdicts
    from kit.study_graphs import write_graphs
    title = f"Study {folder.name}"
    searched = {s.name for s in settings}
    shared = ", ".join(f"{k} {fmt(getattr(base, k))}" for k in
                       ("layers", "activation", "optimizer", "normalization", "init", "hidden_size",
                        "learning_rate", "batch_size", "l1", "decay", "l2", "dropout", "augment")
                       if k not in searched)
    seeds = sorted({r.config.seed for s in summaries for r in s.runs})
    base_line = (f"A {kind} search over {', '.join(sorted(searched, key=[s.name for s in settings].index))}; "
                 f"every other setting as in the base configuration ({shared}); {base.epochs} epochs"
                 + (f" on {base.limit} training images" if base.limit else "")
                 + f"; seeds {', '.join(map(str, seeds))}.")
    sentences = verdicts(summaries, settings, kind)
    graphs = write_graphs(summaries, settings, folder, title, draw)
    seconds = sum(sum(s.seconds) for s in summaries)
    atomic_write_text(folder / "results.md",
                      results_md(title, base_line, summaries, settings, sentences, graphs, seconds))
    atomic_write_text(folder / "results.csv", results_csv(summaries, settings))
    best = ranked(summaries)[0]
    out.say(f"Wrote results.md, results.csv and {', '.join(graphs)} to {Output.path(folder)}")
    from kit.search import mean_sd_text as _pm
    out.say(out.wrap(f"Best mean validation accuracy: {best.point.label} (validation {_pm(best.val)} %, "
                     f"test at that epoch {_pm(best.test)} %)"))
    for sentence in sentences:
        out.say(out.wrap(sentence, indent="  "))


