"""Two trainings on one CPU: the thread policy (``dlhw.core.threads``) against the old behaviour.

One tiny training alone, then two of the same at once, each a ``dlhw train RECIPE --preset tiny``
subprocess, under two settings side by side:

- **policy**: dlhw's default -- nothing forces the threads (``OMP_NUM_THREADS``, ``DLHW_THREADS``,
  ``OMP_WAIT_POLICY`` unset in the children), so each decides from its usable CPUs and preset;
- **policy, DLHW_THREADS=cores**: as many threads as cores in each, with the policy's passive wait;
- **old**: what every process did before the policy -- as many OpenMP threads as the machine has
  cores, and OpenMP's default wait (``GOMP_SPINCOUNT=300000``: libgomp's spin before sleeping when
  ``OMP_WAIT_POLICY`` is unset), or ``--old-wait active`` (``OMP_WAIT_POLICY=ACTIVE``: spin on).

It prints the wall time of each process and of its training (``train_summary.json``), and each
concurrent one's ratio to the alone time (2.0 = the two share the CPU evenly).

    flock /tmp/dlhw-test.lock flock /tmp/dlhw-bench.lock python benchmarks/threads_sharing.py \\
        [--recipe ner] [--set train.max_steps=200] [--old-wait default|active]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dlhw.cli.env_cmd import cpu_model
from dlhw.core.threads import usable_cpus

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "DLHW_THREADS")
DLHW = str(Path(sys.executable).with_name("dlhw"))


@dataclass(frozen=True)
class Timing:
    wall_s: float
    train_s: float


def train_at_once(count: int, recipe: str, sets: list[str], extra_env: dict[str, str], root: Path) -> list[Timing]:
    """``count`` tiny trainings started together; each one's process and training wall time."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(extra_env)
    env.setdefault("HF_HUB_OFFLINE", "1")
    runs = [Path(tempfile.mkdtemp(prefix=f"{recipe}-", dir=root)) for _ in range(count)]
    commands = [[DLHW, "-q", "train", recipe, "--preset", "tiny", "--output-dir", str(run), "--overwrite",
                 *(arg for s in sets for arg in ("--set", s))] for run in runs]
    start = time.perf_counter()
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    walls = []
    for process in processes:
        _, err = process.communicate()
        walls.append(time.perf_counter() - start)
        if process.returncode != 0:
            raise SystemExit(f"dlhw train {recipe} failed ({process.returncode}):\n{err[-2000:]}")
    return [Timing(wall, json.loads((run / "train_summary.json").read_text())["train"]["wall_time_s"])
            for wall, run in zip(walls, runs, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="ner")
    parser.add_argument("--set", dest="sets", action="append", default=None,
                        help="KEY=VALUE for each training [default: train.max_steps=200]")
    parser.add_argument("--old-wait", choices=("default", "active"), default="default")
    args = parser.parse_args()
    sets = args.sets if args.sets is not None else ["train.max_steps=200"]
    cores = os.cpu_count() or 1
    old_wait = {"GOMP_SPINCOUNT": "300000"} if args.old_wait == "default" else {"OMP_WAIT_POLICY": "ACTIVE"}
    settings = {
        "policy (default)": {},
        f"policy, DLHW_THREADS={cores} (OMP_WAIT_POLICY=PASSIVE)": {"DLHW_THREADS": str(cores)},
        f"old: OMP_NUM_THREADS={cores}, " + ", ".join(f"{k}={v}" for k, v in old_wait.items()):
            {"OMP_NUM_THREADS": str(cores), **old_wait},
    }
    print(f"machine: {cpu_model()}, {cores} cores, {usable_cpus().describe()}")
    print(f"dlhw train {args.recipe} --preset tiny " + " ".join(f"--set {s}" for s in sets))
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlhw-threads-") as tmp:
        for name, extra in settings.items():
            alone = train_at_once(1, args.recipe, sets, extra, Path(tmp))[0]
            pair = train_at_once(2, args.recipe, sets, extra, Path(tmp))
            rows.append((name, alone, pair))
            print(f"  {name}: alone {alone.wall_s:.1f} s, two at once "
                  + ", ".join(f"{t.wall_s:.1f} s" for t in pair), flush=True)
    print()
    print("| threads | alone: process / training s | two at once: process s | training s | ratio to alone "
          "(training) |")
    print("|---|---|---|---|---|")
    for name, alone, pair in rows:
        print(f"| {name} | {alone.wall_s:.1f} / {alone.train_s:.1f} | "
              + " / ".join(f"{t.wall_s:.1f}" for t in pair) + " | "
              + " / ".join(f"{t.train_s:.1f}" for t in pair) + " | "
              + " / ".join(f"{t.train_s / alone.train_s:.2f}x" for t in pair) + " |")


if __name__ == "__main__":
    main()
