"""Fault injection for tests: kill the process at a deterministic point.

``DLHW_FAULT`` holds one instruction; the training callback, the batch-job runner (and the Ray
engine's actors) and the atomic writer (:mod:`dlhw.core.atomic`) read it:

| value | where the process dies (SIGKILL, as an OOM killer or a power cut would) |
|---|---|
| ``kill-after-step:N`` | training: right after optimizer step N, before that step is logged or saved |
| ``kill-after-batch:N`` | batch jobs: right after the records of the N-th batch are written and flushed |
| ``stop-after-batch:N`` | batch jobs: the same point, but SIGSTOP: the process stays, holding its locks, until a test kills it (``waitpid(..., WUNTRACED)`` sees it stop) |
| ``kill-actor-at-batch:N`` | batch jobs on Ray (``--engine ray``): the actor computing the N-th batch, before it returns the records; once per job (Ray restarts the actor and retries the batch) |
| ``kill-before-rename:NAME`` | atomic writes: the new content of the file named NAME (``eval.json``) is whole on disk in its temporary file, and not yet renamed over NAME |
| ``kill-at:POINT`` | a named point of a long command (``export-parity``, ``export-swap-old-moved``, ...: :func:`kill_at` calls name them) |

This is a testing aid: kill-and-resume tests stop a job at an exact point instead of racing a
timer, so they pass the same on a slow CPU and a fast GPU. Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

from dlhw.errors import ConfigError

VARIABLE = "DLHW_FAULT"
COUNTED = ("kill-after-step", "kill-after-batch", "stop-after-batch", "kill-actor-at-batch")
"""Kinds that take a count: ``kind:N``."""
NAMED = ("kill-before-rename", "kill-at")
"""Kinds that take a file name: ``kind:NAME``."""
KINDS = (*COUNTED, *NAMED)


def _instruction() -> tuple[str, str] | None:
    """``(kind, argument)`` of ``DLHW_FAULT``, None when unset; a usage error when malformed."""
    value = os.environ.get(VARIABLE, "").strip()
    if not value:
        return None
    kind, sep, argument = value.partition(":")
    if not sep or not ((kind in COUNTED and argument.isdigit()) or (kind in NAMED and argument)):
        expected = [k + ":N" for k in COUNTED] + [k + ":NAME" for k in NAMED]
        raise ConfigError(f"{VARIABLE}={value!r}: expected one of {', '.join(expected)}")
    return kind, argument


def fault_point(kind: str) -> int | None:
    """N of ``DLHW_FAULT=<kind>:N``, or None when no fault of that kind is asked for."""
    found = _instruction()
    return int(found[1]) if found is not None and found[0] == kind and kind in COUNTED else None


def fault_name(kind: str) -> str | None:
    """NAME of ``DLHW_FAULT=<kind>:NAME``, or None when no fault of that kind is asked for."""
    found = _instruction()
    return found[1] if found is not None and found[0] == kind and kind in NAMED else None


def kill_if_reached(kind: str, count: int) -> None:
    """SIGKILL this process when ``DLHW_FAULT`` asks for ``kind`` at ``count`` (SIGSTOP for a ``stop-`` kind)."""
    if fault_point(kind) == count:
        os.kill(os.getpid(), signal.SIGSTOP if kind.startswith("stop-") else signal.SIGKILL)


def kill_if_named(kind: str, name: str) -> None:
    """SIGKILL this process when ``DLHW_FAULT`` asks for ``kind`` on the file named ``name``."""
    if fault_name(kind) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def kill_at(point: str) -> None:
    """SIGKILL this process at the named point ``point`` when ``DLHW_FAULT=kill-at:<point>``."""
    kill_if_named("kill-at", point)
