"""Offline stand-in for SmolLM2 / stablelm: a tiny Llama pretrained once on embedded English text.

The chat base's recipe with another corpus: a byte-level BPE tokenizer and a small decoder trained
on :func:`dlhw.data.summary_tasks.plain_text` (article sentences, support dialogues and
summary-style sentences, never a document paired with its summary), cached under
``$DLHW_CACHE_DIR/summarization-base/``, keyed by a hash of the tiny config and of the code.
Zero-shot, few-shot, SFT and LoRA runs all start from the same cached base.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dlhw.config.chat import TinyModelConfig
from dlhw.core.cache import asset_key, cache_dir
from dlhw.data import summary_tasks
from dlhw.data.summary_tasks import PRETRAIN_SEED, plain_text
from dlhw.models import chat as chat_models
from dlhw.models.chat import tiny_model_config, train_tiny_tokenizer

TEXT_LINES = 4000
BLOCK = 128
BATCH = 16
LR = 4e-3


def tiny_base_dir(cfg: TinyModelConfig) -> Path:
    key = asset_key(asdict(cfg), sys.modules[__name__], summary_tasks, chat_models)
    return cache_dir() / "summarization-base" / f"tiny-{cfg.model_type}-{key}"


def pretrain(cfg: TinyModelConfig, out_dir: Path, log: bool = True) -> None:
    """Train the tokenizer and the base model on plain English text; save both to ``out_dir``."""
    from transformers import AutoModelForCausalLM

    lines = plain_text(TEXT_LINES)
    tokenizer = train_tiny_tokenizer(lines, cfg.vocab_size)
    with torch.random.fork_rng():
        torch.manual_seed(PRETRAIN_SEED)
        model = AutoModelForCausalLM.from_config(tiny_model_config(cfg, tokenizer))
    stream: list[int] = []
    for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]:
        stream += [tokenizer.bos_token_id, *ids]
    n = len(stream) // BLOCK
    data = torch.tensor(stream[: n * BLOCK]).view(n, BLOCK)  # (N, BLOCK)
    gen = torch.Generator().manual_seed(PRETRAIN_SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, cfg.pretrain_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.pretrain_steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    bar = tqdm(range(cfg.pretrain_steps), desc="pretraining the tiny summarization base on English text (once)",
               disable=not log)
    loss = torch.tensor(0.0)
    for _ in bar:
        batch = data[torch.randint(len(data), (BATCH,), generator=gen)]  # (BATCH, BLOCK)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "pretrain.json").write_text(json.dumps({
        "config": asdict(cfg), "text_lines": len(lines), "blocks": len(data), "block": BLOCK,
        "final_loss": round(loss.item(), 4),
    }, indent=2), encoding="utf-8")


def tiny_base(cfg: TinyModelConfig) -> Path:
    """The cached tiny base for ``cfg`` (model + tokenizer folder), pretraining it first if needed."""
    path = tiny_base_dir(cfg)
    if (path / "pretrain.json").is_file():
        return path
    start = time.perf_counter()
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pretrain(cfg, tmp)
    try:
        os.replace(tmp, path)  # atomic: a concurrent run sees the whole folder or none
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"tiny summarization base pretrained in {time.perf_counter() - start:.0f} s, cached at {path}")
    return path
