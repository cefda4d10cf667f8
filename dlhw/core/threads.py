"""How many CPU threads dlhw's math libraries use: the CPUs this process may really use, decided once
when the CLI starts and handed to torch, OpenMP, MKL and every child process through the environment.

``os.cpu_count()`` counts the machine's cores: it ignores the CPU affinity (``taskset``, ``docker
--cpuset-cpus``) and a container's CPU quota (``docker --cpus 2`` on a 64-core host would mean 64
threads). Usable CPUs are ``min(len(os.sched_getaffinity(0)), ceil(cgroup CPU quota))``, at least 1;
the quota is read from cgroup v2 (``cpu.max``) or cgroup v1 (``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``), in the process's own cgroup and every cgroup above it.

The number of threads, first that applies: ``dlhw --threads N``; ``DLHW_THREADS``; ``OMP_NUM_THREADS``
set by the user; one thread for a tiny preset (:func:`prefer_for_preset`); the usable CPUs. The policy
sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` (a user's own ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
stay unless ``--threads`` or ``DLHW_THREADS`` is given) and ``OMP_WAIT_POLICY=PASSIVE`` unless set:
OpenMP workers that finished their share sleep instead of spinning, so two processes on one CPU
no longer take the cores from each other's working threads. Spinning is faster for a process that has
the machine to itself (up to 2x where steps are tiny) and ~15x slower for two at once; no
``GOMP_SPINCOUNT`` gives both, so a job with a machine of its own sets ``OMP_WAIT_POLICY=ACTIVE``
itself (a user's value is kept). These variables are read when
torch (and its OpenMP runtime) loads, so the CLI applies the policy before any command imports
torch; where torch is already imported, :func:`apply` also calls ``torch.set_num_threads``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from dlhw.errors import ConfigError

THREADS_ENV = "DLHW_THREADS"
"""The number of threads, where ``dlhw --threads`` is not given (torchrun workers get theirs here)."""

OMP_ENV = "OMP_NUM_THREADS"
MKL_ENV = "MKL_NUM_THREADS"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
WAIT_POLICY = "PASSIVE"

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")

TINY_PRESET_THREADS = 1
"""Threads for a tiny preset. Its matrix products are so small that a second, passively waiting
thread costs more in wake-ups than it saves (2 cores: ner tiny 9.1 s on one thread, 16.2 s on two;
the summarization base 5.4 vs 5.0 steps/s), and two tiny trainings at once then take 1x each instead of
15x (docs/BENCHMARKS.md)."""

# What this process's policy wrote, so that a second CLI invocation in the same process (tests) does
# not mistake its own OMP_NUM_THREADS for the user's.
_written: dict[str, str] = {}
_applied: ThreadDecision | None = None


@dataclass(frozen=True)
class UsableCpus:
    """The CPUs this process may use: its affinity and its cgroup quota (None: no quota)."""

    affinity: int
    quota: float | None

    @property
    def count(self) -> int:
        """``min(affinity, ceil(quota))``, at least 1."""
        limit = self.affinity if self.quota is None else min(self.affinity, math.ceil(self.quota))
        return max(1, limit)

    def describe(self) -> str:
        quota = "none" if self.quota is None else f"{self.quota:g} CPU{'' if self.quota == 1 else 's'}"
        return f"usable CPUs {self.count}: affinity {self.affinity}, cgroup quota {quota}"


@dataclass(frozen=True)
class ThreadDecision:
    """The number of threads and why: ``source`` is ``--threads``, ``DLHW_THREADS``,
    ``OMP_NUM_THREADS``, ``tiny preset`` or ``usable CPUs``."""

    threads: int
    source: str
    usable: UsableCpus

    def describe(self) -> str:
        """``2 (usable CPUs 2: affinity 2, cgroup quota none)``, naming the setting that chose it."""
        chosen = "" if self.source == "usable CPUs" else f"from {self.source}; "
        return f"{self.threads} ({chosen}{self.usable.describe()})"

    def as_dict(self) -> dict[str, object]:
        return {"threads": self.threads, "source": self.source, "usable_cpus": self.usable.count,
                "affinity": self.usable.affinity, "cgroup_quota": self.usable.quota}


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` (``"QUOTA PERIOD"`` in microseconds, ``"max PERIOD"``: no quota) -> CPUs."""
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    quota, period = int(fields[0]), int(fields[1])
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` (-1: no quota) over ``cpu.cfs_period_us`` -> CPUs."""
    quota, period = int(quota_text.strip()), int(period_text.strip())
    return quota / period if quota > 0 and period > 0 else None


def _ancestors(root: Path, cgroup_path: str) -> list[Path]:
    """``root/cgroup_path`` and each folder above it up to ``root`` (a parent's quota limits its
    children too); in a container the host's path is absent under its own ``root``, which is then
    the container's cgroup itself."""
    parts = [p for p in cgroup_path.strip().split("/") if p]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _smallest(quotas: list[float | None]) -> float | None:
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_quota(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroups, in CPUs (None: no quota, or no cgroup filesystem).

    ``proc_cgroup``: ``/proc/self/cgroup`` (lines ``ID:CONTROLLERS:PATH``); ``root``: where the cgroup
    filesystems are mounted. cgroup v1 (the ``cpu`` controller's folder, e.g. ``cpu`` or
    ``cpu,cpuacct``) is read where a line names the ``cpu`` controller; else cgroup v2 (the ``0::PATH``
    line) at ``root`` or, on a hybrid layout, ``root/unified``.
    """
    text = _read(proc_cgroup)
    if text is None:
        return None
    v2_path = None
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if "cpu" in controllers.split(","):
            folder = next((d for d in (root / controllers, root / "cpu") if d.is_dir()), None)
            if folder is None:
                continue
            quotas = []
            for d in _ancestors(folder, path):
                quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
                if quota is not None and period is not None:
                    quotas.append(parse_cfs(quota, period))
            return _smallest(quotas)
        if controllers == "":
            v2_path = path
    if v2_path is None:
        return None
    unified = root if (root / "cgroup.controllers").is_file() else root / "unified"
    return _smallest([parse_cpu_max(t) for d in _ancestors(unified, v2_path) if (t := _read(d / "cpu.max"))])


def affinity_cpus() -> int:
    """The CPUs this process may be scheduled on (``taskset``, ``--cpuset-cpus``); all cores where the
    platform has no affinity call."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_cpus() -> UsableCpus:
    """This process's affinity and cgroup quota; ``.count`` is the number of CPUs to size pools by."""
    return UsableCpus(affinity_cpus(), cgroup_cpu_quota())


def parse_threads(value: str, where: str) -> int:
    """A thread count from ``--threads`` or ``DLHW_THREADS``: a whole number, 1 or more."""
    try:
        threads = int(value.strip())
    except ValueError:
        threads = 0
    if threads < 1:
        given, example = (f"{where} {value}", f"{where} 2") if where.startswith("-") else \
            (f"{where}={value!r}", f"{where}=2")
        raise ConfigError(f"{given}: expected a whole number of threads, 1 or more (e.g. {example})")
    return threads


def _user_set(environ: Mapping[str, str], name: str) -> str | None:
    """``environ[name]`` where the user set it, None where unset or written by this process's policy."""
    value = environ.get(name)
    return None if value is None or _written.get(name) == value else value


def decide(option: str | None, environ: Mapping[str, str], usable: UsableCpus | None = None) -> ThreadDecision:
    """The number of threads: ``--threads`` (``option``), ``DLHW_THREADS``, the user's
    ``OMP_NUM_THREADS``, else the usable CPUs. Raises ConfigError for a bad ``--threads`` or
    ``DLHW_THREADS``; an ``OMP_NUM_THREADS`` that is not a positive number is left to OpenMP."""
    usable = usable or usable_cpus()
    if option is not None:
        return ThreadDecision(parse_threads(option, "--threads"), "--threads", usable)
    if (value := environ.get(THREADS_ENV)) is not None:
        return ThreadDecision(parse_threads(value, THREADS_ENV), THREADS_ENV, usable)
    omp = _user_set(environ, OMP_ENV)
    if omp is not None and omp.strip().isdigit() and int(omp) > 0:
        return ThreadDecision(int(omp), OMP_ENV, usable)
    return ThreadDecision(usable.count, "usable CPUs", usable)


def apply(decision: ThreadDecision, environ: MutableMapping[str, str] | None = None) -> None:
    """Hand ``decision`` to OpenMP, MKL and torch: the environment (read when torch loads, and
    inherited by child processes) and, where torch is already imported, ``torch.set_num_threads``."""
    global _applied
    env = os.environ if environ is None else environ
    explicit = decision.source in ("--threads", THREADS_ENV)
    for name in (OMP_ENV, MKL_ENV):
        if explicit or _user_set(env, name) is None:
            env[name] = _written[name] = str(decision.threads)
    if _user_set(env, WAIT_POLICY_ENV) is None:
        env[WAIT_POLICY_ENV] = _written[WAIT_POLICY_ENV] = WAIT_POLICY
    _applied = decision
    if environ is None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(decision.threads)


def applied() -> ThreadDecision:
    """The decision the CLI applied in this process, or the one it would make now."""
    return _applied if _applied is not None else decide(None, os.environ)


def prefer_for_preset(preset: str, environ: MutableMapping[str, str] | None = None) -> None:
    """One thread for a tiny preset, where the threads came from the usable CPUs alone (not from
    ``--threads``, ``DLHW_THREADS`` or ``OMP_NUM_THREADS``); ``environ`` as in :func:`apply`."""
    decision = applied()
    if preset == "tiny" and decision.source == "usable CPUs" and decision.threads > TINY_PRESET_THREADS:
        apply(ThreadDecision(TINY_PRESET_THREADS, "tiny preset", decision.usable), environ)


def worker_threads(nproc: int) -> dict[str, str]:
    """The environment of each of ``nproc`` processes sharing this one's threads (torchrun workers):
    ``threads // nproc`` each, at least 1; nothing where the user's own ``OMP_NUM_THREADS`` decided."""
    decision = applied()
    if decision.source == OMP_ENV:
        return {}
    each = str(max(1, decision.threads // nproc))
    return {THREADS_ENV: each, OMP_ENV: each, MKL_ENV: each}
