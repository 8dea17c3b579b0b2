"""kit/fsutil.py: files replaced atomically (the old file or the new one, never half of either,
and nothing left behind by a writer that fails) and the run folder's lock, held by one process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kit import fsutil
from kit.fsutil import RunLock, atomic_file, atomic_files, is_locked, write_json

ROOT = Path(__file__).resolve().parents[1]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old\n")
    with atomic_file(path, "w") as f:
        f.write("new\n")
        assert path.read_text() == "old\n"  # nothing changes before the block ends
    assert path.read_text() == "new\n"
    assert listing(tmp_path) == ["history.csv"]


def test_a_writer_that_raises_leaves_the_old_file_intact_and_no_temporary(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"old": true}\n')
    with pytest.raises(RuntimeError, match="disk"):
        with atomic_file(path, "w") as f:
            f.write('{"new": ')
            raise RuntimeError("disk full, say")
    assert path.read_text() == '{"old": true}\n'
    assert listing(tmp_path) == ["run.json"]


def test_a_failing_writer_of_a_new_file_creates_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(tmp_path / "weights_1.csv", "w") as f:
            f.write("1,2,3\n")
            raise KeyboardInterrupt
    assert listing(tmp_path) == []


def test_several_files_are_replaced_together_or_not_at_all(tmp_path):
    paths = [tmp_path / f"weights_{i}.csv" for i in (1, 2, 3)]
    for p in paths:
        p.write_text("old\n")
    with pytest.raises(OSError):
        with atomic_files(paths, "w") as files:
            files[0].write("new\n")
            files[1].write("new\n")
            raise OSError(28, "No space left on device")  # while the third is written
    assert [p.read_text() for p in paths] == ["old\n"] * 3
    with atomic_files(paths, "w") as files:
        for f in files:
            f.write("new\n")
    assert [p.read_text() for p in paths] == ["new\n"] * 3
    assert listing(tmp_path) == ["weights_1.csv", "weights_2.csv", "weights_3.csv"]


def test_a_saved_file_gets_the_ordinary_mode_not_mkstemps_0600(tmp_path):
    path = tmp_path / "a.txt"
    with atomic_file(path, "w", sync=False) as f:
        f.write("x")
    assert path.stat().st_mode & 0o777 == fsutil.FILE_MODE
    mask = os.umask(0)
    os.umask(mask)
    assert fsutil.FILE_MODE == 0o666 & ~mask


def test_a_reader_sees_the_old_file_or_the_new_one_never_half(tmp_path):
    """A writer replaces a 1 MB file 100 times with all-A or all-B bytes while a reader reads
    it over and over: every read is one whole version."""
    path = tmp_path / "big.bin"
    size = 1 << 20
    path.write_bytes(b"A" * size)
    done = threading.Event()

    def writer():
        for i in range(100):
            fsutil.atomic_write_bytes(path, (b"B" if i % 2 == 0 else b"A") * size)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads == 0:
        data = path.read_bytes()
        assert len(data) == size and data.count(data[:1]) == size
        reads += 1
    thread.join()
    assert listing(tmp_path) == ["big.bin"]


def test_write_json_is_readable_utf8_with_a_final_newline(tmp_path):
    path = tmp_path / "run.json"
    write_json(path, {"name": "Zoë's run", "epochs": 3})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "Zoë" in text
    assert json.loads(text) == {"name": "Zoë's run", "epochs": 3}


# ---- the run lock ----------------------------------------------------------------------------

HOLDER = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from kit.fsutil import RunLock
lock = RunLock(Path(sys.argv[2]))
print("held" if lock.acquire() else "refused", flush=True)
sys.stdin.read()  # hold it until told to go (or killed)
"""


def holder(run_dir: Path) -> subprocess.Popen:
    """Another process that takes run_dir's lock and keeps it; its first line says whether it got it."""
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT), str(run_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_run_lock_refuses_a_second_holder_from_another_process(tmp_path):
    child = holder(tmp_path)
    try:
        assert child.stdout.readline().strip() == "held"
        lock = RunLock(tmp_path)
        assert not lock.acquire()
        assert is_locked(tmp_path)
    finally:
        child.kill()  # SIGKILL: the system releases the lock however the holder dies
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert not is_locked(tmp_path)
    assert lock.acquire()
    try:
        other = holder(tmp_path)  # and now the other process is refused
        assert other.stdout.readline().strip() == "refused"
        other.communicate("", timeout=30)
        assert is_locked(tmp_path)
    finally:
        lock.release()
    assert not is_locked(tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_run_lock_is_exclusive_within_one_process_too_and_released_by_release(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    first.release()  # a second release does nothing
    assert second.acquire()
    second.release()


def test_a_folder_without_a_lock_file_is_not_locked(tmp_path):
    assert not is_locked(tmp_path)
    assert not is_locked(tmp_path / "gone")
