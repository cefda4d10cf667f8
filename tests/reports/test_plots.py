"""The loss figure's data: train loss per epoch, validation loss at every evaluation."""

from __future__ import annotations

import json

from dlhw.core.runs import RunFiles
from dlhw.reports.plots import EvalPoint, loss_curves, plot_losses
from dlhw.reports.run_report import training_section


def one_epoch_records(steps: int = 40, eval_every: int = 10, log_every: int = 5) -> list[dict]:
    """metrics.jsonl as HF Trainer writes it for one epoch of ``steps`` steps, evaluated before training,
    every ``eval_every`` steps, and once more at the end (the closing evaluation of the same last step)."""
    records: list[dict] = [{"step": 0, "epoch": 0.0, "eval_loss": 3.0}]
    for step in range(1, steps + 1):
        epoch = step / steps
        if step % log_every == 0:
            records.append({"step": step, "epoch": epoch, "loss": 3.0 - step / steps})
        if step % eval_every == 0:
            records.append({"step": step, "epoch": epoch, "eval_loss": 3.1 - step / steps})
    records.append({"step": steps, "epoch": 1.0, "eval_loss": 2.05})
    return records


def test_one_epoch_run_keeps_every_evaluation_at_its_step():
    train, val = loss_curves(one_epoch_records())
    assert val == [EvalPoint(0, 0.0, 3.0), EvalPoint(10, 0.25, 2.85), EvalPoint(20, 0.5, 2.6),
                   EvalPoint(30, 0.75, 2.35), EvalPoint(40, 1.0, 2.05)]  # the closing record wins step 40
    assert list(train) == [1] and abs(train[1] - (3.0 - sum(range(5, 41, 5)) / 40 / 8)) < 1e-9


def test_loss_figure_and_report_show_every_evaluation(tmp_path):
    files = RunFiles(tmp_path)
    files.metrics.write_text("".join(json.dumps(r) + "\n" for r in one_epoch_records()))
    png = plot_losses(one_epoch_records(), files.plot("loss.png"))
    assert png.stat().st_size > 5_000
    lines = training_section(tmp_path, {})
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| step")
            and line.count("|") == 4]
    assert rows == ["| 0 | 0.00 | 3.0000 |", "| 10 | 0.25 | 2.8500 |", "| 20 | 0.50 | 2.6000 |",
                    "| 30 | 0.75 | 2.3500 |", "| 40 | 1.00 | 2.0500 |"]
