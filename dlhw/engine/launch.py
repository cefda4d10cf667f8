"""Multi-process training: ``dlhw train RECIPE --nproc N`` re-launches itself under torchrun (HF
Trainer then runs DDP: gloo on CPU, nccl on GPU), on one node or -- with ``--nnodes``,
``--node-rank`` and ``--rdzv-endpoint`` -- on several.

One node: the launcher prepares the run directory and writes ``config.yaml`` once, then starts N
workers (``torchrun --standalone``) that all read that config and train into that directory; only
rank 0 writes run files.

Several nodes: the same command runs on every node, with its own ``--node-rank``; each starts
torchrun with the c10d rendezvous at ``--rdzv-endpoint`` (node 0's address and a free port: node 0
hosts the rendezvous store). The run directory must be on a filesystem every node sees at the same
path (NFS, a cluster volume), so ``--output-dir`` is required. Node 0's launcher alone prepares the
directory and writes ``config.yaml`` (from its recipe, preset and ``--set``s); the other nodes'
launchers touch nothing and their workers read that ``config.yaml``: no worker starts before every
node joined the rendezvous, and node 0 joins only after writing it, so they all train from one
config. Global rank 0 alone writes run files (metrics, checkpoints, the model); c10d numbers the
nodes itself -- torchrun's ``--node-rank`` applies to its static rendezvous only, so dlhw uses
``--node-rank`` for the roles above and does not pass it on. ``--resume`` on every node: node 0's
launcher checks the checkpoint; each worker finds the same one (the newest complete checkpoint,
or the folder given) on the shared filesystem, after the rendezvous and before any step. FSDP and
DeepSpeed go through ``train.trainer_args`` or ``accelerate launch -m dlhw train ...``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dlhw.core import threads
from dlhw.core.runs import RunFiles
from dlhw.errors import ConfigError

logger = logging.getLogger(__name__)

LOG_LEVEL_ENV = "DLHW_LOG_LEVEL"
"""The workers' log level: the launcher's (``dlhw -v/-q``), read by the worker's ``dlhw`` group."""


def in_distributed_worker() -> bool:
    """True inside a process started by torchrun / accelerate launch."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def world() -> tuple[int, int]:
    """(rank, world size) of this process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class Nodes:
    """The machines of one training run: ``--nnodes``, this one's ``--node-rank``, ``--rdzv-endpoint``."""

    count: int = 1
    rank: int = 0
    endpoint: str | None = None
    """``HOST:PORT`` of the c10d rendezvous: node 0's address and a port free there."""

    def __post_init__(self) -> None:
        if self.count == 1:
            if self.rank != 0 or self.endpoint is not None:
                raise ConfigError("--node-rank and --rdzv-endpoint go with --nnodes N (N > 1)")
            return
        if self.endpoint is None:
            raise ConfigError(f"--nnodes {self.count} needs --rdzv-endpoint HOST:PORT (node 0's address and a free "
                              "port), the same on every node")
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"--rdzv-endpoint {self.endpoint!r}: expected HOST:PORT, e.g. 10.0.0.1:29400")
        if not 0 <= self.rank < self.count:
            raise ConfigError(f"--node-rank {self.rank}: expected 0 to {self.count - 1} with --nnodes {self.count}")

    @property
    def first(self) -> bool:
        """Node 0: it prepares the run directory and hosts the rendezvous."""
        return self.rank == 0


def torchrun_command(nproc: int, recipe: str, run_dir: Path, preset: str, resume: str | Path | None,
                     nodes: Nodes = Nodes()) -> list[str]:
    """The torchrun command line of this node; its workers run ``dlhw train`` on ``run_dir``'s config.

    ``resume``: the checkpoint folder, ``"latest"`` (each worker finds the newest), or None.
    """
    command = [sys.executable, "-m", "torch.distributed.run"]
    if nodes.count == 1:
        command.append("--standalone")
    else:
        command += [f"--nnodes={nodes.count}", "--rdzv-backend=c10d", f"--rdzv-endpoint={nodes.endpoint}",
                    f"--rdzv-id=dlhw-{run_dir.name}", f"--rdzv-conf=is_host={str(nodes.first).lower()}"]
    command += [
        f"--nproc-per-node={nproc}",
        "-m", "dlhw", "train", recipe, "--preset", preset,
        "--config", str(RunFiles(run_dir).config), "--output-dir", str(run_dir),
    ]
    if resume is not None:
        command += ["--resume", str(resume)]
    return command


def launch(nproc: int, recipe: str, run_dir: Path, preset: str, resume: str | Path | None,
           nodes: Nodes = Nodes()) -> int:
    """Run this node's workers and wait; return torchrun's exit code."""
    env = dict(os.environ)
    env.update(threads.worker_threads(nproc))  # the workers share this process's threads
    where = f" on node {nodes.rank} of {nodes.count} (rendezvous at {nodes.endpoint})" if nodes.count > 1 else ""
    env.setdefault(LOG_LEVEL_ENV, logging.getLevelName(logging.getLogger("dlhw").getEffectiveLevel()))
    logger.info("launching %d process%s with torchrun%s", nproc, "es" if nproc > 1 else "", where)
    return subprocess.call(torchrun_command(nproc, recipe, run_dir, preset, resume, nodes), env=env)
