"""Config of the tiny causal language model every language-model family builds offline.

The chat and summarization families pretrain a base of this shape once (:mod:`dlhw.lm.pretrain`)
when ``model.name`` is null.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TinyModelConfig:
    """The tiny base model built from a config (used when model.name is null)."""

    model_type: str = "llama"
    """Architecture of the tiny model: llama (default) or gemma2."""
    vocab_size: int = 768
    """Byte-level BPE vocabulary trained on the embedded Persian text."""
    hidden_size: int = 64
    """Width of the residual stream (embedding size)."""
    num_layers: int = 6
    """Decoder layers."""
    num_heads: int = 4
    """Attention heads per layer (hidden_size must divide by it)."""
    num_kv_heads: int = 2
    """Key/value heads (grouped-query attention; num_heads must divide by it)."""
    intermediate_size: int = 192
    """Hidden size of each layer's gated MLP."""
    pretrain_steps: int = 600
    """Steps of plain-text pretraining, done once and cached in $DLHW_CACHE_DIR."""
