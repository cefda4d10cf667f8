"""The config sections every family shares: how the Trainer runs, and the base run config.

A family's config class extends :class:`RunConfig` with its own sections (``data``, ``model``,
``method``, ``eval``, ...); ``recipe``, ``preset``, ``seed`` and ``train`` mean the same everywhere.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.errors import ConfigError


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

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("train.epochs: must be > 0 unless train.max_steps is set")
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "eval_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        if self.logging_steps < 1:
            raise ConfigError(f"train.logging_steps: must be >= 1, got {self.logging_steps}")


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
