"""Exclusive locks on what a command writes: a batch verb's ``--out``, a run directory.

Two processes writing one output interleave records (the same input answered twice) or delete
each other's files; the second writer is refused instead, with one line naming the first::

    error: answers.jsonl is being written by process 4242 (dlhw caption ...), lock .answers.jsonl.lock;
    wait for it to finish or stop it

The lock of ``P`` is the file ``.P.lock`` beside it (beside, not inside: a run directory being
created or replaced stays empty of it). It holds the owner's PID and command line, and is locked
with ``flock``: the kernel releases it when its process dies, however it dies (``kill -9``, a
power cut of the container), so a stale lock file is simply taken over by the next writer, which
logs whose lock it was. A lock is removed when its holder releases it.

Every :func:`holding` of the same path in one process shares one lock (a verb that locks its
``--out`` and then calls a library function that locks it again does not refuse itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from dlhw.errors import ConfigError, DlhwError

log = logging.getLogger(__name__)

_HELD: dict[str, tuple[int, int]] = {}
"""Absolute lock path -> (open descriptor, how many :func:`holding` blocks hold it) in this process."""


def lock_path(path: Path) -> Path:
    """Where the lock of ``path`` (a file or a directory) lives: ``.NAME.lock`` beside it."""
    path = Path(os.path.abspath(path))
    return path.with_name(f".{path.name}.lock")


def _holder(lock: Path) -> str:
    """What the lock file says of its owner: ``process 4242 (dlhw caption ...)``."""
    try:
        text = lock.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another process"
    pid, _, command = text.partition(" ")
    return f"process {pid} ({command})" if pid.isdigit() and command else \
        f"process {pid}" if pid.isdigit() else "another process"


def _acquire(lock: Path, what: str) -> int:
    """An open descriptor holding the exclusive flock of ``lock``; ConfigError when another holds it."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise DlhwError(f"{what}: its folder {lock.parent} is not writable (cannot create the lock file "
                            f"{lock.name}: {err.strerror or err})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"{what} is being written by {_holder(lock)}, lock {lock}; wait for it to finish "
                              "or stop it") from None
        # the file may have been removed (and made anew) by a holder releasing it after we opened it:
        # a lock on a removed file locks nothing, so try again on the one the name points at now
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def holding(path: str | Path, what: str | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``path`` for the block; yield the lock file's path.

    Args:
        path: The file or directory about to be written (it need not exist yet; its folder is made).
        what: How messages name it (default: ``path`` as given).

    Raises:
        ConfigError: another process holds it (the message names its PID and command): exit 2.
        DlhwError: the lock file cannot be made (a read-only folder): exit 1.
    """
    what = what or str(path)
    lock = lock_path(Path(path))
    key = str(lock)
    if key in _HELD:  # this process holds it already
        fd, count = _HELD[key]
        _HELD[key] = (fd, count + 1)
    else:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DlhwError(f"{what}: cannot create its folder {lock.parent} ({err.strerror or err})") from None
        fd = _acquire(lock, what)
        before = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if before:
            log.info("%s: taking over the lock of %s (no longer running)", what, _holder(lock))
        command = " ".join(["dlhw", *sys.argv[1:]])[:200].replace("\n", " ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode("utf-8", "backslashreplace"), 0)
        _HELD[key] = (fd, 1)
    try:
        yield lock
    finally:
        fd, count = _HELD[key]
        if count > 1:
            _HELD[key] = (fd, count - 1)
        else:
            del _HELD[key]
            with contextlib.suppress(OSError):
                lock.unlink()  # while still holding it: a waiter that opened it retries on a fresh file
            os.close(fd)
