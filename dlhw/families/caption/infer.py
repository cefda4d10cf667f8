"""Captioners: one interface over the backends (torch, onnxruntime, tensorrt).

``load_captioner(path, backend)`` takes a run directory or an export directory and returns an
object with ``spec``, ``vocab`` and ``caption(pixels, beam_size) -> Decoded``; decoding is the
same code for every backend (:mod:`dlhw.lm.decoding`). The ONNX backends drive the exported
decoder-step graph with :class:`OrtStepper`; ``IO`` names each architecture's graph inputs and
outputs (the exporter writes the graphs with those names).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dlhw.backends import Backend, open_export, open_session
from dlhw.core.runs import EXPORT_META
from dlhw.errors import ConfigError
from dlhw.families.caption.captions import Vocabulary
from dlhw.families.caption.model import (
    CaptionModel,
    CaptionModelSpec,
    load_caption_model,
    spec_from_dict,
)
from dlhw.lm.decoding import Decoded, decode


class Captioner(Protocol):
    spec: CaptionModelSpec
    vocab: Vocabulary

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded: ...


@dataclass(frozen=True)
class GraphIO:
    encoder_outputs: tuple[str, ...]
    step_inputs: tuple[str, ...]
    step_outputs: tuple[str, ...]
    state_batch_axis: dict[str, int]


IO = {
    "rnn": GraphIO(("h", "c"), ("tokens", "h", "c"), ("logits", "h_out", "c_out"), {"h": 1, "c": 1}),
    "attention": GraphIO(
        ("h", "c", "annotations", "projected"),
        ("tokens", "h", "c", "annotations", "projected"),
        ("logits", "h_out", "c_out", "alpha"),
        {"h": 0, "c": 0, "annotations": 0, "projected": 0},
    ),
    "transformer": GraphIO(("memory",), ("memory", "prefix", "last"), ("logits",), {"memory": 0, "prefix": 0}),
}


class OrtStepper:
    """The decoding stepper over decoder_step.onnx (state kept as numpy arrays)."""

    def __init__(self, arch: str, session: Any, pad_id: int = 0, max_length: int = 0):
        self.arch = arch
        self.io = IO[arch]
        self.session = session
        self.pad_id = pad_id
        self.length = max_length - 1  # the transformer graph's fixed prefix length

    def init_state(self, encoder_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        state = dict(encoder_outputs)
        if self.arch == "transformer":
            batch = state["memory"].shape[0]
            state["prefix"] = np.zeros((batch, 0), dtype=np.int64)
        return state

    def step(self, tokens: Tensor, state: dict[str, np.ndarray]) -> tuple[Tensor, dict[str, np.ndarray], Tensor | None]:
        ids = tokens.cpu().numpy().astype(np.int64)
        if self.arch == "transformer":
            prefix = np.concatenate([state["prefix"], ids[:, None]], axis=1)  # (B, t)
            t = prefix.shape[1]
            padded = np.full((prefix.shape[0], self.length), self.pad_id, dtype=np.int64)  # (B, L)
            padded[:, :t] = prefix
            feed = {"memory": state["memory"], "prefix": padded, "last": np.array(t - 1, dtype=np.int64)}
            (logits,) = self.session.run(None, feed)
            return torch.from_numpy(logits), {**state, "prefix": prefix}, None
        feed = {"tokens": ids, **{k: state[k] for k in self.io.step_inputs[1:]}}
        outputs = self.session.run(None, feed)
        new_state = {**state, "h": outputs[1], "c": outputs[2]}
        alpha = torch.from_numpy(outputs[3]) if self.arch == "attention" else None
        return torch.from_numpy(outputs[0]), new_state, alpha

    def reorder_state(self, state: dict[str, np.ndarray], index: Tensor) -> dict[str, np.ndarray]:
        idx = index.cpu().numpy()
        axes = self.io.state_batch_axis
        return {k: np.take(v, idx, axis=axes.get(k, 0)) for k, v in state.items()}




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
        meta = json.loads((export_dir / EXPORT_META).read_text(encoding="utf-8"))
        self.meta = meta
        self.spec = spec_from_dict(meta["spec"])
        self.vocab = Vocabulary.load(export_dir / meta["vocab"])
        self.encoder = open_session(export_dir / meta["files"]["encoder"], providers("encoder"))
        step = open_session(export_dir / meta["files"]["decoder_step"], providers("decoder_step"))
        self.stepper = OrtStepper(self.spec.model.arch, step, self.spec.pad_id, self.spec.max_length)
        self.output_names = [o.name for o in self.encoder.get_outputs()]

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded:
        x = np.ascontiguousarray(pixels.cpu().numpy(), dtype=np.float32)
        outputs = dict(zip(self.output_names, self.encoder.run(None, {"pixel_values": x}), strict=True))
        spec = self.spec
        return decode(self.stepper, outputs, x.shape[0], spec.sos_id, spec.eos_id, spec.pad_id,
                      max_new=spec.max_length - 1, beam_size=beam_size, length_penalty=length_penalty)


def load_captioner(path: str | Path, backend: Backend = "torch", device: str = "cpu") -> Captioner:
    path = Path(path)
    if backend == "torch":
        if not (path / "model" / "config.json").is_file():
            raise ConfigError(f"{path}: the torch backend needs a run directory (with model/); "
                              "for an export directory use --backend onnxruntime")
        return TorchCaptioner.from_run(path, device)
    export = open_export(path, backend, device)
    return OrtCaptioner(export.export_dir, export.providers_for)


class CaptionPredictor:
    """``dlhw caption``'s predictor (:class:`dlhw.core.family.Predictor`): an image file -> ``{"caption"}``."""

    result_key = "caption"

    def __init__(self, captioner: Captioner, beam_size: int = 1):
        from dlhw.families.caption.model import image_transform

        self.captioner = captioner
        self.beam_size = beam_size
        self.transform = image_transform(captioner.spec)

    def load(self, key: str, raw: Any) -> Tensor:
        return load_image_tensor(Path(raw), self.transform)  # decoded and resized in a loader worker

    def predict(self, batch: list[Tensor]) -> list[dict[str, Any]]:
        decoded = self.captioner.caption(torch.stack(batch), beam_size=self.beam_size)  # (B, 3, H, W)
        return [{"caption": " ".join(self.captioner.vocab.decode(row))} for row in decoded.tokens.tolist()]

    def throughput(self, seconds: float) -> str | None:
        return None


def open_predictor(path: str, backend: str = "torch", device: str = "auto", beam_size: int = 1) -> CaptionPredictor:
    """The caption family's batch predictor for a run (torch) or an export (onnxruntime, tensorrt)."""
    from dlhw.core.devices import resolve_device

    # the torch loader takes cpu/cuda; auto means CUDA when torch sees a GPU
    return CaptionPredictor(load_captioner(path, backend, str(resolve_device(device))), beam_size)  # type: ignore[arg-type]
