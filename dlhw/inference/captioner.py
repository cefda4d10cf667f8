"""Captioners: one interface over the backends (torch, onnxruntime, tensorrt).

``load_captioner(path, backend)`` takes a run directory or an export directory and returns an
object with ``spec``, ``vocab`` and ``caption(pixels, beam_size) -> Decoded``; decoding is the
same code for every backend (:mod:`dlhw.inference.decoding`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dlhw.data.captions import Vocabulary
from dlhw.errors import ConfigError
from dlhw.inference.decoding import Decoded, decode
from dlhw.models.caption import CaptionModel, CaptionModelSpec, load_caption_model, spec_from_dict

Backend = Literal["torch", "onnxruntime", "tensorrt"]


class Captioner(Protocol):
    spec: CaptionModelSpec
    vocab: Vocabulary

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded: ...
EXPORT_META = "export.json"


def load_image_tensor(path: Path, transform: Callable[[Image.Image], Tensor]) -> Tensor:
    """Decode an image file completely (so truncation is caught here) and preprocess it."""
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    with Image.open(path) as img:
        img.load()
        rgb = img.convert("RGB")
    return transform(rgb)


class TorchCaptioner:
    def __init__(self, model: CaptionModel, vocab: Vocabulary, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.spec: CaptionModelSpec = model.spec
        self.vocab = vocab

    @classmethod
    def from_run(cls, run_dir: Path, device: str | torch.device = "cpu") -> TorchCaptioner:
        return cls(load_caption_model(run_dir / "model"), Vocabulary.load(run_dir / "model" / "vocab.json"), device)

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded:
        return self.model.generate(pixel_values=pixels.to(self.device), beam_size=beam_size,
                                   length_penalty=length_penalty)


class OrtCaptioner:
    def __init__(self, export_dir: Path, providers: Callable[[str], list[Any]]):
        """``providers(graph)`` gives the execution providers for "encoder" and "decoder_step"."""
        import onnxruntime as ort

        from dlhw.export.caption import OrtStepper

        meta = json.loads((export_dir / EXPORT_META).read_text(encoding="utf-8"))
        self.meta = meta
        self.spec = spec_from_dict(meta["spec"])
        self.vocab = Vocabulary.load(export_dir / meta["vocab"])
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.encoder = ort.InferenceSession(str(export_dir / meta["files"]["encoder"]), options,
                                            providers=providers("encoder"))
        step = ort.InferenceSession(str(export_dir / meta["files"]["decoder_step"]), options,
                                    providers=providers("decoder_step"))
        self.stepper = OrtStepper(self.spec.model.arch, step, self.spec.pad_id, self.spec.max_length)
        self.output_names = [o.name for o in self.encoder.get_outputs()]

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded:
        x = np.ascontiguousarray(pixels.cpu().numpy(), dtype=np.float32)
        outputs = dict(zip(self.output_names, self.encoder.run(None, {"pixel_values": x}), strict=True))
        spec = self.spec
        return decode(self.stepper, outputs, x.shape[0], spec.sos_id, spec.eos_id, spec.pad_id,
                      max_new=spec.max_length - 1, beam_size=beam_size, length_penalty=length_penalty)


def export_dir_of(path: Path) -> Path:
    """An export directory as given, or the ONNX export inside a run directory."""
    if (path / EXPORT_META).is_file():
        return path
    candidate = path / "export" / "onnx"
    if (candidate / EXPORT_META).is_file():
        return candidate
    raise ConfigError(f"{path}: no ONNX export found; create one with `dlhw export {path} --onnx`")


def load_captioner(path: str | Path, backend: Backend = "torch", device: str = "cpu") -> Captioner:
    path = Path(path)
    if backend == "torch":
        if not (path / "model" / "config.json").is_file():
            raise ConfigError(f"{path}: the torch backend needs a run directory (with model/); "
                              "for an export directory use --backend onnxruntime")
        return TorchCaptioner.from_run(path, device)
    export_dir = export_dir_of(path)
    if backend == "tensorrt":
        from dlhw.export.tensorrt import require_tensorrt, tensorrt_providers

        require_tensorrt()
        meta = json.loads((export_dir / EXPORT_META).read_text(encoding="utf-8"))
        if "tensorrt" not in meta:
            raise ConfigError(f"{export_dir}: no TensorRT engines; build them with `dlhw export ... --tensorrt`")
        trt = meta["tensorrt"]
        return OrtCaptioner(export_dir, lambda graph: tensorrt_providers(export_dir, {**trt, **trt[graph]}))
    providers = ["CPUExecutionProvider"] if device == "cpu" else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return OrtCaptioner(export_dir, lambda graph: providers)
