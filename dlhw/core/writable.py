"""A folder that cannot be written, said in one line: which folder, and the system's reason.

A command writes into many places (a new run directory, a run's plots and ``eval.json``, an export
directory, a batch job's output), through many writers. When the folder is on a read-only mount or
belongs to another user, the writer's ``OSError`` names one file deep inside it;
:func:`not_writable` turns such an error into the line a user can act on, once, where the command
line ends (:func:`dlhw.cli.main`):

``error: runs/ner/plots is not writable (Read-only file system); make it writable or choose another
folder (runs/ner/plots/confusion_types.png could not be written)``
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from dlhw.errors import DlhwError

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def not_writable(err: OSError) -> DlhwError | None:
    """The one-line error for an ``OSError`` that a folder refused a write, or None for any other.

    A read-only file system (``EROFS``) is always a refused write. A permission error (``EACCES``,
    ``EPERM``) is one unless the file exists and cannot be read, which is a refused read and is
    said so.

    Args:
        err: what a writer raised; only errors that name their file are translated.

    Returns:
        The error to print (exit code 1), or None to let ``err`` through unchanged.
    """
    if err.errno not in _DENIED or not err.filename:
        return None
    path = Path(os.fsdecode(err.filename))
    reason = err.strerror or os.strerror(err.errno or 0)
    if err.errno != errno.EROFS and path.exists() and not os.access(path, os.R_OK):
        return DlhwError(f"{path}: cannot be read ({reason}); check its permissions")
    folder = path if path.is_dir() else path.parent
    written = "" if folder == path else f" ({path} could not be written)"
    return DlhwError(f"{folder} is not writable ({reason}); make it writable or choose another folder{written}")
