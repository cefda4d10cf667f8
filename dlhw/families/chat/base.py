"""Offline stand-in for a pretrained LLM: the tiny base, pretrained once on plain Persian text.

The full preset adapts Gemma-2-2B-it or Llama-3.2-3B-Instruct, which already know Persian.
Offline there is no such model, and PEFT methods adapting a *random* model have nothing to
steer. So the tiny preset trains a byte-level BPE tokenizer and a small decoder on
:func:`dlhw.families.chat.persian_tasks.plain_text` -- Persian sentences and the embedded skills stated
as facts, never in the chat format -- and caches both under ``$DLHW_CACHE_DIR/chat-base/``, keyed
by a hash of the tiny config and of the code that builds them.
Every chat recipe reuses the cached base, so the methods are compared on the same start.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from dlhw.config.lm import TinyModelConfig
from dlhw.core import pretrain as core_pretrain
from dlhw.core.cache import asset_key, cache_dir, cached_base
from dlhw.families.chat import persian_tasks
from dlhw.families.chat.persian_tasks import PRETRAIN_SEED, make_examples, plain_text
from dlhw.lm import pretrain as lm_pretrain
from dlhw.lm import tiny as lm_tiny
from dlhw.lm.pretrain import pretrain_causal_lm
from dlhw.lm.tiny import train_tiny_tokenizer

TEXT_LINES = 8000
BLOCK = 64
BATCH = 32
LR = 5e-3


def tiny_base_dir(cfg: TinyModelConfig) -> Path:
    key = asset_key(asdict(cfg), sys.modules[__name__], persian_tasks, lm_pretrain, core_pretrain, lm_tiny)
    return cache_dir() / "chat-base" / f"tiny-{cfg.model_type}-{key}"


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
