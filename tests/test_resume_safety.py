"""Resumes that cannot lose what a run holds, done to real train.py processes: a resume
delayed between its first read and the lock (it must not roll back what another resume
committed), symbolic links inside a run (never followed for clean-up), a disk that fills
during a resume (the run resumes once space is freed), and the files people edit."""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import QUICK, ROOT, assert_fails, child_env, flags, hostile, run_train, show, snapshot

from kit.record import Run


def _train(out: Path, name: str, env: dict, *extra: str, epochs: int = 2) -> Path:
    proc = run_train([*flags(epochs=str(epochs)), *QUICK, "--output-dir", out, "--name", name, *extra],
                     env=env)
    assert proc.returncode == 0, show(proc)
    return out / name


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, mnist_dir) -> Path:
    """A completed 2-epoch run, copied by each test that changes it."""
    return _train(tmp_path_factory.mktemp("base"), "base", child_env(mnist_dir))


def _check_whole(run_dir: Path, epochs: int) -> None:
    """run_dir loads, names a checkpoint that exists, and its history, weights and states agree."""
    run = Run.load(run_dir)
    assert run.record.epochs_completed == epochs
    assert [r["epoch"] for r in run.history()] == list(range(1, epochs + 1))
    assert (run_dir / run.record.last["checkpoint"]).is_dir()
    run.network("last"), run.network("best"), run.training_state()


# ---- 1. a delayed resume decides from the record it reads under the lock -----------------

# Runs train.py with RunLock.acquire stopping its own process (SIGSTOP) first: the resume
# has read what it reads before the lock, and waits there until the test sends SIGCONT.
STOP_BEFORE_LOCK = """
import os, runpy, signal, sys
sys.path.insert(0, os.getcwd())
from kit import fsutil
acquire = fsutil.RunLock.acquire
def stopped_acquire(self):
    os.kill(os.getpid(), signal.SIGSTOP)
    return acquire(self)
fsutil.RunLock.acquire = stopped_acquire
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _delayed_resume(run_dir: Path, env: dict, delay: float | None) -> tuple[subprocess.CompletedProcess,
                                                                             int, str]:
    """Start a resume to 3 epochs (B) and stop it: delay seconds after its start, or (delay
    None) just before it takes the run's lock, after every read it makes before the lock.
    Resume the run to 5 epochs meanwhile (A); then let B go on. Returns A, B's exit code
    and its output."""
    launcher = ["-c", STOP_BEFORE_LOCK] if delay is None else ["train.py"]
    b = subprocess.Popen([sys.executable, *launcher, "--resume", str(run_dir), "--epochs", "3", "--no-show"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if delay is None:
            _, status = os.waitpid(b.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status), status
        else:
            time.sleep(delay)
            b.send_signal(signal.SIGSTOP)
        a = run_train(["--resume", run_dir, "--epochs", "5", "--no-show"], env=env)
    finally:
        with contextlib.suppress(ProcessLookupError):
            b.send_signal(signal.SIGCONT)
    out, err = b.communicate(timeout=120)
    return a, b.returncode, out + err


@hostile
@pytest.mark.parametrize("delay", [None, "random", "random"])
def test_a_delayed_resume_never_rolls_back_another(delay, base_run, mnist_dir, tmp_path):
    env = child_env(mnist_dir)
    run_dir = tmp_path / "run"
    shutil.copytree(base_run, run_dir)
    pause = None if delay is None else random.uniform(0.0, 1.5)
    a, b_code, b_text = _delayed_resume(run_dir, env, pause)
    assert "Traceback" not in a.stdout + a.stderr + b_text, (show(a), b_text)
    if a.returncode == 0:
        # A committed epochs 3-5: B, holding a record of 2 epochs, must refuse (it asked for 3
        # in all) or it would end 'Completed 3 epochs' and delete epochs 4-5.
        assert b_code == 2 and "below the 5 epochs" in b_text, (pause, b_text)
        _check_whole(run_dir, 5)
    else:
        # B took the lock before it was stopped: A is refused, and B trains to 3.
        assert_fails(a, 2, "is being written by a running train.py")
        assert b_code == 0, (pause, b_text)
        _check_whole(run_dir, 3)
    if delay is None:
        assert a.returncode == 0, show(a)  # stopped after its first read, before the lock


@hostile
def test_a_resume_given_a_stale_record_refuses(base_run, mnist_dir, tmp_path):
    """In-process: RunWriter.resume re-reads the record under the lock, whoever calls it."""
    from kit.config import RunError
    from kit.record_writer import RunWriter
    run_dir = tmp_path / "run"
    shutil.copytree(base_run, run_dir)
    stale = Run.load(run_dir)
    proc = run_train(["--resume", run_dir, "--epochs", "4", "--no-show"], env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    with pytest.raises(RunError, match="changed after it was read"):
        RunWriter.resume(stale, stale.config)
    _check_whole(run_dir, 4)


# ---- 3. clean-up stays inside its run -----------------------------------------------------

@hostile
@pytest.mark.parametrize("where", ["checkpoints", "checkpoints/epoch-0001"])
def test_a_symlink_inside_a_run_is_refused_and_never_followed(where, base_run, mnist_dir, tmp_path):
    other, run_dir = tmp_path / "other", tmp_path / "run"
    shutil.copytree(base_run, other)
    shutil.copytree(base_run, run_dir)
    link = run_dir / where
    if where == "checkpoints":  # the whole folder: another run's checkpoints seen as this one's
        shutil.rmtree(link)
        link.symlink_to(other / "checkpoints")
    else:  # a stale-looking entry that the clean-up of old epochs would remove
        link.symlink_to(other / "checkpoints" / "epoch-0002")
    before = snapshot(other)
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=child_env(mnist_dir))
    assert_fails(proc, 2, str(link), "symbolic link", "not resumed")
    assert snapshot(other) == before  # the other run's checkpoint survives, untouched
    assert link.is_symlink()
    _check_whole(other, 2)


@hostile
def test_a_run_folder_that_is_itself_a_link_resumes(base_run, mnist_dir, tmp_path):
    """The run reached through a link is that run: only links below it are refused."""
    real = tmp_path / "real"
    shutil.copytree(base_run, real)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "linked").symlink_to(real)
    proc = run_train(["--resume", tmp_path / "runs" / "linked", "--epochs", "3", "--no-show"],
                     env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    _check_whole(real, 3)


# ---- 4. a full disk: the run keeps its epochs and resumes once space is freed --------------

@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path, leave: int) -> Path:
    """A ballast file that leaves about `leave` bytes free on disk."""
    ballast = disk / "ballast"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(ballast, "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * max(0, free - leave))
    return ballast


@hostile
@pytest.mark.parametrize("leave", [0, 300_000])
def test_a_full_disk_keeps_the_run_resumable(leave, small_disk, mnist_dir):
    """leave 0: not even the record can be written (the run is unchanged); 300 kB: the
    record can, a checkpoint (700 kB) cannot (the run fails, and says why)."""
    env = child_env(mnist_dir)
    run_dir = _train(small_disk, "run", env, epochs=1)
    ballast = _fill(small_disk, leave)
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=env)
    line = assert_fails(proc, (1, 2), "No space left on device", "disk is full", "free some space")
    assert "learning-rate" not in line and "learning rate" not in line
    run = Run.load(run_dir)
    assert run.record.status in ("completed", "failed")
    if run.record.status == "failed":
        assert "disk is full" in run.record.failure and "failed after 1 epoch" in run.status_line()
    _check_whole(run_dir, 1)
    ballast.unlink()  # the cause is gone: the run continues where it stopped
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=env)
    assert proc.returncode == 0, show(proc)
    assert Run.load(run_dir).record.status == "completed"
    assert Run.load(run_dir).record.failure is None
    _check_whole(run_dir, 3)


@hostile
def test_a_read_only_disk_is_named_and_the_run_resumes_once_writable(small_disk, mnist_dir):
    env = child_env(mnist_dir)
    run_dir = _train(small_disk, "run", env, epochs=1)
    before = snapshot(run_dir)
    remount = ["mount", "-o", "remount,ro", str(small_disk)]
    assert subprocess.run(remount, capture_output=True).returncode == 0
    try:
        proc = run_train(["--resume", run_dir, "--epochs", "2", "--no-show"], env=env)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], capture_output=True)
    line = assert_fails(proc, 2, "Read-only file system", str(run_dir))
    assert "learning" not in line
    assert snapshot(run_dir) == before
    proc = run_train(["--resume", run_dir, "--epochs", "2", "--no-show"], env=env)
    assert proc.returncode == 0, show(proc)
    _check_whole(run_dir, 2)


# ---- 8. the files people open in a spreadsheet --------------------------------------------

@hostile
def test_an_edited_history_csv_is_kept_on_resume(base_run, mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(base_run, run_dir)
    edited = (run_dir / "history.csv").read_text() + "my note,,,\n"
    (run_dir / "history.csv").write_text(edited)
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    copies = list(run_dir.glob("history-edited-*.csv"))
    assert len(copies) == 1 and copies[0].read_text() == edited
    assert f"kept as {copies[0].name}" in " ".join(proc.stdout.split()), show(proc)
    assert [r["epoch"] for r in Run.load(run_dir).history()] == [1, 2, 3]
    # Unedited, nothing is copied or said.
    proc = run_train(["--resume", run_dir, "--epochs", "4", "--no-show"], env=child_env(mnist_dir))
    assert proc.returncode == 0 and "history-edited" not in proc.stdout, show(proc)
    assert len(list(run_dir.glob("history-edited-*.csv"))) == 1


@hostile
def test_a_checkpoint_history_with_a_bom_and_a_blank_line_resumes(base_run, mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(base_run, run_dir)
    history = run_dir / Run.load(run_dir).record.last["checkpoint"] / "history.csv"
    history.write_bytes(b"\xef\xbb\xbf" + history.read_bytes().replace(b"\n", b"\r\n") + b"\r\n\r\n")
    proc = run_train(["--resume", run_dir, "--epochs", "3", "--no-show"], env=child_env(mnist_dir))
    assert proc.returncode == 0, show(proc)
    _check_whole(run_dir, 3)
