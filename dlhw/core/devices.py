"""Devices and dtypes, resolved from config strings (no device globals anywhere else)."""

from __future__ import annotations

import torch

from dlhw.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` = the CUDA GPU when there is one, else the CPU; an unavailable GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name} requested but CUDA is not available on this machine")
    return device


def model_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` = bfloat16 on a CUDA GPU that supports it, float32 elsewhere."""
    if name == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
