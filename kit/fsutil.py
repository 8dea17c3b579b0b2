"""File safety: atomic writes (a reader sees the old file or the new one, never half of
either), fsync of files and folders, and the lock that keeps two writers out of one run.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# ---- what a path is -----------------------------------------------------------------------

def not_regular_file(path) -> str | None:
    """Why path cannot be read as a file, or None: a FIFO, a device, a socket or a folder
    would block a read forever or fail half-way. Judged by stat, which never blocks; a
    missing path is None (opening it reports that)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"is {kind}, not a file"


def link_within(root: Path, path: Path) -> Path | None:
    """The first symbolic link met going down from root to path (path included), or None.
    root itself may be a link (a run folder linked from elsewhere is that run); links
    below it are what clean-up must never follow."""
    current = Path(root)
    for part in Path(path).relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def io_reason(err: OSError, run_dir) -> str:
    """What an I/O error while writing run_dir means, in words that name its real cause."""
    where = err.filename or run_dir
    what = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"cannot write {where} ({what}): the disk is full; free some space on it"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where} ({what}): the folder is not writable; check the "
                f"permissions of {run_dir} (or whether its disk is mounted read-only)")
    return f"cannot write {where} ({what}); check the disk and the permissions of {run_dir}"


# ---- atomic files -----------------------------------------------------------------------

def _file_mode() -> int:
    """The mode an ordinary new file gets here: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_files(paths, mode: str = "wb", sync: bool = True) -> Iterator[list[IO]]:
    """Replace several files together, the one way every writer here replaces a file.

    Yields one open file per path: each a uniquely named temporary file beside its path
    (concurrent writers never share a name). On a clean exit every file is flushed
    (and fsynced when sync), and only when all are complete are they renamed into
    place, so a full disk leaves every old file intact and a reader sees the old file
    or the new one, never half of either. On any error the temporary files go.
    """
    paths = [Path(p) for p in paths]
    temps: list[tuple[IO, str, Path]] = []
    try:
        for path in paths:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((os.fdopen(fd, mode), tmp, path))
        yield [f for f, _, _ in temps]
        for f, tmp, _ in temps:
            f.flush()
            if sync:
                os.fsync(f.fileno())
            f.close()
            os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; a saved file is as readable as any other
        for _, tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for f, tmp, _ in temps:
            with contextlib.suppress(OSError):
                f.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", sync: bool = True) -> Iterator[IO]:
    """One file replaced atomically (see atomic_files)."""
    with atomic_files([path], mode, sync) as (f,):
        yield f


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fsync_dir(path: Path) -> None:
    """Make a rename inside path durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



class RunLock:
    """An exclusive lock on a run folder, held while a process writes it. The system
    releases it when the process dies, however it dies, so a live writer is told apart
    from a run whose process was killed."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds run_dir's lock."""
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except ImportError:
            return False
        except OSError:
            return True
    finally:
        os.close(fd)
