"""Train one run from start to end: the data, the network, the epoch loop, a commit
after every epoch, the stop rules (patience, signals, divergence) and the final status.

`train_run` is what train.py and study.py (in worker processes) both call; it prints
nothing itself, and tells a `Reporter` what happens, so each caller shows it its way.
`resume_run` continues a saved run in its own folder, exactly where it stopped.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import mnist_loader
from kit.config import Normalization, RunConfig, RunError
from kit.dynamics import Recorder
from kit.fsutil import io_reason
from kit.record import Run, RunRecord, best_row, now, package_versions
from kit.record_writer import RunWriter
from kit.signals import Interrupted, StopSignals
from optim import make_optimizer
from training import TrainingDiverged, train

PLOT_EVERY = 10.0  # seconds between redraws of the graphs during training (a redraw: ~0.8 s)
CHANCE_LEVEL = 0.2  # validation accuracy below this after an epoch: still guessing


@dataclass
class Outcome:
    """How a run ended."""
    run_dir: Path
    status: str            # a STATUSES value
    exit_code: int         # 0, 1, or 128 + the signal's number
    record: RunRecord
    rows: list[dict]
    reason: str = ""       # why it stopped, in words, when it did not simply complete


class Reporter:
    """What train_run tells its caller as it goes; this base says nothing."""

    def data_loaded(self, data, seconds: float) -> None: ...

    def run_started(self, run_dir: Path, config: RunConfig, resumed_from: int) -> None: ...

    def epoch_done(self, row: dict, record: RunRecord, hints: list[str]) -> None: ...

    def dynamics_row(self, row: dict) -> None:
        """A row of dynamics.csv, as soon as its loss is known (every 256 steps)."""

    def note(self, text: str) -> None:
        """A line about the run that is neither a hint nor an epoch, and changes nothing (a
        damaged dynamics.csv, an old run's missing fingerprint, an edited history.csv kept
        aside)."""

    def status_written(self, status: str) -> None: ...


def hints(rows: list[dict], config: RunConfig, shown: set[str],
          dynamics: list[dict] | None = None) -> list[str]:
    """Short lines a learner would want after the last epoch of rows; each kind once
    (its key is added to shown). None when all is well. dynamics: dynamics.csv's rows up
    to that epoch (see kit/dynamics.py), whose measurements the hints quote."""
    out = []
    last = rows[-1]
    measured = _epoch_measurements(dynamics or [], last["epoch"])
    if "chance" not in shown and last["val_accuracy"] < CHANCE_LEVEL:
        shown.add("chance")
        why, faster = [], []
        if config.layers and config.activation == "sigmoid":
            why.append(f"{config.layers} sigmoid layer{'s' if config.layers > 1 else ''} "
                       "(each passes back at most a quarter of the gradient)")
            faster.append("ReLU")
        if config.init == "gauss":
            why.append("Gauss initialization (weights of 0.01, so tiny signals)")
            faster.append("Xavier initialization")
        if config.optimizer == "sgd":
            why.append(f"plain SGD at learning rate {config.learning_rate:g}")
            faster.append("Momentum")
        text = (f"Hint: validation accuracy is {100 * last['val_accuracy']:.1f} %, chance level "
                "(1 in 10): the network has not started to learn yet.")
        if why:
            text += f" With {_listed(why, 'and')}, the gradient reaching the first layer is tiny"
            if measured and measured.layers > 1:
                text += (f" (measured: {measured.grads[0]:.2g} against {measured.grads[-1]:.2g} "
                         "at the last layer)")
            text += f"; {_listed(faster, 'or')} would learn much faster."
        out.append(text)
    if measured:
        out += _measured_hints(measured, config, shown, dynamics[0])
    if "overfit" not in shown and len(rows) >= 4:
        recent = rows[-4:]
        val_up = all(b["val_loss"] > a["val_loss"] for a, b in zip(recent, recent[1:]))
        train_down = all(b["train_loss"] < a["train_loss"] for a, b in zip(recent, recent[1:]))
        if val_up and train_down:
            shown.add("overfit")
            best = best_row(rows)
            out.append("Hint: the validation loss has risen for 3 epochs while the training loss "
                       "fell: the network is starting to overfit (learning the training images "
                       f"rather than digits). The best epoch's weights (epoch {best['epoch']}) are "
                       "kept" + ("." if config.patience else "; --patience N stops such a run early."))
    return out


# What the measured hints call far from healthy (dynamics.csv's columns; the numbers
# of a 2-hidden ReLU, Xavier, Momentum run and of a 2-sigmoid, Gauss, SGD one are in
# docs/watching-a-network-learn.md).
VANISHING = 1e-2          # first layer's gradient norm / the last layer's, below this
UNIT_SHARE = 0.5          # dead (ReLU) or saturated (sigmoid) share of a layer's units
UPDATE_BAND = (1e-4, 1e-2)   # the healthy update ratios ||dW|| / ||W|| (1e-3: the rule of thumb)
FAR = 10.0                # "far" outside the band: this factor beyond its edge
INIT_LOSS_OFF = 1.0       # |loss at initialization - ln 10| above this: a bad start


@dataclass(frozen=True)
class Measured:
    """One epoch's dynamics in a few numbers: medians over its rows (row 0 apart)."""
    epoch: int
    layers: int
    grads: list[float]        # grad_norm_i
    ratios: list[float]       # update_ratio_i
    units: list[float]        # dead_i or saturated_i at the epoch's end
    units_kind: str           # "dead" or "saturated"


def _epoch_measurements(dynamics: list[dict], epoch: int) -> Measured | None:
    """The medians of epoch's rows of dynamics, or None when it has none."""
    from kit.dynamics import layer_columns
    rows = [r for r in dynamics if r["epoch"] == epoch]
    if not rows:
        return None
    header = list(rows[0])
    grads = [float(np.median([r[c] for r in rows])) for c in layer_columns(header, "grad_norm")]
    ratios = [float(np.median([r[c] for r in rows])) for c in layer_columns(header, "update_ratio")]
    kind = "dead" if layer_columns(header, "dead") else "saturated"
    units = [rows[-1][c] for c in layer_columns(header, kind)]
    return Measured(epoch, len(grads), grads, ratios, units, kind)


def _measured_hints(m: Measured, config: RunConfig, shown: set[str], first: dict) -> list[str]:
    """The hints from one epoch's measurements (see Measured), each kind once."""
    out = []
    epoch = f"in epoch {m.epoch}"
    if "init" not in shown and first["step"] == 0 and \
            abs(first["train_loss"] - math.log(10)) > INIT_LOSS_OFF:
        shown.add("init")
        out.append(f"Hint: the loss at initialization was {first['train_loss']:.3g}, far from "
                   f"ln 10 = {math.log(10):.3g}, the loss of a network that guesses each digit "
                   "with the same probability: the initial weights make confident wrong "
                   "guesses. Xavier initialization starts near ln 10.")
    if "vanishing" not in shown and m.layers > 1 and m.grads[-1] > 0 and \
            m.grads[0] / m.grads[-1] < VANISHING:
        shown.add("vanishing")
        out.append(f"Hint: vanishing gradients: {epoch} the first layer's gradient norm "
                   f"(median {m.grads[0]:.2g}) was {m.grads[-1] / max(m.grads[0], 1e-30):,.0f} "
                   f"times smaller than the last layer's ({m.grads[-1]:.2g}), so the layers "
                   "near the input barely learn. ReLU and Xavier initialization keep the "
                   "gradient's size through the layers.")
    for i, share in enumerate(m.units, start=1):
        if f"units-{m.units_kind}" in shown or share < UNIT_SHARE:
            continue
        shown.add(f"units-{m.units_kind}")
        if m.units_kind == "dead":
            out.append(f"Hint: {100 * share:.0f} % of hidden layer {i}'s ReLU units are dead "
                       f"(output 0 on every probe image) at the end of epoch {m.epoch}: they "
                       "pass no gradient back and do not recover. A smaller --learning-rate "
                       "or Xavier initialization keeps them alive.")
        else:
            out.append(f"Hint: {100 * share:.0f} % of hidden layer {i}'s sigmoid units are "
                       f"saturated (output below 0.02 or above 0.98 on 95 % of the probe "
                       f"images) at the end of epoch {m.epoch}: their slope is near 0, so "
                       "they pass almost no gradient back. Xavier initialization, normal "
                       "normalization or ReLU avoid it.")
    low, high = UPDATE_BAND
    if "update-high" not in shown and m.ratios and max(m.ratios) > FAR * high:
        shown.add("update-high")
        i = int(np.argmax(m.ratios)) + 1
        out.append(f"Hint: each step changes layer {i}'s weights by {100 * max(m.ratios):.2g} % "
                   f"(median update ratio ||dW||/||W|| {epoch}, far above the healthy "
                   f"{low:g} to {high:g}): the learning rate {config.learning_rate:g} is too "
                   "high; try a tenth of it.")
    if "update-low" not in shown and m.ratios and max(m.ratios) < low / FAR:
        shown.add("update-low")
        out.append(f"Hint: each step changes the weights by at most {max(m.ratios):.2g} of "
                   f"their size (median update ratio ||dW||/||W|| {epoch}, far below the "
                   f"healthy {low:g} to {high:g}): the learning rate {config.learning_rate:g} "
                   "is too low for this network; a larger --learning-rate or Momentum would "
                   "learn faster.")
    return out


def _listed(items: list[str], word: str) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def optimizer_for(config: RunConfig):
    """The optimizer a run of config trains with (its state empty)."""
    return make_optimizer(config.optimizer, config.momentum)


def train_options(config: RunConfig, data, rng: np.random.Generator) -> dict:
    """The keyword arguments of training.train that come from the configuration."""
    options = dict(epochs=config.epochs, lr=config.learning_rate,
                   decay=config.decay_factor if config.decay else 1.0,
                   batch_size=config.batch_size, l1=config.l1_lambda if config.l1 else 0.0,
                   l2=config.l2, dropout=config.dropout)
    if config.augment:
        from kit.augment import Augmenter  # only runs that augment need it
        # Shifted-in border pixels are blank paper: the input a 0 pixel becomes.
        fill = 0.0 if data.mean is None else -data.mean / data.std
        # The run's own generator: its saved state then covers the augmentation too.
        options["augment"] = Augmenter(config.augment, float(fill), rng)
    return options


def load_data_for(config: RunConfig, rng: np.random.Generator, data_dir=None):
    """The run's data: the split drawn from rng (so from the seed), normalized."""
    data = mnist_loader.load_data(config.normalization, rng, data_dir=data_dir, limit=config.limit)
    if config.batch_size > len(data.train.y):
        raise RunError(f"--batch-size {config.batch_size} is larger than the "
                       f"{len(data.train.y):,} training images")
    return data


def train_run(config: RunConfig, output_dir: Path, name: str | None = None, *,
              data_dir=None, reporter: Reporter | None = None, progress: bool = True,
              plots: bool = True) -> Outcome:
    """Train a new run of config into output_dir/name (default: date-time and the
    configuration's summary, made unique). Raises MnistError (data) or RunError
    (folder) before anything is saved; afterwards every outcome is an Outcome."""
    reporter = reporter or Reporter()
    rng = np.random.default_rng(config.seed)
    # A stop signal while the data loads raises Interrupted (nothing is saved yet); from
    # the folder's creation on it is held, and _train records it as the run's end.
    with StopSignals() as stop:
        t0 = time.perf_counter()
        data = load_data_for(config, rng, data_dir)
        reporter.data_loaded(data, time.perf_counter() - t0)
        net = config.build_network(rng)
        optimizer = optimizer_for(config)
        started = now()
        norm = Normalization(config.normalization, data.mean, data.std)
        sizes = (len(data.train.y), len(data.val.y), len(data.test.y))
        with stop.held(raise_after=False):
            if name is None:
                writer = RunWriter.create_unique(
                    output_dir, f"{started:%Y-%m-%d_%H-%M-%S}_{config.summary()}",
                    config, norm, sizes, package_versions(), started, data=data_record(data))
            else:
                writer = RunWriter.create(output_dir, name, config, norm, sizes,
                                          package_versions(), started, data=data_record(data))
            return _train(writer, net, optimizer, rng, data, reporter, progress, plots, stop.pending)


def check_resumable(run: Run, total: int | None, locked: bool = False) -> int:
    """The total epochs a resume of run trains to, or RunError saying why it cannot.
    locked: run was read under its lock, held by this process (so it is not live)."""
    record = run.record
    if run.legacy:
        raise RunError(f"{run.path}: saved before runs could be resumed (it has no optimizer "
                       "state); train a new run instead")
    if record.status == "diverged":
        raise RunError(f"{run.path}: the run diverged; it cannot be continued "
                       "(train a new run, perhaps with a smaller --learning-rate)")
    newer = record.newer_settings()
    if newer:
        shown = ", ".join(f"{k}={v!r}" for k, v in newer.items())
        raise RunError(f"{run.path} was made by a newer version of this project (its settings "
                       f"{shown} are unknown here, and training without them would not continue "
                       "the same run); resume it with that version")
    if not locked and run.live:
        raise RunError(f"{run.path} is being written by a running train.py; wait for it to end "
                       "(or stop it) before resuming")
    done = record.epochs_completed
    if done == 0:
        raise RunError(f"{run.path}: no epoch was committed; there is nothing to continue "
                       "(train a new run instead)")
    total = record.config.epochs if total is None else total
    if total < done:
        raise RunError(f"--epochs {total} is below the {done} epochs {run.path.name} has done; "
                       f"give a TOTAL of at least {done + 1}")
    if total == done:
        raise RunError(f"{run.path.name} already has {done} epochs; give --epochs TOTAL above "
                       f"{done} to continue it")
    return total


def resume_run(run_dir: Path, total: int | None = None, patience: int | None = None, *,
               data_dir=None, reporter: Reporter | None = None, progress: bool = True,
               plots: bool = True) -> Outcome:
    """Continue a saved run in its own folder up to total epochs (default: its configured
    epochs), exactly as if it had never stopped. patience, when given, replaces its own."""
    reporter = reporter or Reporter()
    before = Run.load(run_dir)
    if before.legacy:  # refused before the lock, whose file would change the folder
        check_resumable(before, total)
    # The lock first, then the record: everything below is decided from what the run holds
    # now, so a resume delayed after an earlier read (Ctrl-Z, a slow disk) cannot roll back
    # epochs another resume committed meanwhile, nor remove their checkpoints.
    lock = RunWriter.lock(Path(run_dir))
    try:
        run = Run.load(run_dir)
        total = check_resumable(run, total, locked=True)
        changes = {"epochs": total}
        if patience is not None:
            changes["patience"] = patience
        config = replace(run.config, **changes)
        problem = config.problem()
        if problem:
            raise RunError(problem)
        optimizer_state, rng_state = run.training_state()
        rng = np.random.default_rng(config.seed)
        with StopSignals() as stop:  # as in train_run: Interrupted while the data loads
            return _resume(run, config, optimizer_state, rng_state, rng, stop, data_dir, reporter,
                           progress, plots, lock)
    finally:
        lock.release()  # the writer's own close() released it already when it took over


def _resume(run: Run, config: RunConfig, optimizer_state: dict, rng_state: dict, rng,
            stop: StopSignals, data_dir, reporter: Reporter, progress: bool, plots: bool,
            lock) -> Outcome:
    """resume_run's part under its stop signals: the data, the state, the writer, the loop."""
    t0 = time.perf_counter()
    data = load_data_for(config, rng, data_dir)
    norm, record = run.record.normalization, run.record
    check_same_data(run, data)
    if (data.mean, data.std) != (norm.mean, norm.std) or \
            (len(data.train.y), len(data.val.y), len(data.test.y)) != \
            (record.train_size, record.val_size, record.test_size):
        raise RunError(f"the MNIST files in use are not those {run.path.name} was trained on "
                       "(its split or normalization differs); resume it with the original files")
    reporter.data_loaded(data, time.perf_counter() - t0)
    if record.data is None:
        _note(reporter, f"Note: {run.path.name} was saved before runs recorded a fingerprint of "
                      "their data, so only its split sizes and normalization are checked against "
                      "these MNIST files.")
    net = run.network("last")
    optimizer = optimizer_for(config)
    optimizer.load_state({k: (v.item() if v.ndim == 0 else v) for k, v in optimizer_state.items()})
    try:
        rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError) as err:
        raise RunError(f"{run.path}: the saved generator state is unusable ({err})") from None
    with stop.held(raise_after=False):
        try:
            writer = RunWriter.resume(run, config, lock)
        except OSError as err:
            raise RunError(f"{io_reason(err, run.path)}; the run is unchanged") from None
        for note in writer.notes:
            _note(reporter, f"Note: {note}.")
        return _train(writer, net, optimizer, rng, data, reporter, progress, plots, stop.pending)


def _note(reporter, text: str) -> None:
    """reporter.note(text), for reporters written before Reporter had note()."""
    note = getattr(reporter, "note", None)
    if note is not None:
        note(text)


def data_record(data) -> dict | None:
    """RunRecord.data of the MNIST data a run trains on."""
    if getattr(data, "fingerprint", None) is None:
        return None
    return {"fingerprint": dict(data.fingerprint), "folder": str(data.folder)}


def check_same_data(run: Run, data) -> None:
    """RunError when data is not the data run trained on (by their fingerprints)."""
    recorded, now_used = run.record.data, data_record(data)
    if recorded is None or now_used is None:
        return
    if recorded["fingerprint"] != now_used["fingerprint"]:
        differ = [mnist_loader.FILE_NAMES.get(k, k) for k in now_used["fingerprint"]
                  if recorded["fingerprint"].get(k) != now_used["fingerprint"][k]]
        raise RunError(f"the MNIST files in {now_used['folder']} are not those {run.path.name} was "
                       f"trained on (in {recorded.get('folder', 'a folder not recorded')}): "
                       f"{', '.join(differ)} hold{'s' if len(differ) == 1 else ''} other data; "
                       "resume it with --data-dir naming the original files' folder")



def _train(writer: RunWriter, net, optimizer, rng, data, reporter: Reporter, progress: bool,
           plots: bool, stopped: int | None = None) -> Outcome:
    """The epoch loop of a created or resumed run, to its final status. stopped: a stop
    signal that arrived while the writer was made (the run then ends at once, interrupted)."""
    config = writer.record.config
    first = writer.record.epochs_completed + 1
    status, code, reason = "completed", 0, ""
    shown: set[str] = set()
    # The graphs are drawn at the end, and during a long run every PLOT_EVERY seconds (a
    # redraw costs as much as a short run's epochs: a study of 2-epoch runs drew twice).
    last_plot = time.monotonic()
    try:
        with StopSignals() as stop:
            try:
                if stopped is not None:
                    raise Interrupted(stopped)
                with stop.held():
                    reporter.run_started(writer.path, config, first - 1)
                options = train_options(config, data, rng)
                if writer.dynamics_problem:
                    _note(reporter, f"Note: {writer.dynamics_problem}")
                recorder = Recorder(net, (data.train.x, data.train.y), data.val.x,
                                    batch_size=config.batch_size, rows=writer.dynamics,
                                    l1=options["l1"], l2=options["l2"],
                                    on_row=getattr(reporter, "dynamics_row", None))
                for rec in train(net, data, optimizer=optimizer, rng=rng, first_epoch=first,
                                 progress=progress, dynamics=recorder, **options):
                    # Signals wait until the epoch is committed: on disk, the weights, the
                    # optimizer and generator states and the history always agree.
                    with stop.held():
                        writer.commit_epoch(rec.as_row(), net, _state_arrays(optimizer),
                                            rng.bit_generator.state,
                                            (recorder.rows, recorder.columns))
                        if plots and rec.epoch < config.epochs \
                                and time.monotonic() - last_plot >= PLOT_EVERY:
                            _draw(writer)
                            last_plot = time.monotonic()
                        reporter.epoch_done(rec.as_row(), writer.record,
                                           hints(writer.rows, config, shown, writer.dynamics))
                        best = writer.record.best
                        if config.patience and rec.epoch - best["epoch"] >= config.patience \
                                and rec.epoch < config.epochs:
                            status = "stopped-early"
                            reason = (f"validation accuracy has not improved for {config.patience} "
                                      f"epoch{'s' if config.patience != 1 else ''} "
                                      f"(best: epoch {best['epoch']})")
                            break
            except Interrupted as err:
                status, code = "interrupted", err.exit_code
                reason = str(err)
            except TrainingDiverged as err:
                status, code, reason = "diverged", 1, str(err)
            # Record the status and draw the final graphs with signals held back: a second
            # Ctrl-C waits for them, and a run never stays 'running' by accident.
            with stop.held(raise_after=False):
                writer.finish(status)
                reporter.status_written(status)
                if plots and writer.rows:
                    _draw(writer, final=True)
    except OSError as err:
        status, code = "failed", 1
        reason = io_reason(err, writer.path)
        # Record the failure if the folder still takes it: the epochs committed before it are
        # whole, and a failed run resumes from them once the cause is gone (record.RESUMABLE).
        with contextlib.suppress(OSError):
            writer.finish("failed", reason)
    finally:
        writer.close()
    return Outcome(writer.path, status, code, writer.record, writer.rows, reason)


def _state_arrays(optimizer) -> dict:
    """The optimizer's state as arrays for optimizer.npz."""
    return {k: np.asarray(v) for k, v in optimizer.state().items() if v is not None}


def _draw(writer: RunWriter, final: bool = False) -> None:
    """The run's graphs (and, at the end, features.png) from its committed history."""
    from kit.plots import plot_history  # matplotlib: imported only by runs that draw
    best = writer.record.best
    plot_history(writer.rows, writer.path, writer.record.config.summary(),
                 best_epoch=best["epoch"] if best else None)
    if writer.dynamics:
        from kit.plots import plot_dynamics
        plot_dynamics(writer.dynamics, writer.path, writer.record.config.summary())
    if final:
        from kit.figures import save_features
        net = Run(writer.path, writer.record).network("last")
        save_features(net, writer.path / "features.png")
