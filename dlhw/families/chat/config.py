"""Config schema of the chat family (Persian instruction tuning with PEFT methods).

Each chat recipe trains one ``method.kind`` (the recipe table in :mod:`dlhw.core.registry` pins it);
the method section itself is shared with the other PEFT families (:mod:`dlhw.config.peft`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config.base import RunConfig
from dlhw.config.lm import TinyModelConfig
from dlhw.config.peft import MethodConfig
from dlhw.core.family import HubAsset
from dlhw.errors import ConfigError


@dataclass
class ChatDataConfig:
    """Which conversations, how they are cleaned and split, and how long they may be."""

    source: typing.Literal["embedded", "hub", "local"] = "hub"
    """embedded = the built-in Persian task set; hub = hf_dataset; local = files at data.path."""
    hf_dataset: str = "universitytehran/SlimOrca"
    """Hugging Face dataset id (or a local folder load_dataset reads) for source=hub."""
    hf_split: str = "train"
    """Split of hf_dataset to read; validation and test are held out of it."""
    hf_column: str = "message"
    """Column holding the list of {role, content} messages."""
    path: str | None = None
    """source=local: a .jsonl/.json file or a directory of them (messages, ShareGPT, Alpaca or hub shape)."""
    max_examples: int | None = 50000
    """Use at most this many conversations (null = all)."""
    embedded_examples: int = 2400
    """source=embedded: how many task conversations to generate (train + val + test)."""
    val_examples: int = 500
    """Conversations held out for validation loss (fewer on small data: see holdout_fraction)."""
    test_examples: int = 500
    """Conversations held out for test loss and perplexity (fewer on small data: see holdout_fraction)."""
    holdout_fraction: float | None = 0.1
    """Local and hub data too small for val_examples + test_examples (they would take more than half
    of it): validation and test each hold out this fraction of the usable conversations instead (at
    least 1), so a small folder still trains; null = always exactly val_examples / test_examples."""
    max_length: int = 512
    """Tokens per formatted conversation; longer ones are cut (and counted as truncated)."""
    normalize: bool = True
    """Persian normalization: Arabic yeh/kaf, ZWNJ clean-up (see dlhw.core.persian)."""
    digits: typing.Literal["keep", "persian", "latin"] = "keep"
    """Digit normalization: keep, persian (۰-۹) or latin (0-9)."""

    def __post_init__(self) -> None:
        if self.source == "local" and not self.path:
            raise ConfigError("data.path: required when data.source is local")
        if self.max_length < 16:
            raise ConfigError("data.max_length: must be >= 16")
        if self.val_examples < 1 or self.test_examples < 1:
            raise ConfigError("data.val_examples / data.test_examples: must be >= 1")
        if self.holdout_fraction is not None and not 0 < self.holdout_fraction < 0.5:
            raise ConfigError("data.holdout_fraction: must be in (0, 0.5), or null for exact "
                              "data.val_examples / data.test_examples")


@dataclass
class ChatModelConfig:
    """The base model and how it is loaded."""

    name: str | None = "google/gemma-2-2b-it"
    """Hugging Face id or local path of the base model (e.g. meta-llama/Llama-3.2-3B-Instruct);
    null = the tiny model below, pretrained once on embedded Persian text."""
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    """Sizes of the tiny base model."""
    quantization: typing.Literal["auto", "none", "nf4"] = "auto"
    """auto = 4-bit NF4 (QLoRA) for the LoRA family when CUDA is present, else none."""
    dtype: typing.Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype: auto = bfloat16 on a CUDA GPU that supports it, float32 elsewhere."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, about 30% slower)."""
    attn_implementation: str | None = None
    """eager, sdpa or flash_attention_2; null = the transformers default (eager for Gemma-2)."""


@dataclass
class ChatEvalConfig:
    """Generation and scoring after training (and for `dlhw evaluate`)."""

    max_new_tokens: int = 64
    """Greedy generation length limit for exact match and probes."""
    batch_size: int = 16
    """Prompts per generation batch (left padding)."""
    exact_match_examples: int = 150
    """Embedded-task test questions scored by exact match."""
    probes: list[str] | None = None
    """Prompts generated before and after training; null = the built-in Persian probes."""


@dataclass
class ChatConfig(RunConfig):
    """A chat fine-tuning run: chat-prompt-tuning, chat-prefix-tuning, chat-p-tuning, chat-lora, chat-partial."""

    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    """Conversations and formatting."""
    model: ChatModelConfig = field(default_factory=ChatModelConfig)
    """Base model."""
    method: MethodConfig = field(default_factory=MethodConfig)
    """Fine-tuning method."""
    eval: ChatEvalConfig = field(default_factory=ChatEvalConfig)
    """Evaluation and probes."""

    def __post_init__(self) -> None:
        if self.method.kind == "prefix-tuning" and self.model.gradient_checkpointing:
            raise ConfigError("model.gradient_checkpointing: peft's prefix tuning does not work with it; "
                              "set it to false (or use prompt tuning / P-tuning to save memory)")


def hub_assets(config: ChatConfig) -> list[HubAsset]:
    """The base model and, for ``data.source=hub``, the conversations (``dlhw download``)."""
    from dlhw.core.download import hub_dataset, hub_model

    data = hub_dataset(config.data.hf_dataset, "data.hf_dataset") if config.data.source == "hub" else []
    return hub_model(config.model.name, "model.name") + data
