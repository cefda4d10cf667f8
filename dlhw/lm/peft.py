"""Parameter-efficient fine-tuning, shared by every family that adapts a pretrained LM (chat now,
summarization next): the peft methods, partial fine-tuning, and the proof that frozen weights
stayed frozen.

- :func:`apply_method` -- wraps a model with prompt tuning, prefix tuning, P-tuning, LoRA / DoRA /
  rsLoRA / LoHa, or freezes all but chosen decoder layers (``method.kind = partial``).
- :class:`FrozenCheck` -- a BLAKE2b digest per tensor before training; after training every
  frozen tensor must be bit-identical, or the run fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from dlhw.config.peft import MethodConfig
from dlhw.errors import ConfigError, DlhwError


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


def peft_config(method: MethodConfig, tokenizer_path: str, task_type: str = "CAUSAL_LM") -> Any:
    """The peft config of ``method`` for a model of ``task_type`` (CAUSAL_LM, SEQ_2_SEQ_LM, ...)."""
    import peft

    task = peft.TaskType[task_type]
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


def apply_method(model: nn.Module, method: MethodConfig, tokenizer_path: str, task_type: str = "CAUSAL_LM") -> nn.Module:
    """The model to train: a peft wrapper, or ``model`` itself with all but chosen layers frozen."""
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
    return peft.get_peft_model(model, peft_config(method, tokenizer_path, task_type))


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
    frozen: list[tuple[str, torch.Tensor]] = []
    trainable: list[tuple[str, torch.Tensor]] = []
    for name, p in model.named_parameters():
        (trainable if p.requires_grad else frozen).append((name, p))
    return frozen, trainable


class FrozenCheck:
    """Digests of every parameter before training; :meth:`verify` after training proves that no
    frozen tensor moved (and says how many trainable ones did)."""

    def __init__(self, model: nn.Module):
        self.rebase(model)

    def rebase(self, model: nn.Module) -> None:
        """Take the digests (again: weights loaded before training by ``train.init_from`` are not moves)."""
        frozen, trainable = split_parameters(model)
        self.frozen = tensor_digests(frozen)
        self.trainable = tensor_digests(trainable)

    def verify(self, model: nn.Module) -> dict[str, Any]:
        """Raise when a frozen tensor changed; else the check's numbers (for train_summary.json)."""
        frozen, trainable = split_parameters(model)
        after = tensor_digests(frozen)
        moved = sorted(n for n, d in self.frozen.items() if after.get(n) != d)
        if moved:
            raise DlhwError(f"{len(moved)} frozen tensors changed during training (first: {moved[0]}); "
                            "the run is not saved")
        trained = tensor_digests(trainable)
        changed = sorted(n for n, d in self.trainable.items() if trained.get(n) != d)
        return {"frozen_tensors": len(self.frozen), "identical": len(self.frozen),
                "trainable_tensors": len(self.trainable), "changed": len(changed), "changed_names": changed}


def upcast_trainable(model: nn.Module) -> None:
    """Trainable weights in fp32: bf16 weights lose updates below their resolution."""
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
