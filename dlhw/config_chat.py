"""Config schema of the chat family (Persian instruction tuning with PEFT methods).

Recipes and the method each one trains:

| recipe | ``method.kind`` | trains |
|---|---|---|
| chat-prompt-tuning | prompt-tuning | virtual-token embeddings prepended to the input |
| chat-prefix-tuning | prefix-tuning | key/value prefixes in every attention layer |
| chat-p-tuning | p-tuning | virtual tokens produced by a small prompt encoder (MLP or LSTM) |
| chat-lora | lora | low-rank updates; ``method.variant``: lora, dora, rslora, loha |
| chat-partial | partial | decoder layers 0, 1, L-2 and L-1 in full; everything else frozen |
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config import ConfigError, TrainConfig

METHOD_OF_RECIPE = {
    "chat-prompt-tuning": "prompt-tuning",
    "chat-prefix-tuning": "prefix-tuning",
    "chat-p-tuning": "p-tuning",
    "chat-lora": "lora",
    "chat-partial": "partial",
}
SOFT_PROMPT_METHODS = ("prompt-tuning", "prefix-tuning", "p-tuning")


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
    """source=local: a .jsonl/.json file or a directory of them (messages, ShareGPT or hub shape)."""
    max_examples: int | None = 50000
    """Use at most this many conversations (null = all)."""
    embedded_examples: int = 2400
    """source=embedded: how many task conversations to generate (train + val + test)."""
    val_examples: int = 500
    """Conversations held out for validation loss."""
    test_examples: int = 500
    """Conversations held out for test loss and perplexity."""
    max_length: int = 512
    """Tokens per formatted conversation; longer ones are cut (and counted as truncated)."""
    normalize: bool = True
    """Persian normalization: Arabic yeh/kaf, ZWNJ clean-up (see dlhw.data.persian)."""
    digits: typing.Literal["keep", "persian", "latin"] = "keep"
    """Digit normalization: keep, persian (۰-۹) or latin (0-9)."""

    def __post_init__(self) -> None:
        if self.source == "local" and not self.path:
            raise ConfigError("data.path: required when data.source is local")
        if self.max_length < 16:
            raise ConfigError("data.max_length: must be >= 16")
        if self.val_examples < 1 or self.test_examples < 1:
            raise ConfigError("data.val_examples / data.test_examples: must be >= 1")


@dataclass
class TinyModelConfig:
    """The tiny base model built from a config (used when model.name is null)."""

    model_type: str = "llama"
    """Architecture of the tiny model: llama (default) or gemma2."""
    vocab_size: int = 768
    """Byte-level BPE vocabulary trained on the embedded Persian text."""
    hidden_size: int = 64
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 192
    pretrain_steps: int = 600
    """Steps of plain-text pretraining, done once and cached in $DLHW_CACHE_DIR."""


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
class MethodConfig:
    """The fine-tuning method and its settings (only those of method.kind are used)."""

    kind: typing.Literal["prompt-tuning", "prefix-tuning", "p-tuning", "lora", "partial"] = "lora"
    """Set by the recipe; see the table in `dlhw recipes`."""
    variant: typing.Literal["lora", "dora", "rslora", "loha"] = "lora"
    """lora family: plain LoRA, DoRA (weight-decomposed), rsLoRA (alpha/sqrt(r) scaling), LoHa."""
    r: int = 16
    """Rank of the LoRA / LoHa update."""
    alpha: int = 32
    """Scaling numerator: the update is scaled by alpha/r (alpha/sqrt(r) for rslora)."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Module names the adapter wraps (default: attention and MLP projections)."""
    num_virtual_tokens: int = 20
    """Soft-prompt methods: virtual tokens (prompt tuning, p-tuning) or prefix length (prefix)."""
    prompt_init: typing.Literal["random", "text"] = "text"
    """prompt-tuning: start the virtual tokens from random vectors or from prompt_init_text."""
    prompt_init_text: str = "به پرسش کاربر به فارسی و کوتاه و دقیق پاسخ بده."
    """prompt-tuning with prompt_init=text: the text whose token embeddings initialize the prompt."""
    prefix_projection: bool = False
    """prefix-tuning: reparameterize the prefix through a two-layer MLP."""
    encoder_hidden_size: int = 256
    """p-tuning: hidden size of the prompt encoder."""
    encoder_type: typing.Literal["MLP", "LSTM"] = "MLP"
    """p-tuning: prompt encoder architecture."""
    layers: list[int] = field(default_factory=lambda: [0, 1, -2, -1])
    """partial: decoder layers trained in full (negative = from the end)."""

    def __post_init__(self) -> None:
        if self.r < 1 or self.num_virtual_tokens < 1:
            raise ConfigError("method.r and method.num_virtual_tokens: must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("method.dropout: must lie in [0, 1)")


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
class ChatConfig:
    """A chat fine-tuning run: chat-prompt-tuning, chat-prefix-tuning, chat-p-tuning, chat-lora, chat-partial."""

    recipe: str = "chat-lora"
    """The recipe this config belongs to."""
    preset: str = "full"
    """The preset it was resolved from."""
    seed: int = 42
    """Seeds data splits, model init and the Trainer."""
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    """Conversations and formatting."""
    model: ChatModelConfig = field(default_factory=ChatModelConfig)
    """Base model."""
    method: MethodConfig = field(default_factory=MethodConfig)
    """Fine-tuning method."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""
    eval: ChatEvalConfig = field(default_factory=ChatEvalConfig)
    """Evaluation and probes."""

    def __post_init__(self) -> None:
        if self.method.kind == "prefix-tuning" and self.model.gradient_checkpointing:
            raise ConfigError("model.gradient_checkpointing: peft's prefix tuning does not work with it; "
                              "set it to false (or use prompt tuning / P-tuning to save memory)")
        expected = METHOD_OF_RECIPE.get(self.recipe)
        if expected is not None and self.method.kind != expected:
            raise ConfigError(
                f"method.kind: recipe {self.recipe} trains {expected}, not {self.method.kind}; "
                f"use `dlhw train {next(r for r, k in METHOD_OF_RECIPE.items() if k == self.method.kind)}`"
            )
