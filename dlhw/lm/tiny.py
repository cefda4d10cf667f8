"""Chat models: the tiny base (config + BPE tokenizer).

- :func:`train_tiny_tokenizer` -- a byte-level BPE tokenizer (digits split one by one, as in
  Llama 3) with special tokens and a chat template, trained on the embedded Persian text.
- :func:`tiny_model_config` -- a small Llama (or Gemma-2) config; the model is built from it
  with random weights and pretrained once (:mod:`dlhw.lm.pretrain`).

The full preset's base model comes from :mod:`dlhw.lm.hub`; the methods that adapt it live in
:mod:`dlhw.lm.peft`, shared with the other PEFT families.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlhw.config.lm import TinyModelConfig
from dlhw.errors import ConfigError

SPECIAL_TOKENS = ["<pad>", "<s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Every role is a special token; a turn ends with ``<|end|>``, which is also EOS."""


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),  # ۱۲ -> ۱ ۲: numbers stay learnable
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>", pad_token="<pad>",
        chat_template=TINY_CHAT_TEMPLATE, padding_side="left", clean_up_tokenization_spaces=False,
    )


def tiny_model_config(cfg: TinyModelConfig, tokenizer: Any) -> Any:
    """A small decoder config of ``cfg.model_type`` (llama or gemma2) for ``tokenizer``."""
    from transformers import AutoConfig

    if cfg.hidden_size % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
        raise ConfigError("model.tiny: hidden_size must divide by num_heads, num_heads by num_kv_heads")
    extra: dict[str, Any] = {}
    if cfg.model_type == "gemma2":
        extra = {"head_dim": cfg.hidden_size // cfg.num_heads, "sliding_window": 256,
                 "query_pre_attn_scalar": cfg.hidden_size // cfg.num_heads}
    return AutoConfig.for_model(
        cfg.model_type,
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **extra,
    )
