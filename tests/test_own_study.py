"""study.py --grid/--random: the runs, results.csv against the runs' own records, a rerun
that trains nothing, resume after SIGINT/SIGTERM, every invalid spec, --random's draw,
Welch's t-test against known values, and the same study on a Dask LocalCluster."""
from __future__ import annotations

import csv
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kit import search  # noqa: E402
from kit.config import RunConfig  # noqa: E402
from kit.record import Run  # noqa: E402

GRID = ["--grid", "hidden_size=16,32 activation=relu,sigmoid", "--seeds", "2", "--epochs", "2",
        "--limit", "300", "--jobs", "2"]


def study(*args, mnist_dir, timeout=300, **kw):
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "study.py"), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def histories(folder: Path) -> dict:
    """Each run's history without the wall time."""
    out = {}
    for run_json in sorted(folder.glob("*/run.json")):
        rows = Run.load(run_json.parent).history()
        out[run_json.parent.name] = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    return out


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("own") / "grid"
    proc = study(*GRID, "--output-dir", out, mnist_dir=mnist_dir)
    return out, proc


def test_a_2x2_grid_over_2_seeds_trains_8_loadable_runs(grid_study):
    out, proc = grid_study
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [Run.load(p.parent) for p in out.glob("*/run.json")]
    assert len(runs) == 8
    for run in runs:
        assert run.record.status == "completed" and run.record.epochs_completed == 2
        run.network("best")
        assert run.config.limit == 300 and run.config.optimizer == "momentum"
    assert {(r.config.hidden_size, r.config.activation, r.config.seed) for r in runs} == \
        {(h, a, s) for h in (16, 32) for a in ("relu", "sigmoid") for s in (1, 2)}
    for name in ("results.md", "results.csv", "curves.png", "effects.png"):
        assert (out / name).is_file()


def test_results_csv_means_are_the_runs_own_records(grid_study):
    out, _ = grid_study
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4
    assert [float(r["val_mean"]) for r in rows] == sorted((float(r["val_mean"]) for r in rows), reverse=True)
    for row in rows:
        runs = [Run.load(out / name) for name in row["runs"].split(";")]
        assert {r.config.hidden_size for r in runs} == {int(row["hidden_size"])}
        val = [100 * r.record.best["val_accuracy"] for r in runs]
        test = [100 * r.record.best["test_accuracy"] for r in runs]
        assert float(row["val_mean"]) == pytest.approx(statistics.mean(val), abs=1e-12)
        assert float(row["val_sd"]) == pytest.approx(statistics.stdev(val), abs=1e-12)
        assert float(row["test_mean"]) == pytest.approx(statistics.mean(test), abs=1e-12)
    md = (out / "results.md").read_text()
    assert "Welch's t-test" in md and md.count("\n- hidden_size: ") == 1 and "- activation: " in md


def test_a_rerun_trains_nothing(grid_study, mnist_dir):
    out, _ = grid_study
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/run.json")}
    proc = study(*GRID, "--output-dir", out, mnist_dir=mnist_dir)
    assert proc.returncode == 0, proc.stderr
    assert "8 runs already finished, 0 to train" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/run.json")} == before


@pytest.mark.parametrize("change, needle", [(["--epochs", "3"], "2 epochs per run"),
                                            (["--optimizer", "sgd"], "optimizer momentum there")])
def test_another_base_or_epochs_for_the_same_folder_is_refused(grid_study, mnist_dir, change, needle):
    out, _ = grid_study
    before = (out / "study.json").read_text()
    args = list(GRID)
    if change[0] == "--epochs":
        args[args.index("--epochs") + 1] = change[1]
    else:
        args += change
    proc = study(*args, "--output-dir", out, mnist_dir=mnist_dir)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert (out / "study.json").read_text() == before


def test_compare_draws_the_study_folder_as_bands(grid_study, mnist_dir, tmp_path):
    out, _ = grid_study
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ROOT / "compare.py"), str(out), "--save", str(tmp_path / "c.png")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c.png").is_file()


def test_an_interrupted_study_resumes(tmp_path, mnist_dir):
    """SIGINT or SIGTERM mid-study, three times: the study stops within seconds with
    130/143, no run stays 'running', and the same command then finishes it with the
    runs' histories equal to an uninterrupted study's."""
    out = tmp_path / "stopped"
    args = ["--grid", "hidden_size=16,32", "--seeds", "2", "--epochs", "3", "--limit", "3000", "--jobs", "2"]
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    stops = 0
    pick = random.Random()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen([sys.executable, str(ROOT / "study.py"), *args, "--output-dir", str(out)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        # The signal lands at a random moment once a run is being trained (a fixed delay
        # found the study already finished on a quiet machine, and still running on a busy one).
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not any(
                '"running"' in p.read_text(errors="replace") for p in out.glob("*/run.json")):
            time.sleep(0.05)
        time.sleep(pick.uniform(0, 1.5))
        proc.send_signal(signum)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:  # it finished before the signal
            break
        stops += 1
        assert proc.returncode == 128 + signum, err
        assert time.monotonic() - sent < 20 and "Traceback" not in err
        for run_json in out.glob("*/run.json"):
            assert Run.load(run_json.parent).record.status in ("completed", "interrupted")
    assert stops >= 1
    done = study(*args, "--output-dir", out, mnist_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    whole = tmp_path / "whole"
    assert study(*args, "--output-dir", whole, mnist_dir=mnist_dir).returncode == 0
    assert histories(out) == histories(whole) and len(histories(out)) == 4


STOPPED = ["--grid", "hidden_size=16,32", "--seeds", "2", "--epochs", "3", "--limit", "3000", "--jobs", "2"]


@pytest.fixture(scope="module")
def whole_study(tmp_path_factory, mnist_dir):
    """STOPPED's study trained without a stop: the histories a stopped one must end with."""
    whole = tmp_path_factory.mktemp("whole") / "whole"
    assert study(*STOPPED, "--output-dir", whole, mnist_dir=mnist_dir).returncode == 0
    return histories(whole)


def _kill_worker_of(out: Path, name: str | None, spared: set[int], pick: random.Random,
                    proc, timeout: float = 60, within: float = 0.8) -> tuple[str, int] | None:
    """SIGKILL the worker process training run `name` (any run when None) once a worker
    not in spared is marked on it, at a random moment; (run, pid), or None if the study
    ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        for mark in (out / ".workers").glob("*") if (out / ".workers").is_dir() else []:
            try:
                pid = int(mark.read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if (name is None or mark.name == name) and pid not in spared:
                time.sleep(pick.uniform(0, within))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                return mark.name, pid
        time.sleep(0.02)
    return None


def _start(out: Path, mnist_dir) -> subprocess.Popen:
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, str(ROOT / "study.py"), *STOPPED, "--output-dir", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def test_a_killed_local_worker_loses_only_its_runs_uncommitted_epoch(tmp_path, mnist_dir, whole_study):
    """SIGKILL to a worker process mid-run (joblib then kills its other workers too): the
    study goes on in a new pool, says so, and ends with every run completed and the
    histories of a study never killed."""
    out = tmp_path / "killed"
    proc = _start(out, mnist_dir)
    killed = _kill_worker_of(out, None, set(), random.Random(), proc)
    stdout, err = proc.communicate(timeout=300)
    assert killed, "the study ended before a worker could be killed"
    assert proc.returncode == 0, stdout + err
    said = " ".join(stdout.split())
    assert "a worker process died: " in said and "Traceback" not in err
    assert killed[0] in said.split("a worker process died: ")[1].split(" go")[0]
    assert histories(out) == whole_study and len(whole_study) == 4
    assert not (out / ".workers").exists()


def test_a_run_whose_worker_keeps_dying_is_lost_alone_and_the_rerun_finishes_it(tmp_path, mnist_dir,
                                                                               whole_study):
    """The worker under one run killed three times (twice among the others, once alone):
    that run is given up as lost, named, with what to do; the others complete; the same
    command again finishes it, with the histories of a study never killed."""
    out = tmp_path / "dying"
    proc = _start(out, mnist_dir)
    pick, spared, victim = random.Random(), set(), None
    for _ in range(3):
        killed = _kill_worker_of(out, victim, spared, pick, proc, within=0.2)
        assert killed, "the study ended before the worker could be killed: " + str(proc.communicate())
        victim = killed[0]
        spared.add(killed[1])
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in err, stdout + err
    said = " ".join(stdout.split())
    assert f"LOST {victim}: its worker process died while it trained alone" in said
    assert "run the same command again to resume it" in said and victim in err
    runs = {p.parent.name: Run.load(p.parent).record.status for p in out.glob("*/run.json")}
    assert all(status == "completed" for name, status in runs.items() if name != victim)
    assert len(runs) >= 3
    again = study(*STOPPED, "--output-dir", out, mnist_dir=mnist_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert histories(out) == whole_study


@pytest.mark.parametrize("spec, needle", [
    (["--grid", "hidden=16"], "unknown setting 'hidden'; the settings are layers"),
    (["--grid", "hidden_size=0"], "hidden_size=0 is out of range: hidden_size is a whole number >= 1 and <= 4096"),
    (["--grid", "dropout=0.5,1"], "dropout is a number >= 0 and < 1"),
    (["--grid", "activation=tanh"], "activation is one of relu, sigmoid"),
    (["--grid", "hidden_size="], "hidden_size=: an empty value"),
    (["--grid", "hidden_size=16,,32"], "an empty value"),
    (["--grid", ""], "--grid is empty"),
    (["--random", "3", "l2=1e-3..0"], "the range's minimum 1e-3 is above its maximum 0"),
    (["--random", "3", "l2=0..1e-3:log"], "a :log range needs both ends above 0"),
    (["--random", "3", "learning_rate=-1..1e-3"], "learning_rate is a number > 0"),
    (["--grid", "hidden_size=16..32"], "ranges LOW..HIGH are for --random"),
    (["--random", "0", "l2=0..1"], "N is 0"),
    (["--grid", "seed=1,2"], "the study sets it with --seeds"),
    (["--grid", "hidden_size=" + ",".join(map(str, range(1, 501))), "--seeds", "3"], "1,500 runs"),
    (["--grid", "hidden_size=16", "--optimizer", "rmsprop"], "--optimizer"),
])
def test_invalid_specs_are_one_line_exit_2_nothing_trained(spec, needle, tmp_path, mnist_dir):
    out = tmp_path / "never"
    proc = study(*spec, "--output-dir", out, mnist_dir=mnist_dir, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists() and proc.stdout == ""


def test_random_is_reproducible_from_seed_and_within_its_ranges():
    base = RunConfig.create(layers=2, normalization="normal", init="xavier", activation="relu", l1=False,
                            decay=False, optimizer="momentum", epochs=1, seed=0)
    settings = search.parse_spec("learning_rate=1e-4..1e-1:log l2=0..1e-3 hidden_size=16..256:log "
                                 "activation=relu,sigmoid", "--random")
    a = search.random_points(base, settings, 200, seed=5)
    assert [p.config for p in a] == [p.config for p in search.random_points(base, settings, 200, seed=5)]
    assert [p.config for p in a] != [p.config for p in search.random_points(base, settings, 200, seed=6)]
    lrs = [p.config.learning_rate for p in a]
    assert all(1e-4 <= x <= 1e-1 for x in lrs)
    assert all(0 <= p.config.l2 <= 1e-3 for p in a)
    assert all(16 <= p.config.hidden_size <= 256 and isinstance(p.config.hidden_size, int) for p in a)
    assert {p.config.activation for p in a} == {"relu", "sigmoid"}
    # log-uniform: about a third of the draws in each decade
    logs = [math.log10(x) for x in lrs]
    assert 40 < sum(-3 <= x < -2 for x in logs) < 95


@pytest.mark.parametrize("t, df, p", [
    (2.0, 10, 0.0733880347707404), (1.0, 1, 0.5), (0.0, 5, 1.0), (3.5, 4.7, 0.01914),
    (-2.228138851986, 10, 0.05), (10.0, 30, 4.5752514e-11),
])
def test_t_p_values_are_the_known_ones(t, df, p):
    assert search.t_two_sided_p(t, df) == pytest.approx(p, rel=2e-3)


def test_welch_against_a_hand_computed_case_and_scipy():
    a, b = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4], \
        [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    w = search.welch(a, b)  # Welch (1947)'s example as Wikipedia gives it: t = -2.46, df = 24.99, p = 0.021
    assert w.t == pytest.approx(-2.46, abs=0.01) and w.df == pytest.approx(24.99, abs=0.01)
    assert w.p == pytest.approx(0.021, abs=0.001)
    scipy = pytest.importorskip("scipy.stats")
    ref = scipy.ttest_ind(a, b, equal_var=False)
    assert w.t == pytest.approx(ref.statistic, rel=1e-12) and w.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert search.welch([1, 1], [1, 1]).p == 1.0 and search.welch([2, 2], [1, 1]).p == 0.0


def test_the_same_study_on_a_dask_local_cluster_equals_joblib(grid_study, tmp_path, mnist_dir):
    """processes=True, 2 workers, started and stopped here: identical histories but wall time."""
    distributed = pytest.importorskip("distributed")
    joblib_out, _ = grid_study
    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        proc = study(*GRID, "--output-dir", out, "--scheduler", cluster.scheduler_address, mnist_dir=mnist_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on the Dask cluster" in proc.stdout
    assert histories(out) == histories(joblib_out) and len(histories(out)) == 8


def test_a_killed_dask_worker_loses_only_its_runs_uncommitted_epoch(tmp_path, mnist_dir, whole_study):
    """SIGKILL to a Dask worker process mid-run: its nanny starts another, the scheduler gives
    the run to a worker again, and it resumes; every run completes with the histories of a
    study never killed."""
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask-killed"
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        proc = subprocess.Popen([sys.executable, str(ROOT / "study.py"), *STOPPED, "--output-dir", str(out),
                                 "--scheduler", cluster.scheduler_address], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not any(
                '"running"' in p.read_text(errors="replace") for p in out.glob("*/run.json")):
            time.sleep(0.02)
        time.sleep(random.uniform(0, 0.5))
        os.kill(random.choice(pids), signal.SIGKILL)
        stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + err
    assert "Traceback" not in err
    assert histories(out) == whole_study


def test_an_unreachable_scheduler_is_one_line_within_seconds(tmp_path, mnist_dir):
    pytest.importorskip("distributed")
    start = time.monotonic()
    proc = study(*GRID, "--output-dir", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:9", mnist_dir=mnist_dir)
    assert time.monotonic() - start < 20
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "cannot reach the Dask scheduler" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_second_study_on_the_same_folder_refuses_in_one_line(tmp_path, mnist_dir):
    from kit.fsutil import RunLock
    out = tmp_path / "busy"
    out.mkdir()
    lock = RunLock(out)
    assert lock.acquire()
    try:
        proc = study(*GRID, "--output-dir", out, mnist_dir=mnist_dir)
    finally:
        lock.release()
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and ".lock" in proc.stderr
    assert not list(out.glob("*/run.json"))


def test_a_study_of_ones_own_starts_from_the_built_in_baseline():
    """kit/own_study.py's BASELINE is study.py's baseline entry, setting for setting."""
    import study
    from kit import own_study
    assert RunConfig.create(**own_study.BASELINE, epochs=3, seed=0) == study.BASELINE.run_config(3, 0)
