"""Trainer callbacks that write a run's files (only the main process, rank 0, writes), and the
fault-injection hook kill-and-resume tests use."""

from __future__ import annotations

import json
import logging
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

logger = logging.getLogger(__name__)


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
        logger.info("epoch %.2f · %s: %s", state.epoch or 0.0, self.key, " ⏎ ".join(text.splitlines()))  # one line


class ProgressLineCallback(TrainerCallback):
    """One compact line on the ``dlhw`` logger per Trainer log, in place of HF's printed dicts:
    ``step 40/225 · loss 2.314 · lr 2.1e-04 · 3.2 it/s``, ``eval step 40 · loss 2.101 · bleu4 0.123``
    and, at the end, ``trained 225 steps in 71 s · 3.2 it/s · loss 2.012``."""

    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None  # (time, step) of the previous training line

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self.last = (time.perf_counter(), state.global_step)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: dict | None = None, **kw: Any):
        if not logs or not state.is_world_process_zero:
            return
        logger.info(self.line(state, logs))

    def line(self, state: TrainerState, logs: dict[str, Any]) -> str:
        """The line for one log record (a training step, an evaluation, or the final summary)."""
        if "train_runtime" in logs:
            parts = [f"trained {state.global_step} steps in {logs['train_runtime']:.0f} s"]
            if "train_steps_per_second" in logs:
                parts.append(f"{logs['train_steps_per_second']:.3g} it/s")
            if "train_loss" in logs:
                parts.append(f"loss {logs['train_loss']:.4g}")
            return " · ".join(parts)
        evals = {k.removeprefix("eval_"): v for k, v in logs.items() if k.startswith("eval_")}
        if evals:
            shown = {k: v for k, v in evals.items() if k not in _EVAL_TIMING and isinstance(v, int | float)}
            return " · ".join([f"eval step {state.global_step}", *(f"{k} {_number(v)}" for k, v in shown.items())])
        parts = [f"step {state.global_step}/{state.max_steps}"]
        if "loss" in logs:
            parts.append(f"loss {_number(logs['loss'])}")
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.1e}")
        now = time.perf_counter()
        if self.last is not None and state.global_step > self.last[1] and now > self.last[0]:
            parts.append(f"{(state.global_step - self.last[1]) / (now - self.last[0]):.3g} it/s")
        self.last = (now, state.global_step)
        if len(parts) == 1:  # a record of something else (a family's extra log): show it as it is
            parts.extend(f"{k} {_number(v)}" for k, v in logs.items() if k not in ("epoch", "step"))
        return " · ".join(parts)


_EVAL_TIMING = {"runtime", "samples_per_second", "steps_per_second", "epoch"}


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def use_progress_lines(trainer: Any) -> None:
    """Replace HF's log printing (``PrinterCallback``, or the dicts ``ProgressCallback`` writes under
    its bar) by one :class:`ProgressLineCallback` line per log on the ``dlhw`` logger."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ProgressLineCallback())


class FaultCallback(TrainerCallback):
    """``DLHW_FAULT=kill-after-step:N`` (a testing aid, see :mod:`dlhw.core.faults`): SIGKILL the
    process right after optimizer step N, before that step is logged or saved."""

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        kill_if_reached("kill-after-step", state.global_step)
