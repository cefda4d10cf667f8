"""Prompting without training (``dlhw prompt summarize``): zero-, one- and few-shot summaries, scored
like a trained run and written to a run directory of the family.

Examples are drawn with the seed from the *train* split only and saved to ``shots.jsonl``; when
a prompt with all of them would not fit the context, examples are dropped from the end for that
document and counted. The run's ``config.yaml`` names the recipe of the dataset (cnn_dailymail ->
summarize-sft, tweetsumm -> summarize-lora), so ``dlhw report compare`` puts zero-shot, few-shot,
SFT and LoRA runs in one table.
"""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_json_atomic
from dlhw.core.devices import resolve_device
from dlhw.core.runs import RunFiles
from dlhw.families.summarization.config import SummarizationConfig
from dlhw.families.summarization.data import SummaryExample, prepare_summaries
from dlhw.families.summarization.evaluate import BASE_DIR, score, write_evaluation
from dlhw.families.summarization.infer import write_shots
from dlhw.families.summarization.train import (
    copy_tiny_base,
    load_base,
    prepare_prompts,
    summarizer_for,
)
from dlhw.lm.peft import parameter_counts
from dlhw.reports.run_report import write_run_report

logger = logging.getLogger(__name__)


def draw_shots(train: list[SummaryExample], k: int, seed: int) -> list[SummaryExample]:
    """``k`` examples of the train split, drawn with ``seed`` (never from validation or test)."""
    if k > len(train):
        raise ValueError(f"--shots {k}: the train split has only {len(train)} examples")
    return random.Random(seed).sample(train, k)


def load_prompted(config: SummarizationConfig, model_ref: str | None) -> tuple[Any, Any, str | None, str]:
    """``(tokenizer, model, name for the template, label)`` of what is prompted: a summarization run's
    model, a Hub id / local folder, or the tiny base."""
    from dlhw.families.summarization.model import (
        is_summarization_run,
        load_summarization_run,
    )
    from dlhw.lm.hub import check_quantization, load_hub_model

    device = resolve_device(config.train.device)
    if model_ref and is_summarization_run(Path(model_ref)):
        loaded = load_summarization_run(model_ref, config.train.device)
        return loaded.tokenizer, loaded.model, loaded.config.model.name, model_ref
    if model_ref is None:
        tokenizer, model, path = load_base(config, device, name=None)
        return tokenizer, model, None, path
    check_quantization(config.model.quantization, device)
    tokenizer, model = load_hub_model(model_ref, "causal-lm", device, config.model.dtype, config.model.quantization,
                                      config.model.attn_implementation, quantize_by_default=True)
    if getattr(model, "hf_device_map", None) is None:
        model = model.to(device)
    return tokenizer, model, model_ref, model_ref


def run_prompting(config: SummarizationConfig, run_dir: Path) -> dict[str, Any]:
    """Summarize the test split with ``config.prompting.shots`` examples; write the run directory."""
    k = config.prompting.shots
    splits = prepare_summaries(config.data, config.seed, need_train=k > 0)
    model_ref = config.prompting.model or config.model.name
    tokenizer, model, name, label = load_prompted(config, model_ref)
    if model_ref is None:
        copy_tiny_base(config, label, run_dir)
    elif (Path(model_ref) / BASE_DIR).is_dir():
        shutil.copytree(Path(model_ref) / BASE_DIR, run_dir / BASE_DIR, dirs_exist_ok=True)
    # zero-shot on a test split alone: the length limits come from the test split (no example of it
    # enters a prompt); with a train split they come from train, as in training
    limits_from = splits if splits.train else replace(splits, train=splits.test)
    builder, data_summary = prepare_prompts(config, tokenizer, limits_from, run_dir, name)
    if not splits.train:
        data_summary.update(splits.summary(), truncated_documents={**data_summary["truncated_documents"], "train": 0})
        data_summary["notes"] = [*splits.notes, "length limits from the test split (no train split)"]
        write_json_atomic(RunFiles(run_dir).data_stats, data_summary)
    shots = draw_shots(splits.train, config.prompting.shots, config.seed)
    write_shots(run_dir / "shots.jsonl", shots)
    dropped = [builder.prompt(e.document, shots).shots_dropped for e in splits.test]
    counts = parameter_counts(model)
    label = "zero-shot" if k == 0 else f"{k}-shot"
    summary: dict[str, Any] = {
        "recipe": config.recipe, "preset": config.preset,
        "label": label,
        "method": {"kind": "prompting", "variant": None},
        "data": data_summary,
        "model": {"base": label, "parameters": counts["total"], "trainable_parameters": 0, "trainable_percent": 0.0},
        "shots": k, "shot_ids": [s.id for s in shots],
        "shots_dropped": sum(dropped), "documents_with_dropped_shots": sum(d > 0 for d in dropped),
    }
    write_json_atomic(RunFiles(run_dir).train_summary, summary)
    if sum(dropped):
        logger.info(f"{sum(dropped)} examples dropped over {summary['documents_with_dropped_shots']} test documents to fit "
                    f"the context of {config.data.max_length} tokens")
    metrics, rows = score(summarizer_for(model, builder, config, shots), splits.test, config, run_dir, label)
    write_evaluation(run_dir, metrics, rows, {"backend": "torch", "shots": k})
    write_run_report(run_dir)
    return summary
