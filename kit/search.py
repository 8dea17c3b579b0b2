"""A study of your own: the grid or random search over RunConfig's settings (parsed and
checked against RunConfig's own choices and ranges), Welch's t-test over the seeds, and
the study's results (results.md, results.csv and the graphs).

    --grid   "hidden_size=32,64,128 activation=relu,sigmoid"      every combination
    --random "learning_rate=1e-4..1e-1:log l2=0..1e-3 activation=relu,sigmoid"

Each setting is a RunConfig field (hidden_size or hidden-size), then '=' and either a list
of values or, with --random, a range LOW..HIGH (uniform, or log-uniform with ':log').
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from kit.config import RunConfig, setting_text

# What a study varies: every setting a flag gives, except those the study itself owns
# (epochs and the seeds) and the developer's --limit.
NOT_SEARCHED = ("epochs", "seed", "limit")
SETTINGS = tuple(name for name, _, _ in RunConfig.options() if name not in NOT_SEARCHED)
MAX_RUNS = 1000          # more than this needs --yes
ALPHA = 0.05             # the verdict's threshold on Welch's p-value
SIGNIFICANT = 3          # random floats are rounded to this many significant digits
TRUE_WORDS, FALSE_WORDS = ("y", "yes", "true"), ("n", "no", "false")
NONE_WORDS = ("none", "off", "null")


class SpecError(Exception):
    """A --grid or --random that cannot be run; the message names the setting and what it allows."""


# ---- one setting's values ---------------------------------------------------------------

def allowed(name: str) -> str:
    """What a setting takes, in words: 'relu, sigmoid', 'a whole number >= 1 and <= 4096'."""
    option = RunConfig.option(name)
    if option.choices:
        words = [("y" if c else "n") if isinstance(c, bool) else str(c) for c in option.choices]
        return ", ".join(words + (["none"] if option.optional else []))
    what = "a whole number" if option.kind is int else "a number"
    return f"{what} {option.range_text()}" + (" or none" if option.optional else "")


def parse_value(name: str, text: str):
    """One value of a setting from its text, checked against RunConfig's choices and range."""
    option = RunConfig.option(name)
    t = text.strip()
    low = t.lower()
    if option.optional and low in NONE_WORDS:
        return None
    if option.choices:
        if isinstance(option.choices[0], bool):
            value = True if low in TRUE_WORDS else False if low in FALSE_WORDS else t
        elif isinstance(option.choices[0], int):
            value = int(low) if low.lstrip("-").isdigit() else t
        else:
            value = low
        if value not in option.choices or type(value) is not type(option.choices[0]):
            raise SpecError(f"{name}={t}: {name} is one of {allowed(name)}")
        return value
    try:
        value = option.kind(t)
    except ValueError:
        if option.kind is int:  # 1e3 is a whole number too
            try:
                as_float = float(t)
            except ValueError:
                as_float = math.nan
            if math.isfinite(as_float) and as_float == int(as_float):
                value = int(as_float)
            else:
                raise SpecError(f"{name}={t}: {name} is {allowed(name)}") from None
        else:
            raise SpecError(f"{name}={t}: {name} is {allowed(name)}") from None
    if option.problem(name, value):
        raise SpecError(f"{name}={t} is out of range: {name} is {allowed(name)}")
    return value


def setting_name(text: str) -> str:
    """A setting's RunConfig name from how it was written (hidden_size, hidden-size, --hidden-size)."""
    name = text.strip().lstrip("-").replace("-", "_").lower()
    if name not in SETTINGS:
        if name in NOT_SEARCHED:
            own = {"epochs": "--epochs", "seed": "--seeds and --seed", "limit": "--limit"}[name]
            raise SpecError(f"{text!r} is not searched: the study sets it with {own}")
        raise SpecError(f"unknown setting {text!r}; the settings are {', '.join(SETTINGS)}")
    return name


@dataclass(frozen=True)
class Setting:
    """One searched setting: a list of values, or (with --random) a range LOW..HIGH."""
    name: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def sample(self, rng: np.random.Generator):
        """One value drawn from rng: a list's member, or a point of the range (log-uniform
        with log), whole numbers rounded, other numbers to SIGNIFICANT digits."""
        if not self.is_range:
            return self.values[int(rng.integers(len(self.values)))]
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        if RunConfig.option(self.name).kind is int:
            return int(min(max(round(x), math.ceil(self.low)), math.floor(self.high)))
        x = float(f"{x:.{SIGNIFICANT}g}")
        return min(max(x, self.low), self.high)


def parse_spec(text: str, flag: str) -> list[Setting]:
    """The settings of a --grid or --random spec, each checked; SpecError saying what is wrong."""
    words = text.split()
    if not words:
        raise SpecError(f"{flag} is empty; give settings such as \"hidden_size=32,64 activation=relu,sigmoid\"")
    settings: dict[str, Setting] = {}
    for word in words:
        if "=" not in word:
            raise SpecError(f"{flag}: {word!r} needs '=' and values, such as hidden_size=32,64")
        key, _, rest = word.partition("=")
        name = setting_name(key)
        if name in settings:
            raise SpecError(f"{flag}: {name} is given twice")
        option = RunConfig.option(name)
        log = rest.endswith(":log")
        body = rest.removesuffix(":log")
        if ".." in body:
            if flag == "--grid":
                raise SpecError(f"{name}={rest}: a grid takes a list of values (such as "
                                f"{name}=A,B,C); ranges LOW..HIGH are for --random")
            if option.choices:
                raise SpecError(f"{name}={rest}: {name} is one of {allowed(name)}; list them "
                                "(A,B), a range is for numbers")
            lo_text, _, hi_text = body.partition("..")
            if not lo_text.strip() or not hi_text.strip():
                raise SpecError(f"{name}={rest}: a range needs both ends, LOW..HIGH")
            low, high = parse_value(name, lo_text), parse_value(name, hi_text)
            if low is None or high is None:
                raise SpecError(f"{name}={rest}: a range needs numbers at both ends")
            if low > high:
                raise SpecError(f"{name}={rest}: the range's minimum {lo_text} is above its maximum {hi_text}")
            if log and low <= 0:
                raise SpecError(f"{name}={rest}: a :log range needs both ends above 0 "
                                f"({name} is {allowed(name)})")
            settings[name] = Setting(name, low=low, high=high, log=log)
            continue
        if log:
            raise SpecError(f"{name}={rest}: ':log' goes with a range LOW..HIGH (with --random)")
        texts = [t for t in body.split(",")]
        if not body.strip() or any(not t.strip() for t in texts):
            raise SpecError(f"{name}={rest}: an empty value; give {name} one or more of {allowed(name)}, "
                            "separated by commas")
        values = tuple(parse_value(name, t) for t in texts)
        if len(set(values)) != len(values):
            raise SpecError(f"{name}={rest}: a value is repeated")
        settings[name] = Setting(name, values=values)
    return list(settings.values())


# ---- the configurations ---------------------------------------------------------------------

def format_value(value) -> str:
    """A setting as a study's tables show it (config.setting_text: none when unset)."""
    return setting_text(value, "none")


@dataclass(frozen=True)
class Point:
    """One configuration of a study: the searched settings' values and the configuration
    (seed 0: each run replaces it with its own)."""
    values: tuple[tuple[str, object], ...]
    config: RunConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{k} {format_value(v)}" for k, v in self.values)

    def value(self, name: str):
        return dict(self.values)[name]

    def folder(self, seed: int) -> str:
        stem = "+".join(f"{k}-{format_value(v)}" for k, v in self.values)
        from kit.record import MAX_NAME_BYTES, check_run_name
        name = f"{stem}-seed{seed}"
        if check_run_name(name) is not None or len(name.encode()) > MAX_NAME_BYTES:
            import hashlib
            name = f"config-{hashlib.sha1(stem.encode()).hexdigest()[:12]}-seed{seed}"
        return name

    def run_config(self, seed: int) -> RunConfig:
        return replace(self.config, seed=seed)


def base_values(config: RunConfig) -> dict:
    """A configuration's fields, but the seed: what every configuration of a study shares."""
    return {f.name: getattr(config, f.name) for f in fields(RunConfig) if f.name != "seed"}


def _point(base: RunConfig, values: dict) -> Point:
    try:
        config = RunConfig.create(**{**base_values(base), **values, "seed": 0})
    except ValueError as err:
        shown = " ".join(f"{k}={format_value(v)}" for k, v in values.items())
        raise SpecError(f"the configuration {shown} is not valid: {err}") from None
    return Point(tuple(values.items()), config)


def _unique(points: list[Point]) -> list[Point]:
    """Points whose configurations differ (layers=0 makes every activation the same one)."""
    seen, out = set(), []
    for p in points:
        if p.config not in seen:
            seen.add(p.config)
            out.append(p)
    return out


def grid_points(base: RunConfig, settings: Sequence[Setting]) -> list[Point]:
    """Every combination of the settings' values, over base."""
    names = [s.name for s in settings]
    return _unique([_point(base, dict(zip(names, combo)))
                    for combo in itertools.product(*(s.values for s in settings))])


def random_points(base: RunConfig, settings: Sequence[Setting], n: int, seed: int) -> list[Point]:
    """n configurations drawn from the settings with a generator seeded by seed (the same
    seed, the same configurations), duplicates dropped."""
    rng = np.random.default_rng([seed, 19])  # its own stream: never the runs' seeds
    return _unique([_point(base, {s.name: s.sample(rng) for s in settings}) for _ in range(n)])


def check_size(n_points: int, n_seeds: int, yes: bool) -> None:
    runs = n_points * n_seeds
    if runs > MAX_RUNS and not yes:
        raise SpecError(f"the study has {runs:,} runs ({n_points:,} configurations x {n_seeds} seeds), "
                        f"more than {MAX_RUNS:,}; add --yes to train them all")


# ---- Welch's t-test, in NumPy ------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class Welch:
    t: float
    df: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's t-test of mean(a) against mean(b), variances not assumed equal, two-sided.
    Needs two values on each side. Both without spread: p is 0 when the means differ, 1
    when they are equal."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("Welch's t-test needs at least two values on each side")
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    if va + vb == 0:
        return Welch(math.copysign(math.inf, diff) if diff else 0.0, math.inf, 0.0 if diff else 1.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
    return Welch(t, df, t_two_sided_p(t, df))


# ---- the results ---------------------------------------------------------------------------

@dataclass
class Summary:
    """A configuration's runs over the seeds: what the table, the CSV and the verdict use."""
    point: Point
    runs: list  # kit.record.Run, one per seed

    @property
    def val(self) -> list[float]:
        """Each run's best validation accuracy, in percent."""
        return [100 * r.record.best["val_accuracy"] for r in self.runs]

    @property
    def test(self) -> list[float]:
        """Each run's test accuracy at its best validation epoch, in percent."""
        return [100 * r.record.best["test_accuracy"] for r in self.runs]

    @property
    def best_epochs(self) -> list[int]:
        return [r.record.best["epoch"] for r in self.runs]

    @property
    def epochs(self) -> list[int]:
        return [r.record.epochs_completed for r in self.runs]

    @property
    def seconds(self) -> list[float]:
        return [r.record.train_seconds for r in self.runs]

    @property
    def statuses(self) -> list[str]:
        return [r.record.status for r in self.runs]


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def mean_sd_text(values: Sequence[float]) -> str:
    m, sd = mean_sd(values)
    return f"{m:.2f}" if sd is None else f"{m:.2f} ± {sd:.2f}"


def ranked(summaries: list[Summary]) -> list[Summary]:
    """Best mean validation accuracy first (ties: the order of the spec)."""
    return sorted(summaries, key=lambda s: -statistics.mean(s.val))


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdicts(summaries: list[Summary], settings: Sequence[Setting], kind: str) -> list[str]:
    """One plain sentence per setting that varies: does its best value beat the others by
    more than the seed spread? For a grid, the best configuration against the ones that
    differ from it in that setting alone; for a random search (where no two configurations
    differ in one setting only), all runs of each listed value pooled, and for a range the
    configurations below its median against those above."""
    order = ranked(summaries)
    if not order:
        return []
    seeds = min(len(s.runs) for s in order)
    out = []
    for setting in settings:
        values = {s.point.value(setting.name) for s in order}
        if len(values) < 2:
            continue
        name = setting.name
        if seeds < 2:
            out.append(f"{name}: no verdict with one seed per configuration (the seed spread is "
                       "unknown); use --seeds 3 or more.")
            continue
        if kind == "grid":
            out.append(_grid_verdict(order, name))
        elif setting.is_range:
            out.append(_range_verdict(order, name))
        else:
            out.append(_pooled_verdict(order, name))
    return out


def _grid_verdict(order: list[Summary], name: str) -> str:
    best = order[0]
    mine = best.point.value(name)
    others = []
    for s in order[1:]:
        if all(v == best.point.value(k) for k, v in s.point.values if k != name):
            others.append(s)
    if not others:
        return f"{name}: no configuration differs from the best one in {name} alone, so no verdict."
    tests = [(format_value(s.point.value(name)), welch(best.val, s.val)) for s in others]
    return _sentence(name, f"{format_value(mine)} (in the best configuration)", tests,
                     f"with the other settings as in the best configuration; {len(best.runs)} seeds each")


def _pooled_verdict(order: list[Summary], name: str) -> str:
    pooled: dict = {}
    for s in order:
        pooled.setdefault(s.point.value(name), []).extend(s.val)
    pooled = {v: vals for v, vals in pooled.items() if len(vals) >= 2}
    if len(pooled) < 2:
        return f"{name}: too few runs of each value for a verdict."
    best = max(pooled, key=lambda v: statistics.mean(pooled[v]))
    tests = [(format_value(v), welch(pooled[best], vals)) for v, vals in pooled.items() if v != best]
    return _sentence(name, format_value(best), tests,
                     "every run of each value pooled, so the other settings' effects count as spread")


def _range_verdict(order: list[Summary], name: str) -> str:
    values = sorted(s.point.value(name) for s in order)
    median = values[len(values) // 2]
    low = [x for s in order if s.point.value(name) < median for x in s.val]
    high = [x for s in order if s.point.value(name) >= median for x in s.val]
    if len(low) < 2 or len(high) < 2:
        return f"{name}: too few configurations on each side of {format_value(median)} for a verdict."
    test = welch(high, low)
    above, below = f"{name} >= {format_value(median)}", f"{name} < {format_value(median)}"
    better, worse = (above, below) if test.t > 0 else (below, above)
    spread = "configurations split at the median, every run pooled"
    if test.p < ALPHA:
        return f"{name}: {better} beats {worse} by more than the seed spread ({_p_text(test.p)}; {spread})."
    return (f"{name}: {better} is ahead of {worse}, but not by more than the spread "
            f"({_p_text(test.p)}; {spread}).")


def _sentence(name: str, best: str, tests: list[tuple[str, Welch]], how: str) -> str:
    beaten = [f"{v} ({_p_text(w.p)})" for v, w in tests if w.p < ALPHA and w.t > 0]
    not_beaten = [f"{v} ({_p_text(w.p)})" for v, w in tests if not (w.p < ALPHA and w.t > 0)]
    if beaten and not not_beaten:
        return f"{name}: {best} beats {_listed(beaten)} by more than the seed spread ({how})."
    if not beaten:
        return (f"{name}: {best} is ahead, but not by more than the seed spread against "
                f"{_listed(not_beaten)}; the difference may be chance ({how}).")
    return (f"{name}: {best} beats {_listed(beaten)} by more than the seed spread, but not "
            f"{_listed(not_beaten)} ({how}).")


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


TEST_NOTE = (f"Verdicts: Welch's t-test (two-sided, variances not assumed equal) on each run's best "
             f"validation accuracy; a difference counts as more than the seed spread when p < {ALPHA:g} "
             "(each comparison on its own, without a correction for making several).")

CSV_COLUMNS = ("rank", "val_mean", "val_sd", "test_mean", "test_sd", "best_epoch_mean",
               "epochs_mean", "train_seconds_mean", "seeds", "statuses", "runs")


def results_csv(summaries: list[Summary], settings: Sequence[Setting]) -> str:
    """One row per configuration, ranked: its settings, then mean and sd (percent)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = [s.name for s in settings]
    writer.writerow(["rank", *names, *CSV_COLUMNS[1:]])
    for rank, s in enumerate(ranked(summaries), start=1):
        val_m, val_sd = mean_sd(s.val)
        test_m, test_sd = mean_sd(s.test)
        writer.writerow([rank, *(format_value(s.point.value(n)) for n in names),
                         repr(val_m), "" if val_sd is None else repr(val_sd),
                         repr(test_m), "" if test_sd is None else repr(test_sd),
                         repr(statistics.mean(s.best_epochs)), repr(statistics.mean(s.epochs)),
                         f"{statistics.mean(s.seconds):.3f}", len(s.runs),
                         ";".join(s.statuses), ";".join(r.path.name for r in s.runs)])
    return buf.getvalue()


def results_md(title: str, base_line: str, summaries: list[Summary], settings: Sequence[Setting],
               sentences: list[str], graphs: Sequence[str], trained_seconds: float) -> str:
    names = [s.name for s in settings]
    lines = [f"# {title}", "", base_line, ""]
    if sentences:
        lines += [f"- {s}" for s in sentences] + ["", TEST_NOTE, ""]
    lines += ["| rank | " + " | ".join(names) + " | best val. acc. | test acc. at best val. "
              "| best epoch | epochs | training time |",
              "|---:|" + "---|" * len(names) + "---:|---:|---:|---:|---:|"]
    for rank, s in enumerate(ranked(summaries), start=1):
        statuses = sorted(set(s.statuses) - {"completed"})
        epochs = f"{statistics.mean(s.epochs):g}" + (f" ({', '.join(statuses)})" if statuses else "")
        lines.append(f"| {rank} | " + " | ".join(format_value(s.point.value(n)) for n in names) +
                     f" | {mean_sd_text(s.val)} | {mean_sd_text(s.test)} | {statistics.mean(s.best_epochs):.1f} | "
                     f"{epochs} | {_seconds(statistics.mean(s.seconds))} |")
    seeds = sorted({len(s.runs) for s in summaries})
    lines += ["", f"Mean ± standard deviation over the seeds ({', '.join(map(str, seeds))} per "
              "configuration), in percent, ranked by the mean best validation accuracy. \"Test acc. "
              "at best val.\" is the test accuracy of each run's best validation epoch (the weights "
              "predict.py uses): the ranking is chosen on validation data, never on test data. "
              "Training time: one run's, in training steps, averaged over the seeds.", "",
              f"Training time of the whole study (the sum of its runs'): {_seconds(trained_seconds)}.", ""]
    lines += [f"![{g}]({g})" for g in graphs]
    return "\n".join(lines) + "\n"


def _seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.1f} minutes"
