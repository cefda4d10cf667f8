"""Loading pretrained Hugging Face models: the one place the full presets touch the Hub.

``load_hub_model`` takes the model's task (causal LM today; seq2seq, token classification and
text-to-speech as their families arrive), its dtype and, on CUDA, 4-bit NF4 quantization; a
failure says what to do instead (log in for gated models, a local copy, or ``--preset tiny``).
"""

from __future__ import annotations

import os
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
        return True
    return device.type == "cuda" and default_on_cuda


KBIT_NAMES = {"nf4": "4-bit NF4", "int8": "8-bit"}


def kbit_kind(quantization: str, name: str | None, device: torch.device, default_on_cuda: bool,
              auto_kind: str = "nf4") -> str | None:
    """What loads: ``"nf4"``, ``"int8"`` or None. ``nf4`` / ``int8`` as asked; ``auto`` loads
    ``auto_kind`` on CUDA when the method asks for k-bit by default (QLoRA), else full precision."""
    if quantization == "int8" and name is not None:
        return "int8"
    if quantization == "auto" and auto_kind == "int8":
        return "int8" if name is not None and device.type == "cuda" and default_on_cuda else None
    return "nf4" if wants_4bit(quantization, name, device, default_on_cuda) else None


def require_kbit(quantization: str, device: torch.device) -> None:
    """4-bit and 8-bit loading is bitsandbytes on a CUDA GPU: the same one-line error for both when
    either is missing, before anything loads."""
    bits = KBIT_NAMES[quantization]
    if device.type != "cuda":
        raise ConfigError(f"model.quantization={quantization}: {bits} loading (bitsandbytes) needs a CUDA GPU and "
                          f"the model is on {device}; use --set model.quantization=none (bf16/fp32) or run on a GPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise DlhwError(f"model.quantization={quantization}: {bits} loading needs bitsandbytes: "
                        "pip install 'dlhw[gpu]', or --set model.quantization=none") from None


def check_quantization(quantization: str, device: torch.device) -> None:
    """``model.quantization`` checked before anything loads: nf4 and int8 need :func:`require_kbit`."""
    if quantization in KBIT_NAMES:
        require_kbit(quantization, device)


def kbit_device_map(device: torch.device) -> dict[str, int]:
    """Where a k-bit model loads (bitsandbytes places it at load time, it cannot be moved later): this
    process's GPU under torchrun (``LOCAL_RANK``: one GPU per process on every node), else ``device``'s."""
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None:
        return {"": int(local_rank)}
    return {"": device.index if device.index is not None else torch.cuda.current_device()}


def load_hub_model(name: str, task: str, device: torch.device, dtype: str = "auto", quantization: str = "none",
                   attn_implementation: str | None = None, gradient_checkpointing: bool = False,
                   quantize_by_default: bool = False, auto_kind: str = "nf4") -> tuple[Any, Any]:
    """``(tokenizer, model)`` of a Hub id or local folder (bf16 on GPU; NF4 or 8-bit when asked = QLoRA;
    ``quantization="auto"`` loads ``auto_kind`` on CUDA where ``quantize_by_default``, see :func:`kbit_kind`).

    k-bit models load on :func:`kbit_device_map` (the local rank's GPU under torchrun).
    """
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": model_dtype(dtype, device)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    kbit = kbit_kind(quantization, name, device, quantize_by_default, auto_kind)
    if kbit is not None:
        require_kbit(kbit, device)
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True) if kbit == "int8" else (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=model_dtype(dtype, device)))
        kwargs["device_map"] = kbit_device_map(device)
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
    if kbit is not None:
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
