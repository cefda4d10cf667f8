"""Pretraining a tiny causal LM from scratch: the offline stand-in for a pretrained base.

The full presets adapt real pretrained models; offline there are none, and a PEFT method adapting a
*random* model has nothing to steer. Each language-model family therefore pretrains a tiny base on its
own embedded text with :func:`pretrain_causal_lm` (one loop for every family) and caches it with
:func:`dlhw.core.cache.cached_base`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dlhw.config.lm import TinyModelConfig
from dlhw.lm.tiny import tiny_model_config


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
