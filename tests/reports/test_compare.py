"""``report compare`` reads a run through the typed run directory, whatever wrote it."""

from __future__ import annotations

import json

from dlhw.core.atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from dlhw.core.runs import RunFiles
from dlhw.reports.compare import compare_runs, run_row


def _fake_run(root, label, bleu, seconds):
    """A finished caption run, written only through RunFiles' names and the atomic writers."""
    files = RunFiles(root)
    write_text_atomic(files.config, "recipe: caption-transformer\npreset: tiny\n")
    write_json_atomic(files.train_summary, {
        "recipe": "caption-transformer", "label": label,
        "model": {"parameters": 1000, "trainable_parameters": 250, "trainable_percent": 25.0},
        "train": {"wall_time_s": seconds, "peak_memory_mb": 512.0}})
    write_json_atomic(files.eval, {"split": "test", "metrics": {"bleu_4": bleu, "cider": 0.5},
                                   "base": {"bleu_4": 0.1}, "change_from_base": {"bleu_4": bleu - 0.1}})
    write_jsonl_atomic(files.metrics, [{"step": 0, "epoch": 0.0, "eval_loss": 4.0},
                                       {"step": 5, "epoch": 1.0, "loss": 3.0},
                                       {"step": 5, "epoch": 1.0, "eval_loss": 3.0}])
    return root


def test_a_row_holds_the_declared_keys_of_train_summary_and_eval(tmp_path):
    row = run_row(_fake_run(tmp_path / "a", "small", 0.3, 12.5))
    assert (row["label"], row["family"], row["wall_time_s"], row["peak_memory_mb"]) == ("small", "caption", 12.5, 512.0)
    assert (row["trainable_parameters"], row["parameters"], row["trainable_percent"]) == (250, 1000, 25.0)
    assert row["metrics"] == {"bleu_4": 0.3, "cider": 0.5} and row["base"] == {"bleu_4": 0.1}
    assert (row["start_val_loss"], row["final_val_loss"], row["val_loss_change_percent"]) == (4.0, 3.0, -25.0)
    assert row["final_train_loss"] == 3.0


def test_compare_writes_its_table_and_json(tmp_path):
    runs = [_fake_run(tmp_path / "a", "small", 0.3, 12.5), _fake_run(tmp_path / "b", "large", 0.4, 30.0)]
    md = compare_runs(runs, tmp_path / "out")
    lines = md.read_text(encoding="utf-8").splitlines()
    assert "| small | 12.5 | 512 | 250 | 25.000 | 3.0000 | 4.000 → 3.000 | -25.0% | 0.3000 | 0.5000 | +0.200 |" in lines
    assert "| large | 30.0 | 512 | 250 | 25.000 | 3.0000 | 4.000 → 3.000 | -25.0% | 0.4000 | 0.5000 | +0.300 |" in lines
    table = json.loads((tmp_path / "out" / "compare.json").read_text(encoding="utf-8"))
    assert [r["metrics"]["bleu_4"] for r in table] == [0.3, 0.4]
    assert RunFiles(tmp_path / "out").plot("metrics.png").stat().st_size > 1000
