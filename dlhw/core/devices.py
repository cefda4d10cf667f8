"""Devices and dtypes, resolved from config strings (no device globals anywhere else).

:func:`resolve_device` and :func:`model_dtype` read config values (``train.device``,
``model.dtype``); :func:`inference_dtype` reads the batch verbs' ``--dtype auto|fp32|bf16|fp16``;
:func:`placement_line` is the one line every batch verb prints before its job: where the model
runs, why there, and in which precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dlhw.errors import ConfigError


def resolve_device(name: str, setting: str = "train.device") -> torch.device:
    """``auto`` = the CUDA GPU when there is one, else the CPU; an unavailable GPU is an error
    naming ``setting`` (the config key or flag the value came from)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        if setting.startswith("--"):
            raise ConfigError(f"{setting} {name}: CUDA is not available on this machine (torch sees no GPU); "
                              f"use {setting} auto or cpu")
        raise ConfigError(f"{setting}: {name} requested but CUDA is not available on this machine")
    return device


def model_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` = bfloat16 on a CUDA GPU that supports it, float32 elsewhere."""
    if name == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""``--dtype`` spellings -> the config spelling (``model.dtype``) and torch's name."""


def inference_dtype(name: str, device: torch.device) -> torch.dtype:
    """The weights' dtype for inference on ``device`` from ``--dtype`` (or a config spelling).

    ``auto`` = bfloat16 on a CUDA GPU that supports it, float32 elsewhere. bf16 runs on the CPU
    too (slower than fp32 there, but the same numbers as on a GPU within its rounding); fp16 on
    the CPU is refused: it is a GPU format, and the CPU kernels of several layers lack it.

    Raises:
        ConfigError: fp16 on the CPU, bf16 on a GPU without bfloat16, or an unknown name.
    """
    name = DTYPE_NAMES.get(name, name)
    if name not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError(f"--dtype {name}: use auto, fp32, bf16 or fp16")
    if name == "float16" and device.type != "cuda":
        raise ConfigError("--dtype fp16 is for CUDA GPUs; on the CPU use --dtype bf16 or fp32")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--dtype bf16: {torch.cuda.get_device_name(device)} has no bfloat16; use fp16 or fp32")
    return model_dtype(name, device)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``bfloat16`` (the config spelling, as :func:`model_dtype` reads it)."""
    return str(dtype).removeprefix("torch.")


def placement_line(backend: str, device: str, dtype: str = "auto", providers: Sequence[Any] | None = None) -> str:
    """Where a batch verb's model runs, as one line for stderr.

    ``torch on cpu (auto: no CUDA GPU visible), float32``, ``torch on cuda:0 (NVIDIA H100 80GB
    HBM3), bfloat16``, ``onnxruntime on cpu, providers CPUExecutionProvider``. Resolving the device
    and dtype here, with the functions the loaders use, makes ``--device cuda`` on a machine
    without CUDA (and fp16 on the CPU) fail before any model is read.

    Args:
        backend: ``torch``, ``onnxruntime`` or ``tensorrt``.
        device: ``--device`` as given (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        dtype: ``--dtype`` as given; only torch reads it (an export carries its own precision).
        providers: the ONNX Runtime providers of the export's sessions (names or ``(name, options)``).
    """
    dev = resolve_device("cuda" if backend == "tensorrt" else device, "--device")  # TensorRT: always the GPU
    if dev.type == "cuda":
        dev = torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())
        why = [torch.cuda.get_device_name(dev)]
    else:
        why = []
    if device == "auto" and backend != "tensorrt":
        why.append("auto: a CUDA GPU is visible" if dev.type == "cuda" else "auto: no CUDA GPU visible")
    line = f"{backend} on {dev}" + (f" ({'; '.join(why)})" if why else "")
    if backend == "torch":
        return f"{line}, {dtype_name(inference_dtype(dtype, dev))}"
    names = [p if isinstance(p, str) else p[0] for p in providers or ()]
    return f"{line}, providers {', '.join(names)}" if names else line
