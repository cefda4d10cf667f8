"""Pretraining a tiny causal LM from scratch: the offline stand-in for a pretrained base.

The full presets adapt real pretrained models; offline there are none, and a PEFT method adapting a
*random* model has nothing to steer. Each language-model family therefore pretrains a tiny base on its
own embedded text with :func:`pretrain_causal_lm` and caches it with :func:`dlhw.core.cache.cached_base`;
the optimisation itself is :func:`dlhw.core.pretrain.pretrain_loop`, shared with the tiny T5 and the
caption family's scene encoder.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from dlhw.config.lm import TinyModelConfig
from dlhw.core.pretrain import pretrain_loop, seeded, warmup_cosine
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
    text, AdamW (betas 0.9, 0.95) with warmup over 5% of the steps then cosine decay to 10% of ``lr``.
    Shared by every family's tiny causal base.
    """
    from transformers import AutoModelForCausalLM

    model = seeded(seed, lambda: AutoModelForCausalLM.from_config(tiny_model_config(cfg, tokenizer)))
    data = _blocks(tokenizer, lines, block)
    gen = torch.Generator().manual_seed(seed)

    def batch(step: int) -> dict[str, torch.Tensor]:
        ids = data[torch.randint(len(data), (batch_size,), generator=gen)]  # (batch_size, block)
        return {"input_ids": ids, "labels": ids}

    loss = pretrain_loop(model, batch, cfg.pretrain_steps, lr=lr, seed=seed, betas=(0.9, 0.95),
                         schedule=warmup_cosine(max(1, cfg.pretrain_steps // 20)), desc=desc, log=log)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "pretrain.json").write_text(json.dumps({
        "config": asdict(cfg), "text_lines": len(lines), "blocks": len(data), "block": block,
        "final_loss": round(loss, 4),
    }, indent=2), encoding="utf-8")
