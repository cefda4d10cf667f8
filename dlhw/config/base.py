"""The config sections every family shares: how the Trainer runs, and the base run config.

A family's config class extends :class:`RunConfig` with its own sections (``data``, ``model``,
``method``, ``eval``, ...); ``recipe``, ``preset``, ``seed`` and ``train`` mean the same everywhere.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass, field
from typing import Any

from dlhw.config.machinery import nearest
from dlhw.errors import ConfigError

REPORT_TO_AUTO = "auto"
"""``train.report_to`` default: TensorBoard when it is installed (event files in ``RUN/tensorboard``), else none."""

TRAINER_ARGUMENT_CLASSES = ("transformers:TrainingArguments", "transformers:Seq2SeqTrainingArguments",
                            "trl:SFTConfig")
"""The arguments classes of the trainers dlhw's engine runs: a ``train.trainer_args`` name must be a field
of one of them (the recipe's own class checks it again when training starts)."""

SET_BY_DLHW: dict[str, str] = {
    "num_train_epochs": "train.epochs", "max_steps": "train.max_steps",
    "per_device_train_batch_size": "train.batch_size", "per_device_eval_batch_size": "train.eval_batch_size",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps", "learning_rate": "train.learning_rate",
    "weight_decay": "train.weight_decay", "warmup_ratio": "train.warmup_ratio",
    "lr_scheduler_type": "train.lr_scheduler", "max_grad_norm": "train.max_grad_norm",
    "eval_strategy": "train.eval_strategy", "save_strategy": "train.eval_strategy",
    "eval_steps": "train.eval_steps", "save_steps": "train.eval_steps", "logging_steps": "train.logging_steps",
    "save_total_limit": "train.save_total_limit", "dataloader_num_workers": "train.num_workers",
    "group_by_length": "train.group_by_length", "eval_on_start": "train.eval_on_start",
    "use_cpu": "train.device", "bf16": "train.precision", "fp16": "train.precision",
    "report_to": "train.report_to", "seed": "seed", "data_seed": "seed",
    "output_dir": "the run directory (--output-dir)", "logging_strategy": "train.logging_steps",
    "load_best_model_at_end": "the best-model rule", "metric_for_best_model": "the family's best-model metric",
    "greater_is_better": "the family's best-model metric", "prediction_loss_only": "the family's metrics",
    "remove_unused_columns": "the family's data collator",
}
"""TrainingArguments fields dlhw fills itself, and the setting that says them (never ``train.trainer_args``)."""


@dataclass
class TrainConfig:
    """How the HF Trainer runs; shared by every family."""

    epochs: float = 10.0
    """Number of passes over the training set (fractions allowed)."""
    max_steps: int = -1
    """Stop after this many optimizer steps; -1 means run ``epochs`` in full."""
    batch_size: int = 32
    """Samples per device per optimizer micro-step."""
    eval_batch_size: int = 64
    """Samples per device in evaluation and generation."""
    gradient_accumulation_steps: int = 1
    """Micro-steps accumulated into one optimizer step."""
    learning_rate: float = 3e-4
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.0
    """Fraction of the steps spent warming the learning rate up."""
    lr_scheduler: str = "linear"
    """HF scheduler name: linear, cosine, constant, constant_with_warmup, ..."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    precision: typing.Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision: auto = bf16 on a CUDA GPU that supports it, fp32 elsewhere."""
    eval_strategy: typing.Literal["epoch", "steps"] = "epoch"
    """When to evaluate (validation loss and the family's metrics) and save a checkpoint."""
    eval_steps: int = 500
    """Steps between evaluations and checkpoints when eval_strategy is steps."""
    logging_steps: int = 10
    """Steps between training-loss records in metrics.jsonl."""
    save_total_limit: int = 2
    """Checkpoints kept in checkpoints/ (the best one is always kept)."""
    early_stopping_patience: int = 3
    """Evaluations without a better best-model metric (the validation loss unless the family
    scores with another) before training stops; 0 disables."""
    num_workers: int = 2
    """DataLoader worker processes (image decoding happens there)."""
    group_by_length: bool = False
    """Batch examples of similar length together (less padding; text families)."""
    eval_on_start: bool = False
    """Compute the validation loss once before the first step (the "start" of the loss curve)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    init_from: str = ""
    """A run directory whose weights the model starts from (matched by name). From a pruned run
    (`dlhw prune`) its zeros are held at zero through training."""
    report_to: str | list[str] = REPORT_TO_AUTO
    """Where the Trainer also logs: auto (tensorboard when installed, event files in RUN/tensorboard),
    none, or what HF accepts (tensorboard, wandb, mlflow, ..., all; a list for several)."""
    trainer_args: dict[str, Any] = field(default_factory=dict)
    """Any other TrainingArguments field, passed through (``--set train.trainer_args.optim=adafactor``,
    ``train.trainer_args.fsdp=...``); names are checked against the trainer's arguments class."""

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("train.epochs: must be > 0 unless train.max_steps is set")
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "eval_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        if self.logging_steps < 1:
            raise ConfigError(f"train.logging_steps: must be >= 1, got {self.logging_steps}")
        check_report_to(self.report_to)
        if self.trainer_args:
            check_trainer_args(self.trainer_args)


def report_to_names(report_to: str | list[str]) -> list[str]:
    """``train.report_to`` as a list of names (``"a,b"`` and ``[a, b]`` alike)."""
    names = report_to.split(",") if isinstance(report_to, str) else list(report_to)
    return [n.strip() for n in names if n.strip()]


def check_report_to(report_to: str | list[str]) -> None:
    """Integration names HF knows (asked only when the value is not auto/none: it imports transformers)."""
    names = report_to_names(report_to)
    if not names:
        raise ConfigError("train.report_to: empty; use none to log to metrics.jsonl only")
    if set(names) <= {REPORT_TO_AUTO, "none"}:
        if len(names) > 1:
            raise ConfigError(f"train.report_to: {', '.join(names)} contradict each other; pick one")
        return
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    known = sorted({*INTEGRATION_TO_CALLBACK, "all"})
    for name in names:
        if name not in known:
            raise ConfigError(f"train.report_to: {name!r} is not an integration HF knows{nearest(name, known)}; "
                              f"choose from auto, none, {', '.join(known)}")


def check_trainer_args(trainer_args: dict[str, Any]) -> None:
    """Every name a field of a trainer arguments class (:data:`TRAINER_ARGUMENT_CLASSES`) that dlhw does
    not fill itself (:data:`SET_BY_DLHW`); a misspelt one names the nearest field."""
    for name in trainer_args:
        if name in SET_BY_DLHW:
            raise ConfigError(f"train.trainer_args.{name}: dlhw sets it from {SET_BY_DLHW[name]}; set that instead")
    fields: set[str] = set()
    unknown = list(trainer_args)
    for target in TRAINER_ARGUMENT_CLASSES:  # TrainingArguments first: the others only for names it lacks
        module, _, name = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            continue
        fields |= {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = [key for key in trainer_args if key not in fields]
        if not unknown:
            return
    raise ConfigError(f"train.trainer_args.{unknown[0]}: not a TrainingArguments field"
                      f"{nearest(unknown[0], sorted(fields - set(SET_BY_DLHW)))}")


@dataclass
class RunConfig:
    """What every run has: the recipe it belongs to, its preset, its seed and its training loop."""

    recipe: str = ""
    """The recipe this config belongs to (see `dlhw recipes`)."""
    preset: str = "full"
    """The preset it was resolved from: full (real models and data) or tiny (offline, CPU)."""
    seed: int = 42
    """Seeds data generation and splits, model init and the Trainer."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop (a recipe that trains nothing ignores it)."""
