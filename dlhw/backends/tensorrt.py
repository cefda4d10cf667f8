"""TensorRT through ONNX Runtime's TensorRT execution provider, with an engine cache.

Engines are built for the exported ONNX files with shape profiles from batch 1 to the maximum
batch, optionally in fp16, and cached under ``<export>/trt_cache``; ``--backend tensorrt`` reuses
that cache. Without an NVIDIA GPU or without the provider, every TensorRT request fails at
once with a usage error (exit 2), naming what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.errors import ConfigError


def tensorrt_missing() -> list[str]:
    """What stops TensorRT here (empty when it can run)."""
    missing = []
    import torch

    if not torch.cuda.is_available():
        missing.append("an NVIDIA GPU with CUDA (torch.cuda.is_available() is False)")
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    if "TensorrtExecutionProvider" not in providers:
        missing.append("onnxruntime-gpu with the TensorRT execution provider (available providers: "
                       f"{', '.join(providers) or 'none'})")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        missing.append("the tensorrt Python package (pip install 'dlhw[gpu,tensorrt]')")
    return missing


def require_tensorrt() -> None:
    """A usage error (exit 2) where TensorRT cannot run, raised before an export or a model is touched."""
    missing = tensorrt_missing()
    if missing:
        raise ConfigError("TensorRT is not available on this machine: it needs " + "; ".join(missing)
                        + ". Use --backend onnxruntime instead, or run on a CUDA machine (the dlhw Docker image has all of it).")


def tensorrt_providers(export_dir: Path, settings: dict[str, Any]) -> list[Any]:
    options = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(export_dir / "trt_cache"),
        "trt_fp16_enable": bool(settings.get("fp16", False)),
        "trt_max_workspace_size": 2 << 30,
    }
    for key in ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes"):
        if settings.get(key):
            options[key] = settings[key]
    return [("TensorrtExecutionProvider", options), "CUDAExecutionProvider", "CPUExecutionProvider"]


def shape_profiles(shapes: dict[str, list[int | str]], max_batch: int, max_sequence: int,
                   ranges: dict[str, tuple[int, int, int]] | None = None) -> dict[str, str]:
    """ORT TensorRT profile strings: ``batch`` from 1 to max_batch, ``sequence`` 1..max_sequence (optimum at
    half), and any other named dimension its ``(min, opt, max)`` from ``ranges`` (which may also override
    these two -- a KV cache starts empty, at 0).

    Only inputs with a dynamic dimension need a profile; static ones are left out.
    """
    sizes = {"batch": (1, max(1, max_batch // 2), max_batch),
             "sequence": (1, max(1, max_sequence // 2), max_sequence), **(ranges or {})}
    dynamic = {k: v for k, v in shapes.items() if any(isinstance(d, str) for d in v)}

    def render(which: int) -> str:
        return ",".join(f"{name}:" + "x".join(str(sizes[d][which] if isinstance(d, str) else int(d)) for d in dims)
                        for name, dims in dynamic.items())

    return {f"trt_profile_{kind}_shapes": render(i) for i, kind in enumerate(("min", "opt", "max"))}


def graph_input_shapes(onnx_path: Path) -> dict[str, list[int | str]]:
    """An ONNX file's inputs as :func:`shape_profiles` takes them: a named (dynamic) axis as its name, a fixed
    one as its size -- read from the graph without its weights."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}

