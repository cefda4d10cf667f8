"""The summarization recipes: setup -> length statistics -> base scores -> method -> SFT -> save -> evaluate.

``summarize-sft`` trains every weight, ``summarize-lora`` a LoRA adapter (the shared PEFT module),
both with TRL's ``SFTTrainer`` through the engine (callbacks, run directory, resume). The data
are pre-tokenized prompt + completion pairs built by the same :class:`PromptBuilder` that
evaluation and ``dlhw summarize`` use, with a ``completion_mask``: the loss covers the summary
and its EOS only, and the collator pads each batch to its longest example.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from dlhw.core.atomic import write_json_atomic
from dlhw.core.devices import resolve_device
from dlhw.core.runs import RunFiles, read_json
from dlhw.engine.finish import finish_run
from dlhw.engine.trainer import Engine, run_training
from dlhw.errors import DlhwError
from dlhw.families.summarization.base import tiny_base
from dlhw.families.summarization.config import SummarizationConfig
from dlhw.families.summarization.data import (
    PromptBuilder,
    SummarySplits,
    choose_limits,
    length_statistics,
    prepare_summaries,
)
from dlhw.families.summarization.evaluate import BASE_DIR, score, write_evaluation
from dlhw.families.summarization.infer import Summarizer
from dlhw.families.summarization.model import (
    resolve_template,
    save_prompt_info,
)
from dlhw.families.summarization.report import plot_lengths
from dlhw.lm.generate import ChatGenerator
from dlhw.lm.hub import check_quantization, load_hub_model
from dlhw.lm.peft import FrozenCheck, apply_method, parameter_counts, upcast_trainable
from dlhw.lm.run import save_chat_model
from dlhw.lm.sampling import sampler

logger = logging.getLogger(__name__)


def load_base(config: SummarizationConfig, device: torch.device, name: str | None = None) -> tuple[Any, Any, str]:
    """``(tokenizer, model, path)`` of the base model (the tiny one when ``model.name`` is null)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = name if name is not None else config.model.name
    check_quantization(config.model.quantization, device)
    if name is None:
        path = tiny_base(config.model.tiny)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        return tokenizer, model.to(device), str(path)
    cfg = config.model
    if config.method.kind == "lora" and device.type != "cuda" and config.train.device == "auto" \
            and "3b" in name.lower():
        raise DlhwError(f"{config.recipe}: LoRA on {name} (3B parameters) needs a CUDA GPU and none is visible; "
                        f"train the tiny model with `dlhw train {config.recipe} --preset tiny`, or force the CPU "
                        "with --set train.device=cpu")
    tokenizer, model = load_hub_model(name, "causal-lm", device, cfg.dtype, cfg.quantization, cfg.attn_implementation,
                                      cfg.gradient_checkpointing, quantize_by_default=config.method.kind == "lora",
                                      auto_kind=config.auto_kbit())
    if getattr(model, "hf_device_map", None) is None:
        model = model.to(device)
    return tokenizer, model, name


def prepare_prompts(config: SummarizationConfig, tokenizer: Any, splits: SummarySplits, run_dir: Path,
                    name: str | None) -> tuple[PromptBuilder, dict[str, Any]]:
    """Length statistics of the train split (printed, saved, plotted), the limits chosen from them,
    and the prompt builder using them."""
    stats = length_statistics(splits.train, tokenizer)
    limits = choose_limits(stats, config.data, config.eval.max_new_tokens)
    raw = stats.pop("raw")
    files = RunFiles(run_dir)
    plot_lengths(raw, limits, files.plot("lengths.png"))
    template = resolve_template(config.model.template, name)
    builder = PromptBuilder(tokenizer, splits.kind, template, limits["max_input_tokens"], config.data.max_length,
                            limits["max_new_tokens"])
    truncated = {s: sum(builder.cut(e.document)[1] for e in splits[s]) for s in ("train", "val", "test")}
    data = {**splits.summary(), "lengths": stats, "limits": limits, "template": template,
            "truncated_documents": truncated}
    write_json_atomic(files.data_stats, data)
    d, s = stats["document_tokens"], stats["summary_tokens"]
    logger.info(f"{splits.kind}s: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test from "
                f"{splits.source}; document tokens mean {d['mean']}, p95 {d['p95']}, max {d['max']}; summary tokens mean "
                f"{s['mean']}, p95 {s['p95']}; input limit {limits['max_input_tokens']} ({limits['rule']}), "
                f"max_new_tokens {limits['max_new_tokens']}; truncated: {truncated}")
    return builder, data


def encode(builder: PromptBuilder, splits: SummarySplits, split: str, reference: int, max_length: int) -> list[dict[str, list[int]]]:
    """Prompt + completion ids with a completion mask (1 on the summary and its EOS)."""
    out = []
    for e in splits[split]:
        prompt = builder.prompt(e.document).ids
        completion = builder.completion_ids(e.references[min(reference, len(e.references) - 1)])
        ids = (prompt + completion)[:max_length]
        mask = ([0] * len(prompt) + [1] * len(completion))[:max_length]
        if any(mask):
            out.append({"input_ids": ids, "completion_mask": mask})
    return out


def summarizer_for(model: Any, builder: PromptBuilder, config: SummarizationConfig,
                   shots: list[Any] | None = None) -> Summarizer:
    pick = sampler(config.eval.temperature, config.eval.top_p, config.eval.top_k, config.seed) \
        if config.eval.do_sample else None
    generator = ChatGenerator(model, builder.tokenizer, builder.max_new_tokens, config.data.max_length, pick)
    return Summarizer(generator, builder, shots)


def copy_tiny_base(config: SummarizationConfig, path: str, run_dir: Path) -> None:
    """The tiny base travels with the run (a few MB): LoRA loads on it, BERTScore scores with it."""
    if config.model.name is None:
        shutil.copytree(path, run_dir / BASE_DIR, dirs_exist_ok=True)


def train_summarization(config: SummarizationConfig, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train one summarization run into ``run_dir``; returns the training summary."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    set_seed(config.seed)
    device = resolve_device(config.train.device)
    splits = prepare_summaries(config.data, config.seed)  # data first: offline, this fails in seconds
    tokenizer, model, path = load_base(config, device)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    copy_tiny_base(config, path, run_dir)
    builder, data_summary = prepare_prompts(config, tokenizer, splits, run_dir, config.model.name)
    encoded = {s: encode(builder, splits, s, config.data.train_reference, config.data.max_length)
               for s in ("train", "val")}

    files = RunFiles(run_dir)
    if not files.base_eval.is_file():
        base, _ = score(summarizer_for(model, builder, config), splits.test, config, run_dir, "base model, zero-shot")
        write_json_atomic(files.base_eval, base)

    if config.method.kind != "full":
        model = apply_method(model, config.method, path)
        upcast_trainable(model)
    counts = parameter_counts(model)
    logger.info(f"{config.method.kind}: {counts['trainable']:,} trainable of {counts['total']:,} parameters "
                f"({counts['trainable_percent']:.3f}%)")
    frozen_check = FrozenCheck(model) if config.method.kind != "full" else None
    first = splits.val[0].document

    def sample(m: Any) -> str:
        return summarizer_for(m, builder, config).summarize([first])[0].text.replace("\n", " / ")  # one report line

    engine = Engine(
        trainer_class=SFTTrainer, args_class=SFTConfig,
        args={"completion_only_loss": True, "max_length": config.data.max_length, "padding_free": False},
        trainer_kwargs={"processing_class": tokenizer},
    )
    trainer, result = run_training(
        model, datasets.Dataset.from_list(encoded["train"]), datasets.Dataset.from_list(encoded["val"]), None,
        config.train, run_dir, config.seed, resume_from=resume_from, sample=sample, sample_key="sample_summary",
        engine=engine,
        frozen_check=frozen_check,
    )

    def save(m: Any, model_dir: Path) -> None:
        save_chat_model(m, tokenizer, model_dir, config, base=BASE_DIR if config.model.name is None else str(config.model.name))
        save_prompt_info(model_dir, {"kind": splits.kind, "template": builder.chat and "chat" or "plain",
                                     "max_input_tokens": builder.max_input_tokens, "max_length": config.data.max_length,
                                     "max_new_tokens": builder.max_new_tokens})

    def summary(m: Any) -> dict[str, Any]:
        check = frozen_check.verify(m) if frozen_check is not None else None  # raises before anything is saved
        return {
            "label": "SFT (full)" if config.method.kind == "full" else f"LoRA r{config.method.r}",
            "method": {"kind": config.method.kind, "variant": config.method.variant if config.method.kind == "lora" else None},
            "data": data_summary,
            "model": {"base": config.model.name or path, "parameters": counts["total"],
                      "trainable_parameters": counts["trainable"], "trainable_percent": counts["trainable_percent"]},
            "frozen_check": check,
        }

    def evaluate(m: Any) -> None:
        metrics, rows = score(summarizer_for(m, builder, config), splits.test, config, run_dir, "fine-tuned")
        base = read_json(files.base_eval)
        change = {k: metrics[k] - base[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_f1")}
        base_short = {k: v for k, v in base.items() if not k.endswith("_ci95")}
        write_evaluation(run_dir, metrics, rows, {"base": base_short, "change_from_base": change, "backend": "torch"})

    return finish_run(trainer, result, config, run_dir, save=save, summary=summary, evaluate=evaluate)
