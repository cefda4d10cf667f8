"""Offline stand-in for a pretrained LLM: the tiny base, pretrained once on plain Persian text.

The full preset adapts Gemma-2-2B-it or Llama-3.2-3B-Instruct, which already know Persian.
Offline there is no such model, and PEFT methods adapting a *random* model have nothing to
steer. So the tiny preset trains a byte-level BPE tokenizer and a small decoder on
:func:`dlhw.data.persian_tasks.plain_text` -- Persian sentences and the embedded skills stated
as facts, never in the chat format -- and caches both under ``$DLHW_CACHE_DIR/chat-base/``, keyed
by a hash of the tiny config and of the code that builds them.
Every chat recipe reuses the cached base, so the methods are compared on the same start.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dlhw.config.chat import TinyModelConfig
from dlhw.core.cache import asset_key, cache_dir, cached_base
from dlhw.data import persian_tasks
from dlhw.data.persian_tasks import PRETRAIN_SEED, make_examples, plain_text
from dlhw.models import chat as chat_models
from dlhw.models.chat import tiny_model_config, train_tiny_tokenizer

TEXT_LINES = 8000
BLOCK = 64
BATCH = 32
LR = 5e-3


def tiny_base_dir(cfg: TinyModelConfig) -> Path:
    key = asset_key(asdict(cfg), sys.modules[__name__], persian_tasks, chat_models)
    return cache_dir() / "chat-base" / f"tiny-{cfg.model_type}-{key}"


def _blocks(tokenizer: Any, lines: list[str], block: int) -> torch.Tensor:
    """The lines as one token stream (``<s>`` before each) cut into (N, block) blocks."""
    stream: list[int] = []
    for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]:
        stream += [tokenizer.bos_token_id, *ids]
    n = len(stream) // block
    return torch.tensor(stream[: n * block]).view(n, block)  # (N, block)


def pretrain_causal_lm(cfg: TinyModelConfig, tokenizer: Any, lines: list[str], out_dir: Path, *, seed: int,
                       block: int, batch_size: int, lr: float, desc: str, log: bool = True) -> None:
    """Pretrain a tiny causal LM from ``cfg`` on ``lines`` and save it with ``tokenizer`` to ``out_dir``.

    Deterministic for a given seed: next-token loss on random (batch_size, block) windows of the
    text, AdamW with warmup then cosine decay to 10% of ``lr``. Shared by every family's tiny base.
    """
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(tiny_model_config(cfg, tokenizer))
    data = _blocks(tokenizer, lines, block)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, cfg.pretrain_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.pretrain_steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    bar = tqdm(range(cfg.pretrain_steps), desc=desc, disable=not log)
    loss = torch.tensor(0.0)
    for _ in bar:
        batch = data[torch.randint(len(data), (batch_size,), generator=gen)]  # (batch_size, block)
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
        "config": asdict(cfg), "text_lines": len(lines), "blocks": len(data), "block": block,
        "final_loss": round(loss.item(), 4),
    }, indent=2), encoding="utf-8")


def pretrain_tiny_base(cfg: TinyModelConfig, out_dir: Path, log: bool = True) -> None:
    """Train the tokenizer and the base model and save both to ``out_dir`` (deterministic)."""
    lines = plain_text(TEXT_LINES)
    # the tokenizer also sees the instruction phrasings (as a real tokenizer's corpus would),
    # drawn with the pretraining seed, never the task data a run trains or tests on
    phrasings = [f"{e.system or ''} {e.question} {e.answer}" for e in make_examples(600, PRETRAIN_SEED)]
    tokenizer = train_tiny_tokenizer(lines + phrasings, cfg.vocab_size)
    pretrain_causal_lm(cfg, tokenizer, lines, out_dir, seed=PRETRAIN_SEED, block=BLOCK, batch_size=BATCH, lr=LR,
                       desc="pretraining the tiny chat base on Persian text (once)", log=log)


def tiny_base(cfg: TinyModelConfig) -> Path:
    """The cached tiny base for ``cfg`` (model + tokenizer folder), pretraining it first if needed."""
    return cached_base(tiny_base_dir(cfg), lambda folder: pretrain_tiny_base(cfg, folder), "tiny chat base")
