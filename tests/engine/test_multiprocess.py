"""`dlhw train --nproc 2` on CPU: two DDP ranks (gloo), one run directory, and it evaluates; and the same
run on two "nodes" (`--nnodes 2`, one process each, c10d rendezvous on this machine), killed and resumed
on both, step for step equal to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARGS = ["train", "caption-rnn", "--preset", "tiny", "--set", "data.num_scenes=300", "--set", "train.max_steps=12",
        "--set", "train.logging_steps=1", "--set", "train.eval_strategy=steps", "--set", "train.eval_steps=6"]
"""12 steps (one epoch), evaluated and saved at steps 6 and 12: the two-node run is killed between the two.
(An evaluation moves the random state training goes on from, so both runs evaluate at the same steps.)"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # every rank one thread, however it is launched


def _losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`--nproc 2` on one machine: the run directory and what it printed."""
    run = tmp_path_factory.mktemp("ddp") / "ddp"
    proc = subprocess.run([sys.executable, "-m", "dlhw", *ARGS, "--nproc", "2", "--output-dir", str(run)],
                          capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, proc.stdout + proc.stderr


def test_two_process_training_writes_one_run_that_evaluates(ddp_run):
    run, log = ddp_run
    assert "[rank 0] world size 2, backend gloo" in log and "[rank 1] world size 2, backend gloo" in log
    assert sorted(p.name for p in run.parent.iterdir()) == ["ddp"]  # one run directory
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 13))  # written once, by rank 0 alone
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses  # the two ranks trained one model together
    assert (run / "model" / "model.safetensors").is_file()

    proc = subprocess.run([sys.executable, "-m", "dlhw", "evaluate", str(run)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["num_images"] == 30 and set(evaluation["metrics"]) >= {"bleu_1", "bleu_4", "cider"}
    predictions = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text().splitlines()]
    assert len(predictions) == 30 and all(p["caption"] and p["references"] for p in predictions)
    assert evaluation["metrics"]["bleu_1"] > 0.2  # 12 steps already name colours and shapes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(run: Path, *extra: str, env: dict[str, str] = ENV) -> list[tuple[int, str]]:
    """`dlhw train ... --nnodes 2` as node 1 and node 0 on this machine: (exit code, output) of each."""
    endpoint = f"127.0.0.1:{_free_port()}"
    logs = [run.parent / f"{run.name}-node{rank}.log" for rank in (0, 1)]
    procs = []
    for rank in (1, 0):  # node 1 first: it waits in the rendezvous until node 0 has written config.yaml
        with logs[rank].open("w") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dlhw", *ARGS, "--nnodes", "2", "--node-rank", str(rank), "--rdzv-endpoint",
                 endpoint, "--output-dir", str(run), *extra], stdout=log, stderr=subprocess.STDOUT, env=env))
    codes = [p.wait(timeout=600) for p in reversed(procs)]
    return [(code, log.read_text()) for code, log in zip(codes, logs, strict=True)]


def test_two_nodes_killed_and_resumed_train_the_two_process_run_step_for_step(ddp_run, tmp_path):
    """Two one-process nodes are the same DDP job as one two-process node (world size 2, the same
    shards of the same shuffled data, gradients averaged over both), so the losses agree step for
    step: gloo sums two numbers per element, which is the same in either order, hence the tight
    tolerance. Both nodes are killed right after step 9 (checkpoint 6 complete) and resumed with
    --resume: steps 7-12 are trained again from that one checkpoint on both nodes."""
    run = tmp_path / "two"
    killed = _two_nodes(run, env={**ENV, "DLHW_FAULT": "kill-after-step:9"})
    assert [code for code, _ in killed] == [1, 1], [log[-2000:] for _, log in killed]
    assert all("torchrun exited with code" in log for _, log in killed)
    assert max(_losses(run)) == 8 and sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-6"]
    assert not (run / "model").exists()

    resumed = _two_nodes(run, "--resume")
    assert [code for code, _ in resumed] == [0, 0], [log[-2000:] for _, log in resumed]
    assert "(resuming from" in resumed[0][1] and "checkpoint-6" in resumed[0][1]
    assert "node 1 of 2: training into" in resumed[1][1]
    two, one = _losses(run), _losses(ddp_run[0])
    assert sorted(two) == sorted(one) == list(range(1, 13))
    assert two == pytest.approx(one, rel=1e-6, abs=1e-6)
    assert (run / "model" / "model.safetensors").is_file()
