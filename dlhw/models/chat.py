"""Chat models: the tiny base (config + BPE tokenizer), hub loading, and the fine-tuning methods.

- :func:`train_tiny_tokenizer` -- a byte-level BPE tokenizer (digits split one by one, as in
  Llama 3) with special tokens and a chat template, trained on the embedded Persian text.
- :func:`tiny_model_config` -- a small Llama (or Gemma-2) config; the model is built from it
  with random weights and pretrained once (:mod:`dlhw.training.chat_pretrain`).
- :func:`load_hub_model` -- the full preset's base model, 4-bit NF4 (QLoRA) when asked.
- :func:`apply_method` -- wraps the base with a peft method or freezes all but four layers.
- :func:`tensor_digests` -- a hash per tensor, to prove frozen weights did not move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from dlhw.config_chat import ChatModelConfig, MethodConfig, TinyModelConfig
from dlhw.errors import ConfigError, DataError, DlhwError

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


def model_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def wants_4bit(cfg: ChatModelConfig, method: MethodConfig, device: torch.device) -> bool:
    if cfg.quantization == "none" or cfg.name is None:
        return False
    if cfg.quantization == "nf4":
        if device.type != "cuda":
            raise ConfigError("model.quantization=nf4: 4-bit loading needs a CUDA GPU (bitsandbytes)")
        return True
    return device.type == "cuda" and method.kind == "lora"


def load_hub_model(cfg: ChatModelConfig, method: MethodConfig, device: torch.device) -> tuple[Any, Any]:
    """The full preset's tokenizer and model (bf16 on GPU; NF4 for the LoRA family = QLoRA)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert cfg.name is not None
    kwargs: dict[str, Any] = {"dtype": model_dtype(cfg.dtype, device)}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    quantized = wants_4bit(cfg, method, device)
    if quantized:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise DlhwError("4-bit (QLoRA) loading needs bitsandbytes: pip install 'dlhw[gpu]', or "
                            "--set model.quantization=none for bf16 LoRA") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=model_dtype(cfg.dtype, device),
        )
        kwargs["device_map"] = {"": device.index or 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.name)
        model = AutoModelForCausalLM.from_pretrained(cfg.name, **kwargs)
    except OSError as err:
        raise DataError(
            f"could not load the base model {cfg.name!r} ({str(err).splitlines()[0]}). Gated models "
            "(Gemma, Llama) need `huggingface-cli login` and accepted terms; offline, pass a local copy "
            "with --set model.name=DIR, or train the tiny model with --preset tiny"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    return tokenizer, model


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder blocks (``model.model.layers`` for Llama and Gemma)."""
    n = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise DlhwError(f"{type(model).__name__}: found no list of {n} decoder layers")


def partial_layer_indices(layers: list[int], n: int) -> list[int]:
    resolved = sorted({i % n for i in layers if -n <= i < n})
    if len(resolved) != len(layers):
        raise ConfigError(f"method.layers {layers}: must be distinct layer indices of a {n}-layer model")
    if len(resolved) >= n:
        raise ConfigError(f"method.layers {layers}: selects every one of the {n} layers; nothing would stay frozen")
    return resolved


def freeze_all_but_layers(model: nn.Module, layers: list[int]) -> list[int]:
    """Freeze every parameter, then unfreeze the given decoder layers; returns their indices."""
    blocks = decoder_layers(model)
    chosen = partial_layer_indices(layers, len(blocks))
    model.requires_grad_(False)
    for i in chosen:
        blocks[i].requires_grad_(True)
    return chosen


def peft_config(method: MethodConfig, tokenizer_path: str) -> Any:
    import peft

    task = peft.TaskType.CAUSAL_LM
    if method.kind == "prompt-tuning":
        text = method.prompt_init == "text"
        return peft.PromptTuningConfig(
            task_type=task, num_virtual_tokens=method.num_virtual_tokens,
            prompt_tuning_init=peft.PromptTuningInit.TEXT if text else peft.PromptTuningInit.RANDOM,
            prompt_tuning_init_text=method.prompt_init_text if text else None,
            tokenizer_name_or_path=tokenizer_path if text else None,
        )
    if method.kind == "prefix-tuning":
        return peft.PrefixTuningConfig(
            task_type=task, num_virtual_tokens=method.num_virtual_tokens,
            prefix_projection=method.prefix_projection, encoder_hidden_size=method.encoder_hidden_size,
        )
    if method.kind == "p-tuning":
        return peft.PromptEncoderConfig(
            task_type=task, num_virtual_tokens=method.num_virtual_tokens,
            encoder_hidden_size=method.encoder_hidden_size,
            encoder_reparameterization_type=method.encoder_type,
        )
    if method.variant == "loha":
        return peft.LoHaConfig(task_type=task, r=method.r, alpha=method.alpha, module_dropout=method.dropout,
                               target_modules=method.target_modules)
    return peft.LoraConfig(
        task_type=task, r=method.r, lora_alpha=method.alpha, lora_dropout=method.dropout,
        target_modules=method.target_modules, use_dora=method.variant == "dora",
        use_rslora=method.variant == "rslora",
    )


def apply_method(model: nn.Module, method: MethodConfig, tokenizer_path: str) -> nn.Module:
    """The model to train: a peft wrapper, or ``model`` itself with all but four layers frozen."""
    if method.kind == "partial":
        freeze_all_but_layers(model, method.layers)
        return model
    import peft

    if method.kind == "lora":
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [m for m in method.target_modules if m not in names]
        if missing:
            raise ConfigError(f"method.target_modules: {missing} not in {type(model).__name__}; "
                              f"its linear layers include {sorted(n for n in names if n.endswith('proj'))}")
    return peft.get_peft_model(model, peft_config(method, tokenizer_path))


def parameter_counts(model: nn.Module) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "trainable_percent": 100.0 * trainable / max(total, 1)}


def tensor_digests(named: Iterable[tuple[str, torch.Tensor]]) -> dict[str, str]:
    """BLAKE2b of each tensor's bytes: equal digests mean bit-identical tensors."""
    out = {}
    for name, tensor in named:
        data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
        out[name] = hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()
    return out


def split_parameters(model: nn.Module) -> tuple[list[tuple[str, torch.Tensor]], list[tuple[str, torch.Tensor]]]:
    """``(frozen, trainable)`` named parameters and buffers-free, as the optimizer will see them."""
    frozen, trainable = [], []
    for name, p in model.named_parameters():
        (trainable if p.requires_grad else frozen).append((name, p))
    return frozen, trainable
