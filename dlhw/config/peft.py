"""The fine-tuning method section shared by every family that adapts a pretrained LM with PEFT
(chat now, summarization next): which method, and the settings of each.

| ``method.kind`` | trains |
|---|---|
| prompt-tuning | virtual-token embeddings prepended to the input |
| prefix-tuning | key/value prefixes in every attention layer |
| p-tuning | virtual tokens produced by a small prompt encoder (MLP or LSTM) |
| lora | low-rank updates; ``method.variant``: lora, dora, rslora, loha |
| partial | chosen decoder layers in full; everything else frozen |
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.errors import ConfigError

SOFT_PROMPT_METHODS = ("prompt-tuning", "prefix-tuning", "p-tuning")


@dataclass
class MethodConfig:
    """The fine-tuning method and its settings (only those of method.kind are used)."""

    kind: typing.Literal["prompt-tuning", "prefix-tuning", "p-tuning", "lora", "partial"] = "lora"
    """Set by the recipe (each chat recipe trains one method; see `dlhw recipes`)."""
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
