"""The chat recipes: setup -> base metrics -> apply the method -> train -> frozen check -> save -> evaluate.

chat-prompt-tuning, chat-prefix-tuning, chat-p-tuning, chat-lora and chat-partial share it;
``method.kind`` picks what is trained. Before training, the base model's test loss, exact match
and probe answers are recorded (``base_eval.json``); after training every frozen tensor is
compared bit for bit with its state before, and the run fails if one moved.
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
from dlhw.core.runs import RunFiles
from dlhw.engine.finish import finish_run
from dlhw.engine.trainer import run_training
from dlhw.errors import DlhwError
from dlhw.families.chat.base import tiny_base
from dlhw.families.chat.config import ChatConfig
from dlhw.families.chat.data import prepare_conversations
from dlhw.families.chat.evaluate import base_metrics, evaluate_loaded
from dlhw.families.chat.persian_tasks import PROBES
from dlhw.lm.hub import load_hub_model
from dlhw.lm.peft import (
    FrozenCheck,
    apply_method,
    decoder_layers,
    parameter_counts,
    partial_layer_indices,
    upcast_trainable,
)
from dlhw.lm.run import BASE_DIR, save_chat_model
from dlhw.lm.template import ChatCollator, ChatFormatter, LengthStats

logger = logging.getLogger(__name__)


def require_gpu_for_full_size(config: ChatConfig, device: torch.device) -> None:
    """A 2-3B base on a CPU would take days: stop before downloading anything."""
    if config.model.name is not None and device.type != "cuda" and config.train.device == "auto":
        raise DlhwError(
            f"{config.recipe} ({config.preset} preset) fine-tunes {config.model.name}, a 2-3B parameter "
            "model: that needs a CUDA GPU (bf16, or 4-bit QLoRA for the LoRA family). No GPU is visible "
            f"here. Train the tiny model offline with `dlhw train {config.recipe} --preset tiny`, or force "
            "the CPU with --set train.device=cpu"
        )


def load_base(config: ChatConfig, device: torch.device) -> tuple[Any, Any, str]:
    """``(tokenizer, model, tokenizer_path)`` of the base model, on ``device``."""
    if config.model.name is None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = tiny_base(config.model.tiny)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        return tokenizer, model.to(device), str(path)
    cfg = config.model
    assert cfg.name is not None
    tokenizer, model = load_hub_model(
        cfg.name, "causal-lm", device, cfg.dtype, cfg.quantization, cfg.attn_implementation,
        cfg.gradient_checkpointing, quantize_by_default=config.method.kind == "lora",
    )
    if getattr(model, "hf_device_map", None) is None:
        model = model.to(device)
    return tokenizer, model, config.model.name


def train_chat(config: ChatConfig, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train one chat run into ``run_dir``; returns the training summary."""
    set_seed(config.seed)
    device = resolve_device(config.train.device)
    require_gpu_for_full_size(config, device)
    tokenizer, model, tokenizer_path = load_base(config, device)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False

    splits = prepare_conversations(config.data, config.seed)
    formatter = ChatFormatter(tokenizer, config.data.max_length)
    stats = {s: LengthStats() for s in ("train", "val", "test")}
    datasets = {s: formatter.encode_all(splits[s], stats[s]) for s in stats}
    data_summary = {**splits.summary(), "tokens": {s: st.summary() for s, st in stats.items()},
                    "system_role_in_template": formatter.system_role}
    t = data_summary["tokens"]["train"]
    logger.info(f"conversations: {data_summary['train']} train / {data_summary['val']} val / {data_summary['test']} test "
                f"from {splits.source}; train tokens mean {t['tokens_mean']}, p95 {t['tokens_p95']}, max "
                f"{t['tokens_max']}; {t['truncated']} truncated at {config.data.max_length}, {t['dropped']} dropped")

    collator = ChatCollator(tokenizer.pad_token_id)
    base_file = RunFiles(run_dir).base_eval
    if not base_file.is_file():
        base = base_metrics(model, tokenizer, datasets["test"], splits, collator, config)
        write_json_atomic(base_file, base)
        logger.info(f"base model: test loss {base['test_loss']:.4f}, exact match {base['exact_match']:.3f}")

    model = apply_method(model, config.method, tokenizer_path)
    upcast_trainable(model)
    counts = parameter_counts(model)
    logger.info(f"{config.method.kind}: {counts['trainable']:,} trainable of {counts['total']:,} parameters "
                f"({counts['trainable_percent']:.3f}%)")
    frozen_check = FrozenCheck(model)

    first_prompt = [{"role": "user", "content": (config.eval.probes or PROBES)[0]}]

    def sample(m: Any) -> str:
        from dlhw.lm.generate import ChatGenerator

        return ChatGenerator(m, tokenizer, max_new_tokens=24).generate([first_prompt])[0].text

    trainer, result = run_training(
        model, datasets["train"], datasets["val"], collator, config.train, run_dir, config.seed,
        resume_from=resume_from, sample=sample, sample_key="sample_answer", frozen_check=frozen_check,
    )

    def save(m: Any, model_dir: Path) -> None:
        base_copy = config.model.name is None
        if base_copy:  # the tiny base travels with the run (a few MB), so the run stands alone
            shutil.copytree(tokenizer_path, run_dir / BASE_DIR, dirs_exist_ok=True)
        save_chat_model(m, tokenizer, model_dir, config, base=BASE_DIR if base_copy else tokenizer_path)

    def summary(m: Any) -> dict[str, Any]:
        check = frozen_check.verify(m)  # raises, before anything is saved, when a frozen tensor moved
        logger.info(f"frozen check: {check['identical']} frozen tensors bit-identical; {check['changed']} of "
                    f"{check['trainable_tensors']} trainable tensors changed")
        variant = config.method.variant if config.method.kind == "lora" else None
        layers = len(decoder_layers(m))
        return {
            "label": variant if variant and variant != "lora" else config.method.kind,
            "method": {"kind": config.method.kind, "variant": variant},
            "data": data_summary,
            "model": {
                "base": config.model.name or tokenizer_path,
                "parameters": counts["total"],
                "trainable_parameters": counts["trainable"],
                "trainable_percent": counts["trainable_percent"],
                "decoder_layers": layers,
                "partial_layers": partial_layer_indices(config.method.layers, layers)
                if config.method.kind == "partial" else None,
            },
            "frozen_check": check,
        }

    def evaluate(m: Any) -> None:
        evaluate_loaded(run_dir, m, tokenizer, config, splits, datasets["test"], collator)

    return finish_run(trainer, result, config, run_dir, save=save, summary=summary, evaluate=evaluate)
