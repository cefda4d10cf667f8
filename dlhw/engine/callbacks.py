"""Trainer callbacks that write a run's files (only the main process, rank 0, writes), and the
fault-injection hook kill-and-resume tests use."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from dlhw.core.atomic import write_text_atomic
from dlhw.core.faults import kill_if_reached
from dlhw.core.metrics import read_metrics
from dlhw.reports.plots import plot_losses


class MetricsJsonlCallback(TrainerCallback):
    """Append every log record to ``metrics.jsonl`` and flush it at once.

    On resume, records past the checkpoint's step are dropped first, so the file reads as if
    the run had never been interrupted.
    """

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        if not state.is_world_process_zero:
            return
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= state.global_step]
        # atomic: a resume killed mid-rewrite must not lose the records it was keeping
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, state: TrainerState, record: dict[str, Any]) -> None:
        if not state.is_world_process_zero:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **record, "time": time.time()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: dict | None = None, **kw: Any):
        if logs:
            clean = {k: v for k, v in logs.items() if not (isinstance(v, float) and not math.isfinite(v))}
            self.write(state, clean)


class LossPlotCallback(TrainerCallback):
    """Redraw ``plots/loss.png`` (train and validation loss per epoch) after every evaluation."""

    def __init__(self, metrics_path: Path, plot_path: Path):
        self.metrics_path = metrics_path
        self.plot_path = plot_path

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        if state.is_world_process_zero:
            plot_losses(read_metrics(self.metrics_path), self.plot_path)


class SampleCallback(TrainerCallback):
    """At the end of every epoch, log what the model makes of one fixed validation input."""

    def __init__(self, metrics: MetricsJsonlCallback, sample: Callable[[Any], str], key: str = "sample"):
        self.metrics = metrics
        self.sample = sample
        self.key = key

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kw: Any):
        if not state.is_world_process_zero or model is None:
            return
        was_training = model.training
        model.eval()
        text = self.sample(model)
        model.train(was_training)
        self.metrics.write(state, {self.key: text})
        print(f"[epoch {state.epoch:.2f}] {self.key}: {text}", flush=True)


class FaultCallback(TrainerCallback):
    """``DLHW_FAULT=kill-after-step:N`` (a testing aid, see :mod:`dlhw.core.faults`): SIGKILL the
    process right after optimizer step N, before that step is logged or saved."""

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        kill_if_reached("kill-after-step", state.global_step)
