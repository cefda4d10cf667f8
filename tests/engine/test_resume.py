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
    "--set", "train.max_steps=20", "--set", "train.eval_strategy=steps", "--set", "train.eval_steps=5",
    "--set", "train.logging_steps=1", "--set", "train.early_stopping_patience=0",
    "--set", "train.save_total_limit=5",
]


def _dlhw(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlhw", *args]


def _losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[int, float]:
    """Per-step losses of the same run trained without interruption."""
    run = tmp_path_factory.mktemp("straight") / "run"
    subprocess.run(_dlhw(*ARGS, "--output-dir", str(run)), check=True, capture_output=True, timeout=600)
    return _losses(run)


def test_sigkill_then_resume_gives_the_same_losses(straight: dict[int, float], tmp_path: Path):
    killed = tmp_path / "killed"
    # dies right after optimizer step 13: checkpoints 5 and 10 are complete, steps 1-12 logged
    proc = subprocess.run(_dlhw(*ARGS, "--output-dir", str(killed)), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DLHW_FAULT": "kill-after-step:13"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert max(_losses(killed)) == 12, "steps 1-12 were logged before the kill"
    assert not (killed / "model").exists()

    subprocess.run(_dlhw("train", "caption-rnn", "--output-dir", str(killed), "--resume"), check=True,
                   capture_output=True, timeout=600)
    resumed = _losses(killed)
    assert sorted(resumed) == list(range(1, 21)) == sorted(straight)
    assert resumed == pytest.approx(straight, abs=1e-4)
    assert (killed / "model" / "model.safetensors").is_file()
