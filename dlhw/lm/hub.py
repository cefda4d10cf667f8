"""Loading pretrained Hugging Face models: the one place the full presets touch the Hub.

``load_hub_model`` takes the model's task (causal LM today; seq2seq, token classification and
text-to-speech as their families arrive), its dtype and, on CUDA, 4-bit NF4 quantization; a
failure says what to do instead (log in for gated models, a local copy, or ``--preset tiny``).
"""

from __future__ import annotations

from typing import Any

import torch

from dlhw.core.devices import model_dtype
from dlhw.errors import ConfigError, DataError, DlhwError

AUTO_CLASSES = {
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "token-classification": "AutoModelForTokenClassification",
    "backbone": "AutoModel",
}
"""Model task -> the transformers auto class that loads it."""


def auto_class(task: str) -> Any:
    import transformers

    try:
        return getattr(transformers, AUTO_CLASSES[task])
    except KeyError:
        raise ConfigError(f"model task {task!r}: expected one of {', '.join(AUTO_CLASSES)}") from None


def wants_4bit(quantization: str, name: str | None, device: torch.device, default_on_cuda: bool) -> bool:
    """Whether to load 4-bit NF4: ``nf4`` always (CUDA only), ``auto`` on CUDA when the method asks."""
    if quantization == "none" or name is None:
        return False
    if quantization == "nf4":
        if device.type != "cuda":
            raise ConfigError("model.quantization=nf4: 4-bit loading needs a CUDA GPU (bitsandbytes)")
        return True
    return device.type == "cuda" and default_on_cuda


def load_hub_model(name: str, task: str, device: torch.device, dtype: str = "auto", quantization: str = "none",
                   attn_implementation: str | None = None, gradient_checkpointing: bool = False,
                   quantize_by_default: bool = False) -> tuple[Any, Any]:
    """``(tokenizer, model)`` of a Hub id or local folder (bf16 on GPU; NF4 when asked = QLoRA)."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": model_dtype(dtype, device)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    quantized = wants_4bit(quantization, name, device, quantize_by_default)
    if quantization == "int8":
        if device.type != "cuda":
            raise ConfigError("model.quantization=int8: 8-bit loading needs a CUDA GPU (bitsandbytes); "
                              "use model.quantization=none on CPU")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": device.index or 0}
        quantized = True
    elif quantized:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise DlhwError("4-bit (QLoRA) loading needs bitsandbytes: pip install 'dlhw[gpu]', or "
                            "--set model.quantization=none for bf16 LoRA") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=model_dtype(dtype, device),
        )
        kwargs["device_map"] = {"": device.index or 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = auto_class(task).from_pretrained(name, **kwargs)
    except OSError as err:
        raise DataError(
            f"could not load the base model {name!r} ({str(err).splitlines()[0]}). Gated models "
            "(Gemma, Llama) need `huggingface-cli login` and accepted terms; offline, pass a local copy "
            "with --set model.name=DIR, or train the tiny model with --preset tiny"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return tokenizer, model


def load_any_hub_model(name: str) -> Any:
    """Any model by Hub id or local folder, with the most specific head its config allows."""
    errors = []
    for task in ("causal-lm", "seq2seq-lm", "backbone"):
        try:
            return auto_class(task).from_pretrained(name, dtype=torch.float32)
        except (OSError, ValueError) as err:
            errors.append(str(err).splitlines()[0])
    raise ConfigError(f"{name}: neither a dlhw run directory nor a loadable model ({errors[0]})")
