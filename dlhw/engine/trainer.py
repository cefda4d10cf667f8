"""The training engine: one HF trainer, set up the same way for every family.

dlhw adds no loop of its own: :func:`run_training` turns a :class:`~dlhw.config.TrainConfig` and
an :class:`Engine` (which trainer class -- HF ``Trainer``, ``Seq2SeqTrainer``, TRL ``SFTTrainer``
-- with which arguments class, ``compute_metrics`` or a generation-based evaluation, and the
metric that picks the best checkpoint) into a trainer with checkpoints under
``<run>/checkpoints``, evaluation and saving in step, the best model kept, the run-file
callbacks and early stopping, and resumes from a checkpoint with optimizer, scheduler and RNG
state. ``train.report_to`` adds HF's loggers (TensorBoard by default where it is installed, its
event files in ``<run>/tensorboard``); ``train.trainer_args`` passes any other field of the
arguments class through, checked against that class.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments

from dlhw.config import TrainConfig
from dlhw.config.base import REPORT_TO_AUTO, report_to_names
from dlhw.config.machinery import nearest
from dlhw.core.devices import resolve_device
from dlhw.core.runs import RunFiles
from dlhw.engine.callbacks import (
    FaultCallback,
    LossPlotCallback,
    MetricsJsonlCallback,
    SampleCallback,
    use_progress_lines,
)
from dlhw.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class Engine:
    """How a family trains: the trainer, its arguments, its metrics and its best-model rule."""

    trainer_class: type = Trainer
    """HF ``Trainer``, ``Seq2SeqTrainer``, TRL ``SFTTrainer`` or a subclass of one."""
    args_class: type = TrainingArguments
    """The trainer's arguments class (``Seq2SeqTrainingArguments``, TRL ``SFTConfig``)."""
    args: dict[str, Any] = field(default_factory=dict)
    """Extra arguments for ``args_class`` (``predict_with_generate``, ``completion_only_loss``, ...)."""
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the trainer (``processing_class``, ``preprocess_logits_for_metrics``)."""
    compute_metrics: Callable[[Any], dict[str, float]] | None = None
    """HF ``compute_metrics(EvalPrediction) -> metrics`` over the validation predictions."""
    generation_metrics: Callable[[Any], dict[str, float]] | None = None
    """``fn(model) -> metrics`` run at every evaluation (generate, then score: BLEU, ROUGE, ...)."""
    metric_for_best_model: str = "loss"
    """Validation metric that picks the best checkpoint and drives early stopping."""
    greater_is_better: bool = False
    """Whether a larger ``metric_for_best_model`` is better (accuracy, F1) or worse (loss)."""


def precision_flags(precision: str, device: torch.device) -> dict[str, bool]:
    if precision == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": False}
    if precision in ("bf16", "fp16") and device.type != "cuda":
        raise ConfigError(f"train.precision: {precision} needs a CUDA GPU; use fp32 or auto on CPU")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def distributed_flags(device: torch.device) -> dict[str, Any]:
    """DDP settings when started by torchrun / accelerate launch (gloo on CPU, nccl on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return {}
    return {"ddp_backend": "gloo" if device.type == "cpu" else "nccl", "ddp_find_unused_parameters": False}


def _for_this_transformers(args_class: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 folds ``warmup_ratio`` into ``warmup_steps`` (a float < 1 is a ratio) and
    ``group_by_length`` into ``train_sampling_strategy``."""
    fields = {f.name for f in dataclasses.fields(args_class)}
    if "warmup_ratio" not in fields:
        ratio = kwargs.pop("warmup_ratio")
        if ratio:
            kwargs["warmup_steps"] = ratio
    if "group_by_length" not in fields and kwargs.pop("group_by_length"):
        kwargs["train_sampling_strategy"] = "group_by_length"
    return kwargs


def report_to(cfg: TrainConfig) -> list[str]:
    """``train.report_to`` for HF: auto = tensorboard where it is installed, else none (``[]``)."""
    names = report_to_names(cfg.report_to)
    if names == [REPORT_TO_AUTO]:
        from transformers.integrations import is_tensorboard_available

        return ["tensorboard"] if is_tensorboard_available() else []
    return [] if names == ["none"] else names


def _passed_through(args_class: type, kwargs: dict[str, Any], trainer_args: dict[str, Any],
                    engine_args: dict[str, Any]) -> dict[str, Any]:
    """``train.trainer_args`` checked against the recipe's own arguments class: a field of it, and
    neither filled by dlhw nor by the family's trainer (their values would silently fight)."""
    fields = {f.name for f in dataclasses.fields(args_class) if f.init}
    for name, value in trainer_args.items():
        if name not in fields:
            raise ConfigError(f"train.trainer_args.{name}: not a field of this recipe's {args_class.__name__}"
                              f"{nearest(name, fields)}")
        if name in engine_args and engine_args[name] != value:
            raise ConfigError(f"train.trainer_args.{name}: this recipe's trainer sets it to {engine_args[name]!r}")
        if name in kwargs and kwargs[name] != value:
            raise ConfigError(f"train.trainer_args.{name}: dlhw sets it ({kwargs[name]!r}) from the train section")
    return trainer_args


def training_arguments(cfg: TrainConfig, run_dir: Path, seed: int, engine: Engine | None = None) -> Any:
    """The engine's arguments class filled from ``cfg`` (checkpoints in ``run_dir/checkpoints``), with
    ``cfg.trainer_args`` passed through; a value HF refuses is a config error naming it."""
    engine = engine or Engine()
    device = resolve_device(cfg.device)
    scored = engine.compute_metrics is not None
    kwargs = dict(
        output_dir=str(RunFiles(run_dir).checkpoints),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        max_grad_norm=cfg.max_grad_norm,
        eval_strategy=cfg.eval_strategy,
        save_strategy=cfg.eval_strategy,
        eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=engine.metric_for_best_model,
        greater_is_better=engine.greater_is_better,
        prediction_loss_only=not scored,
        remove_unused_columns=False,
        dataloader_num_workers=cfg.num_workers,
        group_by_length=cfg.group_by_length,
        eval_on_start=cfg.eval_on_start,
        report_to=report_to(cfg),
        seed=seed,
        data_seed=seed,
        use_cpu=device.type == "cpu",
        **precision_flags(cfg.precision, device),
    )
    kwargs.update(engine.args)  # the family's own settings win
    kwargs = _for_this_transformers(engine.args_class, kwargs)
    passed = _passed_through(engine.args_class, kwargs, cfg.trainer_args, engine.args)
    kwargs = {**distributed_flags(device), **kwargs, **passed}  # trainer_args may change the DDP defaults
    try:
        return engine.args_class(**kwargs)
    except ValueError as err:  # HF's own check of a value (an unknown optimizer, a contradiction)
        given = f" (train.trainer_args: {cfg.trainer_args})" if cfg.trainer_args else ""
        raise ConfigError(f"the Trainer refuses its arguments{given}: {str(err).splitlines()[0]}") from None


def trainer_class_for(engine: Engine) -> type:
    """``engine.trainer_class``, extended to add ``generation_metrics`` to every evaluation.

    The metrics join the evaluation loop's own (prefixed ``eval_``), so they are logged to
    metrics.jsonl and can pick the best checkpoint, like the loss.
    """
    if engine.generation_metrics is None:
        return engine.trainer_class
    scorer = engine.generation_metrics
    base: Any = engine.trainer_class

    def evaluation_loop(self: Any, *args: Any, **kwargs: Any) -> Any:
        output = base.evaluation_loop(self, *args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        model = self.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            scores = scorer(model)
        model.train(was_training)
        output.metrics.update({f"{prefix}_{k}": float(v) for k, v in scores.items()})
        return output

    return type(f"Generating{base.__name__}", (base,), {"evaluation_loop": evaluation_loop})


def log_tensorboard_under(trainer: Trainer, folder: Path) -> None:
    """HF's TensorBoard callback writes under ``output_dir/runs/<time>_<host>`` (``checkpoints/`` here) unless
    ``TENSORBOARD_LOGGING_DIR`` says otherwise: point it at the run's own ``tensorboard/`` folder."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(folder)


@dataclass
class TrainResult:
    global_step: int
    epochs: float
    wall_time_s: float
    best_checkpoint: str | None
    best_metric: float | None
    best_metric_name: str
    stopped_early: bool
    peak_memory_mb: float


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_training(
    model: torch.nn.Module,
    train_dataset: Any,
    eval_dataset: Any,
    collator: Callable[[list[Any]], dict[str, Any]] | None,
    cfg: TrainConfig,
    run_dir: Path,
    seed: int,
    resume_from: Path | None = None,
    sample: Callable[[Any], str] | None = None,
    sample_key: str = "sample",
    extra_callbacks: list[TrainerCallback] | None = None,
    engine: Engine | None = None,
    frozen_check: Any | None = None,
) -> tuple[Trainer, TrainResult]:
    """Train ``model`` with the engine's trainer, writing metrics.jsonl and plots/loss.png as it goes.

    With ``train.init_from`` the model first takes that run's weights (a pruned run's zeros held at
    zero); a family's ``frozen_check`` (:class:`dlhw.lm.peft.FrozenCheck`) is then taken again.
    """
    from dlhw.pruning.methods import bake_masks
    from dlhw.pruning.run import record_sparsity, start_from_run

    engine = engine or Engine()
    args = training_arguments(cfg, run_dir, seed, engine)
    # the loaded weights are where training starts, frozen ones included: the frozen check starts there too
    rebase = (lambda: frozen_check.rebase(model)) if frozen_check is not None else None
    held = start_from_run(model, cfg.init_from, rebase) if cfg.init_from else 0
    if held:
        logger.info("starting from %s: %s pruned weights held at zero", cfg.init_from, f"{held:,}")
    files = RunFiles(run_dir)
    metrics = MetricsJsonlCallback(files.metrics)
    callbacks: list[TrainerCallback] = [metrics, LossPlotCallback(metrics.path, files.plot("loss.png")),
                                        FaultCallback()]
    if sample is not None:
        callbacks.append(SampleCallback(metrics, sample, sample_key))
    if cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    callbacks.extend(extra_callbacks or [])
    trainer = trainer_class_for(engine)(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        callbacks=callbacks,
        compute_metrics=engine.compute_metrics,
        **engine.trainer_kwargs,
    )
    log_tensorboard_under(trainer, files.tensorboard)
    use_progress_lines(trainer)
    logger.debug("%s on %s, %d steps planned; callbacks: %s", type(trainer).__name__, args.device,
                 args.max_steps, ", ".join(type(c).__name__ for c in trainer.callback_handler.callbacks))
    if args.world_size > 1:
        logger.info("[rank %d] world size %d, backend %s, device %s", args.process_index, args.world_size,
                    args.ddp_backend, args.device)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()  # the peak of this run, not of earlier work in the process
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if held:  # masks off before the family saves, so its files hold plain weights with zeros
        bake_masks(model)
        if args.process_index == 0:
            record_sparsity(model, run_dir, cfg.init_from)
    state = trainer.state
    planned = args.max_steps if args.max_steps > 0 else state.max_steps
    result = TrainResult(
        global_step=state.global_step,
        epochs=float(state.epoch or 0.0),
        wall_time_s=time.perf_counter() - start,
        best_checkpoint=state.best_model_checkpoint,
        best_metric=state.best_metric,
        best_metric_name=f"validation {args.metric_for_best_model.removeprefix('eval_').replace('_', ' ')}",
        stopped_early=state.global_step < planned,
        peak_memory_mb=peak_memory_mb(),
    )
    return trainer, result
