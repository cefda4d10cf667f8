"""`dlhw train --nproc 2` on CPU: two DDP ranks (gloo), one run directory, and it evaluates."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_two_process_training_writes_one_run_that_evaluates(tmp_path):
    run = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "dlhw", "train", "caption-rnn", "--preset", "tiny", "--nproc", "2",
         "--output-dir", str(run), "--set", "data.num_scenes=300", "--set", "train.max_steps=12",
         "--set", "train.logging_steps=1"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "[rank 0] world size 2, backend gloo" in log and "[rank 1] world size 2, backend gloo" in log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # one run directory
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
