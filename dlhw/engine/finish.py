"""The ending every recipe shares: after training, rank 0 saves, summarizes, evaluates and reports.

A family's ``train_*`` is setup -> :func:`dlhw.engine.trainer.run_training` -> :func:`finish_run`.
The family says how its model is saved, what its summary holds beyond the shared keys and how it
is evaluated; the engine decides who writes (rank 0 alone, as every run file), in which order, and
that ``train_summary.json`` is written atomically with the keys every reader relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from dlhw.config import RunConfig
from dlhw.core.atomic import write_json_atomic
from dlhw.core.runs import RunFiles
from dlhw.engine.trainer import TrainResult
from dlhw.reports.run_report import write_run_report


class RankAware(Protocol):
    """What :func:`finish_run` asks of the trainer: the HF ``Trainer`` answers both."""

    model: Any

    def is_world_process_zero(self) -> bool: ...


def finish_run(
    trainer: RankAware,
    result: TrainResult,
    config: RunConfig,
    run_dir: Path,
    *,
    save: Callable[[Any, Path], object],
    summary: Callable[[Any], dict[str, Any]],
    evaluate: Callable[[Any], object] | None = None,
) -> dict[str, Any]:
    """Save, summarize, evaluate and report a trained run; return its summary (``{}`` off rank 0).

    In this order, on rank 0 only: ``summary(model)``, first, so that a check failing there (the PEFT
    families' frozen check) leaves nothing saved; ``save(model, model_dir)``; ``train_summary.json``
    written atomically as ``{"recipe", "preset", **summary, "train"}`` (the family's keys between the
    shared ones, in the family's order); ``evaluate(model)`` where given; ``report.md``.

    Args:
        trainer: The trainer :func:`~dlhw.engine.trainer.run_training` returned; its ``model`` is the
            trained one (the best checkpoint's weights where the engine kept the best).
        result: The training numbers, written under ``"train"``.
        config: The run's config: ``recipe`` and ``preset`` head the summary.
        run_dir: The run directory.
        save: ``save(model, model_dir)`` writes the trained model into ``RunFiles(run_dir).model``
            with whatever the family's loaders need beside it.
        summary: ``summary(model)`` -> the family's keys (``label``, ``method``, ``data``, ``model``,
            ``frozen_check``, ...); it may raise to stop a run that must not be saved.
        evaluate: ``evaluate(model)`` scores the trained model and writes ``eval.json``; ``None``
            where the family evaluates separately (``dlhw evaluate``).

    Returns:
        The summary as written, or ``{}`` on a process other than rank 0 (which writes nothing).
    """
    if not trainer.is_world_process_zero():
        return {}
    model = trainer.model
    assert model is not None, "the trainer holds no model after training"
    own = summary(model)
    files = RunFiles(run_dir)
    save(model, files.model)
    written = {"recipe": config.recipe, "preset": config.preset, **own, "train": asdict(result)}
    write_json_atomic(files.train_summary, written)
    if evaluate is not None:
        evaluate(model)
    write_run_report(run_dir)
    return written
