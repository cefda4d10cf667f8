"""Fault injection for tests: kill the process at a deterministic point.

``DLHW_FAULT`` holds one instruction; the training callback and the batch-job runner read it:

| value | where the process dies (SIGKILL, as an OOM killer or a power cut would) |
|---|---|
| ``kill-after-step:N`` | training: right after optimizer step N, before that step is logged or saved |
| ``kill-after-batch:N`` | batch jobs: right after the records of the N-th batch are written and flushed |

This is a testing aid: kill-and-resume tests stop a job at an exact point instead of racing a
timer, so they pass the same on a slow CPU and a fast GPU. Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

from dlhw.errors import ConfigError

VARIABLE = "DLHW_FAULT"
KINDS = ("kill-after-step", "kill-after-batch")


def fault_point(kind: str) -> int | None:
    """N of ``DLHW_FAULT=<kind>:N``, or None when no fault of that kind is asked for."""
    value = os.environ.get(VARIABLE, "").strip()
    if not value:
        return None
    name, sep, count = value.partition(":")
    if name not in KINDS or not sep or not count.isdigit():
        raise ConfigError(f"{VARIABLE}={value!r}: expected one of {', '.join(k + ':N' for k in KINDS)}")
    return int(count) if name == kind else None


def kill_if_reached(kind: str, count: int) -> None:
    """SIGKILL this process when ``DLHW_FAULT`` asks for ``kind`` at ``count``."""
    if fault_point(kind) == count:
        os.kill(os.getpid(), signal.SIGKILL)
