"""Offline stand-in for SmolLM2 / stablelm: a tiny Llama pretrained once on embedded English text.

The chat base's recipe with another corpus: a byte-level BPE tokenizer and a small decoder trained
on :func:`dlhw.families.summarization.summary_tasks.plain_text` (articles, support dialogues, summary-style sentences,
record lists and notes under made-up labels, never the tasks' ``Article:`` / ``Summary:`` layout),
cached under ``$DLHW_CACHE_DIR/summarization-base/``, keyed by a hash of the tiny config and of the code.
Windows of 512 tokens cover a three-example prompt (positions a base never trained on give noise,
not summaries), and every text ends with EOS. Zero-shot, few-shot, SFT and LoRA runs all start from
the same cached base.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from dlhw.config.lm import TinyModelConfig
from dlhw.core import pretrain as core_pretrain
from dlhw.core.cache import asset_key, cache_dir, cached_base
from dlhw.families.summarization import summary_tasks
from dlhw.families.summarization.summary_tasks import PRETRAIN_SEED, plain_text
from dlhw.lm import pretrain as lm_pretrain
from dlhw.lm import tiny as lm_tiny
from dlhw.lm.pretrain import pretrain_causal_lm
from dlhw.lm.tiny import train_tiny_tokenizer

TEXT_LINES = 4000
BLOCK = 512
BATCH = 4
LR = 4e-3


def tiny_base_dir(cfg: TinyModelConfig) -> Path:
    key = asset_key(asdict(cfg), sys.modules[__name__], lm_pretrain, core_pretrain, summary_tasks, lm_tiny)
    return cache_dir() / "summarization-base" / f"tiny-{cfg.model_type}-{key}"


def pretrain(cfg: TinyModelConfig, out_dir: Path, log: bool = True) -> None:
    """Train the tokenizer and the base model on plain English text; save both to ``out_dir``."""
    lines = plain_text(TEXT_LINES)
    tokenizer = train_tiny_tokenizer(lines, cfg.vocab_size)
    # each text ends with EOS, as documents do in a real corpus: the base learns where a text stops
    documents = [line + tokenizer.eos_token for line in lines]
    pretrain_causal_lm(cfg, tokenizer, documents, out_dir, seed=PRETRAIN_SEED, block=BLOCK, batch_size=BATCH, lr=LR,
                       desc="pretraining the tiny summarization base on English text (once)", log=log)


def tiny_base(cfg: TinyModelConfig) -> Path:
    """The cached tiny base for ``cfg`` (model + tokenizer folder), pretraining it first if needed."""
    return cached_base(tiny_base_dir(cfg), lambda folder: pretrain(cfg, folder, log=True),
                       "tiny summarization base")
