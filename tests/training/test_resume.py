"""A run killed with SIGKILL and resumed ends with the same per-step losses (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARGS = [
    "train", "caption-rnn", "--preset", "tiny",
    # the pixel path (encoder fine-tuned, no feature cache) is slow enough to kill mid-way
    "--set", "model.finetune_encoder=true", "--set", "data.num_scenes=300",
    "--set", "train.max_steps=40", "--set", "train.eval_strategy=steps", "--set", "train.eval_steps=10",
    "--set", "train.logging_steps=1", "--set", "train.early_stopping_patience=0",
    "--set", "train.save_total_limit=5",
]


def _dlhw(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlhw", *args]


def _losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_sigkill_then_resume_gives_the_same_losses(tmp_path: Path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_dlhw(*ARGS, "--output-dir", str(straight)), check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(_dlhw(*ARGS, "--output-dir", str(killed)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint-10" / "trainer_state.json").exists():
        assert proc.poll() is None, "training ended before the first checkpoint"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _losses(killed)
    assert 10 <= max(partial) < 40, "the kill must land mid-way"
    assert not (killed / "model").exists()

    subprocess.run(_dlhw("train", "caption-rnn", "--output-dir", str(killed), "--resume"), check=True,
                   capture_output=True, timeout=600)
    expected, resumed = _losses(straight), _losses(killed)
    assert sorted(resumed) == list(range(1, 41)) == sorted(expected)
    assert resumed == pytest.approx(expected, abs=1e-4)
    assert (killed / "model" / "model.safetensors").is_file()
