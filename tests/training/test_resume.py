"""A run killed with SIGKILL at a fixed step and resumed ends with the same per-step losses (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARGS = [
    "train", "caption-rnn", "--preset", "tiny", "--set", "data.num_scenes=300",
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

    # dies right after optimizer step 25: checkpoints 10 and 20 are complete, steps 21-24 logged
    proc = subprocess.run(_dlhw(*ARGS, "--output-dir", str(killed)), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DLHW_FAULT": "kill-after-step:25"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    partial = _losses(killed)
    assert max(partial) == 24, "steps 1-24 were logged before the kill"
    assert not (killed / "model").exists()

    subprocess.run(_dlhw("train", "caption-rnn", "--output-dir", str(killed), "--resume"), check=True,
                   capture_output=True, timeout=600)
    expected, resumed = _losses(straight), _losses(killed)
    assert sorted(resumed) == list(range(1, 41)) == sorted(expected)
    assert resumed == pytest.approx(expected, abs=1e-4)
    assert (killed / "model" / "model.safetensors").is_file()
