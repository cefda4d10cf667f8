"""Atomic file writes: a reader sees the old file whole or the new file whole, never a part.

The content goes to a temporary file in the same directory (a rename is atomic only within one
file system), is flushed and fsync'ed, and only then renamed over the target with
:func:`os.replace`. A process killed at any point leaves the old file untouched; killed between
the write and the rename, it also leaves its hidden temporary file (``.NAME.PID.XXXXXXXX.tmp``)
behind, whole but unused, which the next write of that file removes (its PID no longer runs). ``DLHW_FAULT=kill-before-rename:NAME`` (:mod:`dlhw.core.faults`) kills it
exactly there, so tests can show both.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dlhw.core.faults import kill_if_named
from dlhw.core.jsonl import json_line

FAULT = "kill-before-rename"
"""The fault kind :func:`write_bytes_atomic` answers to: ``DLHW_FAULT=kill-before-rename:eval.json``."""


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path``: the process id and random bytes keep writers apart."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` that writers killed before their rename left behind
    (``.NAME.PID.XXXXXXXX.tmp`` of a PID that no longer runs); return them. A live writer's file is kept.
    It lists ``path``'s folder: for a folder that gains a file per input (WAVs), call
    :func:`remove_stale_temporaries_in` once per job instead."""
    return _remove_dead(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def remove_stale_temporaries_in(folder: Path) -> list[Path]:
    """:func:`remove_stale_temporaries` for every file of ``folder`` at once (nothing when it does not exist)."""
    return _remove_dead(folder.glob(".*.tmp")) if folder.is_dir() else []


def _remove_dead(candidates: Iterable[Path]) -> list[Path]:
    removed = []
    for tmp in candidates:
        pid = tmp.name.split(".")[-3]  # .NAME.PID.XXXXXXXX.tmp (NAME may hold dots itself)
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (creating its folder); return ``path``.

    Args:
        path: The file to write.
        data: Its whole new content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    # os.open with 0o666 lets the umask decide the mode, as open() would for the file itself
    # (mkstemp would leave 0o600, and a run shared with a container or a colleague turns unreadable).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
        kill_if_named(FAULT, path.name)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically (see :func:`write_bytes_atomic`); return ``path``.

    Args:
        path: The file to write.
        text: Its whole new content.
        encoding: How ``text`` is encoded.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 2, ensure_ascii: bool = False) -> Path:
    """Replace ``path`` with ``data`` as JSON atomically (see :func:`write_bytes_atomic`); return ``path``.

    The text is exactly ``json.dumps(data, indent=indent, ensure_ascii=ensure_ascii)``, UTF-8, with
    no trailing newline -- what dlhw's run files always held.

    Args:
        path: The file to write.
        data: Anything :func:`json.dumps` takes.
        indent: Spaces per level; None for one compact line.
        ensure_ascii: Escape non-ASCII characters (Persian text stays readable by default).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    # serialized before the temporary file exists: a value JSON cannot hold fails with nothing on disk
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=ensure_ascii))


def write_jsonl_atomic(path: str | Path, records: Iterable[Any], *, ensure_ascii: bool = False) -> Path:
    """Replace ``path`` with one JSON line per record, atomically (see :func:`write_bytes_atomic`).

    For files written in one go (predictions, probes); files that grow record by record as a job
    runs (``metrics.jsonl``, batch outputs) are appended and flushed instead.

    Args:
        path: The file to write.
        records: Anything :func:`json.dumps` takes, one per line.
        ensure_ascii: Escape non-ASCII characters.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return write_text_atomic(path, "".join(json_line(r, ensure_ascii=ensure_ascii) for r in records))


def _sync_folder(folder: Path) -> None:
    """fsync the folder so the rename itself survives a power cut (POSIX; Windows cannot open a folder)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
