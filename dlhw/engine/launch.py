"""Multi-process training on one node: ``dlhw train RECIPE --nproc N`` re-launches itself
under torchrun (HF Trainer then runs DDP: gloo on CPU, nccl on GPU).

The launcher prepares the run directory and writes ``config.yaml`` once, then starts N workers
that all read that config and train into that directory; only rank 0 writes run files.
Multi-node, FSDP and DeepSpeed go through ``accelerate launch -m dlhw train ...`` with the
user's accelerate config instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dlhw.core.runs import RunFiles


def in_distributed_worker() -> bool:
    """True inside a process started by torchrun / accelerate launch."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def world() -> tuple[int, int]:
    """(rank, world size) of this process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def torchrun_command(nproc: int, recipe: str, run_dir: Path, preset: str, checkpoint: Path | None) -> list[str]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "dlhw", "train", recipe, "--preset", preset,
        "--config", str(RunFiles(run_dir).config), "--output-dir", str(run_dir),
    ]
    if checkpoint is not None:
        command += ["--resume", str(checkpoint)]
    return command


def launch(nproc: int, recipe: str, run_dir: Path, preset: str, checkpoint: Path | None) -> int:
    """Run the workers and wait; return torchrun's exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    print(f"launching {nproc} processes with torchrun", flush=True)
    return subprocess.call(torchrun_command(nproc, recipe, run_dir, preset, checkpoint), env=env)
